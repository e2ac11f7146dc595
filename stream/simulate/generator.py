"""Realistic contact traffic as a pure generator: no I/O, no wall clock, same seed same events.

`rcr simulate`, `rcr dev` and the benchmarks all draw from :func:`generate`, so a launch-day
rehearsal, a demo and a benchmark see the same kind of traffic. The model, in one paragraph:

* Arrivals form a Poisson process whose intensity is ``rate`` times a diurnal curve (a cosine
  with mean exactly 1 over a day, peak in office hours) times the launch boost. The total
  volume is therefore exactly what ``rate`` asks for, averaged over a day.
* Each arrival is, in priority order: an outbound contact (a small share, ignored by every
  metric but present so the worker's ``ignored`` path is exercised); a due follow-up of a
  customer who was not helped the first time; otherwise a fresh contact from a customer drawn
  with Zipf-like popularity. Follow-ups take the arrival slot instead of adding volume, so the
  repeat behaviour changes the mix without breaking the rate, and follow-ups that fall due at
  night naturally spill into the morning, as real ones do.
* After every inbound contact, with ``repeat_probability``, the customer schedules one
  follow-up after an exponential delay: short (hours) or long (days). Follow-ups keep the
  reason and usually the channel, and may themselves be followed up. At most one is pending
  per customer and ``max_pending`` in all, so memory stays bounded however long the run.
* The ``launch`` scenario multiplies one reason's volume by ``launch_factor`` from
  ``launch_at_s`` on (a step, or a linear ramp over ``launch_ramp_s``), on one channel, and
  those contacts come back with ``launch_repeat_probability``: contacts and repeats both rise.
* At the start, follow-ups that a steady process would already have pending are seeded, so
  the repeat rate does not climb from zero over the first days of a run.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from bisect import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any, NamedTuple

SCENARIOS = ("steady", "launch")

CHANNEL_MIX: tuple[tuple[str, float], ...] = (
    ("phone", 0.34),
    ("chat", 0.30),
    ("email", 0.20),
    ("social", 0.10),
    ("app", 0.06),
)
REASON_MIX: tuple[tuple[str, float], ...] = (
    ("billing", 0.22),
    ("technical", 0.20),
    ("delivery", 0.15),
    ("account", 0.12),
    ("order_change", 0.10),
    ("returns", 0.09),
    ("product_info", 0.07),
    ("complaint", 0.05),
)
# Outbound contacts are agents calling or writing back.
OUTBOUND_CHANNELS: tuple[tuple[str, float], ...] = (("phone", 0.7), ("email", 0.3))

_DAY_S = 86_400.0
# Customers per event/s when the population is not given: a 30-day contact rate near 2.6.
CUSTOMERS_PER_EVENT_PER_S = 1_000_000
_SEGMENT_S = 3_600.0


class Contact(NamedTuple):
    """One generated event: ``at`` is its event time (epoch seconds, ms resolution)."""

    at: float
    event: dict[str, Any]

    @property
    def key(self) -> str:
        """The record key: every contact of one customer goes to one partition."""
        return str(self.event["customer_id"])


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes the traffic; with ``seed`` and the start time, the whole output."""

    rate: float = 10.0
    customers: int = 10_000_000
    seed: int = 0
    scenario: str = "steady"
    zipf_exponent: float = 1.0
    zipf_head: float = 0.001
    channels: tuple[tuple[str, float], ...] = CHANNEL_MIX
    reasons: tuple[tuple[str, float], ...] = REASON_MIX
    outbound_share: float = 0.02
    diurnal_amplitude: float = 0.6
    peak_hour_utc: float = 14.0
    repeat_probability: float = 0.2
    repeat_short_share: float = 0.6
    repeat_short_mean_s: float = 3 * 3600.0
    repeat_long_mean_s: float = 2 * _DAY_S
    channel_switch_probability: float = 0.3
    launch_at_s: float = 600.0
    launch_factor: float = 3.0
    launch_ramp_s: float = 0.0
    launch_reason: str = "technical"
    launch_channel: str = "chat"
    launch_repeat_probability: float = 0.5
    seed_pending: bool = True
    max_pending: int = 500_000

    def __post_init__(self) -> None:
        for problem in _config_problems(self):
            raise ValueError(problem)

    @property
    def launching(self) -> bool:
        return self.scenario == "launch"

    def reason_share(self, reason: str) -> float:
        """Baseline share of one reason in the mix (0 when it is not in the mix)."""
        total = sum(weight for _, weight in self.reasons)
        return sum(weight for name, weight in self.reasons if name == reason) / total


