"""Router under failure (process-local state, fake clock): circuits, probes, cooldowns, stickiness."""

from __future__ import annotations

import json
from collections import Counter

from .conftest import chan


def first(r, session=None):
    return next(r.targets("m", session=session))


def names(r, session=None):
    return [t.key_label for t in r.targets("m", session=session)]


def fail_n(r, label, n, status=500):
    for _ in range(n):
        t = next(t for t in r.targets("m", session=None) if t.key_label == label)
        r.report(t, ok=False, latency_ms=5, status=status)


def test_router_opens_circuit_after_consecutive_failures(make_router):
    r = make_router(chan("a"), chan("b", priority=1))
    fail_n(r, "a#0", 4)
    assert names(r) == ["a#0", "b#0"]  # priority holds until the circuit opens
    fail_n(r, "a#0", 1)
    assert names(r) == ["b#0"]
    assert r.status()["channels"] == [{"name": "a", "circuit": "open"}, {"name": "b", "circuit": "closed"}]


def test_router_half_open_lets_exactly_one_probe(make_router, clock):
    r = make_router(chan("a"), chan("b", priority=1))
    fail_n(r, "a#0", 5)
    clock.advance(9.9)
    assert names(r) == ["b#0"]
    clock.advance(0.2)
    gen = r.targets("m", session=None)
    probe = next(gen)
    assert probe.key_label == "a#0" and probe.probe
    assert names(r) == ["b#0"]  # while the probe is out, nobody else goes there
    r.report(probe, ok=True, latency_ms=20)
    assert names(r) == ["a#0", "b#0"]
    fail_n(r, "a#0", 4)  # the old failures were forgotten on close: no trip yet
    assert "a#0" in names(r)


def test_router_failed_probe_reopens_with_longer_cooldown(make_router, clock):
    r = make_router(chan("a"), chan("b", priority=1))
    fail_n(r, "a#0", 5)
    clock.advance(10.1)
    probe = first(r)
    assert probe.probe
    r.report(probe, ok=False, latency_ms=5, status=503)
    clock.advance(15)
    assert names(r) == ["b#0"]  # 20 s this time
    clock.advance(5.1)
    assert first(r).probe


def test_router_trips_on_error_rate(make_router):
    r = make_router(chan("a"))
    for i in range(9):
        r.report(first(r), ok=i % 3 == 0, latency_ms=10, status=200 if i % 3 == 0 else 502)
    assert names(r) == ["a#0"]  # 6 of 9 failed, never 5 in a row: not enough calls yet
    r.report(first(r), ok=False, latency_ms=10, status=502)
    assert r.status()["channels"] == [{"name": "a", "circuit": "open"}]
    assert [(t.key_label, t.probe) for t in r.targets("m", session=None)] == [("a#0", "channel")]  # fails open
    assert names(r) == []  # one call a second while every target is open


def test_router_client_errors_do_not_count(make_router):
    r = make_router(chan("a"), chan("b", priority=1))
    for status in (400, 404, 422) * 5:
        r.report(first(r), ok=False, latency_ms=5, status=status)
    assert names(r) == ["a#0", "b#0"]
    assert r.status()["models"][0]["requests"] == 0


def test_router_health_disabled_never_opens(make_router):
    r = make_router(chan("a"), chan("b", priority=1), health=False)
    fail_n(r, "a#0", 30)
    assert names(r) == ["a#0", "b#0"]


def test_router_honours_retry_after_per_key(make_router, clock):
    r = make_router(chan("a", keys=2))
    t = next(t for t in r.targets("m", session=None) if t.key_label == "a#0")
    r.report(t, ok=False, latency_ms=5, status=429, retry_after=2)
    assert {first(r).key_label for _ in range(6)} == {"a#1"}
    assert names(r) == ["a#1"]
    clock.advance(2.01)
    assert {first(r).key_label for _ in range(6)} == {"a#0", "a#1"}


def test_router_throttle_without_retry_after_cools_one_second(make_router, clock):
    r = make_router(chan("a", keys=2))
    fail_n(r, "a#1", 1, status=429)
    assert names(r) == ["a#0"]
    clock.advance(1.01)
    assert sorted(names(r)) == ["a#0", "a#1"]


def test_router_rejected_key_rests(make_router, clock):
    r = make_router(chan("a", keys=2))
    fail_n(r, "a#0", 1, status=401)
    clock.advance(59)
    assert names(r) == ["a#1"]
    clock.advance(2)
    assert sorted(names(r)) == ["a#0", "a#1"]


