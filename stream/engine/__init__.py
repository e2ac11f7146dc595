"""The pure engine: contact events in, exact figures out. No I/O, no Faust.

Shared by the Faust worker, ``rcr compute`` and the tests.
"""

from stream.engine.batch import PeriodFigures, collect_timelines, figures_per_period
from stream.engine.engine import Engine, EngineConfig, Window
from stream.engine.events import ContactEvent, Outcome, Rejection, RejectReason
from stream.engine.figures import Figures
from stream.engine.periods import Calendar, Period, PeriodKind
from stream.engine.timeline import ALL, TOTAL, CustomerTimeline, Label
from stream.engine.validation import decode_contact

__all__ = [
    "ALL",
    "TOTAL",
    "Calendar",
    "ContactEvent",
    "CustomerTimeline",
    "Engine",
    "EngineConfig",
    "Figures",
    "Label",
    "Outcome",
    "Period",
    "PeriodFigures",
    "PeriodKind",
    "RejectReason",
    "Rejection",
    "Window",
    "collect_timelines",
    "decode_contact",
    "figures_per_period",
]