def default_customers(rate: float) -> int:
    """A population that keeps repeats plausible at this rate (rate x 1,000,000, >= 10,000).

    Too few customers for the volume and almost everyone repeats by chance; the repeat rate
    would then say nothing about the follow-up behaviour being rehearsed.
    """
    return max(10_000, round(rate * CUSTOMERS_PER_EVENT_PER_S))


def _config_problems(config: SimConfig) -> Iterator[str]:
    """Every way a config can be nonsense, as messages naming the setting."""
    if not config.rate > 0 or math.isinf(config.rate):
        yield f"rate must be a positive number of events per second, got {config.rate}"
    if config.customers < 1:
        yield f"customers must be at least 1, got {config.customers}"
    if config.scenario not in SCENARIOS:
        yield f"scenario must be one of {', '.join(SCENARIOS)}, got {config.scenario!r}"
    if not (config.channels and config.reasons):
        yield "channel and reason mixes must not be empty"
    for name in ("outbound_share", "repeat_probability", "launch_repeat_probability"):
        value = getattr(config, name)
        if not 0 <= value < 1:
            yield f"{name} must be in [0, 1), got {value}"
    if not 0 <= config.diurnal_amplitude < 1:
        yield f"diurnal_amplitude must be in [0, 1), got {config.diurnal_amplitude}"
    if config.launching and config.reason_share(config.launch_reason) == 0:
        names = ", ".join(name for name, _ in config.reasons)
        yield f"launch_reason {config.launch_reason!r} is not in the reason mix ({names})"
    if config.launch_factor < 1:
        yield f"launch_factor must be at least 1, got {config.launch_factor}"
    if config.launch_at_s < 0 or config.launch_ramp_s < 0:
        yield "launch_at_s and launch_ramp_s must not be negative"
    if config.zipf_exponent < 0:
        yield f"zipf_exponent must not be negative, got {config.zipf_exponent}"
    if not 0 <= config.zipf_head < 1:
        yield f"zipf_head must be in [0, 1), got {config.zipf_head}"
    if config.max_pending < 0:
        yield f"max_pending must not be negative, got {config.max_pending}"


def diurnal_factor(at: float, amplitude: float, peak_hour_utc: float) -> float:
    """Relative intensity at a time of day; its mean over any whole day is exactly 1."""
    hour = (at % _DAY_S) / 3600.0
    return 1.0 + amplitude * math.cos(2 * math.pi * (hour - peak_hour_utc) / 24.0)


def launch_boost(config: SimConfig, offset_s: float) -> float:
    """Extra volume (as a fraction of the baseline) from the launch, ``offset_s`` into the run."""
    if not config.launching or offset_s < config.launch_at_s:
        return 0.0
    ramp = 1.0
    if config.launch_ramp_s > 0:
        ramp = min(1.0, (offset_s - config.launch_at_s) / config.launch_ramp_s)
    return config.reason_share(config.launch_reason) * (config.launch_factor - 1.0) * ramp


