"""Failures judged per cause: one tenant's failing requests open its own circuit, not the channel's."""

from __future__ import annotations

from gateway.routing.health import FAIL, OK, BreakerPolicy
from gateway.routing.tenants import Tenants

from .conftest import chan

POLICY = BreakerPolicy()


def labels(r, tenant, model="m"):
    return [t.key_label for t in r.targets(model, session=None, tenant=tenant)]


def call(r, tenant, label, *, ok, status=None):
    gen = r.targets("m", session=None, tenant=tenant)
    t = next(t for t in gen if t.key_label == label)
    r.report(t, ok=ok, latency_ms=10, status=status if status is not None else (200 if ok else 500))
    gen.close()
    return t


def circuits(r):
    """The shared circuits as this router last read or wrote them (the status document is cached)."""
    return {c.name: r.circuits.snapshot.circuit(c.name) for c in r.channels}


def test_tenants_alone_failing_blames_channel(clock):
    t = Tenants(clock)
    for _ in range(3):
        t.record("a", "A", FAIL, 5)
    assert t.blames_channel("a", "A", POLICY)


def test_tenants_others_served_recently_blames_tenant(clock):
    t = Tenants(clock)
    t.record("a", "B", OK, 5)
    for _ in range(5):
        t.record("a", "A", FAIL, 5)
    assert not t.blames_channel("a", "A", POLICY)
    clock.advance(10.1)  # B's answer is too old to vouch for the channel now
    t.record("a", "A", FAIL, 5)
    assert t.blames_channel("a", "A", POLICY)


def test_tenants_backup_reached_only_by_a_suspect_is_not_blamed(clock):
    t = Tenants(clock)
    t.record("a", "B", OK, 5)
    t.record("a", "A", FAIL, 5)  # A fails where B is served: A is a suspect
    for _ in range(5):
        t.record("b", "A", FAIL, 5)  # the backup sees A's retries only
    assert not t.blames_channel("b", "A", POLICY)
    clock.advance(10.1)
    assert t.blames_channel("b", "A", POLICY)  # nothing recent says it is A's doing any more


def test_tenants_two_failing_tenants_blame_channel(clock):
    t = Tenants(clock)
    t.record("a", "C", OK, 5)
    for who in ("A", "B"):
        t.record("a", who, FAIL, 5)
    assert not t.blames_channel("a", "A", POLICY)  # one failure each: not yet a streak
    t.record("a", "B", FAIL, 5)
    t.record("a", "A", FAIL, 5)
    assert t.blames_channel("a", "A", POLICY)
    t.record("a", "B", OK, 5)  # B is served again: only A is failing
    assert not t.blames_channel("a", "A", POLICY)


def request(r, tenant, *, ok):
    """One request as the gateway makes it: try the targets in order until one answers."""
    gen = r.targets("m", session=None, tenant=tenant)
    tried = []
    for t in gen:
        tried.append(t)
        r.report(t, ok=ok, latency_ms=10, status=200 if ok else 500)
        if ok:
            break
    gen.close()
    return tried


def test_router_noisy_tenant_opens_only_its_own_circuit(make_router):
    r = make_router(chan("a"), chan("b", priority=1))
    request(r, "B", ok=True)
    for _ in range(20):
        request(r, "A", ok=False)  # every channel fails A's prompts
        assert [t.key_label for t in request(r, "B", ok=True)] == ["a#0"]
    assert circuits(r) == {"a": "closed", "b": "closed"}
    assert labels(r, "B") == ["a#0", "b#0"]  # the quiet tenant keeps the preferred channel
    assert labels(r, None) == ["a#0", "b#0"]
    assert [t.probe for t in r.targets("m", session=None, tenant="A")] == []  # A's probe went out just now


def test_router_noisy_tenant_circuit_probes_and_closes(make_router, clock):
    r = make_router(chan("a"), chan("b", priority=1))
    call(r, "B", "a#0", ok=True)
    for _ in range(5):
        call(r, "A", "a#0", ok=False)
    assert labels(r, "A") == ["b#0"]
    clock.advance(10.1)
    gen = r.targets("m", session=None, tenant="A")
    probe = next(gen)
    assert (probe.key_label, probe.probe) == ("a#0", "tenant")
    assert labels(r, "A") == ["b#0"]  # one probe at a time
    r.report(probe, ok=True, latency_ms=10)
    gen.close()
    assert labels(r, "A") == ["a#0", "b#0"]


def test_router_channel_failing_for_everyone_still_opens(make_router):
    r = make_router(chan("a"), chan("b", priority=1))
    call(r, "C", "a#0", ok=True)
    for _ in range(5):  # two tenants each on a failure streak: the channel is to blame
        for who in ("A", "B"):
            if circuits(r)["a"] == "closed":
                call(r, who, "a#0", ok=False)
    assert circuits(r)["a"] == "open"
    assert r.circuits.tenant_flags("A").state("a") == "closed"
    assert labels(r, "C") == ["b#0"]


def test_router_fail_open_probes_least_recently_failed(make_router, clock):
    r = make_router(chan("a"), chan("b", priority=1))
    for _ in range(5):
        call(r, None, "a#0", ok=False)
    clock.advance(1)
    for _ in range(5):
        call(r, None, "b#0", ok=False)
    assert circuits(r) == {"a": "open", "b": "open"}
    gen = r.targets("m", session=None)
    probe = next(gen)
    assert (probe.key_label, probe.probe) == ("a#0", "channel")  # a failed longest ago
    assert list(gen) == []  # one call through, not a retry over every open target
    assert labels(r, None) == []  # and one a second
    r.report(probe, ok=True, latency_ms=10)
    assert circuits(r) == {"a": "closed", "b": "open"}
    assert labels(r, None) == ["a#0"]


def test_router_fail_open_failed_probe_moves_on(make_router, clock):
    r = make_router(chan("a"), chan("b", priority=1))
    for label in ("a#0", "b#0"):
        for _ in range(5):
            call(r, None, label, ok=False)
        clock.advance(1)
    probe = next(r.targets("m", session=None))
    assert probe.key_label == "a#0"
    r.report(probe, ok=False, latency_ms=10, status=503)
    clock.advance(1.01)
    assert [(t.key_label, t.probe) for t in r.targets("m", session=None)] == [("b#0", "channel")]


def test_router_fail_open_for_one_tenant_leaves_others_alone(make_router, clock):
    r = make_router(chan("a"), chan("b"))
    call(r, "B", "a#0", ok=True)
    call(r, "B", "b#0", ok=True)
    for _ in range(5):
        call(r, "A", "a#0", ok=False)
        call(r, "A", "b#0", ok=False)
    assert [t.probe for t in r.targets("m", session=None, tenant="A")] == ["tenant"]
    assert labels(r, "A") == []
    assert sorted(labels(r, "B")) == ["a#0", "b#0"]
    assert circuits(r) == {"a": "closed", "b": "closed"}
