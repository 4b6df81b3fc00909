"""The periodic jobs and the lease that lets one process run each of them once per interval.

Every process that ticks (each gunicorn worker when Redis is not configured, else
``flask worker``) tries to take a job's lease when it is due: one conditional
UPDATE of its ``job_leases`` row (``run_after <= now`` moves one interval on), or
the INSERT of the row the first time. Whoever wins enqueues the job; the others
see the row moved and wait for the next interval. It holds across processes and
machines sharing the database, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.exc import IntegrityError

from core import db as core_db
from core import jobs as core_jobs
from core.models.base import utcnow
from core.models.jobs import JobLease

log = logging.getLogger("bytespike.jobs")
_t: Any = JobLease.__table__

# name -> seconds between runs. The rate card promises "refreshed nightly".
SCHEDULE: dict[str, int] = {
    "expire_reservations": 60,
    "poll_tasks": 300,
    "low_balance_sweep": 3600,
    "retry_webhooks": 900,
    "ratecard_refresh": 86400,
    "expire_responses": 3600,
}
TICK_S = 5.0


def holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def take(name: str, interval_s: int, now: dt.datetime | None = None) -> bool:
    """Take the lease of ``name`` if it is due; True for exactly one caller per interval.

    The due time last seen is kept per app, so a tick writes nothing before it (SQLite has one writer).
    """
    now = now or utcnow()
    due: dict[str, dt.datetime] = current_app.extensions.setdefault("bytespike_jobs_due", {})
    if name in due and now < due[name]:
        return False
    nxt = now + dt.timedelta(seconds=interval_s)
    engine = core_db.get_db().engine
    with engine.begin() as conn:
        hit = conn.execute(_t.update().where(_t.c.name == name, _t.c.run_after <= now)
                           .values(run_after=nxt, holder=holder()))
        if hit.rowcount == 1:
            due[name] = nxt
            return True
        seen = conn.execute(sa.select(_t.c.run_after).where(_t.c.name == name)).scalar()
        if seen is not None:
            due[name] = seen
            return False
    due[name] = nxt
    try:
        with engine.begin() as conn:
            conn.execute(_t.insert().values(name=name, run_after=nxt, holder=holder()))
    except IntegrityError:
        return False  # another process made the row first: it runs this interval
    return True


def mark_ok(name: str, when: dt.datetime | None = None) -> None:
    """Record that ``name`` last went through at ``when``."""
    with core_db.get_db().engine.begin() as conn:
        hit = conn.execute(_t.update().where(_t.c.name == name).values(last_ok_at=when or utcnow()))
        if hit.rowcount == 0:
            conn.execute(_t.insert().values(name=name, run_after=utcnow(), last_ok_at=when or utcnow()))


def last_ok(name: str) -> dt.datetime | None:
    with core_db.get_db().engine.connect() as conn:
        return conn.execute(sa.select(_t.c.last_ok_at).where(_t.c.name == name)).scalar()


def tick(app: Flask, now: dt.datetime | None = None) -> list[str]:
    """Enqueue every periodic job whose lease this process wins; return their names."""
    started = []
    with app.app_context():
        for name, interval in SCHEDULE.items():
            try:
                if take(name, interval, now):
                    core_jobs.enqueue(name, app=app)
                    started.append(name)
            except Exception:  # noqa: BLE001 - one job's trouble (database away) must not stop the others
                log.warning("could not schedule job %s", name, exc_info=True)
    return started


class Ticker:
    """A daemon timer (a greenlet under gevent) that ticks every ``TICK_S`` seconds."""

    def __init__(self, app: Flask, every_s: float = TICK_S) -> None:
        self.app, self.every_s = app, every_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="bytespike-jobs-ticker", daemon=True)

    def start(self) -> Ticker:
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stop.wait(self.every_s):
            tick(self.app)


_started: dict[int, Ticker] = {}
_lock = threading.Lock()


def ensure_ticker(app: Flask) -> None:
    """Start this process's ticker once (the in-process path: called on a served request)."""
    key = id(app)
    if key in _started:
        return
    with _lock:
        if key not in _started:
            _started[key] = Ticker(app).start()


def stop_tickers() -> None:
    """Stop every ticker this process started (tests, between one app's database and the next)."""
    with _lock:
        tickers = list(_started.values())
        _started.clear()
    for ticker in tickers:
        ticker.stop.set()
