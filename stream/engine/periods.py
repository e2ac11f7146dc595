"""Calendar periods (day, ISO week, month) in an IANA time zone, as millisecond ranges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from stream.engine.validation import MAX_TIMESTAMP_MS

# 10000-01-01T00:00:00Z, where accepted time ends. ``date`` ends with 9999-12-31, so the
# period holding that (local) day is the calendar's last: it ends here, for every kind and
# zone, and no period follows it. East of UTC it also holds the hours already in 10000.
END_OF_TIME_MS = MAX_TIMESTAMP_MS
# How ``to_rfc3339`` writes the end of time, which RFC 3339 (four-digit years) cannot:
# as the last accepted instant, one millisecond before it.
_END_OF_TIME_RFC3339 = "9999-12-31T23:59:59.999Z"


class PeriodKind(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Period(NamedTuple):
    """A calendar period ``[start_ms, end_ms)`` labelled as ``rcr compute`` prints it."""

    kind: PeriodKind
    label: str
    start_ms: int
    end_ms: int

    def contains(self, timestamp_ms: int) -> bool:
        return self.start_ms <= timestamp_ms < self.end_ms


class Calendar:
    """Maps instants to the periods that contain them, in one time zone."""

    def __init__(self, zone: str = "UTC") -> None:
        self.zone = ZoneInfo(zone)

    def period_of(self, kind: PeriodKind, timestamp_ms: int) -> Period:
        """The period holding an instant of accepted time, ``[0, END_OF_TIME_MS)``."""
        if not timestamp_ms < END_OF_TIME_MS:
            raise ValueError(f"{timestamp_ms} ms is past the end of time (year 9999)")
        return self._period_starting(kind, _first_day(kind, self._local_date(timestamp_ms)))

    def _local_date(self, timestamp_ms: int) -> date:
        try:
            return _utc(timestamp_ms).astimezone(self.zone).date()
        except OverflowError:
            if timestamp_ms < 0:
                raise
            # East of UTC the last hours of 9999-12-31 UTC are 10000-01-01 already, which
            # ``date`` cannot hold: they belong to the calendar's last period.
            return date.max

    def previous(self, period: Period) -> Period:
        return self.period_of(period.kind, period.start_ms - 1)

    def next(self, period: Period) -> Period:
        """The period after ``period``; none follows the one ending at ``END_OF_TIME_MS``."""
        return self.period_of(period.kind, period.end_ms)

    def _period_starting(self, kind: PeriodKind, first: date) -> Period:
        start_ms = self._midnight_ms(first)
        if first > date.max - _LONGEST[kind]:  # the next period would start in year 10000
            return Period(kind, _label(kind, first), start_ms, END_OF_TIME_MS)
        after = _first_day(kind, first + _LONGEST[kind])
        return Period(kind, _label(kind, first), start_ms, self._midnight_ms(after))

    def _midnight_ms(self, day: date) -> int:
        # Local midnight; zoneinfo resolves a midnight skipped or repeated by DST to one instant.
        local = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        return int(local.timestamp() * 1000)

    def to_rfc3339(self, timestamp_ms: int) -> str:
        return self._format(timestamp_ms, "seconds")

    def to_rfc3339_ms(self, timestamp_ms: int) -> str:
        return self._format(timestamp_ms, "milliseconds")

    def _format(self, timestamp_ms: int, timespec: str) -> str:
        if timestamp_ms == END_OF_TIME_MS:
            return _END_OF_TIME_RFC3339
        text = _utc(timestamp_ms).astimezone(self.zone).isoformat(timespec=timespec)
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(timestamp_ms: int) -> datetime:
    # Integer arithmetic: fromtimestamp(ms / 1000) can round across a period boundary.
    return _EPOCH + timedelta(milliseconds=timestamp_ms)


def utc_rfc3339_ms(timestamp_ms: int) -> str:
    """``Calendar("UTC").to_rfc3339_ms``, character for character: the Redis lookups format
    a time per changed customer, and the ``datetime`` round trip (add, convert,
    ``isoformat``, replace the offset) was a sixth of building one. Whole minutes come
    from a cache (recent events share them), seconds and milliseconds from tables."""
    minutes, within = divmod(timestamp_ms, 60_000)
    second, millis = divmod(within, 1000)
    return _utc_minute(minutes) + _SECONDS[second] + _MILLIS[millis]


@lru_cache(maxsize=4096)
def _utc_minute(minutes_since_epoch: int) -> str:
    """``YYYY-MM-DDTHH:MM:``"""
    return _utc(minutes_since_epoch * 60_000).isoformat(timespec="minutes")[:16] + ":"


_SECONDS = tuple(f"{second:02}" for second in range(60))
_MILLIS = tuple(f".{millis:03}Z" for millis in range(1000))


# A step that always lands inside the next period, from that period's first day.
_LONGEST = {
    PeriodKind.DAY: timedelta(days=1),
    PeriodKind.WEEK: timedelta(days=7),
    PeriodKind.MONTH: timedelta(days=31),
}


def _first_day(kind: PeriodKind, day: date) -> date:
    if kind is PeriodKind.DAY:
        return day
    if kind is PeriodKind.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _label(kind: PeriodKind, first: date) -> str:
    if kind is PeriodKind.DAY:
        return first.isoformat()
    if kind is PeriodKind.WEEK:
        year, week, _ = first.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{first.year}-{first.month:02d}"
