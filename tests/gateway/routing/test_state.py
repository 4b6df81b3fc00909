"""The one Store contract, held by both backends: the process-local dict and the real Redis."""

from __future__ import annotations

import time

import pytest

from gateway.routing.state import LocalStore, RedisStore, Store, make_store
from tests.conftest import REDIS_URL, free_port

from .conftest import FakeClock


@pytest.fixture(params=["local", "redis"])
def store(request, redis_prefix) -> tuple[Store, str, FakeClock | None]:
    if request.param == "local":
        clock = FakeClock()
        return LocalStore(clock), redis_prefix, clock
    return make_store(REDIS_URL, time.monotonic), redis_prefix, None


def wait(clock: FakeClock | None, s: float) -> None:
    if clock is None:
        time.sleep(s)
    else:
        clock.advance(s)


def test_store_flags_expire_and_claims_are_exclusive(store):
    s, p, clock = store
    assert s.get_many([p + "x", p + "y"]) == [None, None]
    assert s.put(p + "x", "1", 0.3)
    assert s.put(p + "claim", "1", 0.3, only_new=True)
    assert not s.put(p + "claim", "1", 0.3, only_new=True)
    assert s.get_many([p + "x", p + "y"]) == ["1", None]
    wait(clock, 0.35)
    assert s.get_many([p + "x"]) == [None]
    assert s.put(p + "claim", "1", 0.3, only_new=True)  # the claim lapsed with its TTL
    s.drop([p + "claim"])
    s.drop([])
    assert s.get_many([p + "claim"]) == [None]


def test_store_counts_add_up(store):
    s, p, _ = store
    s.add_counts({p + "h1": {"a": 2, "b": 1}}, 60)
    s.add_counts({p + "h1": {"a": 3}, p + "h2": {"c": 1}}, 60)
    assert s.read_counts([p + "h1", p + "h2", p + "h3"]) == [{"a": 5, "b": 1}, {"c": 1}, {}]


def test_store_redis_unwell_falls_back_to_local():
    s = make_store(f"redis://127.0.0.1:{free_port()}/0", time.monotonic)
    assert isinstance(s, RedisStore)
    assert s.put("k", "v", 5) and s.get_many(["k"]) == ["v"]  # served by the local fallback
