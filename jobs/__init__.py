"""Background jobs: the periodic ones, the worker command, and the in-process timer.

The queue itself is ``core.jobs`` (RQ on Redis, or timers in this process); the
bodies are in ``jobs.work``, the periodic table and its leases in
``jobs.schedule``, the command and the timer's start in ``jobs.worker``.
``flask --app app worker`` runs them: an RQ worker (with RQ's
scheduler, which moves delayed jobs and retries) plus the periodic ticker. With
no ``BYTESPIKE_REDIS_URL``, every gunicorn worker runs the ticker itself from its
first request, and the leases let one process run each periodic job per interval.
"""
