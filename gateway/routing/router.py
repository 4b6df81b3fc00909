"""Choose upstream targets for a model and learn from how they answer.

Order of attempts: channels by priority, then by weight scaled with a health
score (errors, throttles, p95 latency); a channel whose circuit is open is
skipped, and a half-open one lets exactly one probe through. Within a
channel, keys rotate; a key cooling down after a 429 is skipped. A session
stays on its key while that key is healthy.

Failures are judged per cause (``gateway.routing.tenants``): a channel that
fails only one tenant's requests opens that tenant's circuit there, not the
channel's. And the gateway fails open: when every target of a model is open,
one call (to the target that failed least recently) still goes through, at
most once per ``FAIL_OPEN_GAP_S``, and closes the circuit if it succeeds.

Data flows one way: the Router reads and writes the rooms below it (health,
tenants, circuit, sticky, stats, over one ``state.Store``); none of them
calls back. One Router per process: ``get_router(app)``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import random
import threading
import time
from typing import Any, Callable, Iterable, Iterator, cast

from core import catalog
from core.channels import ChannelConfig

from .circuit import CLOSED, HALF_OPEN, OPEN, Circuits, Flags, Snapshot, circuit_for
from .health import CLIENT, FAIL, KEY_REJECTED, OK, THROTTLE, BreakerPolicy, Health, best_p95, classify
from .state import make_store
from .stats import Counters, Track, build_status
from .sticky import Pins, session_key
from .target import Target
from .tenants import NO_TENANT, Tenants

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
SNAPSHOT_CACHE_S = 0.25  # with Redis, shared flags are re-read at most this often per worker
FAIL_OPEN_GAP_S = 1.0  # every target open: one call per model (and tenant) goes through this often


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
        p = prefix + "rt:"
        cache_s = SNAPSHOT_CACHE_S if redis_url else 0.0
        self.store = make_store(redis_url, clock)
        self.circuits = Circuits(self.store, p, [c.name for c in self.channels], labels, clock, wall, cache_s)
        self.pins = Pins(self.store, p, clock, cache_s)
        self.counters = Counters(self.store, p, clock, wall, 1.0 if redis_url else 0.0)
        self.tenants = Tenants(clock, suspect_s=self.policy.served_within_s)
        self._lock = threading.Lock()
        self._rr = {c.name: itertools.count() for c in self.channels}
        self.ch_health = {c.name: Health(clock) for c in self.channels}
        self.key_health = {label: Health(clock) for label in labels}
        self._seen = Snapshot()
        self._status: tuple[float, dict[str, Any]] | None = None

    def serves(self, model_id: str) -> bool:
        return model_id in self._by_model

    def models(self) -> set[str]:
        return set(self._by_model)

    # ----- choosing -------------------------------------------------------------------------

    def _read(self, tenant: str, skey: str | None) -> tuple[Snapshot, Flags, str | None]:
        """The shared circuits, the tenant's own and the session's pin, in at most one round trip."""
        read = self.circuits.wanted(tenant)
        pin_keys = self.pins.wanted(skey)
        keys = read.keys + pin_keys
        vals = self.store.get_many(keys) if keys else []
        snap, mine = self.circuits.take(read, vals[: len(read.keys)], tenant)
        return snap, mine, self.pins.take(skey, vals[len(read.keys):])

    def targets(self, model_id: str, *, session: str | None, tenant: str | None = None) -> Iterator[Target]:
        """Yield each usable (channel, key) at most once, best first; the caller stops on success.

        ``tenant`` names the calling account: circuits opened by its own failures apply to it alone.
        """
        chans = self._by_model.get(model_id)
        if not chans:
            return
        who = tenant or NO_TENANT
        skey = session_key(session, model_id) if session else None
        snap, mine, pinned = self._read(who, skey)
        self._notice(snap)
        track = Track(model_id)
        seen: set[str] = set()

        def target(ch: ChannelConfig, idx: int, probe: str = "") -> Target:
            track.yielded += 1
            return Target(ch, idx, ch.upstream_model(model_id), session=skey, probe=probe, track=track, tenant=who)

        try:
            first = self._pinned(chans, snap, mine, pinned)
            if first is not None:
                seen.add(first[0].name + "#" + str(first[1]))
                yield target(*first)
            for ch, probe in self._plan(chans, snap, mine, skey):
                keys = [i for i in self._keys(ch, snap, skey) if f"{ch.name}#{i}" not in seen]
                if keys and probe:  # a half-open circuit gets one call until it proves itself
                    ttl = min(ch.timeout_s + ch.connect_timeout_s, 120.0)
                    if not self.circuits.claim_probe(ch.name, ttl, tenant=who if probe == "tenant" else None):
                        continue
                    keys = keys[:1]
                for idx in keys:
                    yield target(ch, idx, probe)
            if track.yielded == 0 and self.health_enabled:
                chosen = self._fail_open(model_id, chans, snap, mine, who)
                if chosen is not None:
                    yield target(*chosen)
        finally:
            self.counters.finish(track)

    def _pinned(self, chans: list[ChannelConfig], snap: Snapshot, mine: Flags,
                label: str | None) -> tuple[ChannelConfig, int] | None:
        """Return the session's key while it is healthy: circuit closed, not cooling, not failing."""
        if not label or label in snap.cooling:
            return None
        name, _, idx = label.rpartition("#")
        ch = next((c for c in chans if c.name == name), None)
        if ch is None or not idx.isdigit() or int(idx) >= len(ch.api_keys):
            return None
        if self.health_enabled and (circuit_for(snap, mine, name)[0] != CLOSED or self._key_degraded(label)):
            return None
        # a session moved to a backup while the preferred channels were down goes home when they are back
        usable = [c.priority for c in chans
                  if (not self.health_enabled or circuit_for(snap, mine, c.name)[0] == CLOSED)
                  and any(f"{c.name}#{i}" not in snap.cooling for i in range(len(c.api_keys)))]
        if usable and ch.priority > min(usable):
            return None
        return ch, int(idx)

    def _plan(self, chans: list[ChannelConfig], snap: Snapshot, mine: Flags,
              skey: str | None) -> list[tuple[ChannelConfig, str]]:
        """Order channels by priority, then weight scaled by health; open circuits left out, half-open ones probed."""
        if not self.health_enabled:
            return [(c, "") for c in self._weighted(((c, 1.0) for c in chans), skey)]
        states = {c.name: circuit_for(snap, mine, c.name) for c in chans}
        live = [c for c in chans if states[c.name][0] != OPEN]
        if len(live) < 2:  # nothing to weigh: one channel's health cannot change its place
            return [(c, states[c.name][1]) for c in live]
        best = best_p95(self.ch_health[c.name] for c in live)
        best_err = min((self.ch_health[c.name].error_rate() for c in live), default=0.0)
        items = [(c, 1.0 if states[c.name][0] == HALF_OPEN else self.ch_health[c.name].score(best, best_err))
                 for c in live]
        return [(c, states[c.name][1]) for c in self._weighted(items, skey)]

    def _fail_open(self, model_id: str, chans: list[ChannelConfig], snap: Snapshot, mine: Flags,
                   tenant: str) -> tuple[ChannelConfig, int, str] | None:
        """Every target is open: let one call through to the one that failed least recently."""
        best: tuple[float, int, ChannelConfig, str] | None = None
        for c in chans:
            state, scope = circuit_for(snap, mine, c.name)
            if state != OPEN or all(f"{c.name}#{i}" in snap.cooling for i in range(len(c.api_keys))):
                continue
            failed_at = max(snap.channels.opened.get(c.name, 0.0), mine.opened.get(c.name, 0.0))
            if best is None or (failed_at, c.priority) < best[:2]:
                best = (failed_at, c.priority, c, scope)
        if best is None:
            return None
        _, _, ch, scope = best
        if not self.circuits.claim_fail_open(model_id, tenant if scope == "tenant" else None, FAIL_OPEN_GAP_S):
            return None
        keys = self._keys(ch, snap, None)
        return (ch, keys[0], scope) if keys else None

    def _weighted(self, items: Iterable[tuple[ChannelConfig, float]], skey: str | None) -> list[ChannelConfig]:
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
        for name in self._seen.unhealthy - snap.unhealthy:
            with self._lock:
                self.ch_health[name].reset()
                self.tenants.reset(name)
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
                self.tenants.record(name, target.tenant, outcome, latency_ms)
            self.key_health[label].record(outcome, latency_ms)
            scope = self._judge(name, target.tenant) if (
                self.health_enabled and not target.probe and outcome == FAIL) else ""
        self.counters.attempt(target.track, outcome, latency_ms)
        if outcome == OK:
            self.counters.served(name, target.tenant)
        if scope == "unserved":  # this worker saw no one else served there: did another worker?
            served = self.counters.served_lately(name, self.policy.served_within_s) - {target.tenant}
            scope = "channel" if not served else ("tenant" if self.tenants.health(name, target.tenant)
                                                  .should_trip(self.policy) else "")
        if outcome == THROTTLE:
            wait = retry_after if retry_after and retry_after > 0 else DEFAULT_THROTTLE_S
            self.circuits.cool_key(label, min(wait, MAX_COOLDOWN_S))
        elif outcome == KEY_REJECTED:
            self.circuits.cool_key(label, KEY_REJECTED_S)
        if self.health_enabled and target.probe:
            self._settle_probe(target, outcome)
        elif scope == "channel" and self.circuits.snapshot.circuit(name) == CLOSED:
            self._trip(name, 1, None)
        elif scope == "tenant" and self.circuits.tenant_flags(target.tenant).state(name) == CLOSED:
            self._trip(name, 1, target.tenant)
        if ok and target.session:
            self.pins.put(target.session, label)

    def _judge(self, name: str, tenant: str) -> str:
        """Name the circuit a failure should open: "channel", "unserved" (the channel's, unless another
        worker served someone else there lately), "tenant", or "" (lock held)."""
        if self.ch_health[name].should_trip(self.policy):
            why = self.tenants.blames_channel(name, tenant, self.policy)
            if why:
                return "channel" if why == "tenants" else "unserved"
        return "tenant" if self.tenants.health(name, tenant).should_trip(self.policy) else ""

    def _settle_probe(self, target: Target, outcome: str) -> None:
        name = target.channel.name
        own = target.tenant if target.probe == "tenant" else None
        if outcome in (OK, CLIENT):  # the upstream answered: it is back
            self.circuits.close(name, tenant=own)
            if self.circuits.tenant_flags(target.tenant).state(name) != CLOSED:
                self.circuits.close(name, tenant=target.tenant)
            with self._lock:
                if own is None:
                    self.ch_health[name].reset()
                self.tenants.reset(name, target.tenant)
        elif outcome == FAIL:
            level = (self.circuits.snapshot.level(name) if own is None
                     else self.circuits.tenant_flags(own).level(name))
            self._trip(name, level + 1, own)
        else:  # throttled or key refused: says little about the channel; let another probe try
            self.circuits.release_probe(name, tenant=own)

    def _trip(self, name: str, level: int, tenant: str | None) -> None:
        self.circuits.trip(name, level, self.policy.cooldown(level), tenant=tenant)

    def flush(self) -> None:
        """Push pending status counters to the shared store."""
        self.counters.flush()

    # ----- reporting ------------------------------------------------------------------------

    def circuit_states(self) -> dict[str, str]:
        """Each channel's shared circuit state: closed, half_open or open."""
        snap, _, _ = self._read(NO_TENANT, None)
        return {c.name: (snap.circuit(c.name) if self.health_enabled else CLOSED) for c in self.channels}

    def status(self) -> dict[str, Any]:
        """Summarise the last hour per model and each channel's circuit; no keys, no URLs."""
        now = self.clock()
        if self._status and now - self._status[0] < 1.0:
            return self._status[1]
        self.flush()
        circuits = self.circuit_states()
        by_model = {m: [c.name for c in cs] for m, cs in self._by_model.items()}
        out = build_status(self.counters.last_hour(), circuits, by_model, now_wall=self.wall())
        self._status = (now, out)
        return out


_build_lock = threading.Lock()


def get_router(app: Any) -> Router:
    """Return this process's Router, building it on first use (never at import or in create_app)."""
    served = catalog.current(app)  # a reloaded channels file gives a new catalog, hence a new Router
    pid = (os.getpid(), served.version)
    held = app.extensions.get("bytespike_router")
    if held and held[0] == pid:
        return cast(Router, held[1])
    with _build_lock:
        held = app.extensions.get("bytespike_router")
        if held and held[0] == pid:
            return cast(Router, held[1])
        chans = list(served.channels)
        router = Router(
            [*chans, ECHO_CHANNEL],
            redis_url=app.config.get("BYTESPIKE_REDIS_URL"),
            prefix=app.config.get("BYTESPIKE_REDIS_PREFIX") or "bs:",
            health_enabled=str(app.config.get("BYTESPIKE_ROUTING_HEALTH", "1")).lower() not in ("0", "false", "no", "off"),
        )
        app.extensions["bytespike_router"] = (pid, router)
        return router
