"""Simulated contact traffic: a pure generator (``generator``) and its paced producer (``runner``).

Importing this package loads only the generator, so ``rcr dev`` and the benchmarks can draw
events without pulling in Kafka clients.
"""

from stream.simulate.generator import (
    SCENARIOS,
    Contact,
    ContactGenerator,
    SimConfig,
    default_customers,
    format_timestamp_ms,
    generate,
    generate_events,
)

__all__ = [
    "SCENARIOS",
    "Contact",
    "ContactGenerator",
    "SimConfig",
    "default_customers",
    "format_timestamp_ms",
    "generate",
    "generate_events",
]
