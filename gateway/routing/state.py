"""Where routing keeps what the workers must agree on: one interface, two backends.

``Store`` is the whole contract: expiring string flags (read many in one
round trip, set-if-new for claims) and counter hashes. ``RedisStore`` shares
them across every gunicorn worker and node; ``LocalStore`` keeps them in this
process (no Redis configured, or Redis unwell). The rooms above (circuits,
sticky pins, status counters) only ever see a ``Store``.

Redis trouble never fails a request: each operation falls back to the local
store and Redis is left alone for a few seconds.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Protocol, TypeVar

import redis

log = logging.getLogger(__name__)

T = TypeVar("T")


class Store(Protocol):
    """Expiring flags and counter hashes, keyed by strings the caller prefixes."""

    def get_many(self, keys: list[str]) -> list[str | None]:
        """Return each key's value (None when unset or expired), in one round trip."""
        ...

    def put(self, key: str, value: str, ttl_s: float, *, only_new: bool = False) -> bool:
        """Set a value with a time to live; with only_new, only if unset (False when it was set)."""
        ...

    def drop(self, keys: Iterable[str]) -> None:
        """Delete the keys."""
        ...

    def add_counts(self, counts: dict[str, dict[str, int]], ttl_s: float) -> None:
        """Add to counter fields, per hash key, refreshing each hash's expiry."""
        ...

    def read_counts(self, keys: list[str]) -> list[dict[str, int]]:
        """Return each hash's counters ({} when absent)."""
        ...


class LocalStore:
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


class RedisStore:
    """The same operations against Redis, falling back to a local store while Redis is unwell."""

    def __init__(self, url: str, fallback: LocalStore, backoff_s: float = 5.0) -> None:
        self.r = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True)
        self.fallback = fallback
        self.backoff_s = backoff_s
        self._down_until = 0.0

    def _call(self, fn: Callable[[], T], local: Callable[[], T]) -> T:
        if time.monotonic() < self._down_until:
            return local()
        try:
            return fn()
        except (redis.RedisError, OSError) as exc:
            log.warning("redis unavailable for routing state, using process-local state: %s", type(exc).__name__)
            self._down_until = time.monotonic() + self.backoff_s
            return local()

    def get_many(self, keys: list[str]) -> list[str | None]:
        def run() -> list[str | None]:
            vals: list[str | None] = self.r.mget(keys)  # type: ignore[assignment]  # a sync client
            return vals

        return self._call(run, lambda: self.fallback.get_many(keys))

    def put(self, key: str, value: str, ttl_s: float, *, only_new: bool = False) -> bool:
        px = max(int(ttl_s * 1000), 1)
        return bool(self._call(lambda: self.r.set(key, value, px=px, nx=only_new),
                               lambda: self.fallback.put(key, value, ttl_s, only_new=only_new)))

    def drop(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if not keys:
            return
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


def make_store(redis_url: str | None, clock: Callable[[], float]) -> Store:
    """Build the shared store: Redis-backed when a URL is given, process-local otherwise."""
    local = LocalStore(clock)
    return RedisStore(redis_url, local) if redis_url else local
