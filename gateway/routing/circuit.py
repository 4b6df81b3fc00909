"""Circuit state the workers share: open, half-open and closed circuits, key cooldowns, probe claims.

Two scopes of circuit: a channel's (open for every caller) and a tenant's on
a channel (open for that account only; see ``gateway.routing.tenants`` for
which one a failure opens). An open circuit carries the wall time of its
trip, so the target that failed least recently is known when every target
of a model is open. Reads for one request are one ``Store.get_many`` (the
router batches them with the session pin); the flags are cached for
``cache_s`` between reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

from .state import Store

HOLD_S = 3600.0  # a trip level is remembered this long after the circuit closes on its own
MAX_TENANTS_CACHED = 10_000

OPEN, HALF_OPEN, CLOSED = "open", "half_open", "closed"


@dataclass(frozen=True)
class Flags:
    """One scope's circuits as of one read: channel -> trip time (open) and channel -> trip level."""

    opened: Mapping[str, float] = field(default_factory=dict)
    levels: Mapping[str, int] = field(default_factory=dict)

    def state(self, channel: str) -> str:
        """Open while the cooldown runs; half-open once it is over but the trip level is remembered."""
        if channel in self.opened:
            return OPEN
        return HALF_OPEN if channel in self.levels else CLOSED

    def level(self, channel: str) -> int:
        return self.levels.get(channel, 0)

    def replaced(self, channel: str, *, opened_at: float | None, level: int) -> Flags:
        """A copy with one channel's circuit changed (a write made here, before the next read)."""
        op = {k: v for k, v in self.opened.items() if k != channel}
        lv = {k: v for k, v in self.levels.items() if k != channel}
        if opened_at is not None:
            op[channel] = opened_at
        if level:
            lv[channel] = level
        return Flags(op, lv)


@dataclass(frozen=True)
class Snapshot:
    """Every tenant's circuits and the keys cooling down, as of one read."""

    channels: Flags = field(default_factory=Flags)
    cooling: frozenset[str] = frozenset()

    def circuit(self, channel: str) -> str:
        return self.channels.state(channel)

    def level(self, channel: str) -> int:
        return self.channels.level(channel)

    @property
    def unhealthy(self) -> frozenset[str]:
        """Channels whose circuit is open or half-open."""
        return frozenset(self.channels.opened) | frozenset(self.channels.levels)


def circuit_for(snap: Snapshot, mine: Flags, name: str) -> tuple[str, str]:
    """One tenant's view of a channel's circuit: (state, scope), the channel's own state first."""
    shared, own = snap.circuit(name), mine.state(name)
    if OPEN in (shared, own):
        return OPEN, "channel" if shared == OPEN else "tenant"
    if shared == HALF_OPEN:
        return HALF_OPEN, "channel"
    if own == HALF_OPEN:
        return HALF_OPEN, "tenant"
    return CLOSED, ""


@dataclass(frozen=True)
class Read:
    """What one request needs read from the store: the shared flags (when stale), one tenant's (when stale)."""

    keys: list[str]
    shared: bool
    tenant: str | None


