"""Background jobs: one way to ask for work later, on RQ when Redis is configured, in-process otherwise.

A job is a function registered under a name (``@job("deliver_webhook", retry=...)``); callers
``enqueue(name, *args, delay_s=...)`` it and never ask which backend runs it:

- ``BYTESPIKE_REDIS_URL`` set: an RQ job on the ``<prefix>jobs`` queue, run by ``flask worker``
  (RQ's scheduler moves delayed jobs and retries with their backoff);
- unset: a timer in this process (a greenlet under gevent), retried with the same backoff, so
  the single-machine default keeps working without Redis.

Arguments are plain values (ids, numbers, strings): a job reads what it needs when it runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from flask import Flask, current_app

log = logging.getLogger("bytespike.jobs")
EXT = "bytespike_jobs"


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: Callable[..., Any]
    retries: int = 0  # attempts after the first, spaced by ``backoff_s * 3**i``
    timeout_s: int = 120


REGISTRY: dict[str, JobSpec] = {}


def job(name: str, *, retries: int = 0, timeout_s: int = 120) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` as the job ``name``; an exception raised by it means "retry later"."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        REGISTRY[name] = JobSpec(name, fn, retries, timeout_s)
        return fn
    return register


def backoff(base_s: float, retries: int) -> list[float]:
    """Exponential delays between attempts: base, 3x base, 9x base, ..."""
    return [base_s * 3 ** i for i in range(retries)]


class Backend(Protocol):
    def enqueue(self, name: str, args: tuple[Any, ...], delay_s: float) -> None: ...

    def depth(self) -> int: ...


def enqueue(name: str, *args: Any, delay_s: float = 0.0, app: Flask | None = None) -> None:
    """Run job ``name`` with ``args`` now (or after ``delay_s``), on whichever backend this app has."""
    if name not in REGISTRY:
        raise KeyError(f"no job named {name!r}")
    backend(app).enqueue(name, tuple(args), float(delay_s))


def try_enqueue(name: str, *args: Any, delay_s: float = 0.0) -> bool:
    """``enqueue``, for callers whose own work must not fail with the queue (Redis away): False and a warning.

    Each such job has a periodic sweep behind it (poll_tasks, retry_webhooks, low_balance_sweep).
    """
    try:
        enqueue(name, *args, delay_s=delay_s)
    except Exception:  # noqa: BLE001 - logged; the job's periodic sweep does the work later
        log.warning("could not queue job %s; its periodic sweep will catch up", name, exc_info=True)
        return False
    return True


def backend(app: Flask | None = None) -> Backend:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found: Backend | None = app.extensions.get(EXT)
    if found is None:
        found = app.extensions[EXT] = make_backend(app)
    return found


def make_backend(app: Flask) -> Backend:
    url = app.config.get("BYTESPIKE_REDIS_URL")
    base = float(app.config.get("BYTESPIKE_JOBS_BACKOFF_S") or 10)
    if url:
        return RQBackend(str(url), str(app.config.get("BYTESPIKE_REDIS_PREFIX") or "bs:"), base)
    return LocalBackend(app, base)


def execute(name: str, args: tuple[Any, ...]) -> Any:
    """Run one job body (inside an app context)."""
    return REGISTRY[name].fn(*args)


# --- RQ -----------------------------------------------------------------------------------------

_worker_app: list[Flask] = []


def bind_worker(app: Flask) -> None:
    """Make ``app`` the one RQ jobs run in (``flask worker`` calls this before it works)."""
    _worker_app[:] = [app]


def run(name: str, *args: Any) -> Any:
    """RQ's entry point for every job: the body runs in the worker's app."""
    if not _worker_app:
        raise RuntimeError("no app bound: start the worker with `flask --app app worker`")
    with _worker_app[0].app_context():
        return execute(name, args)


class RQBackend:
    def __init__(self, url: str, prefix: str, base_s: float) -> None:
        from redis import Redis
        from rq import Queue

        self.redis = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.queue = Queue(queue_name(prefix), connection=self.redis)
        self.base_s = base_s

    def enqueue(self, name: str, args: tuple[Any, ...], delay_s: float) -> None:
        from rq import Retry

        spec = REGISTRY[name]
        opts: dict[str, Any] = {"job_timeout": spec.timeout_s, "result_ttl": 600, "failure_ttl": 7 * 86400,
                                "description": name}
        if spec.retries:
            # RQ counts retry intervals in whole seconds
            opts["retry"] = Retry(max=spec.retries, interval=[max(1, math.ceil(d)) for d in backoff(self.base_s, spec.retries)])
        if delay_s > 0:
            self.queue.enqueue_in(dt.timedelta(seconds=delay_s), run, name, *args, **opts)
        else:
            self.queue.enqueue(run, name, *args, **opts)

    def depth(self) -> int:
        return int(self.queue.count)


def queue_name(prefix: str) -> str:
    return f"{prefix.rstrip(':')}-jobs"


# --- in-process ---------------------------------------------------------------------------------


_locals: weakref.WeakSet[LocalBackend] = weakref.WeakSet()


def drain_local(timeout_s: float = 60.0) -> bool:
    """Wait for the jobs pending in this process, whatever app queued them (tests, a CLI before it exits)."""
    return all(queue.drain(timeout_s) for queue in list(_locals))


def cancel_local() -> int:
    """Cancel the in-process jobs still waiting for their time, whatever app queued them (tests); how many."""
    return sum(queue.cancel() for queue in list(_locals))


class LocalBackend:
    """Timers in this process: the same jobs, the same backoff, no Redis."""

    def __init__(self, app: Flask, base_s: float) -> None:
        self.app, self.base_s = app, base_s
        self._lock = threading.Lock()
        self._pending: set[threading.Timer] = set()
        _locals.add(self)

    def enqueue(self, name: str, args: tuple[Any, ...], delay_s: float) -> None:
        self._later(name, args, delay_s, 0)

    def _later(self, name: str, args: tuple[Any, ...], delay_s: float, attempt: int) -> None:
        timer = threading.Timer(max(0.0, delay_s), self._run)
        timer.args = (name, args, attempt, timer)
        timer.daemon = True
        with self._lock:
            self._pending.add(timer)
        timer.start()

    def _run(self, name: str, args: tuple[Any, ...], attempt: int, timer: threading.Timer) -> None:
        with self._lock:
            if timer not in self._pending:  # cancelled as its time came
                return
        spec = REGISTRY[name]
        try:
            with self.app.app_context():
                execute(name, args)
        except Exception:  # noqa: BLE001 - a failed attempt is retried (or logged as given up), never lost silently
            if attempt < spec.retries:
                delay = backoff(self.base_s, spec.retries)[attempt]
                log.warning("job %s failed (attempt %d); retrying in %ss", name, attempt + 1, delay, exc_info=True)
                self._later(name, args, delay, attempt + 1)
            else:
                log.error("job %s failed after %d attempt(s); giving up", name, attempt + 1, exc_info=True)
        finally:
            with self._lock:
                self._pending.discard(timer)

    def depth(self) -> int:
        with self._lock:
            return len(self._pending)

    def cancel(self) -> int:
        """Cancel the timers not yet run (a job already running finishes); how many were waiting."""
        with self._lock:
            timers = list(self._pending)
            self._pending.clear()
        for timer in timers:
            timer.cancel()
        return len(timers)

    def drain(self, timeout_s: float = 60.0) -> bool:
        """Wait until no job is pending or running (tests, and a clean exit); False on timeout."""
        deadline = threading.Event()
        waited = 0.0
        while self.depth() and waited < timeout_s:
            deadline.wait(0.05)
            waited += 0.05
        return not self.depth()
