"""Choose upstream targets for a model: channels by priority, then weight; keys round-robin.

One Router per process, built lazily by ``get_router(app)`` from the channels
file plus the built-in demo channel.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from core import channels as core_channels
from core.channels import ChannelConfig

ECHO_CHANNEL = ChannelConfig(
    name="bytespike-echo",
    protocol="echo",
    base_url="builtin://echo",
    api_keys=("demo",),
    models=("bytespike-echo",),
)


@dataclass(frozen=True)
class Target:
    """One attempt: a channel, one key of its pool, and the model name the upstream expects."""

    channel: ChannelConfig
    key_index: int
    upstream_model: str
    session: str | None = field(default=None, compare=False, repr=False)
    probe: bool = field(default=False, compare=False)

    @property
    def api_key(self) -> str:
        return self.channel.api_keys[self.key_index]

    @property
    def key_label(self) -> str:
        return f"{self.channel.name}#{self.key_index}"

    def __repr__(self) -> str:  # never print keys
        return f"Target({self.key_label}, model={self.upstream_model!r})"


class Router:
    """Order the (channel, key) attempts for each request."""

    def __init__(
        self,
        channels: list[ChannelConfig],
        *,
        redis_url: str | None,
        prefix: str,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.channels = list(channels)
        self.redis_url = redis_url
        self.prefix = prefix
        self.clock = clock
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._rr = {c.name: itertools.count() for c in self.channels}

    def serves(self, model_id: str) -> bool:
        return any(model_id in c.models for c in self.channels)

    def models(self) -> set[str]:
        return {m for c in self.channels for m in c.models}

    def targets(self, model_id: str, *, session: str | None) -> Iterator[Target]:
        """Yield each (channel, key) at most once, best first."""
        for ch in self._order([c for c in self.channels if model_id in c.models]):
            with self._lock:
                start = next(self._rr[ch.name])
            n = len(ch.api_keys)
            for i in range(n):
                yield Target(ch, (start + i) % n, ch.upstream_model(model_id), session=session)

    def _order(self, chans: list[ChannelConfig]) -> list[ChannelConfig]:
        """Sort by priority; shuffle equal priorities by weight (weighted sampling without replacement)."""
        out: list[ChannelConfig] = []
        for _, group in itertools.groupby(sorted(chans, key=lambda c: c.priority), key=lambda c: c.priority):
            pool = list(group)
            while pool:
                weights = [max(c.weight, 0) for c in pool]
                if sum(weights) <= 0:
                    out.extend(pool)
                    break
                pick = self.rng.choices(range(len(pool)), weights=weights)[0]
                out.append(pool.pop(pick))
        return out

    def report(
        self,
        target: Target,
        *,
        ok: bool,
        latency_ms: float,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Record the outcome of one attempt."""

    def status(self) -> dict[str, Any]:
        return {"status": "operational", "models": [], "channels": []}


_build_lock = threading.Lock()


def get_router(app: Any) -> Router:
    """Return this process's Router, building it on first use (never at import or in create_app)."""
    pid = os.getpid()
    held = app.extensions.get("bytespike_router")
    if held and held[0] == pid:
        return held[1]
    with _build_lock:
        held = app.extensions.get("bytespike_router")
        if held and held[0] == pid:
            return held[1]
        chans = core_channels.load(app.config.get("BYTESPIKE_CHANNELS_FILE"))
        router = Router(
            [*chans, ECHO_CHANNEL],
            redis_url=app.config.get("BYTESPIKE_REDIS_URL"),
            prefix=app.config.get("BYTESPIKE_REDIS_PREFIX") or "bs:",
        )
        app.extensions["bytespike_router"] = (pid, router)
        return router