def _float(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return 0.0


class Circuits:
    """Circuit flags, key cooldowns and probe claims over a store; key names are prefix-scoped."""

    def __init__(self, store: Store, prefix: str, channels: list[str], key_labels: list[str],
                 clock: Callable[[], float], wall: Callable[[], float], cache_s: float) -> None:
        self.store = store
        self.p = prefix
        self.channels = channels
        self.key_labels = key_labels
        self.clock = clock
        self.wall = wall
        self.cache_s = cache_s
        self._snap = Snapshot()
        self._snap_at = -1e18
        self._tenants: dict[str, tuple[Flags, float]] = {}
        self._shared_keys = ([self.p + "open:" + c for c in channels] + [self.p + "lvl:" + c for c in channels]
                             + [self.p + "cool:" + k for k in key_labels])

    # ----- reading ----------------------------------------------------------------------------

    def wanted(self, tenant: str | None) -> Read:
        """Name the keys this request must read: nothing that was read less than cache_s ago."""
        now = self.clock()
        shared = now - self._snap_at >= self.cache_s
        cached = self._tenants.get(tenant) if tenant is not None else None
        want_tenant = tenant is not None and (cached is None or now - cached[1] >= self.cache_s)
        keys = list(self._shared_keys) if shared else []
        if want_tenant and tenant is not None:
            keys += [self._t("topen", c, tenant) for c in self.channels]
            keys += [self._t("tlvl", c, tenant) for c in self.channels]
        return Read(keys, shared, tenant if want_tenant else None)

    def take(self, read: Read, vals: list[str | None], tenant: str | None) -> tuple[Snapshot, Flags]:
        """Fold the values read for ``read`` into the cache; return the shared flags and the tenant's."""
        now = self.clock()
        n = len(self.channels)
        if read.shared:
            self._snap = self._parse_shared(vals[: len(self._shared_keys)])
            self._snap_at = now
            vals = vals[len(self._shared_keys):]
        if read.tenant is not None:
            if len(self._tenants) > MAX_TENANTS_CACHED:
                self._tenants.clear()
            self._tenants[read.tenant] = (self._parse_flags(vals[:n], vals[n: 2 * n]), now)
        return self._snap, self.tenant_flags(tenant)

    def _parse_flags(self, opened: list[str | None], levels: list[str | None]) -> Flags:
        op = {c: _float(v) for c, v in zip(self.channels, opened, strict=True) if v}
        lv = {c: int(v) for c, v in zip(self.channels, levels, strict=True) if v and v.isdigit()}
        return Flags(op, lv)

    def _parse_shared(self, vals: list[str | None]) -> Snapshot:
        n = len(self.channels)
        cooling = {k for k, v in zip(self.key_labels, vals[2 * n:], strict=True) if v}
        return Snapshot(self._parse_flags(vals[:n], vals[n: 2 * n]), frozenset(cooling))

    @property
    def snapshot(self) -> Snapshot:
        """The shared flags as last read or written here (no round trip)."""
        return self._snap

    def tenant_flags(self, tenant: str | None) -> Flags:
        """A tenant's own circuits as last read or written here (no round trip)."""
        hit = self._tenants.get(tenant) if tenant is not None else None
        return hit[0] if hit else Flags()

    def invalidate(self) -> None:
        self._snap_at = -1e18
        self._tenants.clear()

    # ----- writing ----------------------------------------------------------------------------

    def _t(self, kind: str, channel: str, tenant: str) -> str:
        return f"{self.p}{kind}:{channel}:{tenant}"

    def trip(self, channel: str, level: int, cooldown_s: float, *, tenant: str | None = None) -> None:
        """Open a circuit for cooldown_s; remember the trip level for HOLD_S beyond that."""
        at = self.wall()
        if tenant is None:
            self.store.put(self.p + "open:" + channel, repr(at), cooldown_s)
            self.store.put(self.p + "lvl:" + channel, str(level), cooldown_s + HOLD_S)
            self.store.drop([self.p + "probe:" + channel])
            self._snap = Snapshot(self._snap.channels.replaced(channel, opened_at=at, level=level), self._snap.cooling)
            return
        self.store.put(self._t("topen", channel, tenant), repr(at), cooldown_s)
        self.store.put(self._t("tlvl", channel, tenant), str(level), cooldown_s + HOLD_S)
        self.store.drop([self._t("tprobe", channel, tenant)])
        self._set_tenant(tenant, self.tenant_flags(tenant).replaced(channel, opened_at=at, level=level))

    def close(self, channel: str, *, tenant: str | None = None) -> None:
        """Close a circuit and forget its trip level."""
        if tenant is None:
            self.store.drop([self.p + "open:" + channel, self.p + "lvl:" + channel, self.p + "probe:" + channel])
            self._snap = Snapshot(self._snap.channels.replaced(channel, opened_at=None, level=0), self._snap.cooling)
            return
        self.store.drop([self._t(k, channel, tenant) for k in ("topen", "tlvl", "tprobe")])
        self._set_tenant(tenant, self.tenant_flags(tenant).replaced(channel, opened_at=None, level=0))

    def _set_tenant(self, tenant: str, flags: Flags) -> None:
        hit = self._tenants.get(tenant)
        self._tenants[tenant] = (flags, hit[1] if hit else self.clock())

    def claim_probe(self, channel: str, ttl_s: float, *, tenant: str | None = None) -> bool:
        """Let exactly one caller (across workers) probe a half-open circuit."""
        key = self.p + "probe:" + channel if tenant is None else self._t("tprobe", channel, tenant)
        return self.store.put(key, "1", ttl_s, only_new=True)

    def release_probe(self, channel: str, *, tenant: str | None = None) -> None:
        self.store.drop([self.p + "probe:" + channel if tenant is None else self._t("tprobe", channel, tenant)])

    def claim_fail_open(self, model: str, tenant: str | None, gap_s: float) -> bool:
        """Let one call (across workers) through to a model whose every target is open, once per gap_s."""
        key = f"{self.p}fo:{model}" if tenant is None else f"{self.p}fo:{model}:{tenant}"
        return self.store.put(key, "1", gap_s, only_new=True)

    def cool_key(self, label: str, seconds: float) -> None:
        """Rest one upstream key (a 429's retry-after, a refused key)."""
        self.store.put(self.p + "cool:" + label, "1", seconds)
        self._snap = Snapshot(self._snap.channels, self._snap.cooling | {label})
