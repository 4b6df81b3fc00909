"""Health bookkeeping: outcome classes, rolling windows, breaker triggers, scores."""

from __future__ import annotations

import pytest

from gateway.routing.health import (
    CLIENT,
    FAIL,
    KEY_REJECTED,
    OK,
    THROTTLE,
    BreakerPolicy,
    Health,
    RollingWindow,
    classify,
    percentile,
)

from .conftest import FakeClock


@pytest.mark.parametrize(
    ("ok", "status", "expected"),
    [
        (True, 200, OK), (False, None, FAIL), (False, 500, FAIL), (False, 529, FAIL), (False, 503, FAIL),
        (False, 408, FAIL), (False, 200, FAIL), (False, 429, THROTTLE), (False, 401, KEY_REJECTED),
        (False, 403, KEY_REJECTED), (False, 400, CLIENT), (False, 404, CLIENT), (False, 422, CLIENT),
    ],
)
def test_classify_names_outcomes(ok, status, expected):
    assert classify(ok, status) == expected


def test_percentile_estimates_from_histogram():
    w = RollingWindow(FakeClock())
    for ms in [10] * 90 + [1000] * 10:
        w.add(OK, ms)
    t = w.total()
    assert 7 <= percentile(t.hist, 0.5) <= 10
    assert 700 <= t.p95 <= 1000
    assert percentile([0] * len(t.hist), 0.5) is None


def test_window_forgets_after_span():
    clock = FakeClock()
    w = RollingWindow(clock, span_s=60, slots=12)
    w.add(FAIL, 0)
    clock.advance(30)
    w.add(OK, 5)
    assert (w.total().failures, w.total().ok) == (1, 1)
    clock.advance(35)
    assert (w.total().failures, w.total().ok) == (0, 1)
    clock.advance(60)
    assert w.total().calls == 0


def test_health_trips_on_consecutive_failures():
    h, policy = Health(FakeClock()), BreakerPolicy()
    for _ in range(4):
        h.record(FAIL, 0)
    assert not h.should_trip(policy)
    h.record(THROTTLE, 0)  # a throttle neither breaks nor extends the streak
    assert not h.should_trip(policy)
    h.record(FAIL, 0)
    assert h.should_trip(policy)


def test_health_trips_on_error_rate_with_enough_calls():
    h, policy = Health(FakeClock()), BreakerPolicy()
    for i in range(9):
        h.record(FAIL if i % 3 else OK, 10)  # 6 of 9 failed, never 5 in a row
    assert not h.should_trip(policy)  # fewer than 10 calls
    h.record(FAIL, 0)
    assert h.should_trip(policy)


def test_health_ignores_client_errors():
    h = Health(FakeClock())
    for _ in range(20):
        h.record(CLIENT, 0)
    assert not h.should_trip(BreakerPolicy()) and h.score() == 1.0


def test_health_score_prefers_reliable_and_fast():
    clock = FakeClock()
    good, flaky, slow = Health(clock), Health(clock), Health(clock)
    for i in range(20):
        good.record(OK, 100)
        flaky.record(FAIL if i % 3 == 0 else OK, 100)
        slow.record(OK, 2000)
    best = 100.0
    assert good.score(best) == 1.0
    assert flaky.score(best) < 0.5
    assert slow.score(best) < 0.5
    assert flaky.score(best) > 0


def test_breaker_cooldown_doubles_to_cap():
    p = BreakerPolicy(cooldown_s=10, max_cooldown_s=60)
    assert [p.cooldown(n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_health_score_counts_only_errors_above_best_peer():
    h = Health(FakeClock())
    for i in range(20):
        h.record(FAIL if i % 5 == 0 else OK, 50)  # 20% errors
    assert h.score(best_error=0.2) == 1.0  # everyone fails alike: nothing to gain by moving
    assert 0.04 < h.score(best_error=0.0) < 0.06
