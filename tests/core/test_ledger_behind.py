"""Settlement behind the answer, on SQLite and PostgreSQL: batched, exactly once, nothing left at exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from core import db as core_db
from core import ledger, ledger_behind
from core.models.ledger import LedgerEntry
from core.models.usage import UsageLog

from .test_ledger import rec, rows

ROOT = Path(__file__).resolve().parents[2]


def wait_flushed(timeout: float = 5.0) -> None:
    deadline = time.time() + timeout
    while ledger_behind.pending() and time.time() < deadline:
        time.sleep(0.01)
    ledger_behind.flush()


def test_settle_behind_charges_once_and_moves_the_envelope_at_once(dapp, make_account):
    org, _, p = make_account(10_000)
    hold = ledger.reserve(p, "rb_a", 4_000)
    assert p.live["wallet"] == (10_000, 4_000)
    charged = ledger.settle_behind(hold, 1_500, rec(p, "rb_a", input_tokens=7, output_tokens=3), 0.005)
    assert charged == 1_500
    # The envelope already shows the call closed, before anything is written.
    assert p.live["wallet"] == (8_500, 0)
    wait_flushed()
    assert ledger.balance(org) == (8_500, 0)
    (u,) = rows(UsageLog.__table__, UsageLog.__table__.c.id == "rb_a")
    assert u.billed and u.cost_credits == 1_500 and u.output_tokens == 3
    assert ledger.verify_ledger() == []


def test_settle_behind_never_exceeds_the_hold_and_none_settles_in_line(dapp, make_account):
    org, _, p = make_account(1_000)
    hold = ledger.reserve(p, "rb_b", 600)
    assert ledger.settle_behind(hold, 5_000, rec(p, "rb_b"), None) == 600
    assert ledger.balance(org) == (400, 0)  # written before the call returned
    assert ledger_behind.pending() == 0


def test_a_batch_shares_one_transaction_and_a_closed_hold_is_skipped(dapp, make_account):
    org, _, p = make_account(100_000)
    holds = [ledger.reserve(p, f"rb_c{i}", 1_000) for i in range(20)]
    ledger.release(holds[3], rec(p, "rb_c3", status=502))  # closed before its settle is written
    engine = core_db.get_db().engine
    done = ledger.close_many(engine, [(h, "settle", 100, rec(p, h.request_id)) for h in holds])
    assert done == [i != 3 for i in range(20)]
    assert ledger.balance(org) == (100_000 - 19 * 100, 0)
    settles = rows(LedgerEntry.__table__, LedgerEntry.__table__.c.kind == "settle")
    assert len(settles) == 19
    assert ledger.verify_ledger() == []


def test_many_closes_queued_at_once_are_all_written_once(dapp, make_account):
    org, _, p = make_account(1_000_000)
    holds = [ledger.reserve(p, f"rb_d{i}", 500) for i in range(300)]  # more than one batch
    for h in holds:
        ledger.settle_behind(h, 200, rec(p, h.request_id), 0.001)
    # A second settle of the same calls (a retry, a bug) must not charge again.
    for h in holds[:50]:
        ledger.settle_behind(h, 200, rec(p, h.request_id), 0.001)
    wait_flushed()
    assert ledger.balance(org) == (1_000_000 - 300 * 200, 0)
    assert len(rows(UsageLog.__table__)) == 300
    assert ledger.verify_ledger() == []


def test_a_failing_batch_is_written_close_by_close(dapp, make_account, monkeypatch):
    org, _, p = make_account(10_000)
    holds = [ledger.reserve(p, f"rb_e{i}", 1_000) for i in range(3)]
    real = ledger.close_many
    calls = []

    def flaky(engine, closes):
        calls.append(len(closes))
        if len(closes) > 1:
            raise sa.exc.OperationalError("batch", {}, Exception("database is locked"))
        return real(engine, closes)

    monkeypatch.setattr(ledger, "close_many", flaky)
    engine = core_db.get_db().engine
    behind = ledger_behind.Behind()
    behind._pid = os.getpid()  # drive it by hand: no writer thread
    for h in holds:
        behind._queue.append((engine, (h, "settle", 400, rec(p, h.request_id)), 0))
    assert behind.flush() == 3
    assert calls == [3, 1, 1, 1]
    assert ledger.balance(org) == (10_000 - 3 * 400, 0)


def test_a_close_that_keeps_failing_is_left_for_the_sweep(dapp, make_account, monkeypatch, caplog):
    org, _, p = make_account(10_000)
    hold = ledger.reserve(p, "rb_f", 1_000)

    def broken(engine, closes):
        raise sa.exc.OperationalError("close", {}, Exception("disk I/O error"))

    monkeypatch.setattr(ledger, "close_many", broken)
    behind = ledger_behind.Behind()
    behind._pid = os.getpid()
    behind._queue.append((core_db.get_db().engine, (hold, "settle", 400, rec(p, "rb_f")), 0))
    assert behind.flush() == 0
    assert "rb_f" in caplog.text and behind.pending() == 0
    monkeypatch.undo()
    # The hold is still open: the sweep releases it and the call goes free, never billed twice.
    assert ledger.balance(org) == (10_000, 1_000)
    assert ledger.expire_reservations(older_than_s=0) == 1
    assert ledger.balance(org) == (10_000, 0)
    assert ledger.verify_ledger() == []


SCRIPT = """
import sys
from tests.conftest import make_app
from core import accounts, keys, ledger
app = make_app(sys.argv[1])
with app.app_context():
    org, key = accounts.create_account("exit@example.com", 10_000)
    p = keys.authenticate(key.raw, "127.0.0.1")
    for i in range(5):
        hold = ledger.reserve(p, f"rb_exit{i}", 1_000)
        ledger.settle_behind(hold, 300, ledger.UsageRecord(f"rb_exit{i}", p.org_id, p.key_id, None, "m", "x",
                             "ch", "openai", False, 200), 30.0)  # far longer than the process lives
    print(org)
"""


def test_a_process_that_exits_writes_what_it_holds(tmp_path):
    url = f"sqlite:///{tmp_path / 'exit.db'}"
    out = subprocess.run([sys.executable, "-c", SCRIPT, url], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        bal, res = conn.execute(sa.text("SELECT balance_credits, reserved_credits FROM wallets")).one()
        n = conn.execute(sa.text("SELECT count(*) FROM usage_log")).scalar()
    engine.dispose()
    assert (bal, res, n) == (10_000 - 5 * 300, 0, 5)
