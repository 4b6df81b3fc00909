"""Gateway fixtures: fake vendors in threads, and the real app under gunicorn (gevent) in a subprocess.

``gateway`` is one server per database backend for the whole session
(SQLite and PostgreSQL), two gevent workers, Redis shared state, a channels
file pointing at the fakes. Accounts come from the real CLI.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import REDIS_URL, create_pg_database, drop_pg_database, free_port
from tests.gateway.fakes import FakeVendor

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

UPSTREAM_KEYS = {
    "anthropic": ("sk-up-ant-AAAA1111", "sk-up-ant-BBBB2222"),
    "openai": ("sk-up-oai-AAAA1111", "sk-up-oai-BBBB2222"),
    "gemini": ("sk-up-gem-AAAA1111",),
}
# Operator prices (USD per 1M tokens) that make these rows live; the tests recompute costs from them.
PRICES = {
    "claude-sonnet-4-6": {"input": "3.00", "cache_write": "3.75", "cache_read": "0.30", "output": "15.00"},
    "gpt-5-4": {"input": "1.25", "cache_write": "1.25", "cache_read": "0.125", "output": "10.00"},
    "gemini-3-1-pro": {"input": "2.00", "cache_write": "2.00", "cache_read": "0.20", "output": "12.00"},
}
MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-5-4", "gemini": "gemini-3-1-pro"}


def channels_toml(fakes: dict[str, FakeVendor], timeout_s: float = 3.0) -> str:
    out = []
    for vendor, fake in fakes.items():
        model = MODELS[vendor]
        keys = ", ".join(f'"{k}"' for k in UPSTREAM_KEYS[vendor])
        out.append(
            f'[[channels]]\nname = "{vendor}-main"\nprotocol = "{vendor}"\nbase_url = "{fake.base_url}"\n'
            f'api_keys = [{keys}]\nmodels = ["{model}"]\ntimeout_s = {timeout_s}\nconnect_timeout_s = 2\n'
            f'[channels.model_map]\n"{model}" = "{model}-upstream"\n'
            f'[channels.prices."{model}"]\n' + "".join(f'{k} = "{v}"\n' for k, v in PRICES[model].items())
        )
    return "\n".join(out)


@dataclass
class Gateway:
    """A running gunicorn serving the app, plus helpers to read what it did."""

    base_url: str
    db_url: str
    env: dict[str, str]
    log_path: Path
    fakes: dict[str, FakeVendor]
    proc: subprocess.Popen | None = None
    _engine: Any = field(default=None, repr=False)
    _app: Any = field(default=None, repr=False)
    _kept: dict[str, Any] = field(default_factory=dict, repr=False)

    def remembered(self, name: str, make: Any) -> Any:
        """``make()`` once per server: what a session of tests shares on it (a funded account, say)."""
        if name not in self._kept:
            self._kept[name] = make()
        return self._kept[name]

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.db_url)
        return self._engine

    def cli(self, *args: str) -> str:
        """Run a ``flask`` command of the app as the server is configured; its output.

        In this process, through Flask's CLI runner (the same click commands the ``flask`` script runs),
        except ``worker``, which runs in its own process as it does in production.
        """
        if args[0] == "worker":
            res = subprocess.run([str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=self.env,
                                 capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stderr[-2000:]
            return res.stdout
        if self._app is None:
            from app import create_app

            self._app = create_app({k: v for k, v in self.env.items() if k.startswith("BYTESPIKE_")})
        result = self._app.test_cli_runner().invoke(args=list(args))
        assert result.exit_code == 0, (result.output[-2000:], result.exception)
        return result.output

    def close(self) -> None:
        """Let go of this helper's database connections (the server's own are its business)."""
        if self._engine is not None:
            self._engine.dispose()
        if self._app is not None:
            self._app.extensions["bytespike_db"].dispose()

    def account(self, credits: int = 50_000_000, **opts: str) -> str:
        """Create an account with ``credits`` and return its master key (the CLI's last line)."""
        email = f"u{uuid.uuid4().hex[:10]}@example.com"
        extra = [a for k, v in opts.items() for a in (f"--{k.replace('_', '-')}", str(v))]
        out = self.cli("create-account", "--email", email, "--credits", str(credits), *extra)
        return out.strip().splitlines()[-1].strip()

    def wallet(self, key: str) -> tuple[int, int]:
        """(balance, reserved) of the wallet behind ``key``, read from the database as it is now.

        A served call's settlement commits before its answer is complete, so no wait is needed.
        """
        digest = hashlib.sha256(key.encode()).hexdigest()
        with self.engine.connect() as c:
            row = c.execute(sa.text(
                "SELECT w.balance_credits, w.reserved_credits FROM wallets w "
                "JOIN api_keys k ON k.org_id = w.org_id WHERE k.key_hash = :h"), {"h": digest}).one()
        return int(row[0]), int(row[1])

    def usage(self, request_id: str) -> dict[str, Any] | None:
        """The call's usage row (written before its answer was complete)."""
        with self.engine.connect() as c:
            row = c.execute(sa.text("SELECT * FROM usage_log WHERE id = :i"), {"i": request_id}).mappings().first()
        return dict(row) if row else None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


READY_DEADLINE_S = float(os.environ.get("BYTESPIKE_TEST_READY_S", "150"))


def start_gunicorn(env: dict[str, str], port: int, log_path: Path, workers: int = 2) -> subprocess.Popen:
    cmd = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-w", str(workers),
           "-b", f"127.0.0.1:{port}", "app:create_app()"]
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    start = log.tell()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # Wait on readiness, not on a short clock: a busy 2-core machine can take a while to fork workers
    # (kept under pytest-timeout, which counts fixture set-up). Every worker has loaded the app (its
    # "serving" line, gunicorn.conf.py), so none reads the configuration later than the test expects.
    deadline = time.time() + READY_DEADLINE_S
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited:\n" + log_path.read_text()[-3000:])
        try:
            serving = log_path.read_bytes()[start:].count(b"] [INFO] worker ")
            if serving >= workers and requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gunicorn did not answer /healthz within {READY_DEADLINE_S:.0f} s "
                       f"(BYTESPIKE_TEST_READY_S raises it):\n" + log_path.read_text()[-3000:])


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGQUIT)  # quick shutdown: tests leave keep-alive sockets open
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def fake_vendors():
    fakes = {v: FakeVendor(v) for v in ("anthropic", "openai", "gemini")}
    for f in fakes.values():
        f.start()
    yield fakes
    for f in fakes.values():
        f.stop()


