"""Routing fixtures: a settable clock and small channel/router factories."""

from __future__ import annotations

import random

import pytest

from core.channels import ChannelConfig
from gateway.routing import Router
from gateway.routing.health import BreakerPolicy


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def chan(name: str, *, priority: int = 0, weight: int = 1, keys: int = 1, models=("m",)) -> ChannelConfig:
    return ChannelConfig(
        name=name, protocol="openai", base_url=f"http://127.0.0.1:9/{name}",
        api_keys=tuple(f"sk-secret-{name}-{i}" for i in range(keys)), models=tuple(models),
        priority=priority, weight=weight,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_router(clock):
    """Build a process-local Router on the fake clock (wall clock fixed at a round minute)."""

    def build(*chans: ChannelConfig, seed: int = 1, redis_url: str | None = None, prefix: str = "t:",
              health: bool = True, policy: BreakerPolicy | None = None, clk=None) -> Router:
        c = clk or clock
        return Router(list(chans), redis_url=redis_url, prefix=prefix, clock=c, rng=random.Random(seed),
                      wall=lambda: 1_800_000_000.0 + (c() - 1000.0), health_enabled=health, policy=policy)

    return build
