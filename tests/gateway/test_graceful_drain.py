"""SIGTERM drains: gunicorn stops taking connections, lets an open stream finish within graceful_timeout,
and the stream is settled before the worker goes (the Kubernetes preStop + grace period rely on this)."""

from __future__ import annotations

import signal
import time
import uuid

import requests

from tests.conftest import create_pg_database, drop_pg_database, free_port
from tests.gateway.conftest import (
    Gateway,
    _clean_redis,
    channels_toml,
    server_env,
    start_gunicorn,
    stop_gunicorn,
)


def test_sigterm_lets_an_open_stream_finish_and_settle(fake_vendors, tmp_path):
    db_url = create_pg_database()
    channels = tmp_path / "channels.toml"
    channels.write_text(channels_toml(fake_vendors, timeout_s=10))
    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    env = server_env(db_url, channels, prefix)
    port = free_port()
    gw = Gateway(f"http://127.0.0.1:{port}", db_url, env, tmp_path / "gunicorn.log", fake_vendors)
    try:
        gw.cli("init-db")
        gw.proc = start_gunicorn(env, port, gw.log_path, workers=1)
        key = gw.account()
        before, _ = gw.wallet(key)
        body = {"model": "gpt-5-4", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 64,
                "messages": [{"role": "user", "content": "drain me [fake chunks=12 gap=0.25]"}]}
        with requests.post(gw.base_url + "/v1/chat/completions", json=body, stream=True, timeout=60,
                           headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status_code == 200
            lines = resp.iter_lines()
            first = next(line for line in lines if line)
            assert first.startswith(b"data: ")
            gw.proc.send_signal(signal.SIGTERM)  # the master asks its worker to stop gracefully
            signalled = time.time()
            rest = [line for line in lines if line]
            drained_s = time.time() - signalled
        assert rest[-1] == b"data: [DONE]"  # the whole stream arrived after SIGTERM
        assert drained_s > 1.0  # it was still running when the signal came (12 chunks, 0.25 s apart)
        assert gw.proc.wait(60) == 0  # then the server went away on its own, within graceful_timeout
        deadline = time.time() + 10
        while True:
            after, reserved = gw.wallet(key)
            if reserved == 0 or time.time() > deadline:
                break
            time.sleep(0.1)
        assert reserved == 0 and after < before  # settled (charged), not left as an open hold
        assert "ledger consistent" in gw.cli("verify-ledger")
    finally:
        if gw.proc is not None:
            stop_gunicorn(gw.proc)
        gw.close()
        drop_pg_database(db_url)
        _clean_redis(prefix)
