"""Sticky sessions: a session stays on the upstream key that last served it.

Upstream prompt caches live per key, so a conversation that hops keys loses
its cached prefix. The pin is stored hashed (never the caller's session id)
in the shared ``Store``; reads are cached for a moment and the sliding TTL
is refreshed at most once a minute per session.
"""

from __future__ import annotations

import hashlib
from typing import Callable

from .state import Store

STICKY_TTL_S = 3600.0
STICKY_REFRESH_S = 60.0
MAX_CACHED = 20_000


def session_key(session: str, model: str) -> str:
    """Hash a caller's session id (never stored raw) together with the model."""
    return hashlib.sha256(f"{model}\x00{session}".encode()).hexdigest()[:32]


class Pins:
    """Session -> key label pins over a store, with a short read cache."""

    def __init__(self, store: Store, prefix: str, clock: Callable[[], float], cache_s: float) -> None:
        self.store = store
        self.p = prefix + "s:"
        self.clock = clock
        self.cache_s = cache_s
        # session -> (label, fetched_at, written_at)
        self._cache: dict[str, tuple[str | None, float, float]] = {}

    def wanted(self, skey: str | None) -> list[str]:
        """The store keys to read for this session now ([] while the cached pin is fresh)."""
        if skey is None:
            return []
        cached = self._cache.get(skey)
        if cached is not None and self.clock() - cached[1] < self.cache_s:
            return []
        return [self.p + skey]

    def take(self, skey: str | None, vals: list[str | None]) -> str | None:
        """Return the session's pinned key label, from the values just read or the cache."""
        if skey is None:
            return None
        if vals:
            self._remember(skey, vals[0], self.clock())
            return vals[0]
        cached = self._cache.get(skey)
        return cached[0] if cached else None

    def put(self, skey: str, label: str) -> None:
        """Pin the session to a key; skip the write while the same pin is fresh."""
        now = self.clock()
        cached = self._cache.get(skey)
        if cached and cached[0] == label and now - cached[2] < STICKY_REFRESH_S:
            return
        self.store.put(self.p + skey, label, STICKY_TTL_S)
        self._remember(skey, label, now, written=True)

    def _remember(self, skey: str, label: str | None, now: float, *, written: bool = False) -> None:
        old = self._cache.get(skey)
        written_at = now if written else (old[2] if old and old[0] == label else -1e18)
        if len(self._cache) > MAX_CACHED:
            self._cache.clear()
        self._cache[skey] = (label, now, written_at)
