"""Routing state shared through the real Redis: two Routers stand for two gunicorn workers."""

from __future__ import annotations

import time

import redis

from gateway.routing.health import BreakerPolicy
from tests.conftest import REDIS_URL

from .conftest import chan


def pair(make_router, prefix, *chans, policy=None):
    return (make_router(*chans, redis_url=REDIS_URL, prefix=prefix, seed=1, policy=policy),
            make_router(*chans, redis_url=REDIS_URL, prefix=prefix, seed=2, policy=policy))


def test_redis_sticky_consistent_across_workers(make_router, redis_prefix, clock):
    a, b = pair(make_router, redis_prefix, chan("x", keys=3), chan("y", keys=3))
    for i in range(20):
        s = f"session-{i}"
        t = next(a.targets("m", session=s))
        a.report(t, ok=True, latency_ms=10)
        assert next(b.targets("m", session=s)).key_label == t.key_label
    # the session stored hashed, never raw
    keys = [k.decode() for k in redis.Redis.from_url(REDIS_URL).scan_iter(redis_prefix + "*")]
    assert keys and not any("session-" in k for k in keys)


def test_redis_sticky_pin_follows_a_move(make_router, redis_prefix, clock):
    a, b = pair(make_router, redis_prefix, chan("x", keys=2))
    home = next(a.targets("m", session="alice"))
    a.report(home, ok=False, latency_ms=5, status=429, retry_after=0.4)
    moved = next(a.targets("m", session="alice"))
    assert moved.key_label != home.key_label
    a.report(moved, ok=True, latency_ms=10)
    time.sleep(0.45)  # the cooldown (a Redis TTL) is over
    clock.advance(1)
    assert next(b.targets("m", session="alice")).key_label == moved.key_label


def test_redis_cooldown_shared(make_router, redis_prefix, clock):
    a, b = pair(make_router, redis_prefix, chan("x", keys=2))
    assert sorted(t.key_label for t in b.targets("m", session=None)) == ["x#0", "x#1"]
    t = next(t for t in a.targets("m", session=None) if t.key_label == "x#0")
    a.report(t, ok=False, latency_ms=5, status=429, retry_after=0.5)
    clock.advance(0.3)  # b's cached flags are stale now
    assert [t.key_label for t in b.targets("m", session=None)] == ["x#1"]
    time.sleep(0.55)
    clock.advance(0.3)
    assert sorted(t.key_label for t in b.targets("m", session=None)) == ["x#0", "x#1"]


def test_redis_circuit_shared_and_one_probe(make_router, redis_prefix, clock):
    policy = BreakerPolicy(cooldown_s=0.3)
    a, b = pair(make_router, redis_prefix, chan("x"), chan("y", priority=1), policy=policy)
    for _ in range(5):
        t = next(a.targets("m", session=None))
        assert t.key_label == "x#0"
        a.report(t, ok=False, latency_ms=5, status=503)
    clock.advance(0.3)
    assert [t.key_label for t in b.targets("m", session=None)] == ["y#0"]
    time.sleep(0.35)
    clock.advance(0.3)
    probe = next(b.targets("m", session=None))
    assert probe.key_label == "x#0" and probe.probe
    assert [t.key_label for t in a.targets("m", session=None)] == ["y#0"]  # one probe across workers
    b.report(probe, ok=True, latency_ms=10)
    clock.advance(0.3)
    assert [t.key_label for t in a.targets("m", session=None)] == ["x#0", "y#0"]
    assert {c["name"]: c["circuit"] for c in a.status()["channels"]} == {"x": "closed", "y": "closed"}


def test_redis_status_aggregates_workers(make_router, redis_prefix, clock):
    a, b = pair(make_router, redis_prefix, chan("x"))
    for r, ok in ((a, True), (b, True), (b, False)):
        for _ in range(3):
            gen = r.targets("m", session=None)
            t = next(gen)
            r.report(t, ok=ok, latency_ms=40, status=200 if ok else 500)
            gen.close()
    a.flush()
    b.flush()
    model = a.status()["models"][0]
    assert model["requests"] == 9 and model["availability"] == round(6 / 9, 4)
    assert model["latency_ms"]["p95"] <= 50


def test_redis_down_falls_back_to_local(make_router, clock):
    from tests.conftest import free_port

    r = make_router(chan("x", keys=2), redis_url=f"redis://127.0.0.1:{free_port()}/0")
    t = next(r.targets("m", session="alice"))
    r.report(t, ok=False, latency_ms=5, status=429, retry_after=30)
    other = "x#1" if t.key_label == "x#0" else "x#0"
    assert [x.key_label for x in r.targets("m", session="alice")] == [other]
    assert r.status()["status"] == "operational"


def test_redis_worker_seeing_one_tenant_asks_the_others(make_router, redis_prefix, clock):
    """Keep-alive can put all of one tenant's calls on one worker: that worker must not blame the channel alone."""
    a, b = pair(make_router, redis_prefix, chan("x"), chan("y", priority=1))
    t = next(b.targets("m", session=None, tenant="quiet"))
    b.report(t, ok=True, latency_ms=10)
    b.flush()
    for _ in range(8):  # worker a only ever sees the noisy tenant, failing
        t = next(a.targets("m", session=None, tenant="noisy"))
        a.report(t, ok=False, latency_ms=5, status=500)
    clock.advance(0.3)
    assert [t.key_label for t in b.targets("m", session=None, tenant="quiet")] == ["x#0", "y#0"]
    assert a.circuits.tenant_flags("noisy").state("x") == "open"
