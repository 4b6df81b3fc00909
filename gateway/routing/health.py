"""Channel and key health: rolling windows, a health score and the circuit-breaker policy.

Pure bookkeeping: the clock is passed in, nothing here does I/O. Where the
breaker's state lives (this process or Redis) is ``gateway.routing.circuit``'s
business; whose fault a failure is, ``gateway.routing.tenants``'.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

# Latency histogram bounds in ms (roughly x1.5 steps); one overflow bucket beyond the last.
LAT_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000,
    3000, 5000, 7000, 10000, 15000, 20000, 30000, 45000, 60000, 90000, 120000, 180000, 300000, 600000,
)
N_LAT = len(LAT_BOUNDS_MS) + 1

OK, FAIL, THROTTLE, KEY_REJECTED, CLIENT = "ok", "fail", "throttle", "key_rejected", "client"


def classify(ok: bool, status: int | None) -> str:
    """Name what one upstream attempt says about the channel's health.

    Connect errors, timeouts (no status), 408 and 5xx/529 are failures; 429 is a
    throttle on that key; 401/403 mean the key itself was refused; other 4xx are
    the caller's doing and say nothing about the channel.
    """
    if ok:
        return OK
    if status is None or status >= 500 or status == 408 or 200 <= status < 300:
        return FAIL
    if status == 429:
        return THROTTLE
    if status in (401, 403):
        return KEY_REJECTED
    return CLIENT


def lat_bucket(ms: float) -> int:
    """Return the histogram bucket index for a latency."""
    return bisect_left(LAT_BOUNDS_MS, ms)


def percentile(hist: Sequence[int], q: float) -> float | None:
    """Estimate the q-quantile (0..1) from histogram counts, interpolating inside a bucket."""
    total = sum(hist)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(hist):
        if n and seen + n >= rank:
            lo = LAT_BOUNDS_MS[i - 1] if i > 0 else 0.0
            hi = LAT_BOUNDS_MS[i] if i < len(LAT_BOUNDS_MS) else LAT_BOUNDS_MS[-1] * 2
            return float(round(lo + (hi - lo) * max(0.0, rank - seen) / n, 1))
        seen += n
    return float(LAT_BOUNDS_MS[-1])


@dataclass
class Tally:
    """Counts for one slice of time: answered calls, failures, throttles and a latency histogram."""

    ok: int = 0
    failures: int = 0
    throttles: int = 0
    hist: list[int] = field(default_factory=lambda: [0] * N_LAT)

    def add(self, outcome: str, latency_ms: float) -> None:
        if outcome == OK:
            self.ok += 1
            self.hist[lat_bucket(latency_ms)] += 1
        elif outcome == FAIL:
            self.failures += 1
        elif outcome == THROTTLE:
            self.throttles += 1

    def merge(self, other: Tally) -> None:
        self.ok += other.ok
        self.failures += other.failures
        self.throttles += other.throttles
        self.hist = [a + b for a, b in zip(self.hist, other.hist, strict=True)]

    @property
    def calls(self) -> int:
        """Calls that say something about the upstream (client errors excluded)."""
        return self.ok + self.failures + self.throttles

    @property
    def error_rate(self) -> float:
        answered = self.ok + self.failures
        return self.failures / answered if answered else 0.0

    @property
    def p95(self) -> float | None:
        return percentile(self.hist, 0.95)


class RollingWindow:
    """Keep tallies in fixed time slots and forget those older than the span."""

    def __init__(self, clock: Callable[[], float], span_s: float = 60.0, slots: int = 12) -> None:
        self.clock = clock
        self.slot_s = span_s / slots
        self.slots = slots
        self._slots: deque[tuple[int, Tally]] = deque()
        # Routing reads the total several times per request: keep it until a call is added
        # or the window moves on to the next slot.
        self._total: Tally | None = None
        self._total_idx = 0

    def add(self, outcome: str, latency_ms: float) -> None:
        idx = int(self.clock() // self.slot_s)
        if not self._slots or self._slots[-1][0] != idx:
            self._slots.append((idx, Tally()))
            self._trim(idx)
        self._slots[-1][1].add(outcome, latency_ms)
        if self._total is not None and self._total_idx == idx:
            self._total.add(outcome, latency_ms)  # the same slots: the sum moves by this one call
        else:
            self._total = None

    def total(self) -> Tally:
        """Return the sum over the window (shared between readers until the next change: do not modify)."""
        idx = int(self.clock() // self.slot_s)
        if self._total is not None and self._total_idx == idx:
            return self._total
        self._trim(idx)
        out = Tally()
        for _, t in self._slots:
            out.merge(t)
        self._total, self._total_idx = out, idx
        return out

    def clear(self) -> None:
        self._slots.clear()
        self._total = None

    def _trim(self, idx: int) -> None:
        while self._slots and self._slots[0][0] <= idx - self.slots:
            self._slots.popleft()


@dataclass(frozen=True)
class BreakerPolicy:
    """When a channel's circuit opens and how long it stays open."""

    consecutive_failures: int = 5
    error_rate: float = 0.5
    min_calls: int = 10
    cooldown_s: float = 10.0
    max_cooldown_s: float = 300.0
    # Failures are put on the channel (not on one tenant) once this many tenants each fail
    # tenant_streak times in a row there, or when no other tenant was served there in served_within_s.
    min_tenants: int = 2
    tenant_streak: int = 2
    served_within_s: float = 10.0

    def cooldown(self, level: int) -> float:
        """Return the open period after the level-th consecutive trip (1, 2, ...): doubling, capped."""
        return float(min(self.cooldown_s * 2 ** max(level - 1, 0), self.max_cooldown_s))


