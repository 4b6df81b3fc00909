"""Reservations are all-or-nothing, take one round trip on PostgreSQL, and feed the quota envelope."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from core import db as core_db
from core import keys, ledger, limits
from core.errors import InsufficientBalance, QuotaExceeded
from core.models.accounts import ApiKey, Membership
from core.models.ledger import LedgerEntry, Reservation
from tests.conftest import make_app

from .backends import backend_url

_k, _m = ApiKey.__table__, Membership.__table__


def rec(p, rid):
    return ledger.UsageRecord(rid, p.org_id, p.key_id, p.member_id, "m", "v", "c", "openai", False, 200)


def reserved(table, row_id) -> int:
    with core_db.get_db().engine.connect() as conn:
        return conn.execute(sa.select(table.c.reserved_credits).where(table.c.id == row_id)).scalar_one()


def count(table) -> int:
    with core_db.get_db().engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_ledger_refusal_writes_nothing(dapp, make_account, make_sub):
    org, _, master = make_account(1_000)
    _, sub = make_sub(master, quota_credits=5_000)
    entries = count(LedgerEntry.__table__)
    with pytest.raises(InsufficientBalance):  # key and member would allow it, the wallet does not
        ledger.reserve(sub, "req_big", 2_000)
    with core_db.get_db().engine.begin() as conn:
        conn.execute(_m.update().where(_m.c.id == sub.member_id).values(quota_credits=100))
    with pytest.raises(QuotaExceeded, match="Member"):  # the key would allow it, the member does not
        ledger.reserve(sub, "req_member", 500)
    assert reserved(_k, sub.key_id) == 0 and reserved(_m, sub.member_id) == 0
    assert ledger.balance(org) == (1_000, 0)
    assert count(LedgerEntry.__table__) == entries and count(Reservation.__table__) == 0
    assert ledger.verify_ledger() == []


def test_ledger_concurrent_quotas_and_wallet_stay_exact(dapp, make_account, make_sub):
    """Three sub-keys with quotas race for one wallet: no deadlock, no overdraft, every total reconciles."""
    hold, wallet_holds, key_holds = 100, 30, 15
    org, _, master = make_account(hold * wallet_holds)
    subs = [make_sub(master, f"s{i}", quota_credits=hold * key_holds)[1] for i in range(3)]

    def attempt(i: int) -> int:
        p = subs[i % 3]
        rid = "req_" + uuid.uuid4().hex[:16]
        with dapp.app_context():
            try:
                h = ledger.reserve(p, rid, hold)
            except (InsufficientBalance, QuotaExceeded):
                return 0
            if i % 7 == 0:  # some calls fail and are released; they cost nothing
                ledger.release(h, rec(p, rid))
                return 0
            assert ledger.settle(h, hold, rec(p, rid)) == hold
            return 1

    with ThreadPoolExecutor(max_workers=12) as pool:
        served = sum(pool.map(attempt, range(150)))
    # A hold released while the last attempts were refused leaves room that no attempt saw: use it up.
    while (more := sum(attempt(i) for i in (1, 2, 3))) > 0:
        served += more
    assert served == wallet_holds
    assert ledger.balance(org) == (0, 0)
    assert ledger.verify_ledger() == []


@pytest.fixture
def pg_app(tmp_path, pg_url):
    app = make_app(backend_url("postgresql", tmp_path, pg_url))
    with app.app_context():
        yield app
    app.extensions["bytespike_db"].dispose()


def test_ledger_postgresql_reserve_and_settle_are_one_statement(pg_app, make_account, make_sub, monkeypatch):
    """On PostgreSQL a hold is taken and closed in one round trip each: row locks last one statement.

    Counted at the driver, so statements sent through the engine and straight through
    psycopg (the ledger's hot statements) are both seen.
    """
    import psycopg

    _, _, master = make_account(10_000)
    _, sub = make_sub(master, quota_credits=5_000, rate_limit_5h=9_000)
    core_db.get_db().engine.dispose()  # a fresh pool would connect (and introspect) inside the count
    with core_db.get_db().engine.connect() as warm:
        warm.exec_driver_sql("SELECT 1")
    import time

    monkeypatch.setattr(ledger, "_last_expire", [time.monotonic()])  # the once-a-minute sweep is not the call's
    seen: list[str] = []
    for cls in (psycopg.Cursor,):  # Connection.execute runs a Cursor too
        real = cls.execute

        def counted(self, query, *a, _real=real, **kw):  # noqa: ANN001 - the driver's own signature
            seen.append(str(query))
            return _real(self, query, *a, **kw)

        monkeypatch.setattr(cls, "execute", counted)
    h = ledger.reserve(sub, "req_one", 1_000)
    assert len(seen) == 1, seen
    assert ledger.settle(h, 400, rec(sub, "req_one")) == 400
    assert len(seen) == 2, seen
    monkeypatch.undo()
    assert ledger.verify_ledger() == []


def test_limits_envelope_from_live_figures_matches_the_database(dapp, make_account, make_sub):
    _, _, master = make_account(50_000)
    raw, sub = make_sub(master, quota_credits=20_000, rate_limit_5h=30_000)
    ledger.settle(ledger.reserve(sub, "req_old", 2_000), 1_500, rec(sub, "req_old"))

    def fresh() -> dict[str, str]:
        return limits.envelope_headers(keys.authenticate(raw, "127.0.0.1"))  # nothing cached: read the database

    p = keys.authenticate(raw, "127.0.0.1")
    limits.admit(p, estimated_tokens=1).release()
    h = ledger.reserve(p, "req_live", 4_000)
    assert limits.envelope_headers(p) == fresh()
    assert limits.envelope_headers(p)["X-RateLimit-Remaining"] == str(30_000 - 1_500 - 4_000)
    ledger.settle(h, 1_000, rec(p, "req_live"))
    assert limits.envelope_headers(p) == fresh()
    assert limits.envelope_headers(p)["X-Quota-Remaining-Credits"] == str(20_000 - 2_500)
    with pytest.raises(InsufficientBalance):
        ledger.reserve(master, "req_too_big", 60_000)
    q = keys.authenticate(raw, "127.0.0.1")
    with pytest.raises(QuotaExceeded):
        ledger.reserve(q, "req_over_quota", 19_000)
    assert limits.envelope_headers(q) == fresh()  # a refusal leaves the figures it read


def test_ledger_postgresql_statement_aborted_by_a_deadlock_runs_again():
    import psycopg

    from core import ledger_sql

    class Flaky:  # a connection and its cursor at once
        calls = 0

        def cursor(self):  # type: ignore[no-untyped-def]
            return self

        def execute(self, statement, params):  # type: ignore[no-untyped-def]
            Flaky.calls += 1
            if Flaky.calls < 3:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            return "done"

    assert ledger_sql.PgAutocommit(Flaky()).exec_driver_sql("SELECT 1", {}) == "done"
    assert Flaky.calls == 3

    class Always:
        def cursor(self):  # type: ignore[no-untyped-def]
            return self

        def execute(self, statement, params):  # type: ignore[no-untyped-def]
            raise psycopg.errors.DeadlockDetected("deadlock detected")

    with pytest.raises(psycopg.errors.DeadlockDetected):
        ledger_sql.PgAutocommit(Always()).exec_driver_sql("SELECT 1", {})
