"""psycopg's statements under gevent wait on one io watcher each (``core.pgwait``): right answers, errors
and timeouts as psycopg's own wait gives them, and other greenlets run while a statement waits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
from gevent import monkey
monkey.patch_all()
import sys, gevent, gevent.event, psycopg
from psycopg import waiting
from core import pgwait

assert pgwait.install() and waiting.wait is pgwait.wait_gevent
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
order = []
held = gevent.event.Event()

def slow():
    held.wait()
    with psycopg.connect(url) as c:  # waits in the server until the quick greenlet lets go of the lock
        assert c.execute("SELECT pg_advisory_lock(4242), 7").fetchone()[1] == 7
    order.append("slow")

def quick():
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("SELECT pg_advisory_lock(4242)")
        held.set()
        for i in range(50):
            assert c.execute("SELECT %s::int + 1", (i,)).fetchone()[0] == i + 1
        c.execute("CREATE TEMP TABLE t (v text)")
        c.cursor().executemany("INSERT INTO t VALUES (%s)", [("x" * 20000,)] * 20)  # writes that fill the socket
        assert c.execute("SELECT sum(length(v)) FROM t").fetchone()[0] == 400000
        try:
            c.execute("SELECT 1/0")
        except psycopg.errors.DivisionByZero:
            order.append("error")
        c.execute("SET statement_timeout = 100")
        try:
            c.execute("SELECT pg_sleep(2)")
        except psycopg.errors.QueryCanceled:
            order.append("timeout")
        order.append("quick")
        c.execute("SELECT pg_advisory_unlock(4242)")

gevent.joinall([gevent.spawn(slow), gevent.spawn(quick)], raise_error=True)
print(",".join(order))
"""


def test_statements_under_gevent(pg_url: str) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, pg_url], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    # The quick greenlet's 50 statements, its error and its timeout all ran while the slow one waited in
    # the server for the lock the quick one held: a wait that blocked the worker would never end (timeout).
    assert out.stdout.strip() == "error,timeout,quick,slow"


def test_nothing_changes_without_gevent() -> None:
    from psycopg import waiting

    from core import pgwait

    before = waiting.wait
    assert pgwait.install() is False
    assert waiting.wait is before
