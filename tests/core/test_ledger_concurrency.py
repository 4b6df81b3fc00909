"""200 parallel reserve+settle attempts on a wallet that affords 50: exactly 50 succeed, on both databases.

Threads share one process's connection pool; the process variant runs four
worker processes (as gunicorn forks them) against the same database.
"""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from core import db as core_db
from core import keys, ledger
from core.errors import InsufficientBalance
from core.models.ledger import LedgerEntry, Wallet

HOLD = 100
AFFORDABLE = 50
ATTEMPTS = 200


def attempt(p) -> int:
    """One call: reserve, then settle the full hold; 1 when it was served, 0 when refused with 402."""
    rid = "req_" + uuid.uuid4().hex[:16]
    try:
        hold = ledger.reserve(p, rid, HOLD)
    except InsufficientBalance:
        return 0
    rec = ledger.UsageRecord(rid, p.org_id, p.key_id, p.member_id, "m", "v", "c", "openai", False, 200)
    assert ledger.settle(hold, HOLD, rec) == HOLD
    return 1


def worker(db_url: str, raw_key: str, n: int) -> int:
    """Run ``n`` attempts in a forked process with an app and engine of its own, like one server worker."""
    from tests.conftest import make_app

    app = make_app(db_url)
    with app.app_context():
        p = keys.authenticate(raw_key, "127.0.0.1")
        ok = sum(attempt(p) for _ in range(n))
    app.extensions["bytespike_db"].dispose()
    return ok


def check_books(org_id: int, served: int) -> None:
    w, e = Wallet.__table__, LedgerEntry.__table__
    assert served == AFFORDABLE
    bal, reserved = ledger.balance(org_id)
    assert (bal, reserved) == (0, 0)
    with core_db.get_db().engine.connect() as conn:
        settled = -conn.execute(sa.select(sa.func.sum(e.c.amount_credits)).where(e.c.kind == "settle")).scalar()
        n_settle = conn.execute(sa.select(sa.func.count()).where(e.c.kind == "settle")).scalar()
        lowest = conn.execute(sa.select(sa.func.min(w.c.balance_credits))).scalar()
    assert settled == HOLD * AFFORDABLE == HOLD * AFFORDABLE - bal
    assert n_settle == AFFORDABLE and lowest >= 0
    assert ledger.verify_ledger() == []


def test_ledger_concurrent_threads_bill_exactly_the_affordable(dapp, make_account):
    org, _, p = make_account(HOLD * AFFORDABLE)

    def run(_):
        with dapp.app_context():
            return attempt(p)

    with ThreadPoolExecutor(max_workers=16) as pool:
        served = sum(pool.map(run, range(ATTEMPTS)))
    check_books(org, served)


def test_ledger_concurrent_processes_bill_exactly_the_affordable(dapp, make_account, db_url):
    org, raw, _ = make_account(HOLD * AFFORDABLE)
    core_db.get_db().engine.dispose()  # no pooled connection may be inherited by the forked workers
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        served = sum(pool.starmap(worker, [(db_url, raw, ATTEMPTS // 4)] * 4))
    check_books(org, served)
