"""Settlement in line with the answer, under four gunicorn workers: read your writes, full charges.

Each call's settlement commits before the client holds a complete answer, so
the next request, on any connection and any worker, sees it. A vendor report
above the hold is charged whole.
"""

from __future__ import annotations

import json
import uuid

import anthropic
import openai
import pytest
import requests

from tests.conftest import create_pg_database, drop_pg_database, free_port
from tests.gateway.conftest import PRICES, Gateway, channels_toml, server_env, start_gunicorn, stop_gunicorn

MODEL = "claude-sonnet-4-6"
PRICE = {k: int(v.replace(".", "")) // 100 for k, v in PRICES[MODEL].items() if k in ("input", "output")}
# The fake reports 12 input and 100 output tokens: the cost, far below a 4,096-token hold.
DIRECTIVE = "[fake in=12 out=100]"
COST = 12 * PRICE["input"] + 100 * PRICE["output"]
MAX_TOKENS = 4096


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def four_workers(request, fake_vendors, tmp_path_factory):
    """Four gevent workers sharing one database (PostgreSQL, and SQLite with WAL) and Redis."""
    tmp = tmp_path_factory.mktemp(f"settle-{request.param}")
    db_url = create_pg_database() if request.param == "postgresql" else f"sqlite:///{tmp / 's.db'}"
    channels = tmp / "channels.toml"
    channels.write_text(channels_toml(fake_vendors, timeout_s=15.0))
    env = server_env(db_url, channels, f"bstest:{uuid.uuid4().hex[:8]}:")
    gw = Gateway(f"http://127.0.0.1:{free_port()}", db_url, env, tmp / "gunicorn.log", fake_vendors)
    gw.cli("init-db")
    gw.proc = start_gunicorn(env, int(gw.base_url.rsplit(":", 1)[1]), gw.log_path, workers=4)
    yield gw
    stop_gunicorn(gw.proc)
    gw.engine.dispose()
    if request.param == "postgresql":
        drop_pg_database(db_url)


@pytest.fixture(autouse=True)
def _default_fakes(fake_vendors):
    for fake in fake_vendors.values():
        fake.reset()


def account(gw: Gateway, key: str) -> dict:
    """GET /api/v1/me/account on a connection of its own."""
    with requests.Session() as s:
        r = s.get(gw.base_url + "/api/v1/me/account", headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def msgs(text: str = "hi") -> list[dict]:
    return [{"role": "user", "content": f"{text} {DIRECTIVE}"}]


def anthropic_call(gw: Gateway, key: str, *, stream: bool) -> int:
    """One call through the Anthropic SDK; returns its hold (x-bytespike-estimated-credits)."""
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=key, max_retries=0)
    if stream:
        with client.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=msgs()) as s:
            final = s.get_final_message()
            hold = int(s.response.headers["x-bytespike-estimated-credits"])
        assert final.stop_reason == "end_turn" and final.usage.output_tokens == 100
        return hold
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=MAX_TOKENS, messages=msgs())
    assert raw.parse().usage.output_tokens == 100
    assert int(raw.headers["x-bytespike-cost-credits"]) == COST
    return int(raw.headers["x-bytespike-estimated-credits"])


def openai_call(gw: Gateway, key: str, *, stream: bool) -> int:
    """One call through the OpenAI SDK (the same model, translated); returns its hold."""
    client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=key, max_retries=0)
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model=MODEL, max_tokens=MAX_TOKENS, messages=msgs(), stream=True,
                stream_options={"include_usage": True}) as resp:
            chunks = list(resp.parse())
            hold = int(resp.headers["x-bytespike-estimated-credits"])
        assert chunks[-1].usage.completion_tokens == 100
        assert chunks[-1].usage.model_extra["cost_credits"] == COST
        return hold
    raw = client.chat.completions.with_raw_response.create(model=MODEL, max_tokens=MAX_TOKENS, messages=msgs())
    assert raw.parse().usage.completion_tokens == 100
    return int(raw.headers["x-bytespike-estimated-credits"])


CALLS = [(anthropic_call, False), (openai_call, True), (anthropic_call, True),
         (openai_call, False), (anthropic_call, False), (anthropic_call, True)]


def test_back_to_back_calls_see_their_own_settlement_at_once(four_workers):
    gw = four_workers
    start = 50_000_000
    master = gw.account(credits=start, tier="enterprise")
    # The holds of these exact calls, measured on the master key (they are the same on any key).
    holds = [fn(gw, master, stream=stream) for fn, stream in CALLS]
    spent_by_master = 6 * COST
    assert max(holds) > 5 * COST  # a stale hold would refuse the second call already
    # Room for exactly six calls that cost COST each: five settled charges and the largest hold.
    quota = 5 * COST + max(holds)
    r = requests.post(gw.base_url + "/api/v1/keys", headers={"x-api-key": master}, timeout=30,
                      json={"name": "six calls", "quota_credits": quota})
    assert r.status_code in (200, 201), r.text
    sub = r.json()["key"]
    for k, (fn, stream) in enumerate(CALLS, start=1):
        fn(gw, sub, stream=stream)
        seen = account(gw, sub)  # at once, on another connection (and most likely another worker)
        assert seen["reserved_credits"] == 0, (k, seen)
        assert seen["balance_credits"] == start - spent_by_master - k * COST, (k, seen)
        assert seen["key"]["spent_credits"] == k * COST, (k, seen)
    with pytest.raises(anthropic.APIStatusError) as exc:
        anthropic_call(gw, sub, stream=False)
    assert exc.value.status_code == 402
    assert "quota_exceeded" in json.dumps(exc.value.body)
    gw.cli("verify-ledger")


def test_a_report_above_the_hold_is_charged_in_full(four_workers):
    gw = four_workers
    key = gw.account(credits=100_000)
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=key, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=500, messages=[{"role": "user", "content": "hi [fake in=150000 out=490]"}])
    msg = raw.parse()
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (150_000, 490)
    cost = 150_000 * PRICE["input"] + 490 * PRICE["output"]
    assert cost == 457_350
    assert int(raw.headers["x-bytespike-estimated-credits"]) < cost  # the hold was far smaller
    assert int(raw.headers["x-bytespike-cost-credits"]) == cost
    assert gw.usage(raw.headers["x-bytespike-request-id"])["cost_credits"] == cost
    seen = account(gw, key)
    assert (seen["balance_credits"], seen["reserved_credits"]) == (100_000 - cost, 0)  # below zero
    with pytest.raises(anthropic.APIStatusError) as exc:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 402
    assert "insufficient_balance" in json.dumps(exc.value.body) or "Insufficient balance" in str(exc.value)
    # A stream that reports more than its hold is charged in full too, and says so in its final usage chunk.
    key2 = gw.account(credits=100_000)
    chunks = list(openai.OpenAI(base_url=gw.base_url + "/v1", api_key=key2, max_retries=0).chat.completions.create(
        model=MODEL, max_tokens=500, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi [fake in=150000 out=490]"}]))
    assert chunks[-1].usage.model_extra["cost_credits"] == cost
    assert account(gw, key2)["balance_credits"] == 100_000 - cost
    gw.cli("verify-ledger")
