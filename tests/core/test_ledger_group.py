"""Group commit of settlements, on SQLite and PostgreSQL: in line, shared, at once when alone, failures raised."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from core import db as core_db
from core import ledger, ledger_group
from core.models.ledger import LedgerEntry
from core.models.usage import UsageLog

from .test_ledger import rec, rows


def group():
    return ledger_group.group_for(core_db.get_db().engine)


def settler(app):
    """``ledger.settle`` for a worker thread: inside the app's context."""
    def settle(hold, cost, record):
        with app.app_context():
            return ledger.settle(hold, cost, record)

    return settle


def test_a_settle_is_written_when_it_returns(dapp, make_account):
    org, _, p = make_account(10_000)
    hold = ledger.reserve(p, "rg_a", 4_000)
    assert ledger.settle(hold, 1_500, rec(p, "rg_a", input_tokens=7, output_tokens=3)) == 1_500
    # Read on another connection: nothing is left to write behind the call.
    assert ledger.balance(org) == (8_500, 0)
    (u,) = rows(UsageLog.__table__, UsageLog.__table__.c.id == "rg_a")
    assert u.billed and u.cost_credits == 1_500 and u.output_tokens == 3
    assert p.live.wallet == (8_500, 0)  # the envelope follows the committed row
    assert ledger.verify_ledger() == []


def test_a_lone_close_commits_at_once_in_its_own_caller(dapp, make_account, monkeypatch):
    _, _, p = make_account(10_000)
    hold = ledger.reserve(p, "rg_b", 1_000)
    seen = []
    real = ledger.close_many

    def spy(engine, closes):
        seen.append((threading.get_ident(), len(closes)))
        return real(engine, closes)

    monkeypatch.setattr(ledger, "close_many", spy)
    before = group().transactions
    ledger.settle(hold, 400, rec(p, "rg_b"))
    # The caller wrote it itself, alone, straight away: no writer to wake, no batching window.
    assert seen == [(threading.get_ident(), 1)]
    assert group().transactions == before + 1


def hold_the_first_group(monkeypatch, writer: str):
    """Make ``ledger.<writer>`` hold its first group until let go: (first_started, let_go, group sizes)."""
    real = getattr(ledger, writer)
    first_started, let_go = threading.Event(), threading.Event()
    sizes = []

    def slow_first(engine, items):
        sizes.append(len(items))
        if len(sizes) == 1:
            first_started.set()
            assert let_go.wait(60)
        return real(engine, items)

    monkeypatch.setattr(ledger, writer, slow_first)
    return first_started, let_go, sizes


def test_closes_that_arrive_during_a_commit_share_the_next_transaction(dapp, make_account, monkeypatch):
    org, _, p = make_account(1_000_000)
    holds = [ledger.reserve(p, f"rg_c{i}", 1_000) for i in range(21)]
    first_started, let_go, sizes = hold_the_first_group(monkeypatch, "close_many")
    before = group().transactions
    with ThreadPoolExecutor(max_workers=21) as pool:
        settle = settler(dapp)
        lead = pool.submit(settle, holds[0], 100, rec(p, "rg_c0"))
        assert first_started.wait(60)
        rest = [pool.submit(settle, h, 100, rec(p, h.request_id)) for h in holds[1:]]
        while len(group()._queue) < 20:  # all twenty queued behind the commit in progress
            threading.Event().wait(0.01)
        assert not any(f.done() for f in rest)  # each waits for its own commit
        let_go.set()
        assert lead.result() == 100 and [f.result() for f in rest] == [100] * 20
    assert sizes == [1, 20]
    assert group().transactions == before + 2
    assert ledger.balance(org) == (1_000_000 - 21 * 100, 0)
    assert len(rows(LedgerEntry.__table__, LedgerEntry.__table__.c.kind == "settle")) == 21
    assert ledger.verify_ledger() == []


def test_a_group_skips_a_closed_hold_and_a_second_settle_charges_nothing(dapp, make_account):
    org, _, p = make_account(100_000)
    holds = [ledger.reserve(p, f"rg_d{i}", 1_000) for i in range(20)]
    ledger.release(holds[3], rec(p, "rg_d3", status=502))  # closed before its settle
    done = ledger.close_many(core_db.get_db().engine, [(h, "settle", 100, rec(p, h.request_id)) for h in holds])
    assert done == [i != 3 for i in range(20)]
    assert ledger.settle(holds[5], 100, rec(p, "rg_d5")) == 0
    assert ledger.balance(org) == (100_000 - 19 * 100, 0)
    assert ledger.verify_ledger() == []


def test_many_concurrent_settles_are_all_written_once_in_fewer_transactions(dapp, make_account):
    orgs = [make_account(1_000_000) for _ in range(3)]
    holds = [(p, ledger.reserve(p, f"rg_e{i}", 500)) for i in range(150) for _o, _k, p in [orgs[i % 3]]]
    before = (group().transactions, group().written)
    settle = settler(dapp)
    with ThreadPoolExecutor(max_workers=24) as pool:
        charged = list(pool.map(lambda ph: settle(ph[1], 200 + 500, rec(ph[0], ph[1].request_id)), holds))
    assert charged == [700] * 150  # above the hold: charged in full
    assert group().written - before[1] == 150
    assert group().transactions - before[0] < 150  # closes that met shared a transaction
    for org, _k, _p in orgs:
        assert ledger.balance(org) == (1_000_000 - 50 * 700, 0)
    assert len(rows(UsageLog.__table__)) == 150
    assert ledger.verify_ledger() == []


