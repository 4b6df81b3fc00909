"""The queue without Redis (timers in this process) and the leases of the periodic jobs, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from core import db as core_db
from core import jobs as core_jobs
from core import ledger
from core.models import Reservation, WebhookDelivery, utcnow
from jobs import schedule
from tests.conftest import free_port
from website.payments import webhooks

from .conftest import Receiver, hook_account

_calls: list[int] = []


@core_jobs.job("test_flaky", retries=3)
def _flaky(fail_times: int) -> None:
    _calls.append(int(time.monotonic() * 1000))
    if len(_calls) <= fail_times:
        raise RuntimeError("not yet")


def test_backoff_grows_threefold():
    assert core_jobs.backoff(10, 4) == [10, 30, 90, 270]


def test_local_backend_retries_with_backoff(local_app):
    _calls.clear()
    core_jobs.enqueue("test_flaky", 2)
    assert core_jobs.backend().drain(60)
    assert len(_calls) == 3  # two failures, then through
    gaps = [b - a for a, b in zip(_calls, _calls[1:], strict=False)]
    assert gaps[0] >= 45 and gaps[1] >= 145  # 50 ms, then 150 ms


def test_local_backend_gives_up_after_its_retries(local_app, caplog):
    _calls.clear()
    core_jobs.enqueue("test_flaky", 99)
    assert core_jobs.backend().drain(60)
    assert len(_calls) == 4 and "giving up" in caplog.text


def test_lease_one_taker_per_interval(local_app):
    now = utcnow()
    assert schedule.take("expire_reservations", 60, now) is True
    assert schedule.take("expire_reservations", 60, now) is False
    assert schedule.take("expire_reservations", 60, now + dt.timedelta(seconds=59)) is False
    assert schedule.take("expire_reservations", 60, now + dt.timedelta(seconds=60)) is True
    local_app.extensions["bytespike_jobs_due"].clear()  # another process, same database: still not due
    assert schedule.take("expire_reservations", 60, now + dt.timedelta(seconds=61)) is False


def test_lease_concurrent_takers_one_wins(local_app):
    now = utcnow()

    def take(_: int) -> bool:
        with local_app.app_context():
            return schedule.take("poll_tasks", 300, now)

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(take, range(8)))
    assert won.count(True) == 1
    local_app.extensions["bytespike_jobs_due"].clear()  # as in other processes: ask the database
    with ThreadPoolExecutor(8) as pool:  # the row exists now: the conditional UPDATE decides
        won = list(pool.map(take, range(8)))
    assert won.count(True) == 0


def test_tick_in_process_sweeps_expired_reservations(local_app, make_account):
    _org, _raw, p = make_account(10_000)
    ledger.reserve(p, "req_stale", 4_000)
    with core_db.get_db().engine.begin() as conn:
        conn.execute(sa.update(Reservation).values(created_at=utcnow() - dt.timedelta(hours=1)))
    started = schedule.tick(local_app)
    assert "expire_reservations" in started and "ratecard_refresh" in started
    assert core_jobs.backend().drain(60)
    assert ledger.balance(p.org_id) == (10_000, 0)
    assert schedule.tick(local_app) == []  # nothing due again this interval, in any process


def test_ticker_starts_on_the_first_request_without_redis(db_url, tmp_path):
    from tests.conftest import make_app

    app = make_app(db_url, BYTESPIKE_JOBS_IN_PROCESS="1")
    try:
        app.test_client().get("/healthz")
        assert id(app) in schedule._started
        assert schedule._started[id(app)].thread.is_alive()
        first = schedule._started[id(app)]
        schedule.stop_tickers()
        first.thread.join(30)
        assert not first.thread.is_alive() and id(app) not in schedule._started
        app.test_client().get("/healthz")  # the next request starts it again
        assert schedule._started[id(app)] is not first and schedule._started[id(app)].thread.is_alive()
    finally:
        ticker = schedule._started.get(id(app))
        schedule.stop_tickers()
        if ticker is not None:
            ticker.thread.join(30)
        app.extensions["bytespike_db"].dispose()


def test_webhook_delivery_retried_in_process_with_backoff(local_app):
    hook = Receiver(fail_first=2)
    try:
        org_id, _p = hook_account(0, hook.url)
        delivery_id = webhooks.send(org_id, "webhook.test", {"n": 1})
        assert core_jobs.backend().drain(60)
        row = core_db.session().get(WebhookDelivery, delivery_id)
        core_db.session().refresh(row)
        assert row.delivered_at is not None and row.attempts == 3 and row.status_code == 204
        assert len(hook.got) == 3
        headers, body = hook.got[-1]
        assert webhooks.verify("whsec_jobs", body, headers["X-ByteSpike-Signature"], int(time.time()))
        assert json.loads(body)["type"] == "webhook.test"
    finally:
        hook.server.shutdown()


def test_try_enqueue_with_redis_away_warns_and_goes_on(db_url, caplog):
    from tests.conftest import make_app

    app = make_app(db_url, BYTESPIKE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        with app.app_context():
            assert core_jobs.try_enqueue("expire_reservations") is False
        assert "periodic sweep will catch up" in caplog.text
    finally:
        app.extensions["bytespike_db"].dispose()


def test_cancel_local_stops_waiting_jobs_and_leaves_nothing_pending(local_app):
    queue = core_jobs.backend()
    core_jobs.enqueue("expire_reservations", delay_s=120, app=local_app)
    assert queue.depth() == 1
    assert core_jobs.cancel_local() >= 1
    assert queue.depth() == 0 and queue.drain(1)
    core_jobs.enqueue("expire_reservations", app=local_app)  # the queue still takes and runs jobs
    assert queue.drain(60)
