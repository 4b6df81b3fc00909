"""Failures don't bill: the wallet after each failure mode is exactly where API.md §3 puts it."""

from __future__ import annotations

import json
import socket
import time

import anthropic
import openai
import pytest
import requests

from tests.gateway.conftest import PRICES

TEXT = "Hello from the fake upstream, one word at a time."


def cost(model: str, inp: int = 0, out: int = 0, cw: int = 0, cr: int = 0) -> int:
    from decimal import ROUND_CEILING, Decimal

    p = {k: Decimal(v) for k, v in PRICES[model].items()}
    total = inp * p["input"] + cw * p["cache_write"] + cr * p["cache_read"] + out * p["output"]
    return int(total.to_integral_value(rounding=ROUND_CEILING))


def post(gateway, key, path, body, **headers):
    h = {"x-api-key": key, "content-type": "application/json", **headers}
    return requests.post(gateway.base_url + path, data=json.dumps(body), headers=h, timeout=30)


def msg(text, stream=False, model="claude-sonnet-4-6"):
    return {"model": model, "max_tokens": 200, "stream": stream, "messages": [{"role": "user", "content": text}]}


def sse_events(raw: bytes) -> list[tuple[str | None, dict]]:
    out = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        ev, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                ev = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip().decode())
        if data and data[0] != "[DONE]":
            out.append((ev, json.loads("\n".join(data))))
    return out


@pytest.fixture(scope="module")
def wallet_key(gateway_server):
    """One account for the module; each test reads the wallet before it starts and compares deltas."""
    return gateway_server.account(credits=100_000_000)


@pytest.fixture
def fresh(gateway, wallet_key):
    before = gateway.wallet(wallet_key)
    assert before[1] == 0
    return wallet_key, before


def settled(gateway, key) -> tuple[int, int]:
    """The wallet once the server has closed the call (a stream closes just after its last byte)."""
    deadline = time.time() + 10
    while True:
        wallet = gateway.wallet(key)
        if wallet[1] == 0 or time.time() > deadline:
            return wallet
        time.sleep(0.1)


def assert_unchanged(gateway, key, before):
    assert settled(gateway, key) == (before[0], 0)


def test_success_cost_header_equals_settled_equals_usage_row(gateway, fresh):
    key, (bal, _) = fresh
    r = post(gateway, key, "/v1/messages", msg("hi [fake in=40 out=9 cwrite=8 cached=100]"))
    assert r.status_code == 200
    expected = cost("claude-sonnet-4-6", inp=40, out=9, cw=8, cr=100)
    assert int(r.headers["x-bytespike-cost-credits"]) == expected
    assert r.headers["x-bytespike-cost-usd"] == f"{expected / 1_000_000:.6f}"
    assert int(r.headers["x-bytespike-estimated-credits"]) >= expected
    assert r.headers["x-bytespike-provider"] == "anthropic"
    assert float(r.headers["x-bytespike-overhead-ms"]) >= 0
    assert gateway.wallet(key) == (bal - expected, 0)
    row = gateway.usage(r.headers["x-bytespike-request-id"])
    assert row["cost_credits"] == expected and row["billed"]
    assert (row["input_tokens"], row["output_tokens"], row["cache_write_tokens"], row["cache_read_tokens"]) == (
        40, 9, 8, 100)


def test_stream_final_event_carries_settled_cost(gateway, fresh):
    key, (bal, _) = fresh
    r = post(gateway, key, "/v1/messages", msg("hi [fake in=40 out=9]", stream=True))
    events = sse_events(r.content)
    delta = [d for e, d in events if e == "message_delta"][-1]
    expected = cost("claude-sonnet-4-6", inp=40, out=9)
    assert delta["usage"]["cost_credits"] == expected
    assert settled(gateway, key) == (bal - expected, 0)
    assert gateway.usage(r.headers["x-bytespike-request-id"])["cost_credits"] == expected
    r = post(gateway, key, "/v1/chat/completions",
             {"model": "gpt-5-4", "stream": True, "stream_options": {"include_usage": True},
              "messages": [{"role": "user", "content": "hi [fake in=30 cached=10 out=5]"}]})
    last = sse_events(r.content)[-1][1]
    assert last["usage"]["cost_credits"] == cost("gpt-5-4", inp=30, cr=10, out=5)


@pytest.mark.parametrize("status", [500, 529])
def test_upstream_failure_on_every_key_is_free(gateway, fresh, status):
    key, before = fresh
    r = post(gateway, key, "/v1/messages", msg(f"hi [fake fail={status}]"))
    assert r.status_code >= 500
    body = r.json()
    assert body["type"] == "error" and "sk-up-" not in r.text
    assert r.headers["x-bytespike-cost-credits"] == "0"
    assert_unchanged(gateway, key, before)
    assert len(gateway.fakes["anthropic"].seen) == 2  # both keys of the pool were tried
    row = gateway.usage(r.headers["x-bytespike-request-id"])
    assert row["billed"] is False or row["billed"] == 0


def test_pool_key_answering_429_is_skipped(gateway, fresh):
    key, (bal, _) = fresh
    bad, good = "sk-up-ant-AAAA1111", "sk-up-ant-BBBB2222"
    gateway.fakes["anthropic"].set(key=bad, fail=429, retry_after="30")
    for _ in range(2):
        m = anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0).messages.create(
            model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "hi [fake in=10 out=9]"}])
        assert m.content[0].text == TEXT
    assert good in gateway.fakes["anthropic"].keys_used()
    assert gateway.wallet(key) == (bal - 2 * cost("claude-sonnet-4-6", inp=10, out=9), 0)


