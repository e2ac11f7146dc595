"""Building the restored state without Python's cyclic garbage collector walking it.

Loading a changelog and rebuilding its engines creates several objects per contact (a
million customers: about ten million). The collector runs whenever allocations outnumber
deallocations by 700, and a full collection walks every tracked object: while the state
grows, collections are frequent and ever longer (decoding a million customers' timelines
took 8.3 s of CPU with them, 5.1 s without; docs/BENCHMARKS.md). Nothing of that state
forms reference cycles (timelines are lists of tuples of strings and ints, freed by
reference counting), so collecting is paused while it is built, and once built it is
moved out of the collector's generations (``gc.freeze``): later collections skip it,
instead of walking millions of objects that can never be cyclic garbage. Reference
counting still frees frozen objects; the price is that a frozen reference cycle is never
collected, and what is frozen beside the state is what the process holds at that moment
(its modules, the app, a few tasks), once per rebalance.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_state() -> Iterator[None]:
    """Collection paused for the block; what exists after it is frozen (see above)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
