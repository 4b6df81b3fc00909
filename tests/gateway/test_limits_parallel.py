"""Limits that hold under parallel load: four gunicorn workers on PostgreSQL, counters in Redis."""

from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import create_pg_database, drop_pg_database, free_port
from tests.gateway.conftest import Gateway, channels_toml, server_env, start_gunicorn, stop_gunicorn

OUT = 1000
COST = OUT * 15  # claude-sonnet-4-6: 15 credits an output token; the fake reports no input


@pytest.fixture(scope="module")
def pg_gateway(fake_vendors, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits-pg")
    db_url = create_pg_database()
    channels = tmp / "channels.toml"
    channels.write_text(channels_toml(fake_vendors, timeout_s=15.0))
    env = server_env(db_url, channels, f"bstest:{uuid.uuid4().hex[:8]}:")
    port = free_port()
    gw = Gateway(f"http://127.0.0.1:{port}", db_url, env, tmp / "gunicorn.log", fake_vendors)
    gw.cli("init-db")
    gw.proc = start_gunicorn(env, port, gw.log_path, workers=4)
    yield gw
    stop_gunicorn(gw.proc)
    gw.engine.dispose()
    drop_pg_database(db_url)


def mint(gw: Gateway, master: str, **controls) -> str:
    r = requests.post(gw.base_url + "/api/v1/keys", json={"name": "limited", **controls},
                      headers={"authorization": f"Bearer {master}"}, timeout=30)
    assert r.status_code in (200, 201), r.text
    return r.json()["key"]


def call(gw: Gateway, key: str, text: str, max_tokens: int = OUT) -> requests.Response:
    body = {"model": "claude-sonnet-4-6", "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}
    return requests.post(gw.base_url + "/v1/messages", data=json.dumps(body), timeout=120,
                         headers={"x-api-key": key, "content-type": "application/json"})


def test_spend_window_holds_under_48_parallel_calls(pg_gateway):
    gw = pg_gateway
    start = 50_000_000
    master = gw.account(credits=start, tier="enterprise")
    limit = 10 * COST + COST // 2
    sub = mint(gw, master, rate_limit_5h=limit)
    text = f"hi [fake delay=0.5 in=0 out={OUT}]"
    with ThreadPoolExecutor(max_workers=48) as pool:
        results = list(pool.map(lambda _: call(gw, sub, text), range(48)))
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code != 200]
    assert ok and refused
    assert {r.status_code for r in refused} == {429}
    for r in refused:
        err = r.json()["error"]
        assert err["type"] == "rate_limit_error" and "rate_limit_5h" in err["message"], err
        assert int(r.headers["retry-after"]) >= 1 and r.headers["x-bytespike-cost-credits"] == "0"
    charged = sum(int(r.headers["x-bytespike-cost-credits"]) for r in ok)
    assert charged == len(ok) * COST <= limit
    balance, reserved = gw.wallet(master)
    assert reserved == 0 and balance == start - charged  # refused calls are free
    with gw.engine.connect() as c:
        spent = c.execute(sa.text("SELECT coalesce(sum(credits), 0) FROM key_spend_hours h JOIN api_keys k "
                                  "ON k.id = h.api_key_id WHERE k.key_hash = :h"), {"h": _hash(sub)}).scalar()
        billed = c.execute(sa.text("SELECT coalesce(sum(cost_credits), 0) FROM usage_log u JOIN api_keys k "
                                   "ON k.id = u.api_key_id WHERE k.key_hash = :h AND u.billed"),
                           {"h": _hash(sub)}).scalar()
    assert billed == charged == spent <= limit
    gw.cli("verify-ledger")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_tpm_window_is_corrected_by_the_reported_usage(pg_gateway):
    gw = pg_gateway
    master = gw.account(credits=50_000_000)
    sub = mint(gw, master, tpm=4_000)
    text = "hi [fake in=10 out=5] " + "x" * 2_500  # admitted on an estimate of ~2,600 input tokens
    first = call(gw, sub, text, max_tokens=20)
    assert first.status_code == 200, first.text
    # Without the correction the window would hold ~2,600 + ~2,600 > 4,000: the report says 15 tokens.
    second = call(gw, sub, text, max_tokens=20)
    assert second.status_code == 200, second.text
    third = call(gw, sub, "hi [fake in=10 out=5] " + "x" * 5_000, max_tokens=20)
    assert third.status_code == 429 and "tpm" in third.json()["error"]["message"]
