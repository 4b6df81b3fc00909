"""Choose upstream targets for a model and learn from how they answer.

Order of attempts: channels by priority, then by weight scaled with a health
score (errors, throttles, p95 latency); a channel whose circuit is open is
skipped, and a half-open one lets exactly one probe through. Within a
channel, keys rotate; a key cooling down after a 429 is skipped. A session
stays on its key while that key is healthy. What the workers must agree on
(circuits, cooldowns, session pins, status counters) lives in
``gateway.sticky``; one Router per process: ``get_router(app)``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from core import catalog
from core.channels import ChannelConfig

from .health import (
    CLIENT,
    FAIL,
    KEY_REJECTED,
    OK,
    THROTTLE,
    BreakerPolicy,
    Health,
    best_p95,
    classify,
    lat_bucket,
)
from .sticky import Snapshot, make_state, session_key

ECHO_CHANNEL = ChannelConfig(
    name="bytespike-echo",
    protocol="echo",
    base_url="builtin://echo",
    api_keys=("demo",),
    models=("bytespike-echo",),
)

DEFAULT_THROTTLE_S = 1.0  # 429 without retry-after
MAX_COOLDOWN_S = 3600.0
KEY_REJECTED_S = 60.0  # 401/403: that key was refused; give the others a turn


@dataclass
class _Track:
    """One request's attempts for one model, for the client-visible availability figure."""

    model: str
    latency_ms: float = 0.0
    yielded: int = 0
    done: bool = False
    failed: bool = False


@dataclass(frozen=True)
class Target:
    """One attempt: a channel, one key of its pool, and the model name the upstream expects."""

    channel: ChannelConfig
    key_index: int
    upstream_model: str
    session: str | None = field(default=None, compare=False, repr=False)  # hashed session key
    probe: bool = field(default=False, compare=False)
    track: _Track | None = field(default=None, compare=False, repr=False)

    @property
    def api_key(self) -> str:
        return self.channel.api_keys[self.key_index]

    @property
    def key_label(self) -> str:
        return f"{self.channel.name}#{self.key_index}"

    def __repr__(self) -> str:  # never print keys
        return f"Target({self.key_label}, model={self.upstream_model!r}, probe={self.probe})"


def _unit(*parts: str) -> float:
    """Map strings to a stable number in (0, 1): the same session picks the same channel everywhere."""
    h = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return (int.from_bytes(h, "big") + 0.5) / 2**64