def test_router_flaky_channel_gets_smaller_share(make_router):
    r = make_router(chan("a"), chan("b"))
    for i in range(20):  # a: 30% errors, under the breaker's threshold
        for label in ("a#0", "b#0"):
            t = next(t for t in r.targets("m", session=None) if t.key_label == label)
            bad = label == "a#0" and i % 10 < 3
            r.report(t, ok=not bad, latency_ms=10, status=500 if bad else 200)
    share = Counter(first(r).key_label for _ in range(2000))
    assert share["a#0"] < 0.25 * 2000
    assert names(r).count("a#0") == 1  # still there as a retry candidate


def test_router_health_scales_weight(make_router):
    r = make_router(chan("a"), chan("b"))
    for _ in range(10):
        t = next(t for t in r.targets("m", session=None) if t.key_label == "a#0")
        r.report(t, ok=True, latency_ms=100)
        t = next(t for t in r.targets("m", session=None) if t.key_label == "b#0")
        r.report(t, ok=True, latency_ms=400)
    share = Counter(first(r).key_label for _ in range(2000))
    assert share["a#0"] > 1.3 * share["b#0"]


def test_router_sticky_session_keeps_key(make_router):
    r = make_router(chan("a", keys=3), chan("b", keys=3))
    for s in ("alice", "bob", "carol", "dave"):
        labels = set()
        for _ in range(10):
            t = first(r, s)
            labels.add(t.key_label)
            r.report(t, ok=True, latency_ms=10)
        assert len(labels) == 1
    spread = {first(r, f"user-{i}").key_label for i in range(60)}
    assert len(spread) >= 5  # sessions still spread over the pool


def test_router_sticky_moves_when_key_cools_and_stays(make_router, clock):
    r = make_router(chan("a", keys=2))
    home = first(r, "alice")
    r.report(home, ok=False, latency_ms=5, status=429, retry_after=5)
    moved = first(r, "alice")
    assert moved.key_label != home.key_label
    r.report(moved, ok=True, latency_ms=10)
    clock.advance(6)
    assert first(r, "alice").key_label == moved.key_label  # the new key is healthy: stay


def test_router_sticky_each_target_once(make_router):
    r = make_router(chan("a", keys=2), chan("b", keys=2))
    t = first(r, "alice")
    r.report(t, ok=True, latency_ms=10)
    labels = names(r, "alice")
    assert labels[0] == t.key_label and sorted(labels) == ["a#0", "a#1", "b#0", "b#1"]


def test_router_status_counts_client_visible_outcomes(make_router, clock):
    r = make_router(chan("a"), chan("b", priority=1))
    for i in range(10):
        gen = r.targets("m", session=None)
        t = next(gen)
        if i < 2:  # first try fails, the retry on b succeeds: the caller saw success
            r.report(t, ok=False, latency_ms=50, status=500)
            t = next(gen)
        r.report(t, ok=True, latency_ms=100)
        gen.close()
    gen = r.targets("m", session=None)  # every target fails: one failed request
    for t in gen:
        r.report(t, ok=False, latency_ms=5, status=502)
    clock.advance(2)
    st = r.status()
    model = st["models"][0]
    assert model["model"] == "m" and model["requests"] == 11
    assert model["availability"] == round(10 / 11, 4)
    assert 70 <= model["latency_ms"]["p50"] <= 100 and model["latency_ms"]["p95"] <= 150
    assert st["status"] == "operational"  # too few requests to call it degraded
    assert "sk-secret" not in json.dumps(st) and "127.0.0.1" not in json.dumps(st)


def test_router_status_reports_outage_when_all_open(make_router, clock):
    r = make_router(chan("a"), chan("z", models=("n",)))
    fail_n(r, "a#0", 5)
    clock.advance(2)
    st = r.status()
    assert [m["status"] for m in st["models"]] == ["outage", "operational"]
    assert st["status"] == "partial_outage"
    assert [t.probe for t in r.targets("m", session=None)] == ["channel"]  # one call still goes through
    assert list(r.targets("m", session=None)) == []


def test_router_sticky_session_returns_to_preferred_priority(make_router, clock):
    r = make_router(chan("a"), chan("b", priority=1))
    fail_n(r, "a#0", 5)  # a is down: the session lands on the backup
    t = first(r, "alice")
    assert t.key_label == "b#0"
    r.report(t, ok=True, latency_ms=10)
    clock.advance(10.1)
    probe = first(r)
    r.report(probe, ok=True, latency_ms=10)  # a is back
    assert first(r, "alice").key_label == "a#0"


def test_router_probe_not_claimed_without_usable_key(make_router, clock):
    r = make_router(chan("a"), chan("b", priority=1))
    fail_n(r, "a#0", 5)
    clock.advance(10.1)
    r.circuits.cool_key("a#0", 1.0)
    assert names(r) == ["b#0"]
    clock.advance(1.01)
    assert first(r).probe  # the claim was not spent while the key rested