def test_upstream_timeout_is_free(gateway, fresh):
    key, before = fresh
    t0 = time.time()
    r = post(gateway, key, "/v1/chat/completions",
             {"model": "gpt-5-4", "messages": [{"role": "user", "content": "hi [fake hang=4]"}]},
             authorization=f"Bearer {key}")
    assert r.status_code == 504 and time.time() - t0 < 15
    assert r.json()["error"]["type"]
    assert_unchanged(gateway, key, before)


def test_dropped_stream_ends_with_error_event_and_is_free(gateway, fresh):
    key, before = fresh
    r = post(gateway, key, "/v1/messages", msg("hi [fake drop=3]", stream=True))
    events = sse_events(r.content)
    assert [d for e, d in events if e == "content_block_delta"]  # some text arrived first
    assert events[-1][0] == "error"
    assert_unchanged(gateway, key, before)
    with pytest.raises(openai.APIError):
        list(openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0).chat.completions.create(
            model="gpt-5-4", stream=True, messages=[{"role": "user", "content": "hi [fake drop=2]"}]))
    assert_unchanged(gateway, key, before)


def test_midstream_error_event_is_free_and_translated(gateway, fresh):
    key, before = fresh
    r = post(gateway, key, "/v1/messages", msg("hi [fake midfail=2]", stream=True))
    assert sse_events(r.content)[-1][0] == "error"
    r = post(gateway, key, "/v1/messages", msg("hi [fake midfail=2]", stream=True, model="gpt-5-4"))
    assert sse_events(r.content)[-1][0] == "error"
    assert_unchanged(gateway, key, before)


def test_an_upstream_that_goes_silent_mid_stream_times_out_free(gateway, fresh):
    """A stream whose upstream stops sending for longer than the channel's read timeout (3 s here)
    ends with an error event soon after, free, in either protocol; the next stream is served."""
    key, before = fresh
    for model in ("claude-sonnet-4-6", "gpt-5-4"):
        t0 = time.monotonic()
        r = post(gateway, key, "/v1/messages", msg("one two three [fake chunks=3 gap=8]", stream=True, model=model))
        took = time.monotonic() - t0
        events = sse_events(r.content)
        assert events[-1][0] == "error", events[-3:]
        assert 3 <= took < 7.5, took
    assert_unchanged(gateway, key, before)
    r = post(gateway, key, "/v1/messages", msg("hi [fake chunks=2]", stream=True))
    assert sse_events(r.content)[-1][0] == "message_stop"


def test_broken_http_framing_mid_stream_ends_the_stream_free(gateway, fresh):
    """An upstream whose chunked framing breaks mid-stream (a chunk-size line that is not hex) ends the
    caller's stream with an error event, free, in either protocol; the worker serves the next call."""
    key, before = fresh
    for model in ("claude-sonnet-4-6", "gpt-5-4"):
        r = post(gateway, key, "/v1/messages", msg("one two three four [fake garble=2]", stream=True, model=model))
        assert r.status_code == 200
        assert sse_events(r.content)[-1][0] == "error"
    assert_unchanged(gateway, key, before)
    r = post(gateway, key, "/v1/messages", msg("hi [fake chunks=2]", stream=True))
    assert sse_events(r.content)[-1][0] == "message_stop"


def test_client_disconnect_bills_what_was_delivered(gateway, fresh):
    key, (bal, _) = fresh
    body = json.dumps(msg("hi [fake in=50 gap=0.3 chunks=10 out=10]", stream=True)).encode()
    host, port = gateway.base_url.rsplit("//", 1)[1].split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
              b"x-api-key: " + key.encode() + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while got.count(b"content_block_delta") < 2:
        got += s.recv(65536)
    s.close()
    balance, reserved = settled(gateway, key)
    assert reserved == 0
    charged = bal - balance
    assert cost("claude-sonnet-4-6", inp=50, out=1) <= charged < cost("claude-sonnet-4-6", inp=50, out=10)


def test_fallback_header_answers_with_another_model(gateway, fresh):
    key, (bal, _) = fresh
    gateway.fakes["anthropic"].set(fail=500)
    r = post(gateway, key, "/v1/messages", msg("hi [fake in=10 out=4]"), **{"x-bytespike-fallback": "gpt-5-4"})
    assert r.status_code == 200
    assert r.json()["content"][0]["text"] == TEXT
    assert r.headers["x-bytespike-fallback-from"] == "claude-sonnet-4-6"
    assert r.headers["x-bytespike-provider"] == "openai"
    row = gateway.usage(r.headers["x-bytespike-request-id"])
    assert row["fallback_from"] == "claude-sonnet-4-6" and row["model"] == "gpt-5-4"
    assert "500" in (row["error"] or "")
    assert gateway.wallet(key) == (bal - cost("gpt-5-4", inp=10, out=4), 0)
    r = post(gateway, key, "/v1/messages", msg("hi"))
    assert r.status_code >= 500 and "x-bytespike-fallback-from" not in r.headers


def test_no_channel_and_dry_run_are_free(gateway, fresh):
    key, before = fresh
    r = post(gateway, key, "/v1/messages", msg("hi", model="deepseek-v4-pro"))
    assert r.status_code == 503 and "no channel configured" in r.json()["error"]["message"]
    r = post(gateway, key, "/v1/messages", msg("hi"), **{"x-bytespike-dry-run": "1"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"estimated_credits", "model", "input_tokens"} and body["estimated_credits"] > 0
    assert gateway.fakes["anthropic"].seen == []
    assert_unchanged(gateway, key, before)


def test_insufficient_balance_is_402_before_upstream(gateway):
    key = gateway.account(credits=10)
    with pytest.raises(anthropic.APIStatusError) as exc:
        anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0).messages.create(
            model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 402
    assert gateway.fakes["anthropic"].seen == []


def test_ledger_verifies_clean(gateway):
    assert gateway.cli("verify-ledger") is not None