class Router:
    """Order the (channel, key) attempts for each request and record their outcomes."""

    def __init__(
        self,
        channels: list[ChannelConfig],
        *,
        redis_url: str | None,
        prefix: str,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
        health_enabled: bool = True,
        policy: BreakerPolicy | None = None,
    ) -> None:
        self.channels = list(channels)
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self.health_enabled = health_enabled
        self.policy = policy or BreakerPolicy()
        self._by_model: dict[str, list[ChannelConfig]] = {}
        for c in self.channels:
            for m in c.models:
                self._by_model.setdefault(m, []).append(c)
        labels = [f"{c.name}#{i}" for c in self.channels for i in range(len(c.api_keys))]
        self.state = make_state(redis_url, prefix, [c.name for c in self.channels], labels, clock)
        self._lock = threading.Lock()
        self._rr = {c.name: itertools.count() for c in self.channels}
        self.ch_health = {c.name: Health(clock) for c in self.channels}
        self.key_health = {label: Health(clock) for label in labels}
        self._seen = Snapshot()
        self._pending: dict[int, dict[str, int]] = {}
        self._flush_every = 1.0 if redis_url else 0.0
        self._flushed_at = clock()
        self._status: tuple[float, dict[str, Any]] | None = None

    def serves(self, model_id: str) -> bool:
        return model_id in self._by_model

    def models(self) -> set[str]:
        return set(self._by_model)

    # ----- choosing -------------------------------------------------------------------------

    def targets(self, model_id: str, *, session: str | None) -> Iterator[Target]:
        """Yield each usable (channel, key) at most once, best first; the caller stops on success."""
        chans = self._by_model.get(model_id)
        if not chans:
            return
        skey = session_key(session, model_id) if session else None
        snap, pinned = self.state.read(skey)
        self._notice(snap)
        track = _Track(model_id)
        seen: set[str] = set()
        try:
            first = self._pinned(chans, snap, pinned)
            if first is not None:
                seen.add(first[0].name + "#" + str(first[1]))
                track.yielded += 1
                yield Target(first[0], first[1], first[0].upstream_model(model_id), session=skey, track=track)
            for ch, probe in self._plan(chans, snap, skey):
                keys = [i for i in self._keys(ch, snap, skey) if f"{ch.name}#{i}" not in seen]
                if keys and probe:  # a half-open channel gets one call until it proves itself
                    if not self.state.claim_probe(ch.name, min(ch.timeout_s + ch.connect_timeout_s, 120.0)):
                        continue
                    keys = keys[:1]
                for idx in keys:
                    track.yielded += 1
                    yield Target(ch, idx, ch.upstream_model(model_id), session=skey, probe=probe, track=track)
        finally:
            self._finish(track)

    def _pinned(self, chans: list[ChannelConfig], snap: Snapshot, label: str | None) -> tuple[ChannelConfig, int] | None:
        """Return the session's key while it is healthy: circuit closed, not cooling, not failing."""
        if not label or label in snap.cooling:
            return None
        name, _, idx = label.rpartition("#")
        ch = next((c for c in chans if c.name == name), None)
        if ch is None or not idx.isdigit() or int(idx) >= len(ch.api_keys):
            return None
        if self.health_enabled and (snap.circuit(name) != "closed" or self._key_degraded(label)):
            return None
        # a session moved to a backup while the preferred channels were down goes home when they are back
        usable = [c.priority for c in chans if (not self.health_enabled or snap.circuit(c.name) == "closed")
                  and any(f"{c.name}#{i}" not in snap.cooling for i in range(len(c.api_keys)))]
        if usable and ch.priority > min(usable):
            return None
        return ch, int(idx)

    def _plan(self, chans: list[ChannelConfig], snap: Snapshot, skey: str | None) -> list[tuple[ChannelConfig, bool]]:
        """Order channels by priority, then weight scaled by health; open circuits left out, half-open ones probed."""
        if not self.health_enabled:
            return [(c, False) for c in self._weighted(((c, 1.0) for c in chans), skey)]
        live = [c for c in chans if snap.circuit(c.name) != "open"]
        best = best_p95(self.ch_health[c.name] for c in live)
        best_err = min((self.ch_health[c.name].error_rate() for c in live), default=0.0)
        items: list[tuple[ChannelConfig, float]] = []
        half = {c.name for c in live if snap.circuit(c.name) == "half_open"}
        for c in live:
            items.append((c, 1.0 if c.name in half else self.ch_health[c.name].score(best, best_err)))
        return [(c, c.name in half) for c in self._weighted(items, skey)]

    def _weighted(self, items: Any, skey: str | None) -> list[ChannelConfig]:
        """Sort by priority, then weighted sampling without replacement (exponential keys).

        With a session the draw is a hash of the session, so every worker puts
        the same session on the same channel without asking anyone.
        """
        keyed = []
        for c, score in items:
            u = _unit(skey, c.name) if skey else self.rng.random() or 1e-12
            w = max(c.weight * score, 1e-9)
            keyed.append((c.priority, -math.log(u) / w, c.name, c))
        keyed.sort(key=lambda k: k[:3])
        return [k[3] for k in keyed]

    def _keys(self, ch: ChannelConfig, snap: Snapshot, skey: str | None) -> list[int]:
        """Order a channel's keys: rotation (or the session's hash), cooling keys left out, degraded ones last."""
        n = len(ch.api_keys)
        if skey:
            order = sorted(range(n), key=lambda i: _unit(skey, f"{ch.name}#{i}"))
        else:
            with self._lock:
                start = next(self._rr[ch.name])
            order = [(start + i) % n for i in range(n)]
        order = [i for i in order if f"{ch.name}#{i}" not in snap.cooling]
        if self.health_enabled:
            order.sort(key=lambda i: self._key_degraded(f"{ch.name}#{i}"))
        return order

    def _key_degraded(self, label: str) -> bool:
        t = self.key_health[label].window.total()
        return t.ok + t.failures >= 4 and t.error_rate > 0.5

    def _notice(self, snap: Snapshot) -> None:
        """Forget old failures of a channel whose circuit closed (here or in another worker)."""
        if snap is self._seen:
            return
        for name in (self._seen.open | self._seen.half_open) - (snap.open | snap.half_open):
            with self._lock:
                self.ch_health[name].reset()
        self._seen = snap

    # ----- learning -------------------------------------------------------------------------

    def report(
        self,
        target: Target,
        *,
        ok: bool,
        latency_ms: float,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Record one attempt's outcome: health, circuit, key cooldown, session pin, status counters."""
        outcome = classify(ok, status)
        name, label = target.channel.name, target.key_label
        with self._lock:
            if outcome not in (CLIENT, KEY_REJECTED):
                self.ch_health[name].record(outcome, latency_ms)
            self.key_health[label].record(outcome, latency_ms)
            trip = (self.health_enabled and not target.probe and outcome == FAIL
                    and self.ch_health[name].should_trip(self.policy))
            self._count(target, outcome, latency_ms)
        if outcome == THROTTLE:
            wait = retry_after if retry_after and retry_after > 0 else DEFAULT_THROTTLE_S
            self.state.cool_key(label, min(wait, MAX_COOLDOWN_S))
        elif outcome == KEY_REJECTED:
            self.state.cool_key(label, KEY_REJECTED_S)
        if self.health_enabled and target.probe:
            self._settle_probe(name, outcome)
        elif trip and self.state.snapshot.circuit(name) == "closed":
            self._trip(name, 1)
        if ok and target.session:
            self.state.sticky_put(target.session, label)
        if self.clock() - self._flushed_at >= self._flush_every:
            self.flush()

    def _settle_probe(self, name: str, outcome: str) -> None:
        if outcome in (OK, CLIENT):  # the upstream answered: it is back
            self.state.close(name)
            with self._lock:
                self.ch_health[name].reset()
        elif outcome == FAIL:
            self._trip(name, self.state.snapshot.level(name) + 1)
        else:  # throttled or key refused: says little about the channel; let another probe try
            self.state.release_probe(name)

    def _trip(self, name: str, level: int) -> None:
        self.state.trip(name, level, self.policy.cooldown(level), hold_s=3600.0)

    def _count(self, target: Target, outcome: str, latency_ms: float) -> None:
        """Fold one attempt into its request's record; count the request once it succeeds (lock held)."""
        tr = target.track
        if tr is None or tr.done:
            return
        minute = self._pending.setdefault(int(self.wall() // 60), {})

        def inc(f: str) -> None:
            minute[f] = minute.get(f, 0) + 1

        tr.latency_ms += latency_ms
        if outcome == OK:
            tr.done = True
            inc(f"m|{tr.model}|n")
            inc(f"m|{tr.model}|ok")
            inc(f"m|{tr.model}|h{lat_bucket(tr.latency_ms)}")
        elif outcome == CLIENT:
            tr.done = True  # the caller's mistake, not an outage
        else:
            tr.failed = True

    def _finish(self, track: _Track) -> None:
        """Count a request that ended without success (all attempts failed, or none was possible)."""
        if track.done or not (track.failed or track.yielded == 0):
            return
        with self._lock:
            track.done = True
            minute = self._pending.setdefault(int(self.wall() // 60), {})
            minute[f"m|{track.model}|n"] = minute.get(f"m|{track.model}|n", 0) + 1
        if self.clock() - self._flushed_at >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        """Push pending status counters to the shared store."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed_at = self.clock()
        counts = {str(m): v for m, v in pending.items() if v}
        if counts:
            self.state.add_counts(counts)

    # ----- reporting ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Summarise the last hour per model and each channel's circuit; no keys, no URLs."""
        from .status import build_status

        now = self.clock()
        if self._status and now - self._status[0] < 1.0:
            return self._status[1]
        self.flush()
        snap, _ = self.state.read(None)
        minute = int(self.wall() // 60)
        rows = self.state.read_counts(list(range(minute - 59, minute + 1)))
        circuits = {c.name: (snap.circuit(c.name) if self.health_enabled else "closed") for c in self.channels}
        by_model = {m: [c.name for c in cs] for m, cs in self._by_model.items()}
        out = build_status(rows, circuits, by_model, now_wall=self.wall())
        self._status = (now, out)
        return out


_build_lock = threading.Lock()


def get_router(app: Any) -> Router:
    """Return this process's Router, building it on first use (never at import or in create_app)."""
    served = catalog.current(app)  # a reloaded channels file gives a new catalog, hence a new Router
    pid = (os.getpid(), served.version)
    held = app.extensions.get("bytespike_router")
    if held and held[0] == pid:
        return held[1]
    with _build_lock:
        held = app.extensions.get("bytespike_router")
        if held and held[0] == pid:
            return held[1]
        chans = list(served.channels)
        router = Router(
            [*chans, ECHO_CHANNEL],
            redis_url=app.config.get("BYTESPIKE_REDIS_URL"),
            prefix=app.config.get("BYTESPIKE_REDIS_PREFIX") or "bs:",
            health_enabled=str(app.config.get("BYTESPIKE_ROUTING_HEALTH", "1")).lower() not in ("0", "false", "no", "off"),
        )
        app.extensions["bytespike_router"] = (pid, router)
        return router