@lru_cache(maxsize=4)
def _second_text(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def format_timestamp_ms(ms: int) -> str:
    """RFC 3339 in UTC with ``Z``, milliseconds only when there are any."""
    seconds, millis = divmod(ms, 1000)
    text = _second_text(seconds)
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


class _Mix:
    """A weighted choice in O(log n), drawn from the generator's own random stream."""

    def __init__(self, weighted: tuple[tuple[str, float], ...]) -> None:
        self.names = [name for name, _ in weighted]
        self.cumulative = list(accumulate(weight for _, weight in weighted))
        self.total = self.cumulative[-1]

    def draw(self, rnd: random.Random) -> str:
        index = bisect(self.cumulative, rnd.random() * self.total)
        return self.names[min(index, len(self.names) - 1)]


class _Population:
    """Zipf-like popularity: rank k has weight (k + q)^-s, sampled in O(1) time and memory.

    The inverse CDF of the continuous power law is closed-form, so a population of a hundred
    million costs nothing; the offset q (a share ``head`` of the population) flattens the very
    top, so the busiest customer is a heavy user rather than half of all traffic. Rank -> id is
    an affine permutation modulo the population, so the busiest is not always ``c0``.
    """

    def __init__(self, size: int, exponent: float, head: float, rnd: random.Random) -> None:
        self.size = size
        self.exponent = exponent
        self.low = max(1.0, head * size)
        self.high = self.low + size
        if exponent != 1.0:
            self.power = 1.0 - exponent
            self.low_p = self.low**self.power
            self.span_p = self.high**self.power - self.low_p
        self.log_ratio = math.log(self.high / self.low)
        self.width = len(str(max(size - 1, 0)))
        self.multiplier = self._coprime(size, rnd)
        self.offset = rnd.randrange(size)

    @staticmethod
    def _coprime(size: int, rnd: random.Random) -> int:
        while True:
            candidate = rnd.randrange(1, max(size, 2))
            if math.gcd(candidate, size) == 1:
                return candidate

    def draw_rank(self, rnd: random.Random) -> int:
        u = rnd.random()
        if self.exponent == 1.0:
            y = self.low * math.exp(u * self.log_ratio)
        else:
            y = (self.low_p + u * self.span_p) ** (1.0 / self.power)
        return min(int(y - self.low), self.size - 1)

    def customer_id(self, rank: int) -> str:
        return f"c{(rank * self.multiplier + self.offset) % self.size:0{self.width}d}"


class _FollowUp(NamedTuple):
    due: float
    seq: int
    rank: int
    reason: str
    channel: str
    repeat_probability: float


class ContactGenerator:
    """An endless, time-ordered stream of contacts starting at ``start`` (epoch seconds).

    Iterate it directly, or use :func:`generate` for a bounded slice.
    """

    def __init__(self, config: SimConfig, start: float) -> None:
        self.config = config
        self.start = math.floor(start * 1000) / 1000
        self._rnd = random.Random(config.seed)
        self._population = _Population(
            config.customers, config.zipf_exponent, config.zipf_head, self._rnd
        )
        self._channels = _Mix(config.channels)
        self._reasons = _Mix(config.reasons)
        self._outbound_channels = _Mix(OUTBOUND_CHANNELS)
        self._pending: list[_FollowUp] = []
        self._pending_ranks: set[int] = set()
        self._recent: deque[int] = deque(maxlen=1000)
        self._seq = 0
        self._id_prefix = f"sim{config.seed}-{int(self.start * 1000):x}-"
        if config.seed_pending:
            self._seed_pending()

    # -- follow-ups -------------------------------------------------------------------------

    def _steady_pending(self) -> tuple[int, int]:
        """How many short and long follow-ups a steady process has pending (Little's law)."""
        cfg = self.config
        demand = cfg.rate * cfg.repeat_probability
        short = demand * cfg.repeat_short_share * cfg.repeat_short_mean_s
        long = demand * (1 - cfg.repeat_short_share) * cfg.repeat_long_mean_s
        cap = min(cfg.customers // 2, cfg.max_pending // 2)
        scale = min(1.0, cap / (short + long)) if short + long > 0 else 0.0
        return round(short * scale), round(long * scale)

    def _seed_pending(self) -> None:
        """Seed follow-ups from before the start; exponential delays make the residual exact."""
        short, long = self._steady_pending()
        for count, mean in (
            (short, self.config.repeat_short_mean_s),
            (long, self.config.repeat_long_mean_s),
        ):
            for _ in range(count):
                rank = self._population.draw_rank(self._rnd)
                if rank in self._pending_ranks:
                    continue
                due = self.start + self._rnd.expovariate(1.0 / mean)
                reason = self._reasons.draw(self._rnd)
                channel = self._channels.draw(self._rnd)
                self._push(due, rank, reason, channel, self.config.repeat_probability)

    def _push(self, due: float, rank: int, reason: str, channel: str, probability: float) -> None:
        self._seq += 1
        heapq.heappush(self._pending, _FollowUp(due, self._seq, rank, reason, channel, probability))
        self._pending_ranks.add(rank)

    def _maybe_follow_up(self, at: float, rank: int, reason: str, channel: str, p: float) -> None:
        """With probability ``p`` the customer will be back: after hours, or after days."""
        if self._rnd.random() >= p or rank in self._pending_ranks:
            return
        if len(self._pending) >= self.config.max_pending:
            return
        cfg = self.config
        short = self._rnd.random() < cfg.repeat_short_share
        mean = cfg.repeat_short_mean_s if short else cfg.repeat_long_mean_s
        self._push(at + self._rnd.expovariate(1.0 / mean), rank, reason, channel, p)

    # -- arrivals ---------------------------------------------------------------------------

    def _ceiling(self, begin: float, end: float) -> float:
        """An upper bound of the intensity over ``[begin, end)``, tight so thinning rarely rejects.

        The launch boost never decreases, so its value at ``end`` bounds it; the cosine's
        maximum is at an end of the interval unless its peak falls inside.
        """
        cfg = self.config
        peak = (math.floor(begin / _DAY_S) * _DAY_S) + cfg.peak_hour_utc * 3600.0
        inside = any(begin <= p <= end for p in (peak, peak + _DAY_S))
        if inside:
            diurnal = 1.0 + cfg.diurnal_amplitude
        else:
            ends = (
                diurnal_factor(t, cfg.diurnal_amplitude, cfg.peak_hour_utc) for t in (begin, end)
            )
            diurnal = max(ends)
        return cfg.rate * diurnal * (1.0 + launch_boost(cfg, end - self.start))

    def _arrivals(self) -> Iterator[tuple[float, float]]:
        """Poisson arrival times by thinning against an hourly ceiling, with the launch boost.

        Restarting the exponential clock at each hour boundary is exact (memorylessness) and
        keeps the acceptance ratio near 1 however deep the diurnal trough.
        """
        cfg = self.config
        at = segment_end = self.start
        ceiling = 0.0
        while True:
            if at >= segment_end:
                segment_end = (math.floor(at / _SEGMENT_S) + 1) * _SEGMENT_S
                ceiling = self._ceiling(at, segment_end)
            candidate = at + self._rnd.expovariate(ceiling)
            if candidate >= segment_end:
                at = segment_end
                continue
            at = candidate
            boost = launch_boost(cfg, at - self.start)
            intensity = cfg.rate * diurnal_factor(at, cfg.diurnal_amplitude, cfg.peak_hour_utc)
            if self._rnd.random() * ceiling < intensity * (1.0 + boost):
                yield at, boost

    def _event(self, at: float, rank: int, channel: str, reason: str, direction: str) -> Contact:
        ms = int(at * 1000)
        self._seq += 1
        event = {
            "contact_id": f"{self._id_prefix}{self._seq}",
            "customer_id": self._population.customer_id(rank),
            "timestamp": format_timestamp_ms(ms),
            "channel": channel,
            "reason": reason,
            "direction": direction,
        }
        return Contact(ms / 1000, event)

    def _outbound(self, at: float) -> Contact:
        rnd = self._rnd
        rank = rnd.choice(self._recent) if self._recent else self._population.draw_rank(rnd)
        channel = self._outbound_channels.draw(rnd)
        return self._event(at, rank, channel, self._reasons.draw(rnd), "outbound")

    def _due_follow_up(self, at: float) -> Contact:
        follow = heapq.heappop(self._pending)
        self._pending_ranks.discard(follow.rank)
        channel = follow.channel
        if self._rnd.random() < self.config.channel_switch_probability:
            channel = self._channels.draw(self._rnd)
        self._inbound_done(at, follow.rank, follow.reason, channel, follow.repeat_probability)
        return self._event(at, follow.rank, channel, follow.reason, "inbound")

    def _fresh(self, at: float, boost: float) -> Contact:
        cfg, rnd = self.config, self._rnd
        rank = self._population.draw_rank(rnd)
        if boost > 0 and rnd.random() * (1.0 + boost) < boost:
            reason, channel = cfg.launch_reason, cfg.launch_channel
            p = cfg.launch_repeat_probability
        else:
            reason, channel = self._reasons.draw(rnd), self._channels.draw(rnd)
            p = cfg.repeat_probability
        self._inbound_done(at, rank, reason, channel, p)
        return self._event(at, rank, channel, reason, "inbound")

    def _inbound_done(self, at: float, rank: int, reason: str, channel: str, p: float) -> None:
        self._recent.append(rank)
        self._maybe_follow_up(at, rank, reason, channel, p)

    def __iter__(self) -> Iterator[Contact]:
        for at, boost in self._arrivals():
            if self._rnd.random() < self.config.outbound_share:
                yield self._outbound(at)
            elif self._pending and self._pending[0].due <= at:
                yield self._due_follow_up(at)
            else:
                yield self._fresh(at, boost)


def generate(
    config: SimConfig,
    start: float,
    *,
    until: float | None = None,
    limit: int | None = None,
) -> Iterator[Contact]:
    """Contacts from ``start`` (epoch s), in event-time order, before ``until`` / up to ``limit``.

    Pure: the output depends only on ``config`` (including its seed) and ``start``; unbounded
    when neither bound is given. Contact ids embed the seed and the start, so two runs with
    the same seed but different starts never collide in the worker's duplicate detection.
    """
    for count, contact in enumerate(ContactGenerator(config, start)):
        if (limit is not None and count >= limit) or (until is not None and contact.at >= until):
            return
        yield contact


def generate_events(config: SimConfig, start: float, **bounds: Any) -> Iterator[dict[str, Any]]:
    """Like :func:`generate`, just the event dicts (contract section 1)."""
    for contact in generate(config, start, **bounds):
        yield contact.event
