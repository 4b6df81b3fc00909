"""gunicorn settings for ByteSpike: gevent workers that hold thousands of open streams each.

Picked up by default from the working directory; every value can be
overridden on the command line or with GUNICORN_CMD_ARGS.
"""

import multiprocessing
import os

bind = os.environ.get("BYTESPIKE_BIND", "127.0.0.1:8000")
worker_class = "gevent"
# SQLite serialises writers and its lock wait blocks a whole gevent worker, so one process
# serves it (OPERATIONS.md: "One process: SQLite"); PostgreSQL gets a worker per core, up to 4.
_sqlite = os.environ.get("BYTESPIKE_DATABASE_URL", "sqlite").startswith("sqlite")
workers = int(os.environ.get("BYTESPIKE_WORKERS", 1 if _sqlite else min(4, multiprocessing.cpu_count())))
# One gevent worker multiplexes its connections; a long stream is one idle greenlet.
worker_connections = int(os.environ.get("BYTESPIKE_WORKER_CONNECTIONS", "10000"))
# gevent workers heartbeat from their own loop, so this bounds a stuck loop, not a long stream.
timeout = 60
graceful_timeout = 30
# Clients (and load balancers) reuse connections between calls.
keepalive = 75
backlog = 4096
# A 32 MB body may arrive slowly; limits on the request line and headers stay the defaults.
limit_request_field_size = 16384
accesslog = None
errorlog = "-"
loglevel = os.environ.get("BYTESPIKE_LOG_LEVEL", "info")


def on_starting(server):
    """Check the channels file before any worker starts (a malformed one stops start-up); keep its text.

    Also give the workers one metrics directory (prometheus_client's multiprocess mode), emptied:
    samples of a previous run would otherwise be summed into this one's.
    """
    from core import catalog, config

    catalog.remember(config.load()["BYTESPIKE_CHANNELS_FILE"])
    _metrics_dir(server)


def _metrics_dir(server):
    import glob
    import tempfile

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="bytespike-metrics-")
    os.makedirs(path, exist_ok=True)
    for name in glob.glob(os.path.join(path, "*.db")):
        os.remove(name)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # inherited by every worker forked from here
    server.log.info("metrics directory: %s", path)


def child_exit(server, worker):
    """A worker is gone: drop its live gauges (open streams) from the merged metrics; counters stay."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_reload(server):
    """SIGHUP: check the channels file again; if it is malformed, the new workers run on the last good one."""
    from core import catalog, config

    try:
        catalog.remember(config.load()["BYTESPIKE_CHANNELS_FILE"])
    except ValueError as err:  # ChannelFileError included: it names the file, line and field
        server.log.error("channels file not reloaded, keeping the running configuration: %s", err)


def post_worker_init(worker):
    """Say when a worker has loaded the app and is about to serve (a deploy, or a test, can wait on it)."""
    worker.log.info("worker %s serving", worker.pid)


def post_fork(server, worker):
    """Size this worker's database pool, and drop any pool inherited from the master (preload_app)."""
    # PostgreSQL allows about 100 connections: the workers share a budget of 60 (the rest
    # for the CLI, migrations, a second node). A burst then waits for a pooled connection,
    # each held for one short transaction, instead of failing with "too many clients".
    budget = int(os.environ.get("BYTESPIKE_DB_CONNECTIONS", "60"))
    share = max(2, budget // max(1, server.cfg.workers))
    os.environ.setdefault("BYTESPIKE_DB_POOL_SIZE", str(share // 2))
    os.environ.setdefault("BYTESPIKE_DB_MAX_OVERFLOW", str(share - share // 2))
    app = getattr(worker, "wsgi", None)
    extensions = getattr(app, "extensions", None) or {}
    db = extensions.get("bytespike_db")
    if db is not None:
        db.dispose()