def server_env(db_url: str, channels: Path, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(BYTESPIKE_DATABASE_URL=db_url, BYTESPIKE_CHANNELS_FILE=str(channels),
               BYTESPIKE_REDIS_URL=REDIS_URL, BYTESPIKE_REDIS_PREFIX=prefix,
               BYTESPIKE_SECRET_KEY="test-secret", BYTESPIKE_REQUEST_DEADLINE_S="20",
               BYTESPIKE_OUTBOUND_ALLOW="127.0.0.1/32")  # the tests' webhook and callback receivers
    # Several test servers share one PostgreSQL (100 connections): each takes a small budget, so a
    # burst in one waits for a pooled connection instead of starving the others ("too many clients").
    env.setdefault("BYTESPIKE_DB_CONNECTIONS", "16")
    env.pop("GUNICORN_CMD_ARGS", None)
    return env


class Servers:
    """The servers one test process has started, one per backend, each kept until the session ends.

    A parametrized session fixture holds one instance at a time: pytest would stop the SQLite
    server and start it again whenever the next test file asks for the other backend (in a
    parallel run, about 18 starts per backend instead of one per process). The parametrized
    fixtures look their server up here instead. Used as a context manager: leaving it stops them.
    """

    def __init__(self, name: str, channels_text: str, fakes: dict[str, Any], tmp_path_factory: Any) -> None:
        self._args = (name, channels_text, fakes, tmp_path_factory)
        self._running: dict[str, tuple[Gateway, Any]] = {}

    def get(self, backend: str) -> Gateway:
        if backend not in self._running:
            self._running[backend] = serve_backend(backend, *self._args)
        return self._running[backend][0]

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *_exc: Any) -> None:
        for _gw, stop in self._running.values():
            stop()
        self._running.clear()


def serve_backend(backend: str, name: str, channels_text: str, fakes: dict[str, Any], tmp_path_factory):
    """One gunicorn on a fresh database of ``backend``: (its Gateway, the function that stops and clears it)."""
    tmp = tmp_path_factory.mktemp(f"{name}-{backend}")
    db_url = f"sqlite:///{tmp / 'bytespike.db'}" if backend == "sqlite" else create_pg_database()
    channels = tmp / "channels.toml"
    channels.write_text(channels_text)
    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    env = server_env(db_url, channels, prefix)
    port = free_port()
    gw = Gateway(f"http://127.0.0.1:{port}", db_url, env, tmp / "gunicorn.log", fakes)
    gw.cli("init-db")
    gw.proc = start_gunicorn(env, port, gw.log_path)

    def stop() -> None:
        stop_gunicorn(gw.proc)
        gw.close()
        if backend == "postgresql":
            drop_pg_database(db_url)
        _clean_redis(prefix)

    return gw, stop


@pytest.fixture(scope="session")
def gateway_servers(fake_vendors, tmp_path_factory):
    with Servers("gw", channels_toml(fake_vendors), fake_vendors, tmp_path_factory) as servers:
        yield servers


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway_server(request, gateway_servers):
    """This process's server on the backend of the test's parameter (started on first use, kept)."""
    return gateway_servers.get(request.param)


def _clean_redis(prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    for key in r.scan_iter(prefix + "*"):
        r.delete(key)


@pytest.fixture
def gateway(gateway_server):
    """The session's server with the fakes back to their default behaviour and channel health forgotten.

    Failure tests trip circuits and cool keys down (shared through Redis); each test starts clean.
    """
    for f in gateway_server.fakes.values():
        f.reset()
    _clean_redis(gateway_server.env["BYTESPIKE_REDIS_PREFIX"])
    time.sleep(0.3)  # the routers cache circuit state for a quarter of a second
    yield gateway_server
    for f in gateway_server.fakes.values():
        f.reset()


@pytest.fixture(scope="module")
def shared_key(gateway_server):
    """One well-funded account for tests that check content, not the wallet (one per server)."""
    return gateway_server.remembered("shared", lambda: gateway_server.account(credits=500_000_000))
