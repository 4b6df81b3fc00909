"""Admission limits: rpm, tpm, spend windows, concurrency; in-process and shared through Redis."""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pytest

from core import db as core_db
from core import keys, ledger, limits
from core.errors import ConcurrencyLimited, RateLimited
from core.models.accounts import Org
from core.models.ledger import KeySpendHour
from tests.conftest import REDIS_URL, make_app


def spend(p, rid, credits):
    hold = ledger.reserve(p, rid, credits)
    rec = ledger.UsageRecord(rid, p.org_id, p.key_id, p.member_id, "m", "v", "c", "openai", False, 200)
    return ledger.settle(hold, credits, rec)


def test_limits_rpm_in_process(sqlite_app, make_account, make_sub):
    _, _, master = make_account(0)
    _, sub = make_sub(master, rpm=3)
    for _ in range(3):
        limits.admit(sub, estimated_tokens=10).release()
    with pytest.raises(RateLimited) as exc:
        limits.admit(sub, estimated_tokens=10)
    assert exc.value.status == 429 and exc.value.code == "rate_limit_error" and 1 <= exc.value.retry_after <= 60
    limits.admit(master, estimated_tokens=10).release()  # another key is not affected


def test_limits_tpm_in_process(sqlite_app, make_account, make_sub):
    _, _, master = make_account(0)
    _, sub = make_sub(master, tpm=1000)
    limits.admit(sub, estimated_tokens=600).release()
    with pytest.raises(RateLimited, match="tpm"):
        limits.admit(sub, estimated_tokens=600)
    limits.admit(sub, estimated_tokens=300).release()


def test_limits_concurrency_cap_per_tier(sqlite_app, make_account):
    _, _, p = make_account(0)  # free tier: 5 in flight
    held = [limits.admit(p, estimated_tokens=1) for _ in range(5)]
    with pytest.raises(ConcurrencyLimited) as exc:
        limits.admit(p, estimated_tokens=1)
    assert exc.value.status == 429 and exc.value.code == "concurrency_limit" and exc.value.retry_after
    held[0].release()
    held[0].release()  # idempotent: frees one slot only
    held.append(limits.admit(p, estimated_tokens=1))
    with pytest.raises(ConcurrencyLimited):
        limits.admit(p, estimated_tokens=1)
    for a in held:
        a.release()
    assert {"free": 5, "pro": 25, "max": 100, "enterprise": 500} == keys.TIER_CONCURRENCY


def test_limits_org_cap_overrides_tier(sqlite_app, make_account):
    org, raw, _ = make_account(0, tier="max")
    t = Org.__table__
    with core_db.get_db().engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == org).values(concurrency_cap=2))
    p = keys.authenticate(raw, "127.0.0.1")
    assert p.concurrency_cap == 2
    a, b = limits.admit(p, estimated_tokens=1), limits.admit(p, estimated_tokens=1)
    with pytest.raises(ConcurrencyLimited):
        limits.admit(p, estimated_tokens=1)
    a.release()
    b.release()


def test_limits_spend_window(dapp, make_account, make_sub):
    _, _, master = make_account(10_000_000)
    _, sub = make_sub(master, rate_limit_5h=50_000, rate_limit_1d=100_000)
    spend(sub, "req_w1", 30_000)
    limits.admit(sub, estimated_tokens=1).release()
    hold = ledger.reserve(sub, "req_w2", 20_000)  # open reservations count too
    with pytest.raises(RateLimited) as exc:
        limits.admit(sub, estimated_tokens=1)
    msg = exc.value.message
    assert msg.startswith("rate_limit_5h exceeded: 0.05 / 0.05 USD used; resets at ")
    assert exc.value.retry_after > 3600 * 4
    ledger.release(hold, ledger.UsageRecord("req_w2", sub.org_id, sub.key_id, None, "m", None, None, "o", False, 500))
    limits.admit(sub, estimated_tokens=1).release()
    h = limits.envelope_headers(sub)
    assert h["X-RateLimit-Limit"] == "50000" and h["X-RateLimit-Remaining"] == "20000"
    reset = int(h["X-RateLimit-Reset"])
    now = dt.datetime.now(dt.UTC)
    assert 4 * 3600 <= reset - now.timestamp() <= 5 * 3600 + 1


