"""Without Redis, the served app runs the periodic jobs itself: a gevent timer in the gunicorn worker."""

from __future__ import annotations

import datetime as dt
import os
import time

import requests
import sqlalchemy as sa

from core import db as core_db
from core import ledger
from core.models import Reservation, utcnow
from tests.conftest import free_port, make_app
from tests.gateway.conftest import start_gunicorn, stop_gunicorn

DEADLINE_S = 120


def test_gunicorn_without_redis_sweeps_expired_holds_on_its_timer(tmp_path, make_account):
    db_url = f"sqlite:///{tmp_path / 'bytespike.db'}"
    app = make_app(db_url)
    with app.app_context():
        _org, _raw, p = make_account(10_000)
        ledger.reserve(p, "req_left_open", 4_000)
        with core_db.get_db().engine.begin() as conn:
            conn.execute(sa.update(Reservation).values(created_at=utcnow() - dt.timedelta(hours=1)))
    env = {k: v for k, v in os.environ.items() if k != "BYTESPIKE_REDIS_URL"}
    env.update(BYTESPIKE_DATABASE_URL=db_url, BYTESPIKE_SECRET_KEY="test-secret",
               BYTESPIKE_PRICE_REFRESH_FILE=str(tmp_path / "ratecard-refresh.json"))
    port = free_port()
    proc = start_gunicorn(env, port, tmp_path / "gunicorn.log", workers=1)
    try:
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30)  # the first request starts the timer
        deadline = time.time() + DEADLINE_S
        with app.app_context():
            while ledger.balance(p.org_id) != (10_000, 0) and time.time() < deadline:
                time.sleep(0.5)
            assert ledger.balance(p.org_id) == (10_000, 0), (tmp_path / "gunicorn.log").read_text()[-3000:]
            with core_db.get_db().engine.connect() as conn:
                names = set(conn.execute(sa.text("SELECT name FROM job_leases")).scalars())
        assert {"expire_reservations", "poll_tasks", "ratecard_refresh"} <= names
    finally:
        stop_gunicorn(proc)
        app.extensions["bytespike_db"].dispose()
