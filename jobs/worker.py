"""The worker command and the in-process timer: what runs the background jobs (see ``jobs``)."""

from __future__ import annotations

import logging
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from core import jobs as core_jobs

from . import schedule, work  # work: importing it registers the job bodies

log = logging.getLogger("bytespike.jobs")
__all__ = ["init_app", "worker_command", "work", "schedule"]


def init_app(app: Flask) -> None:
    """Register the worker command; start the in-process timer on the first request when Redis is unset."""
    app.cli.add_command(worker_command)
    in_process = str(app.config.get("BYTESPIKE_JOBS_IN_PROCESS", "1")).lower() not in ("0", "false", "no", "off")
    if not app.config.get("BYTESPIKE_REDIS_URL") and in_process:
        @app.before_request
        def _start_jobs_timer() -> None:
            schedule.ensure_ticker(app)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Run what is due and queued, then exit (tests, cron).")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Run the background jobs: an RQ worker when BYTESPIKE_REDIS_URL is set, else a timer in this process."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    backend = core_jobs.backend(app)
    if isinstance(backend, core_jobs.RQBackend):
        _rq_worker(app, backend, burst)
        return
    click.echo("BYTESPIKE_REDIS_URL is not set: running the jobs in this process on a timer")
    schedule.tick(app)
    if burst:
        assert isinstance(backend, core_jobs.LocalBackend)
        backend.drain()
        return
    while True:  # the same ticker the server runs, in the foreground
        time.sleep(schedule.TICK_S)
        schedule.tick(app)


def _rq_worker(app: Flask, backend: core_jobs.RQBackend, burst: bool) -> None:
    from rq import SimpleWorker

    core_jobs.bind_worker(app)
    schedule.tick(app)
    if not burst:
        schedule.Ticker(app).start()
    click.echo(f"worker on queue {backend.queue.name} ({'burst' if burst else 'until stopped'})")
    # SimpleWorker runs each job in this process (no fork per job): the jobs are short I/O waits,
    # and the database pool and the catalog stay warm between them.
    SimpleWorker([backend.queue], connection=backend.redis).work(burst=burst, with_scheduler=True,
                                                                logging_level="WARNING")
