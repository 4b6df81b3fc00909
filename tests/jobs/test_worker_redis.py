"""The jobs on the real Redis, worked by a real ``flask --app app worker --burst`` process."""

from __future__ import annotations

import datetime as dt
import json
import time

import sqlalchemy as sa

from core import db as core_db
from core import jobs as core_jobs
from core import ledger
from core.models import JobLease, Reservation, WebhookDelivery, utcnow
from jobs import schedule
from website.payments import webhooks

from .conftest import Receiver, hook_account

DEADLINE_S = 240  # a busy machine starts a worker process in seconds, not milliseconds


def _hold_periodic_jobs() -> None:
    """Take every periodic lease now, so a burst works only what the test queued."""
    for name, interval in schedule.SCHEDULE.items():
        schedule.take(name, interval)


def test_worker_delivers_webhook_retrying_with_backoff(redis_app):
    app, worker = redis_app
    _hold_periodic_jobs()
    hook = Receiver(fail_first=1)
    try:
        org_id, _p = hook_account(0, hook.url)
        delivery_id = webhooks.send(org_id, "webhook.test", {"n": 1})
        backend = core_jobs.backend()
        assert isinstance(backend, core_jobs.RQBackend) and backend.depth() == 1
        worker.burst()  # first attempt: 500, retried by RQ's scheduler after the backoff (1 s here)
        assert len(hook.got) == 1 and len(backend.queue.scheduled_job_registry) == 1
        deadline = time.time() + DEADLINE_S
        while len(hook.got) < 2 and time.time() < deadline:
            time.sleep(1.0)
            worker.burst()
        s = core_db.session()
        row = s.get(WebhookDelivery, delivery_id)
        s.refresh(row)
        assert row.delivered_at is not None and row.attempts == 2 and row.status_code == 204
        headers, body = hook.got[-1]
        assert webhooks.verify("whsec_jobs", body, headers["X-ByteSpike-Signature"], int(time.time()))
        assert json.loads(body)["data"] == {"n": 1}
    finally:
        hook.server.shutdown()


def test_worker_sweeps_expired_reservations_once_per_interval(redis_app, make_account):
    app, worker = redis_app
    _org, _raw, p = make_account(10_000)
    ledger.reserve(p, "req_stale_rq", 4_000)
    with core_db.get_db().engine.begin() as conn:
        conn.execute(sa.update(Reservation).values(created_at=utcnow() - dt.timedelta(hours=1)))
    worker.burst()  # ticks: takes the leases, queues the periodic jobs, works them
    assert ledger.balance(p.org_id) == (10_000, 0)
    with core_db.get_db().engine.connect() as conn:
        leases = dict(conn.execute(sa.select(JobLease.name, JobLease.run_after)).all())
    assert set(leases) == set(schedule.SCHEDULE)
    assert leases["expire_reservations"] > utcnow() + dt.timedelta(seconds=30)
    assert core_jobs.backend().depth() == 0
