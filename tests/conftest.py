"""Shared fixtures: an app per database backend, and a throwaway PostgreSQL database.

Room-specific fixtures live in ``tests/<room>/conftest.py``.
"""

from __future__ import annotations

import ast
import os
import socket
import threading
import uuid

import pytest
import sqlalchemy as sa

# CPython 3.11 counts ast.parse's recursion in one place per interpreter, so two threads parsing at
# once can fail with "SystemError: AST constructor recursion depth mismatch". Here that happens when
# a test's app compiles its routes (werkzeug parses them) while another test's background job thread
# formats a traceback (3.11's traceback module parses the failing line). A server's gevent worker
# runs its greenlets on one thread, so only this test process needs the parses taken one at a time.
_AST_LOCK = threading.RLock()
_ast_parse = ast.parse


def _one_parse_at_a_time(*args, **kwargs):  # type: ignore[no-untyped-def]
    with _AST_LOCK:
        return _ast_parse(*args, **kwargs)


ast.parse = _one_parse_at_a_time


@pytest.fixture(autouse=True)
def _background_jobs_end_with_their_test():
    """A test's in-process jobs and job ticker end with it: none runs later against what the test tore down.

    The next request an app serves starts its ticker again.
    """
    yield
    from core import jobs as core_jobs
    from jobs import schedule

    schedule.stop_tickers()
    core_jobs.cancel_local()


PG_ADMIN_URL = os.environ.get("BYTESPIKE_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BYTESPIKE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_pg_database() -> str:
    """Create an empty PostgreSQL database for this test run and return its URL."""
    name = f"bs_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_url():
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test that uses this runs once on SQLite and once on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bytespike.db'}"
    url = create_pg_database()
    request.addfinalizer(lambda: drop_pg_database(url))
    return url


def make_app(db_url: str, **extra):
    from app import create_app
    from core import db as core_db
    from core.models import Base

    # No periodic-job timer in test apps unless a test asks for one (tests/jobs does).
    app = create_app({"BYTESPIKE_DATABASE_URL": db_url, "BYTESPIKE_SECRET_KEY": "test-secret", "TESTING": True,
                      "BYTESPIKE_JOBS_IN_PROCESS": "0", **extra})
    with app.app_context():
        Base.metadata.create_all(core_db.get_db().engine)
    return app


@pytest.fixture
def app(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'bytespike.db'}")
    yield app
    app.extensions["bytespike_db"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis_prefix():
    """A Redis key prefix of this test's own, deleted afterwards."""
    import redis

    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    yield prefix
    r = redis.Redis.from_url(REDIS_URL)
    for key in r.scan_iter(prefix + "*"):
        r.delete(key)


# The longest-running files, started first so that a parallel run (`make test`) does not end waiting on
# one of them; the order of everything else is kept.
SLOW_FIRST = (
    "tests/website/test_browser_sweep.py", "tests/gateway/test_carry_matrix.py",
    "tests/gateway/routing/test_routing_e2e.py", "tests/website/payments/test_sandbox_webhooks.py",
    "tests/gateway/test_settlement.py", "tests/gateway/test_choices.py", "tests/gateway/test_graceful_drain.py",
    "tests/website/payments/test_orders.py", "tests/gateway/test_failure_policy.py",
    "tests/gateway/test_concurrency.py", "tests/gateway/test_upstream_errors.py",
    "tests/gateway/test_channels_served.py", "tests/gateway/media/test_tasks.py",
    "tests/website/console/test_browser_console.py", "tests/website/oauth/test_oauth_served.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
