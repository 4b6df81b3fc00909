"""Client-visible outcomes per model: per-minute counters and the public status document they make.

A request counts once: as a success when any attempt answered (its latency
is the sum of its attempts), as a failure when every attempt failed or none
was possible. Client errors (4xx other than throttles and refused keys) are
the caller's doing and count as neither. The counters live in the shared
``Store`` so that ``/api/status`` covers every worker.

Beside them, which tenants each channel served, per ten seconds: a worker
that saw only one tenant's failures on a channel asks here whether another
worker served someone else there before it blames the channel.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .health import CLIENT, N_LAT, OK, lat_bucket, percentile
from .state import Store

STATS_TTL_S = 7200.0
SERVED_SLOT_S = 10
DEGRADED_AVAILABILITY = 0.99
MIN_REQUESTS = 20  # fewer calls than this in the hour say too little to call a model degraded


@dataclass
class Track:
    """One request's attempts for one model, for the client-visible availability figure."""

    model: str
    latency_ms: float = 0.0
    yielded: int = 0
    done: bool = False
    failed: bool = False


class Counters:
    """Per-minute counters kept here and pushed to the store every flush_every seconds."""

    def __init__(self, store: Store, prefix: str, clock: Callable[[], float], wall: Callable[[], float],
                 flush_every: float) -> None:
        self.store = store
        self.p = prefix + "st:"
        self.ok = prefix + "ok:"
        self._served: dict[str, dict[str, int]] = {}
        self.clock = clock
        self.wall = wall
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._pending: dict[int, dict[str, int]] = {}
        self._flushed_at = clock()

    def _inc(self, field: str) -> None:
        minute = self._pending.setdefault(int(self.wall() // 60), {})
        minute[field] = minute.get(field, 0) + 1

    def attempt(self, track: Track | None, outcome: str, latency_ms: float) -> None:
        """Fold one attempt into its request's record; count the request once it succeeds."""
        if track is None or track.done:
            return
        with self._lock:
            track.latency_ms += latency_ms
            if outcome == OK:
                track.done = True
                self._inc(f"m|{track.model}|n")
                self._inc(f"m|{track.model}|ok")
                self._inc(f"m|{track.model}|h{lat_bucket(track.latency_ms)}")
            elif outcome == CLIENT:
                track.done = True  # the caller's mistake, not an outage
            else:
                track.failed = True
        self.maybe_flush()

    def finish(self, track: Track) -> None:
        """Count a request that ended without success (all attempts failed, or none was possible)."""
        if track.done or not (track.failed or track.yielded == 0):
            return
        with self._lock:
            track.done = True
            self._inc(f"m|{track.model}|n")
        self.maybe_flush()

    def maybe_flush(self) -> None:
        if self.clock() - self._flushed_at >= self.flush_every:
            self.flush()

    def served(self, channel: str, tenant: str) -> None:
        """Note that the channel answered this tenant (shared at the next flush)."""
        key = f"{self.ok}{channel}:{int(self.wall() // SERVED_SLOT_S)}"
        with self._lock:
            self._served.setdefault(key, {})[tenant] = 1

    def served_lately(self, channel: str, within_s: float) -> set[str]:
        """Tenants any worker saw this channel serve in about the last within_s seconds."""
        slot = int(self.wall() // SERVED_SLOT_S)
        keys = [f"{self.ok}{channel}:{s}" for s in range(slot - max(int(within_s // SERVED_SLOT_S), 1), slot + 1)]
        return {t for row in self.store.read_counts(keys) for t in row}

    def flush(self) -> None:
        """Push pending counters to the shared store."""
        with self._lock:
            pending, self._pending = self._pending, {}
            served, self._served = self._served, {}
            self._flushed_at = self.clock()
        counts = {self.p + str(m): v for m, v in pending.items() if v}
        if counts:
            self.store.add_counts(counts, STATS_TTL_S)
        if served:
            self.store.add_counts(served, 3 * SERVED_SLOT_S)

    def last_hour(self) -> list[dict[str, int]]:
        """Every worker's counters for the last 60 minutes."""
        minute = int(self.wall() // 60)
        return self.store.read_counts([f"{self.p}{m}" for m in range(minute - 59, minute + 1)])


def build_status(
    rows: list[dict[str, int]],
    circuits: dict[str, str],
    by_model: dict[str, list[str]],
    *,
    now_wall: float,
) -> dict[str, Any]:
    """Fold per-minute counters and circuit states into the public status document."""
    totals: dict[str, dict[str, Any]] = {m: {"n": 0, "ok": 0, "hist": [0] * N_LAT} for m in by_model}
    for row in rows:
        for f, v in row.items():
            kind, _, rest = f.partition("|")
            name, _, metric = rest.rpartition("|")
            if kind != "m" or name not in totals:
                continue
            t = totals[name]
            if metric in ("n", "ok"):
                t[metric] += v
            elif metric.startswith("h") and metric[1:].isdigit() and int(metric[1:]) < N_LAT:
                t["hist"][int(metric[1:])] += v
    models = [_model_row(model, totals[model], [circuits.get(c, "closed") for c in by_model[model]])
              for model in sorted(by_model)]
    return {
        "status": _overall([m["status"] for m in models]),
        "window_s": 3600,
        "generated_at": dt.datetime.fromtimestamp(now_wall, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "models": models,
        "channels": [{"name": name, "circuit": state} for name, state in sorted(circuits.items())],
    }


def _model_row(model: str, t: dict[str, Any], states: list[str]) -> dict[str, Any]:
    avail = round(t["ok"] / t["n"], 4) if t["n"] else None
    if states and all(s == "open" for s in states):
        state = "outage"
    elif any(s != "closed" for s in states) or (
        avail is not None and t["n"] >= MIN_REQUESTS and avail < DEGRADED_AVAILABILITY
    ):
        state = "degraded"
    else:
        state = "operational"
    return {
        "model": model,
        "status": state,
        "availability": avail,
        "requests": t["n"],
        "latency_ms": {"p50": percentile(t["hist"], 0.5), "p95": percentile(t["hist"], 0.95)},
    }


def _overall(states: list[str]) -> str:
    """Name the service's state: operational, degraded, partial_outage or major_outage."""
    if states and all(s == "outage" for s in states):
        return "major_outage"
    if "outage" in states:
        return "partial_outage"
    if "degraded" in states:
        return "degraded"
    return "operational"
