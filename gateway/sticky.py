"""What routing shares between workers: sticky sessions, key cooldowns, circuit state, status counters.

Stored in Redis when ``BYTESPIKE_REDIS_URL`` is set (so every gunicorn worker
and node sees one picture), in a process-local dict with expiry otherwise.
Reads for one request take at most one Redis round trip: the circuit and
cooldown flags are cached for a quarter of a second, and the session's
sticky key is fetched in the same MGET.

Redis trouble never fails a request: each operation falls back to the local
store and Redis is left alone for a few seconds.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

STICKY_TTL_S = 3600.0
STATS_TTL_S = 7200.0
SNAPSHOT_CACHE_S = 0.25
STICKY_REFRESH_S = 60.0


def session_key(session: str, model: str) -> str:
    """Hash a caller's session id (never stored raw) together with the model."""
    return hashlib.sha256(f"{model}\x00{session}".encode()).hexdigest()[:32]


class LocalKV:
    """A dict with per-key expiry on the given clock, and counter hashes."""

    def __init__(self, clock: Callable[[], float], max_keys: int = 200_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._d: dict[str, tuple[Any, float]] = {}
        self._puts = 0

    def get_many(self, keys: list[str]) -> list[str | None]:
        now = self.clock()
        out: list[str | None] = []
        for k in keys:
            hit = self._d.get(k)
            out.append(hit[0] if hit and hit[1] > now and not isinstance(hit[0], dict) else None)
        return out

    def put(self, key: str, value: str, ttl_s: float, *, only_new: bool = False) -> bool:
        now = self.clock()
        if only_new:
            hit = self._d.get(key)
            if hit and hit[1] > now:
                return False
        self._d.pop(key, None)  # re-insert so dict order tracks recency
        self._d[key] = (value, now + ttl_s)
        self._puts += 1
        if self._puts % 1000 == 0 or len(self._d) > self.max_keys:
            self._sweep(now)
        return True

    def drop(self, keys: Iterable[str]) -> None:
        for k in keys:
            self._d.pop(k, None)

    def add_counts(self, counts: dict[str, dict[str, int]], ttl_s: float) -> None:
        now = self.clock()
        for key, fields in counts.items():
            hit = self._d.get(key)
            h: dict[str, int] = hit[0] if hit and hit[1] > now and isinstance(hit[0], dict) else {}
            for f, n in fields.items():
                h[f] = h.get(f, 0) + n
            self._d[key] = (h, now + ttl_s)

    def read_counts(self, keys: list[str]) -> list[dict[str, int]]:
        now = self.clock()
        out = []
        for k in keys:
            hit = self._d.get(k)
            out.append(dict(hit[0]) if hit and hit[1] > now and isinstance(hit[0], dict) else {})
        return out

    def _sweep(self, now: float) -> None:
        for k in [k for k, (_, exp) in self._d.items() if exp <= now]:
            del self._d[k]
        while len(self._d) > self.max_keys:  # oldest first: dict order is insertion order
            del self._d[next(iter(self._d))]


class RedisKV:
    """The same operations against Redis, falling back to a local store while Redis is unwell."""

    def __init__(self, url: str, fallback: LocalKV, backoff_s: float = 5.0) -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        self.r = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True)
        self.fallback = fallback
        self.backoff_s = backoff_s
        self._down_until = 0.0

    def _call(self, fn: Callable[[], Any], local: Callable[[], Any]) -> Any:
        if time.monotonic() < self._down_until:
            return local()
        try:
            return fn()
        except self._errors as exc:
            log.warning("redis unavailable for routing state, using process-local state: %s", type(exc).__name__)
            self._down_until = time.monotonic() + self.backoff_s
            return local()

    def get_many(self, keys: list[str]) -> list[str | None]:
        return self._call(lambda: self.r.mget(keys), lambda: self.fallback.get_many(keys))

    def put(self, key: str, value: str, ttl_s: float, *, only_new: bool = False) -> bool:
        px = max(int(ttl_s * 1000), 1)
        return bool(self._call(lambda: self.r.set(key, value, px=px, nx=only_new),
                               lambda: self.fallback.put(key, value, ttl_s, only_new=only_new)))

    def drop(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self._call(lambda: self.r.delete(*keys), lambda: self.fallback.drop(keys))

    def add_counts(self, counts: dict[str, dict[str, int]], ttl_s: float) -> None:
        def run() -> None:
            pipe = self.r.pipeline(transaction=False)
            for key, fields in counts.items():
                for f, n in fields.items():
                    pipe.hincrby(key, f, n)
                pipe.expire(key, int(ttl_s))
            pipe.execute()

        self._call(run, lambda: self.fallback.add_counts(counts, ttl_s))

    def read_counts(self, keys: list[str]) -> list[dict[str, int]]:
        def run() -> list[dict[str, int]]:
            pipe = self.r.pipeline(transaction=False)
            for k in keys:
                pipe.hgetall(k)
            return [{f: int(v) for f, v in h.items()} for h in pipe.execute()]

        return self._call(run, lambda: self.fallback.read_counts(keys))


@dataclass(frozen=True)
class Snapshot:
    """Circuit and cooldown flags as of one read."""

    open: frozenset[str] = frozenset()
    half_open: frozenset[str] = frozenset()
    levels: tuple[tuple[str, int], ...] = ()
    cooling: frozenset[str] = frozenset()

    def level(self, channel: str) -> int:
        return dict(self.levels).get(channel, 0)

    def circuit(self, channel: str) -> str:
        if channel in self.open:
            return "open"
        return "half_open" if channel in self.half_open else "closed"


class RoutingState:
    """Shared routing flags over a KV store; key names are prefix-scoped."""

    def __init__(self, kv: LocalKV | RedisKV, prefix: str, channels: list[str], key_labels: list[str],
                 clock: Callable[[], float], cache_s: float) -> None:
        self.kv = kv
        self.p = prefix + "rt:"
        self.channels = channels
        self.key_labels = key_labels
        self.clock = clock
        self.cache_s = cache_s
        self._snap = Snapshot()
        self._snap_at = -1e18
        # session -> (label, fetched_at, written_at): reads are cached briefly, the sliding TTL
        # is refreshed at most once a minute per session
        self._sticky: dict[str, tuple[str | None, float, float]] = {}
        self._state_keys = ([self.p + "open:" + c for c in channels] + [self.p + "lvl:" + c for c in channels]
                            + [self.p + "cool:" + k for k in key_labels])

    def read(self, skey: str | None) -> tuple[Snapshot, str | None]:
        """Return the flags and the session's sticky key label, in at most one round trip."""
        now = self.clock()
        want_state = now - self._snap_at >= self.cache_s
        cached = self._sticky.get(skey) if skey else None
        want_sticky = skey is not None and (cached is None or now - cached[1] >= self.cache_s)
        keys = (self._state_keys if want_state else []) + ([self.p + "s:" + skey] if want_sticky and skey else [])
        vals = self.kv.get_many(keys) if keys else []
        if want_state:
            self._snap = self._parse(vals[: len(self._state_keys)])
            self._snap_at = now
        label = cached[0] if cached else None
        if want_sticky and skey:
            label = vals[-1]
            self._remember(skey, label, now)
        return self._snap, label

    def _parse(self, vals: list[str | None]) -> Snapshot:
        n = len(self.channels)
        opened = {c for c, v in zip(self.channels, vals[:n], strict=True) if v}
        levels = {c: int(v) for c, v in zip(self.channels, vals[n: 2 * n], strict=True) if v}
        cooling = {k for k, v in zip(self.key_labels, vals[2 * n:], strict=True) if v}
        half = {c for c in levels if c not in opened}
        return Snapshot(frozenset(opened), frozenset(half), tuple(sorted(levels.items())), frozenset(cooling))

    @property
    def snapshot(self) -> Snapshot:
        """The flags as last read or written here (no round trip)."""
        return self._snap

    def invalidate(self) -> None:
        self._snap_at = -1e18

    def _set_circuit(self, channel: str, opened: bool, level: int) -> None:
        s = self._snap
        levels = {k: v for k, v in s.levels if k != channel}
        if level:
            levels[channel] = level
        op = s.open | {channel} if opened else s.open - {channel}
        half = s.half_open - {channel}
        self._snap = Snapshot(op, half, tuple(sorted(levels.items())), s.cooling)

    def cool_key(self, label: str, seconds: float) -> None:
        self.kv.put(self.p + "cool:" + label, "1", seconds)
        s = self._snap
        self._snap = Snapshot(s.open, s.half_open, s.levels, s.cooling | {label})

    def trip(self, channel: str, level: int, cooldown_s: float, hold_s: float) -> None:
        """Open the circuit for cooldown_s; remember the trip level for hold_s beyond that."""
        self.kv.put(self.p + "open:" + channel, "1", cooldown_s)
        self.kv.put(self.p + "lvl:" + channel, str(level), cooldown_s + hold_s)
        self.kv.drop([self.p + "probe:" + channel])
        self._set_circuit(channel, True, level)

    def claim_probe(self, channel: str, ttl_s: float) -> bool:
        """Let exactly one caller (across workers) probe a half-open circuit."""
        return self.kv.put(self.p + "probe:" + channel, "1", ttl_s, only_new=True)

    def release_probe(self, channel: str) -> None:
        self.kv.drop([self.p + "probe:" + channel])

    def close(self, channel: str) -> None:
        self.kv.drop([self.p + "open:" + channel, self.p + "lvl:" + channel, self.p + "probe:" + channel])
        self._set_circuit(channel, False, 0)

    def sticky_put(self, skey: str, label: str) -> None:
        """Pin the session to a key; skip the write while the same pin is fresh."""
        now = self.clock()
        cached = self._sticky.get(skey)
        if cached and cached[0] == label and now - cached[2] < STICKY_REFRESH_S:
            return
        self.kv.put(self.p + "s:" + skey, label, STICKY_TTL_S)
        self._remember(skey, label, now, written=True)

    def _remember(self, skey: str, label: str | None, now: float, *, written: bool = False) -> None:
        old = self._sticky.get(skey)
        written_at = now if written else (old[2] if old and old[0] == label else -1e18)
        if len(self._sticky) > 20_000:
            self._sticky.clear()
        self._sticky[skey] = (label, now, written_at)

    def add_counts(self, counts: dict[str, dict[str, int]]) -> None:
        self.kv.add_counts({self.p + "st:" + k: v for k, v in counts.items()}, STATS_TTL_S)

    def read_counts(self, minutes: list[int]) -> list[dict[str, int]]:
        return self.kv.read_counts([f"{self.p}st:{m}" for m in minutes])


def make_state(redis_url: str | None, prefix: str, channels: list[str], key_labels: list[str],
               clock: Callable[[], float]) -> RoutingState:
    """Build the shared state: Redis-backed when a URL is given, process-local otherwise."""
    local = LocalKV(clock)
    if redis_url:
        return RoutingState(RedisKV(redis_url, local), prefix, channels, key_labels, clock, SNAPSHOT_CACHE_S)
    return RoutingState(local, prefix, channels, key_labels, clock, 0.0)
