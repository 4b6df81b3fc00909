"""Spend windows judged inside the reservation (open holds counted, atomically); tpm corrected by the report."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from core import db as core_db
from core import keys, ledger, limits
from core.errors import RateLimited
from tests.conftest import REDIS_URL, make_app


def record(p, rid: str, status: int = 200) -> ledger.UsageRecord:
    return ledger.UsageRecord(rid, p.org_id, p.key_id, p.member_id, "m", "v", "c", "openai", False, status)


def reserved_of(p) -> int:
    with core_db.get_db().engine.connect() as c:
        return int(c.execute(sa.text("SELECT reserved_credits FROM api_keys WHERE id = :k"), {"k": p.key_id}).scalar())


def test_reserve_counts_open_holds_against_the_spend_window(dapp, make_account, make_sub):
    _, _, master = make_account(10_000_000)
    _, sub = make_sub(master, rate_limit_5h=50_000)
    ledger.settle(ledger.reserve(sub, "req_a", 30_000), 30_000, record(sub, "req_a"))
    held = ledger.reserve(sub, "req_b", 15_000)
    with pytest.raises(RateLimited) as exc:
        ledger.reserve(sub, "req_c", 10_000)  # 30,000 spent + 15,000 held + 10,000 > 50,000
    err = exc.value
    assert err.status == 429 and err.code == "rate_limit_error" and err.retry_after > 3600 * 4
    assert "rate_limit_5h" in err.message and "0.01 USD" in err.message
    assert reserved_of(sub) == 15_000  # the refusal wrote nothing
    ledger.reserve(sub, "req_d", 5_000)  # exactly fills the window
    ledger.release(held, record(sub, "req_b", 500))
    ledger.reserve(sub, "req_e", 10_000)
    assert not ledger.verify_ledger()


def test_reserve_judges_every_configured_window(dapp, make_account, make_sub):
    _, _, master = make_account(10_000_000)
    _, sub = make_sub(master, rate_limit_5h=1_000_000, rate_limit_7d=20_000)
    ledger.reserve(sub, "req_a", 15_000)
    with pytest.raises(RateLimited, match="rate_limit_7d"):
        ledger.reserve(sub, "req_b", 6_000)


def test_parallel_reserve_and_settle_never_overshoot_the_window(dapp, make_account, make_sub):
    _, _, master = make_account(100_000_000)
    limit, each = 100_000, 7_000
    raw, sub = make_sub(master, rate_limit_1d=limit)
    barrier = threading.Barrier(24)

    def call(i: int) -> int:
        with dapp.app_context():
            p = keys.authenticate(raw, "127.0.0.1")
            barrier.wait(timeout=60)
            try:
                hold = ledger.reserve(p, f"req_{i}", each)
            except RateLimited:
                return 0
            return ledger.settle(hold, each, record(p, f"req_{i}"))

    with ThreadPoolExecutor(max_workers=24) as pool:
        charged = list(pool.map(call, range(48)))
    assert sum(charged) == limit // each * each  # every call that fits ran; none beyond
    assert reserved_of(sub) == 0 and not ledger.verify_ledger()


@pytest.fixture(params=["local", "redis"])
def counter_app(request, tmp_path, redis_prefix):
    extra = {"BYTESPIKE_REDIS_URL": REDIS_URL, "BYTESPIKE_REDIS_PREFIX": redis_prefix} if request.param == "redis" else {}
    app = make_app(f"sqlite:///{tmp_path / 'b.db'}", **extra)
    with app.app_context():
        assert isinstance(limits.counters(), limits.RedisCounters if extra else limits.LocalCounters)
        yield app
    app.extensions["bytespike_db"].dispose()


def test_tpm_is_corrected_by_the_reported_tokens(counter_app, make_account, make_sub):
    _, _, master = make_account(0)
    _, sub = make_sub(master, tpm=10_000)
    first = limits.admit(sub, estimated_tokens=9_000)  # the estimate admits the call
    first.release()
    with pytest.raises(RateLimited, match="tpm"):
        limits.admit(sub, estimated_tokens=2_000)
    limits.correct_tokens(first, 1_500)  # the report: 1,500 tokens used, not 9,000
    limits.correct_tokens(first, 1_500)  # once only
    second = limits.admit(sub, estimated_tokens=8_000)  # 1,500 + 8,000 fit
    second.release()
    limits.correct_tokens(second, 8_400)  # a report above the estimate counts in full
    with pytest.raises(RateLimited, match="tpm"):
        limits.admit(sub, estimated_tokens=200)  # 1,500 + 8,400 + 200 > 10,000
    limits.correct_tokens(None, 5)  # a call admitted without a key's tpm is a no-op
