"""Money under concurrency and crashes: parallel calls on a small wallet, a worker killed mid-call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import create_pg_database, drop_pg_database, free_port
from tests.gateway.conftest import Gateway, channels_toml, server_env, start_gunicorn, stop_gunicorn

MAX_TOKENS = 1000
OUT_PRICE = 15  # claude-sonnet-4-6 output, USD per 1M tokens: one output token costs 15 credits


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def busy_gateway(request, fake_vendors, tmp_path_factory):
    """Four gevent workers sharing one database (PostgreSQL, and SQLite with WAL)."""
    tmp = tmp_path_factory.mktemp(f"busy-{request.param}")
    db_url = create_pg_database() if request.param == "postgresql" else f"sqlite:///{tmp / 'b.db'}"
    channels = tmp / "channels.toml"
    # A generous read timeout: a crowded test machine must not break the long stream below.
    channels.write_text(channels_toml(fake_vendors, timeout_s=15.0))
    env = server_env(db_url, channels, f"bstest:{uuid.uuid4().hex[:8]}:")
    port = free_port()
    gw = Gateway(f"http://127.0.0.1:{port}", db_url, env, tmp / "gunicorn.log", fake_vendors)
    gw.cli("init-db")
    gw.proc = start_gunicorn(env, port, gw.log_path, workers=4)
    yield gw
    stop_gunicorn(gw.proc)
    gw.engine.dispose()
    if request.param == "postgresql":
        drop_pg_database(db_url)


@pytest.fixture(autouse=True)
def _default_fakes(fake_vendors):
    """The fake vendors are shared by the session: start from their default behaviour."""
    for fake in fake_vendors.values():
        fake.reset()


def _call(gw: Gateway, key: str) -> requests.Response:
    # Output of exactly max_tokens: the real cost is the output part of the reservation.
    body = {"model": "claude-sonnet-4-6", "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": f"hi [fake delay=0.5 in=0 out={MAX_TOKENS}]"}]}
    return requests.post(gw.base_url + "/v1/messages", data=json.dumps(body), timeout=60,
                         headers={"x-api-key": key, "content-type": "application/json"})


def test_parallel_calls_never_overdraw_the_wallet(busy_gateway):
    gw = busy_gateway
    cost = MAX_TOKENS * OUT_PRICE
    start = 50 * cost + cost // 2  # affords 50 calls, not 51
    key = gw.account(credits=start, tier="enterprise")
    lowest = [start]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            lowest[0] = min(lowest[0], gw.wallet(key)[0])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(lambda _: _call(gw, key), range(200)))
    stop.set()
    watcher.join()
    statuses = [r.status_code for r in results]
    ok = [r for r in results if r.status_code == 200]
    assert set(statuses) <= {200, 402}, [r.text for r in results if r.status_code not in (200, 402)][:3]
    assert 0 < len(ok) <= 50
    balance, reserved = gw.wallet(key)
    assert reserved == 0 and balance >= 0 and lowest[0] >= 0
    charged = sum(int(r.headers["x-bytespike-cost-credits"]) for r in ok)
    assert charged == start - balance == len(ok) * cost
    assert all(r.json()["error"]["type"] == "billing_error" for r in results if r.status_code == 402)
    gw.cli("verify-ledger")


def test_worker_killed_mid_call_leaves_a_hold_that_expiry_releases(busy_gateway):
    gw = busy_gateway
    key = gw.account(credits=10_000_000)
    before = gw.wallet(key)[0]
    body = {"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "hi [fake gap=1 chunks=20]"}]}
    r = requests.post(gw.base_url + "/v1/messages", json=body, headers={"x-api-key": key}, stream=True, timeout=30)
    chunks = r.iter_content(None)  # kept: a dropped iterator would close the connection
    next(chunks)
    assert gw.wallet(key)[1] > 0  # the hold is open while the stream runs
    workers = subprocess.run(["pgrep", "-P", str(gw.proc.pid)], capture_output=True, text=True).stdout.split()
    for pid in workers:  # only this test's gunicorn workers: the master starts fresh ones
        os.kill(int(pid), signal.SIGKILL)
    for pid in workers:  # closing the client before the kill lands would let the worker settle
        _wait_dead(int(pid))
    r.close()
    assert gw.wallet(key)[1] > 0  # nobody settled: the worker died
    gw.cli("expire-reservations", "--older-than", "0")
    assert gw.wallet(key) == (before, 0)
    gw.cli("verify-ledger")
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if requests.get(gw.base_url + "/healthz", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.2)


def _wait_dead(pid: int, timeout: float = 10.0) -> None:
    """Wait until ``pid`` is gone or a zombie: SIGKILL is delivered asynchronously."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().split(")")[-1].split()[0] == "Z":
                    return
        except (FileNotFoundError, ProcessLookupError):  # reaped between the open and the read
            return
        time.sleep(0.02)
    raise AssertionError(f"worker {pid} did not die")
