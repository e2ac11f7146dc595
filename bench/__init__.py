"""Benchmark harness for issue 4: ``python -m bench [--quick] [--only a,b] [--profile]``.

Starts its own embedded broker and Redis, produces simulated traffic and prints one JSON line
per scenario. Every scenario runs in the same invocation, so ratios between them (the worker
against a plain aiokafka consumer and a naive Faust agent) are meaningful on a noisy machine.
"""