def fail_every_group(monkeypatch, writer: str, reason: str) -> list[int]:
    """Make ``ledger.<writer>`` raise ``reason`` for any group of more than one item; the sizes it was given."""
    real = getattr(ledger, writer)
    calls: list[int] = []

    def flaky(engine, items):
        calls.append(len(items))
        if len(items) > 1:
            raise sa.exc.OperationalError("group", {}, Exception(reason))
        return real(engine, items)

    monkeypatch.setattr(ledger, writer, flaky)
    return calls


def test_a_failed_group_is_written_close_by_close(dapp, make_account, monkeypatch):
    org, _, p = make_account(10_000)
    holds = [ledger.reserve(p, f"rg_f{i}", 1_000) for i in range(3)]
    calls = fail_every_group(monkeypatch, "close_many", "database is locked")
    slots = [ledger_group._Slot((h, "settle", 400, rec(p, h.request_id))) for h in holds]
    group()._write(slots, ledger.close_many)
    assert calls == [3, 1, 1, 1]
    assert [s.outcome() for s in slots] == [True] * 3
    assert ledger.balance(org) == (10_000 - 3 * 400, 0)


def test_a_close_that_fails_twice_raises_to_its_caller_and_stays_free(dapp, make_account, monkeypatch):
    org, _, p = make_account(10_000)
    hold = ledger.reserve(p, "rg_g", 1_000)
    calls = []

    def broken(engine, closes):
        calls.append(len(closes))
        raise sa.exc.OperationalError("close", {}, Exception("disk I/O error"))

    monkeypatch.setattr(ledger, "close_many", broken)
    with pytest.raises(sa.exc.OperationalError):
        ledger.settle(hold, 400, rec(p, "rg_g"))
    assert calls == [1, 1]  # tried, then tried again alone
    assert not group()._busy and not group()._queue  # the next close leads at once
    monkeypatch.undo()
    assert ledger.balance(org) == (10_000, 1_000)  # nothing was charged
    ledger.release(hold, rec(p, "rg_g", status=500))  # what the gateway does next: the call is free
    assert ledger.balance(org) == (10_000, 0)
    assert ledger.verify_ledger() == []


# The start of a script run in a gevent-patched process (a gunicorn gevent worker's conditions), then
# ``run_in_gevent`` reads the JSON line it prints last.
GEVENT_HEAD = """
from gevent import monkey
monkey.patch_all()
import json, sys
import gevent
from tests.conftest import make_app
from core import accounts, keys, ledger, ledger_group
from core import db as core_db
app = make_app(sys.argv[1])
"""

GEVENT_SCRIPT = GEVENT_HEAD + """
with app.app_context():
    org, key = accounts.create_account("greenlets@example.com", 10_000_000)
    p = keys.authenticate(key.raw, "127.0.0.1")
    holds = [ledger.reserve(p, f"rg_gev{i}", 1_000) for i in range(64)]

def one(hold):
    with app.app_context():
        return ledger.settle(hold, 300, ledger.UsageRecord(hold.request_id, p.org_id, p.key_id, None, "m", "x",
                                                           "ch", "openai", False, 200))

jobs = [gevent.spawn(one, h) for h in holds]
gevent.joinall(jobs, raise_error=True)
with app.app_context():
    g = ledger_group.group_for(core_db.get_db().engine)
    print(json.dumps({"charged": sorted({j.value for j in jobs}), "transactions": g.transactions,
                      "closes": g.written, "balance": ledger.balance(org), "problems": ledger.verify_ledger()}))
"""


def run_in_gevent(script: str, db_url: str) -> dict:
    """Run ``script`` (``GEVENT_HEAD`` and more) on ``db_url`` in its own process; the JSON it printed last."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script, db_url], cwd=root, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_greenlets_of_a_gevent_worker_share_transactions(db_url):
    res = run_in_gevent(GEVENT_SCRIPT, db_url)
    assert res["charged"] == [300] and res["closes"] == 64
    assert res["transactions"] < 64  # greenlets that closed together shared a transaction
    assert res["balance"] == [10_000_000 - 64 * 300, 0] and res["problems"] == []


def test_a_group_writes_every_usage_field_exactly(dapp, make_account):
    org, _, p = make_account(100_000)
    holds = [ledger.reserve(p, f"rg_u{i}", 1_000) for i in range(3)]
    odd = '模型 "quoted" \\ back\\slash 😀 \u2028 end'
    closes = [(h, "settle", 100 + i, ledger.UsageRecord(
        h.request_id, p.org_id, p.key_id, p.member_id, odd, "anthropic", "ch", "anthropic", False, 200,
        input_tokens=2**31 - 1, output_tokens=i, error=odd if i else None, fallback_from="a\tb" if i == 2 else None))
        for i, h in enumerate(holds)]
    assert ledger.close_many(core_db.get_db().engine, closes) == [True] * 3
    got = {u.id: u for u in rows(UsageLog.__table__)}
    for i, h in enumerate(holds):
        u = got[h.request_id]
        assert (u.model, u.input_tokens, u.output_tokens, u.cost_credits) == (odd, 2**31 - 1, i, 100 + i)
        assert (u.error, u.fallback_from, u.billed, u.stream) == (odd if i else None, "a\tb" if i == 2 else None,
                                                                  True, False)
    assert ledger.balance(org) == (100_000 - 303, 0)
    assert ledger.verify_ledger() == []


def test_the_holds_hint_says_alone_only_with_no_other_hold_and_never_goes_below_zero():
    holds = ledger_group.Holds()
    assert holds.reserving() is True  # nothing else held: a lone call's reservation
    assert holds.closing() is True  # its own hold the only one
    assert holds.reserving() is False  # a second call while the first holds
    assert holds.closing() is False
    holds.dropped()
    holds.dropped()
    holds.dropped()  # a hold taken in another process, closed here
    assert holds.open == 0 and holds.reserving() is True