def test_limits_spend_window_rolls_off(dapp, make_account, make_sub):
    _, _, master = make_account(10_000_000)
    _, sub = make_sub(master, rate_limit_5h=1_000, rate_limit_7d=5_000)
    t = KeySpendHour.__table__
    hour = dt.datetime.now(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    with core_db.get_db().engine.begin() as conn:
        conn.execute(t.insert(), [{"api_key_id": sub.key_id, "hour": hour - dt.timedelta(hours=6), "credits": 4_000},
                                  {"api_key_id": sub.key_id, "hour": hour - dt.timedelta(days=8), "credits": 9_999}])
    windows = {w.name: w for w in limits.spend_windows(sub)}
    assert windows["rate_limit_5h"].used == 0 and windows["rate_limit_7d"].used == 4_000
    limits.admit(sub, estimated_tokens=1).release()
    spend(sub, "req_x", 1_000)
    with pytest.raises(RateLimited, match="rate_limit_5h"):
        limits.admit(sub, estimated_tokens=1)
    h = limits.envelope_headers(sub)  # 5h is at its cap: that is the window nearest to it
    assert (h["X-RateLimit-Limit"], h["X-RateLimit-Remaining"]) == ("1000", "0")


def test_limits_envelope_without_windows(sqlite_app, make_account, make_sub):
    _, _, master = make_account(5_000)
    _, sub = make_sub(master, rpm=10, quota_credits=2_000)
    limits.admit(sub, estimated_tokens=1).release()
    ledger.reserve(sub, "req_env", 500)
    h = limits.envelope_headers(sub)
    assert h["X-RateLimit-Limit"] == "10" and h["X-RateLimit-Remaining"] == "9"
    assert int(h["X-RateLimit-Reset"]) % 60 == 0
    assert h["X-Quota-Remaining-Credits"] == "1500"
    assert h["X-Org-Quota-Remaining-Credits"] == "4500"
    hm = limits.envelope_headers(master)
    assert "X-Quota-Remaining-Credits" not in hm
    assert hm["X-RateLimit-Limit"] == hm["X-RateLimit-Remaining"] == "4500"


# --- Redis, shared across processes -------------------------------------------------------


def _redis_worker(db_url: str, prefix: str, raw: str, n: int, hold_slots: bool, q) -> None:
    app = make_app(db_url, BYTESPIKE_REDIS_URL=REDIS_URL, BYTESPIKE_REDIS_PREFIX=prefix)
    with app.app_context():
        p = keys.authenticate(raw, "127.0.0.1")
        ok, held = 0, []
        for _ in range(n):
            try:
                held.append(limits.admit(p, estimated_tokens=1))
                ok += 1
            except RateLimited:
                pass
            if held and not hold_slots:
                held.pop().release()
        q.put(ok)
    app.extensions["bytespike_db"].dispose()


def _run_workers(db_url, prefix, raw, n, hold_slots):
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_redis_worker, args=(db_url, prefix, raw, n, hold_slots, q)) for _ in range(2)]
    for proc in procs:
        proc.start()
    results = [q.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return results


@pytest.fixture
def redis_app(tmp_path, redis_prefix):
    db_url = f"sqlite:///{tmp_path / 'bytespike.db'}"
    app = make_app(db_url, BYTESPIKE_REDIS_URL=REDIS_URL, BYTESPIKE_REDIS_PREFIX=redis_prefix)
    with app.app_context():
        yield app, db_url, redis_prefix
    app.extensions["bytespike_db"].dispose()


def test_limits_rpm_shared_through_redis(redis_app, make_account):
    from core import accounts

    _, db_url, prefix = redis_app
    _, _, master = make_account(0)
    raw = accounts.create_sub_key(master.key_id, "shared", rpm=7).raw
    assert isinstance(limits.counters(), limits.RedisCounters)
    core_db.get_db().engine.dispose()
    results = _run_workers(db_url, prefix, raw, 10, hold_slots=False)
    assert sum(results) == 7
    with pytest.raises(RateLimited):
        limits.admit(keys.authenticate(raw, "127.0.0.1"), estimated_tokens=1)


def test_limits_concurrency_shared_through_redis(redis_app, make_account):
    _, db_url, prefix = redis_app
    _, raw, p = make_account(0)  # free tier: 5 in flight across every worker
    core_db.get_db().engine.dispose()
    results = _run_workers(db_url, prefix, raw, 4, hold_slots=True)
    assert sum(results) == 5
    # the workers exited without releasing: their slots lapse only after the TTL, so this process is refused
    with pytest.raises(ConcurrencyLimited):
        limits.admit(p, estimated_tokens=1)


def test_limits_redis_slot_released_frees_capacity(redis_app, make_account):
    _, _, p = make_account(0)
    held = [limits.admit(p, estimated_tokens=1) for _ in range(5)]
    with pytest.raises(ConcurrencyLimited):
        limits.admit(p, estimated_tokens=1)
    held.pop().release()
    held.append(limits.admit(p, estimated_tokens=1))
    for a in held:
        a.release()
    c = limits.counters()
    assert c.r.zcard(f"{c.prefix}conc:{p.org_id}") == 0


def test_limits_redis_outage_falls_back_to_this_process(tmp_path, make_account):
    from core import accounts
    from tests.conftest import free_port

    app = make_app(f"sqlite:///{tmp_path / 'b.db'}", BYTESPIKE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with app.app_context():
        _, _, master = make_account(0)
        raw = accounts.create_sub_key(master.key_id, "r", rpm=2).raw
        p = keys.authenticate(raw, "127.0.0.1")
        limits.admit(p, estimated_tokens=1).release()
        limits.admit(p, estimated_tokens=1).release()
        with pytest.raises(RateLimited):
            limits.admit(p, estimated_tokens=1)
    app.extensions["bytespike_db"].dispose()