class Health:
    """One channel's (or key's) recent record: a rolling window and the current failure streak."""

    def __init__(self, clock: Callable[[], float], span_s: float = 60.0) -> None:
        self.clock = clock
        self.window = RollingWindow(clock, span_s)
        self.consecutive = 0
        self.streak_since = 0.0  # when the current failure streak began

    def record(self, outcome: str, latency_ms: float) -> None:
        self.window.add(outcome, latency_ms)
        if outcome == FAIL:
            if self.consecutive == 0:
                self.streak_since = self.clock()
            self.consecutive += 1
        elif outcome == OK:
            self.consecutive = 0

    def should_trip(self, policy: BreakerPolicy) -> bool:
        """Tell whether the record is bad enough to open the circuit."""
        if self.consecutive >= policy.consecutive_failures:
            return True
        t = self.window.total()
        return t.ok + t.failures >= policy.min_calls and t.error_rate > policy.error_rate

    def reset(self) -> None:
        self.window.clear()
        self.consecutive = 0

    def error_rate(self) -> float:
        """Return the failure share, smoothed as if at least ten calls were made."""
        t = self.window.total()
        return t.failures / max(t.ok + t.failures, 10)

    def score(self, best_p95: float | None = None, best_error: float = 0.0) -> float:
        """Rate health in (0, 1] against the best peer: errors weigh most, then throttles, then slowness.

        Only the excess over the best peer counts: when every channel fails
        alike there is nothing to gain by moving traffic. 5 points more errors
        than the best peer: x0.47; 10 points: x0.22; 30 points: x0.011.
        """
        t = self.window.total()
        s = math.exp(-15.0 * max(0.0, self.error_rate() - best_error))
        s *= 1.0 - 0.5 * t.throttles / max(t.calls, 10)
        p95 = t.p95
        if best_p95 is not None and p95 is not None and t.ok >= 5:
            s *= min(1.0, max(0.25, math.sqrt((best_p95 + 50.0) / (p95 + 50.0))))
        return max(s, 0.005)


def best_p95(healths: Iterable[Health]) -> float | None:
    """Return the lowest p95 among peers with enough calls to judge."""
    vals = []
    for h in healths:
        t = h.window.total()
        if t.ok >= 5 and t.p95 is not None:
            vals.append(t.p95)
    return min(vals) if vals else None
