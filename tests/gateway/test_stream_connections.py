"""An open stream holds no database connection while it relays: only its reserve and its settle take one."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import sqlalchemy as sa


def _busy_connections(gw) -> int:
    """Server connections to the test database doing something or inside a transaction (ours excluded)."""
    with gw.engine.connect() as c:
        return int(c.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'")).scalar_one())


def test_relaying_streams_hold_no_connection(gateway):
    if not gateway.db_url.startswith("postgresql"):
        pytest.skip("pg_stat_activity is PostgreSQL's")
    key = gateway.account(credits=500_000_000, tier="enterprise")  # room for eight calls at once
    body = {"model": "gpt-5-4", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "one two three four five six [fake chunks=6 gap=0.5]"}]}
    started, done = threading.Barrier(9), []

    def stream() -> None:
        with requests.post(gateway.base_url + "/v1/chat/completions", data=json.dumps(body), stream=True,
                           timeout=60, headers={"Authorization": "Bearer " + key,
                                                "content-type": "application/json"}) as resp:
            assert resp.status_code == 200
            lines = resp.iter_lines()
            next(line for line in lines if line.startswith(b"data: "))  # the first event is out
            started.wait(30)
            done.append(sum(1 for _ in lines))

    threads = [threading.Thread(target=stream) for _ in range(8)]
    for t in threads:
        t.start()
    started.wait(30)  # all eight are open and relaying (about 2.5 s of gaps to go)
    samples = []
    for _ in range(5):
        samples.append(_busy_connections(gateway))
        time.sleep(0.1)
    for t in threads:
        t.join(60)
    assert len(done) == 8
    assert max(samples) == 0, samples
