"""Job fixtures: an app per database backend (in-process or on the real Redis), a webhook receiver, a worker."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, free_port, make_app
from tests.core.backends import BACKENDS, backend_url
from tests.core.conftest import make_account, make_sub  # noqa: F401 - the same account factories

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path, pg_url):
    return backend_url(request.param, tmp_path, pg_url)


RECEIVERS = "127.0.0.1/32"  # the tests' webhook and callback receivers, allowed by name


@pytest.fixture
def local_app(db_url, tmp_path):
    """An app without Redis: jobs run on timers in this process, retries 50 ms apart then 150 ms."""
    app = make_app(db_url, BYTESPIKE_JOBS_BACKOFF_S="0.05", BYTESPIKE_OUTBOUND_ALLOW=RECEIVERS,
                   BYTESPIKE_PRICE_REFRESH_FILE=str(tmp_path / "ratecard-refresh.json"))
    with app.app_context():
        yield app
    queue = app.extensions.get("bytespike_jobs")
    if queue is not None:
        queue.drain()
    app.extensions["bytespike_db"].dispose()


class Worker:
    """``flask --app app worker --burst`` as a separate process, on the test's database and Redis prefix."""

    def __init__(self, db_url: str, prefix: str, tmp: Path) -> None:
        self.prefix = prefix
        self.env = dict(os.environ, BYTESPIKE_DATABASE_URL=db_url, BYTESPIKE_REDIS_URL=REDIS_URL,
                        BYTESPIKE_REDIS_PREFIX=prefix, BYTESPIKE_SECRET_KEY="test-secret",
                        BYTESPIKE_JOBS_BACKOFF_S="1", BYTESPIKE_PRICE_REFRESH_FILE=str(tmp / "ratecard-refresh.json"),
                        BYTESPIKE_OUTBOUND_ALLOW=RECEIVERS)

    def burst(self) -> str:
        res = subprocess.run([str(BIN / "flask"), "--app", "app", "worker", "--burst"], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        return res.stdout + res.stderr


@pytest.fixture
def redis_app(db_url, tmp_path):
    """An app whose jobs go to the real Redis (a queue of this test's own), and a burst worker for it."""
    import redis
    from rq import Queue

    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    app = make_app(db_url, BYTESPIKE_REDIS_URL=REDIS_URL, BYTESPIKE_REDIS_PREFIX=prefix,
                   BYTESPIKE_JOBS_BACKOFF_S="1", BYTESPIKE_PRICE_REFRESH_FILE=str(tmp_path / "ratecard-refresh.json"),
                   BYTESPIKE_OUTBOUND_ALLOW=RECEIVERS)
    with app.app_context():
        yield app, Worker(db_url, prefix, tmp_path)
    conn = redis.Redis.from_url(REDIS_URL)
    queue = Queue(f"{prefix.rstrip(':')}-jobs", connection=conn)
    for registry in (queue.scheduled_job_registry, queue.failed_job_registry, queue.finished_job_registry):
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)
    queue.delete(delete_jobs=True)
    app.extensions["bytespike_db"].dispose()


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 500 to the first ``fail_first`` posts, then 204."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first, self.got = fail_first, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                outer.got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(500 if len(outer.got) <= outer.fail_first else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def hook_account(credits: int, url: str, **org_fields):
    """An account whose org posts its webhooks to ``url``; returns (org_id, principal)."""
    from core import accounts, keys
    from core import db as core_db
    from core.models import Org

    org_id, key = accounts.create_account(f"u{uuid.uuid4().hex[:8]}@example.com", credits)
    s = core_db.session()
    org = s.get(Org, org_id)
    org.webhook_url, org.webhook_secret = url, "whsec_jobs"
    for k, v in org_fields.items():
        setattr(org, k, v)
    s.commit()
    return org_id, keys.authenticate(key.raw, "127.0.0.1")
