"""Reservations through the group committer, on SQLite and PostgreSQL: each judged in turn as if alone,
the ones that meet written in one transaction, a refused one undone alone, a failed group written one by one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from core import accounts, ledger, ledger_group
from core import db as core_db
from core.errors import AuthError, InsufficientBalance, QuotaExceeded
from core.models.ledger import LedgerEntry, Reservation

from .test_ledger import rows
from .test_ledger_group import GEVENT_HEAD, fail_every_group, hold_the_first_group, run_in_gevent


def group():
    return ledger_group.group_for(core_db.get_db().engine, "reserve")


def reserver(app):
    """``ledger.reserve`` for a worker thread: its hold, or the error's class."""
    def reserve(p, rid, credits):
        with app.app_context():
            try:
                return ledger.reserve(p, rid, credits).amount
            except (InsufficientBalance, QuotaExceeded, AuthError) as err:
                return type(err).__name__

    return reserve


def test_reservations_that_meet_share_a_transaction_each_judged_in_turn(dapp, make_account, make_sub,
                                                                        monkeypatch):
    org, _, master = make_account(10_000)
    _, sub = make_sub(master, quota_credits=1_000)
    _, gone = make_sub(master, name="gone")
    accounts.revoke_key(org, gone.key_id)
    first_started, let_go, sizes = hold_the_first_group(monkeypatch, "reserve_many")
    # In queue order; the sub key's quota and the wallet run out part-way, smaller ones after still fit.
    plan = [(master, 100, 100), (sub, 600, 600), (sub, 600, "QuotaExceeded"), (gone, 10, "AuthError"),
            (sub, 400, 400), (master, 8_000, 8_000), (master, 1_000, "InsufficientBalance"), (master, 900, 900)]
    before = group().transactions
    reserve = reserver(dapp)
    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        futures = [pool.submit(reserve, plan[0][0], "rgr_0", plan[0][1])]
        assert first_started.wait(60)
        for i, (p, credits, _want) in enumerate(plan[1:], 1):
            futures.append(pool.submit(reserve, p, f"rgr_{i}", credits))
            while len(group()._queue) < i:  # queued in this order behind the commit in progress
                threading.Event().wait(0.005)
        let_go.set()
        assert [f.result() for f in futures] == [want for _p, _c, want in plan]
    assert sizes == [1, 7] and group().transactions == before + 2
    assert ledger.balance(org) == (10_000, 10_000)
    held = {r.request_id: r.amount_credits for r in rows(Reservation.__table__)}
    assert held == {"rgr_0": 100, "rgr_1": 600, "rgr_4": 400, "rgr_5": 8_000, "rgr_7": 900}
    assert len(rows(LedgerEntry.__table__, LedgerEntry.__table__.c.kind == "reserve")) == 5
    assert ledger.verify_ledger() == []


def test_a_failed_group_of_reservations_is_written_one_by_one(dapp, make_account, monkeypatch):
    org, _, p = make_account(2_500)
    calls = fail_every_group(monkeypatch, "reserve_many", "deadlock detected")
    slots = [ledger_group._Slot(ledger.reservation(p, f"rgf_{i}", 1_000)) for i in range(3)]
    group()._write(slots, ledger.reserve_many)
    assert calls == [3, 1, 1, 1]
    assert [s.outcome()[0] for s in slots] == ["ok", "ok", "balance"]
    assert ledger.balance(org) == (2_500, 2_000)
    assert ledger.verify_ledger() == []


GEVENT_SCRIPT = GEVENT_HEAD + """
from core.errors import InsufficientBalance
with app.app_context():
    org, key = accounts.create_account("greenlets@example.com", 10_000)
    p = keys.authenticate(key.raw, "127.0.0.1")

def one(i):
    with app.app_context():
        try:
            return ledger.reserve(p, f"rgr_gev{i}", 1_000).amount
        except InsufficientBalance:
            return 0

jobs = [gevent.spawn(one, i) for i in range(64)]
gevent.joinall(jobs, raise_error=True)
with app.app_context():
    g = ledger_group.group_for(core_db.get_db().engine, "reserve")
    print(json.dumps({"held": sorted(j.value for j in jobs), "transactions": g.transactions,
                      "written": g.written, "balance": ledger.balance(org), "problems": ledger.verify_ledger()}))
"""


def test_greenlets_of_a_gevent_worker_share_reservation_transactions(db_url):
    res = run_in_gevent(GEVENT_SCRIPT, db_url)
    assert res["held"] == [0] * 54 + [1_000] * 10  # exactly what the wallet covers, however grouped
    assert res["written"] == 64 and res["transactions"] < 64  # reservations that met shared a transaction
    assert res["balance"] == [10_000, 10_000] and res["problems"] == []
