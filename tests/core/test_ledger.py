"""The ledger on SQLite and PostgreSQL: reserve, settle, release, credits, quotas, audit, expiry."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from core import db as core_db
from core import ledger
from core.errors import AuthError, InsufficientBalance, QuotaExceeded
from core.models.accounts import Membership
from core.models.ledger import LedgerEntry, Reservation, Wallet
from core.models.usage import UsageLog


def rec(p, rid, **kw):
    return ledger.UsageRecord(rid, p.org_id, p.key_id, p.member_id, "claude-sonnet-4-6", "anthropic", "ch",
                              "anthropic", False, kw.pop("status", 200), **kw)


def rows(table, *where):
    with core_db.get_db().engine.connect() as conn:
        return conn.execute(sa.select(table).where(*where)).all()


def test_ledger_reserve_settle_charges_cost(dapp, make_account):
    org, _, p = make_account(10_000)
    hold = ledger.reserve(p, "req_a", 4_000)
    assert ledger.balance(org) == (10_000, 4_000)
    charged = ledger.settle(hold, 1_234, rec(p, "req_a", input_tokens=10, output_tokens=5))
    assert charged == 1_234
    assert ledger.balance(org) == (8_766, 0)
    (u,) = rows(UsageLog.__table__, UsageLog.__table__.c.id == "req_a")
    assert u.billed and u.cost_credits == 1_234 and u.input_tokens == 10 and u.status == 200
    kinds = [e.kind for e in rows(LedgerEntry.__table__, LedgerEntry.__table__.c.ref == "req_a")]
    assert sorted(kinds) == ["reserve", "settle"]
    assert ledger.verify_ledger() == []


def test_ledger_settle_charges_a_report_above_the_hold_in_full(dapp, make_account, make_sub, caplog):
    org, _, master = make_account(1_000)
    _, p = make_sub(master, quota_credits=2_000)
    hold = ledger.reserve(p, "req_b", 600)
    with caplog.at_level("WARNING", logger="bytespike.ledger"):
        assert ledger.settle(hold, 5_000, rec(p, "req_b")) == 5_000
    assert "req_b" in caplog.text and "exceeds its hold" in caplog.text
    assert ledger.balance(org) == (-4_000, 0)  # the hold is a guard, not a ceiling
    with core_db.get_db().engine.connect() as conn:
        spent = conn.execute(sa.text("SELECT spent_credits FROM api_keys WHERE id = :k"), {"k": p.key_id}).scalar()
    assert spent == 5_000  # past the key's quota by the excess
    with pytest.raises(QuotaExceeded):
        ledger.reserve(p, "req_b2", 0)
    with pytest.raises(InsufficientBalance):  # the wallet is below zero: even a free call waits for a top-up
        ledger.reserve(master, "req_b3", 0)
    assert ledger.credit(org, "topup", 4_001, "pay_b")
    ledger.reserve(master, "req_b4", 1)
    assert ledger.verify_ledger() == []


def test_ledger_settle_and_release_are_idempotent(dapp, make_account):
    org, _, p = make_account(1_000)
    hold = ledger.reserve(p, "req_c", 500)
    assert ledger.settle(hold, 300, rec(p, "req_c")) == 300
    assert ledger.settle(hold, 300, rec(p, "req_c")) == 0
    ledger.release(hold, rec(p, "req_c", status=502))
    assert ledger.balance(org) == (700, 0)
    assert len(rows(UsageLog.__table__, UsageLog.__table__.c.id == "req_c")) == 1
    assert ledger.verify_ledger() == []


def test_ledger_release_is_free(dapp, make_account):
    org, _, p = make_account(1_000)
    hold = ledger.reserve(p, "req_d", 900)
    ledger.release(hold, rec(p, "req_d", status=502, error="upstream 502"))
    ledger.release(hold, rec(p, "req_d", status=502))
    assert ledger.settle(hold, 900, rec(p, "req_d")) == 0
    assert ledger.balance(org) == (1_000, 0)
    (u,) = rows(UsageLog.__table__, UsageLog.__table__.c.id == "req_d")
    assert not u.billed and u.cost_credits == 0 and u.status == 502 and u.error == "upstream 502"
    (r,) = rows(Reservation.__table__)
    assert r.state == "released"
    assert ledger.verify_ledger() == []


def test_ledger_insufficient_balance_counts_open_reservations(dapp, make_account):
    org, _, p = make_account(1_000)
    ledger.reserve(p, "req_e1", 700)
    with pytest.raises(InsufficientBalance) as exc:
        ledger.reserve(p, "req_e2", 301)
    assert exc.value.status == 402 and exc.value.code == "insufficient_balance"
    ledger.reserve(p, "req_e3", 300)
    assert ledger.balance(org) == (1_000, 1_000)
    # the refused attempt left nothing behind
    assert not rows(Reservation.__table__, Reservation.__table__.c.request_id == "req_e2")
    assert ledger.verify_ledger() == []


def test_ledger_zero_balance_can_call_free_model(dapp, make_account):
    org, _, p = make_account(0)
    hold = ledger.reserve(p, "req_free", 0)
    assert ledger.settle(hold, 0, rec(p, "req_free")) == 0
    assert ledger.balance(org) == (0, 0)


def test_ledger_key_quota(dapp, make_account, make_sub):
    org, _, master = make_account(100_000)
    _, sub = make_sub(master, quota_credits=1_000)
    h = ledger.reserve(sub, "req_q1", 800)
    with pytest.raises(QuotaExceeded) as exc:
        ledger.reserve(sub, "req_q2", 300)
    assert exc.value.status == 402 and exc.value.code == "quota_exceeded"
    ledger.settle(h, 500, rec(sub, "req_q1"))
    ledger.reserve(sub, "req_q3", 500)  # 500 spent + 500 held = 1000: exactly the quota
    with pytest.raises(QuotaExceeded):
        ledger.reserve(sub, "req_q4", 1)
    ledger.reserve(master, "req_q5", 10_000)  # the master key has no quota
    assert ledger.verify_ledger() == []


def _set_member(member_id, **values):
    t = Membership.__table__
    with core_db.get_db().engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == member_id).values(**values))


def test_ledger_member_lifetime_quota(dapp, make_account):
    _, _, p = make_account(100_000)
    _set_member(p.member_id, quota_credits=1_000)
    h = ledger.reserve(p, "req_m1", 1_000)
    with pytest.raises(QuotaExceeded):
        ledger.reserve(p, "req_m2", 1)
    ledger.settle(h, 400, rec(p, "req_m1"))
    ledger.reserve(p, "req_m3", 600)
    with pytest.raises(QuotaExceeded):
        ledger.reserve(p, "req_m4", 1)
    (m,) = rows(Membership.__table__, Membership.__table__.c.id == p.member_id)
    assert (m.spent_credits, m.reserved_credits) == (400, 600)
    assert ledger.verify_ledger() == []
    _set_member(p.member_id, spent_credits=0)
    assert any(f"member {p.member_id}" in x for x in ledger.verify_ledger())


def test_ledger_member_monthly_quota_resets_with_the_month(dapp, make_account):
    _, _, p = make_account(100_000)
    _set_member(p.member_id, monthly_quota_credits=1_000)
    h = ledger.reserve(p, "req_mm1", 900)
    ledger.settle(h, 900, rec(p, "req_mm1"))
    with pytest.raises(QuotaExceeded):
        ledger.reserve(p, "req_mm2", 200)
    (m,) = rows(Membership.__table__, Membership.__table__.c.id == p.member_id)
    assert m.month_spent_credits == 900 and m.month == dt.datetime.now(dt.UTC).strftime("%Y-%m")
    _set_member(p.member_id, month="2000-01")  # last month's spend no longer counts
    h = ledger.reserve(p, "req_mm3", 1_000)
    ledger.settle(h, 100, rec(p, "req_mm3"))
    (m,) = rows(Membership.__table__, Membership.__table__.c.id == p.member_id)
    assert m.month_spent_credits == 100 and m.spent_credits == 1_000


def test_ledger_revoked_key_cannot_reserve(dapp, make_account, make_sub):
    from core import accounts

    org, _, master = make_account(10_000)
    _, sub = make_sub(master)
    accounts.revoke_key(org, sub.key_id)
    with pytest.raises(AuthError):
        ledger.reserve(sub, "req_r1", 10)


def test_ledger_credit_is_idempotent_per_ref(dapp, make_account):
    org, _, _ = make_account(0)
    assert ledger.credit(org, "topup", 5_000_000, "ord_1", "35.00 CNY")
    assert not ledger.credit(org, "topup", 5_000_000, "ord_1")
    assert ledger.credit(org, "bonus", 150_000, "ord_1")
    assert ledger.balance(org) == (5_150_000, 0)
    assert ledger.credit(org, "admin_debit", -150_000, "adj_1")
    with pytest.raises(InsufficientBalance):
        ledger.credit(org, "admin_debit", -10_000_000, "adj_2")
    assert ledger.balance(org) == (5_000_000, 0)
    with pytest.raises(ValueError):
        ledger.credit(org, "settle", 1, "x")
    assert ledger.verify_ledger() == []


def test_ledger_verify_detects_tampered_wallet(dapp, make_account):
    org, _, p = make_account(1_000)
    ledger.settle(ledger.reserve(p, "req_t", 100), 100, rec(p, "req_t"))
    assert ledger.verify_ledger() == []
    w = Wallet.__table__
    with core_db.get_db().engine.begin() as conn:
        conn.execute(w.update().where(w.c.org_id == org).values(balance_credits=w.c.balance_credits + 1))
    problems = ledger.verify_ledger()
    assert len(problems) == 1 and "stored balance 901" in problems[0] and "900" in problems[0]


def test_ledger_expire_releases_stale_reservations(dapp, make_account):
    org, _, p = make_account(1_000)
    ledger.reserve(p, "req_old", 600)
    fresh = ledger.reserve(p, "req_new", 300)
    r = Reservation.__table__
    with core_db.get_db().engine.begin() as conn:
        old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=2)
        conn.execute(r.update().where(r.c.request_id == "req_old").values(created_at=old))
    assert ledger.expire_reservations(3600) == 1
    assert ledger.expire_reservations(3600) == 0
    assert ledger.balance(org) == (1_000, 300)
    (u,) = rows(UsageLog.__table__, UsageLog.__table__.c.id == "req_old")
    assert not u.billed and "expired" in u.error
    assert ledger.settle(fresh, 300, rec(p, "req_new")) == 300
    assert ledger.verify_ledger() == []


def test_ledger_log_call_records_a_refusal(dapp, make_account):
    _, _, p = make_account(0)
    ledger.log_call(rec(p, "req_refused", status=402, error="insufficient_balance"))
    ledger.log_call(rec(p, "req_refused", status=402))
    (u,) = rows(UsageLog.__table__, UsageLog.__table__.c.id == "req_refused")
    assert u.status == 402 and not u.billed and u.cost_credits == 0


def test_ledger_reserve_sweeps_stale_reservations_once_a_minute(dapp, make_account):
    org, _, p = make_account(1_000)
    ledger.reserve(p, "req_crashed", 700)
    r = Reservation.__table__
    with core_db.get_db().engine.begin() as conn:
        old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)  # past deadline + a minute
        conn.execute(r.update().where(r.c.request_id == "req_crashed").values(created_at=old))
    ledger._last_expire[0] = 0.0  # as if the last sweep was long ago
    ledger.reserve(p, "req_next", 300)
    assert ledger.balance(org) == (1_000, 300)
    (row,) = rows(r, r.c.request_id == "req_crashed")
    assert row.state == "released"
    assert ledger.verify_ledger() == []


def test_ledger_reserve_refuses_a_principal_whose_key_changed(dapp, make_account):
    from core import keys
    from core.errors import StalePrincipal
    from core.models.accounts import ApiKey, Org

    org, raw, _ = make_account(10_000)
    cached = keys.authenticate_cached(raw, "127.0.0.1")
    assert cached.version == 0
    s = core_db.get_db().get_session()
    key = s.get(ApiKey, cached.key_id)
    key.rpm = 10  # any change to what the key may do moves its version
    s.commit()
    with pytest.raises(StalePrincipal):
        ledger.reserve(cached, "req_stale", 100)
    assert ledger.balance(org) == (10_000, 0)
    keys.forget(raw)
    fresh = keys.authenticate_cached(raw, "127.0.0.1")
    assert fresh.version == 1 and fresh.rpm == 10
    ledger.release(ledger.reserve(fresh, "req_fresh", 100), rec(fresh, "req_fresh"))
    s.get(Org, org).tier = "pro"  # so does a change to the key's org
    s.commit()
    with pytest.raises(StalePrincipal):
        ledger.reserve(fresh, "req_stale2", 100)
    assert keys.authenticate(raw, "127.0.0.1").version is None  # an uncached read is never stale
    ledger.release(ledger.reserve(keys.authenticate(raw, "127.0.0.1"), "req_plain", 100), rec(fresh, "req_plain"))
    assert ledger.verify_ledger() == []
    s.close()
