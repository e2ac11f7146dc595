"""Real data the tests use: the shared TWCS excerpt, beside the repository (../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

TWCS = Path(__file__).parents[2] / "shared" / "datasets" / "twcs-excerpt" / "twcs-excerpt.csv"
TWCS_TIME = "%a %b %d %H:%M:%S %z %Y"
# The one command line that replays it (README): rcr replay TWCS *TWCS_REPLAY_ARGS
TWCS_REPLAY_ARGS = [
    "--map",
    "customer_id=author_id,timestamp=created_at,contact_id=tweet_id",
    "--where",
    "inbound=True",
    "--set",
    "channel=social",
    "--time-format",
    TWCS_TIME,
]


def twcs() -> Path:
    """The dataset's path; a missing dataset fails the test (it is part of the checkout)."""
    if not TWCS.exists():
        pytest.fail(f"dataset missing: {TWCS}")
    return TWCS
