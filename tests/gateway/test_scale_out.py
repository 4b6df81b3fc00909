"""Scale-out: two gateway servers (two gunicorn masters, different ports) on one PostgreSQL and one Redis.

What one server learns, the other acts on: a key revoked on A is refused on B, a key's rpm counts calls
on both, a sticky session pinned on A is followed on B, and the ledger stays exact across both.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import create_pg_database, drop_pg_database, free_port
from tests.gateway.conftest import (
    Gateway,
    _clean_redis,
    channels_toml,
    server_env,
    start_gunicorn,
    stop_gunicorn,
)


@pytest.fixture(scope="module")
def pair(fake_vendors, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale-out")
    db_url = create_pg_database()
    channels = tmp / "channels.toml"
    channels.write_text(channels_toml(fake_vendors))
    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    env = server_env(db_url, channels, prefix)
    servers: list[Gateway] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            gw = Gateway(f"http://127.0.0.1:{port}", db_url, dict(env), tmp / f"gunicorn-{name}.log", fake_vendors)
            if name == "a":
                gw.cli("init-db")
            gw.proc = start_gunicorn(gw.env, port, gw.log_path, workers=1)
            servers.append(gw)
        yield servers
    finally:
        for gw in servers:
            stop_gunicorn(gw.proc)
            gw.close()
        for f in fake_vendors.values():
            f.reset()
        drop_pg_database(db_url)
        _clean_redis(prefix)


def chat(gw: Gateway, key: str, text: str = "hello", **headers: str) -> requests.Response:
    body = {"model": "gpt-5-4", "messages": [{"role": "user", "content": text}], "max_tokens": 16}
    return requests.post(gw.base_url + "/v1/chat/completions", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {key}", **headers})


def messages(gw: Gateway, key: str, *, session: str | None = None, stream: bool = False) -> requests.Response:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 16, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if session:
        headers["x-bytespike-session"] = session
    r = requests.post(gw.base_url + "/v1/messages", json=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r


def sub_key(gw: Gateway, master: str, **controls) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    r = requests.post(gw.base_url + "/api/v1/keys", json={"name": "scale", **controls}, timeout=30,
                      headers={"Authorization": f"Bearer {master}"})
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["key"]


def test_key_revoked_on_one_server_is_refused_on_the_other(pair):
    a, b = pair
    master = a.account()
    key_id, raw = sub_key(a, master)
    assert chat(b, raw).status_code == 200  # B has read the key and keeps its copy
    r = requests.delete(f"{a.base_url}/api/v1/keys/{key_id}", headers={"Authorization": f"Bearer {master}"},
                        timeout=30)
    assert r.status_code == 200
    refused = chat(b, raw)
    assert refused.status_code == 401, refused.text
    assert chat(a, raw).status_code == 401


def test_rate_limit_counts_calls_on_both_servers(pair):
    a, b = pair
    _, raw = sub_key(a, a.account(), rpm=3)
    # Start just after a minute turns, so the three calls and the refusal share one window.
    time.sleep((60 - time.time() % 60) + 0.2 if time.time() % 60 > 45 else 0)
    assert [chat(gw, raw).status_code for gw in (a, b, a)] == [200, 200, 200]
    over = chat(b, raw)
    assert over.status_code == 429, over.text
    assert "retry-after" in over.headers


def test_sticky_session_pinned_on_one_server_followed_on_the_other(pair):
    a, b = pair
    fake = a.fakes["anthropic"]
    key = a.account()
    session = f"sess-{uuid.uuid4().hex[:8]}"
    messages(a, key, session=session)
    home = fake.seen[-1].key
    fake.set(key=home, fail=429, retry_after="1")  # push the session off its natural key, on A
    messages(a, key, session=session)
    pinned = fake.seen[-1].key
    assert pinned != home
    fake.set(key=home, fail=0)
    time.sleep(1.5)  # the cool-down ends; only the pin kept in Redis now steers the session
    n = len(fake.seen)
    for _ in range(8):
        messages(b, key, session=session)
    assert {s.key for s in fake.seen[n:]} == {pinned}


def test_ledger_exact_across_both_servers(pair):
    a, b = pair
    start = 50_000_000
    key = a.account(credits=start)
    ids = []
    for i in range(12):
        gw = (a, b)[i % 2]
        r = chat(gw, key, f"call {i}")
        assert r.status_code == 200, r.text
        ids.append(r.headers["x-bytespike-request-id"])
    for gw in (a, b):
        messages(gw, key, stream=True)
    balance, reserved = a.wallet(key)
    assert reserved == 0
    with a.engine.connect() as c:
        costs = c.execute(sa.text(
            "SELECT COALESCE(SUM(u.cost_credits), 0), COUNT(*) FROM usage_log u JOIN api_keys k ON k.id = u.api_key_id "
            "WHERE k.key_hash = :h AND u.status = 200"), {"h": _digest(key)}).one()
    assert costs[1] == 14 and costs[0] > 0
    assert balance == start - costs[0]
    for rid in ids:
        row = a.usage(rid)
        assert row is not None and row["cost_credits"] > 0
    assert "ledger consistent" in a.cli("verify-ledger")


def _digest(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()
