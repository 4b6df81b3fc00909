"""One upstream-error mapping: every vendor's error shape, through every caller's codec, redacted.

Non-stream answers (and errors before a stream's first byte) go through the
upstream codec's ``parse_error`` and the caller's ``render_error``; error
events mid-stream through the relays, translated or passed through. No
key-like text and no key of the channel reaches the caller; the shape is the
caller's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import relay, sse
from gateway.protocols import anthropic, gemini, openai_chat, openai_responses
from gateway.protocols.upstream_error import from_body, from_event, redact

CHANNEL_KEY = "plainchannelsecret987"  # looks like nothing: only knowing the channel's keys hides it
LEAK = (f" key=AIzaSyD-EXAMPLEKEY0123456789 x-api-key: sk-ant-api03-SECRETSECRET Bearer eyJhbGciOi.SECRET"
        f" api_key=SECRETSECRET token: SECRETTOKEN {CHANNEL_KEY}")
LEAKED = ("AIza", "sk-", "SECRET", "eyJhbGciOi", CHANNEL_KEY)
CALLERS = {"anthropic": anthropic, "openai": openai_chat, "responses": openai_responses, "gemini": gemini}
# The upstream codec that reads each vendor's shape (OpenAI-compatible vendors speak OpenAI's protocol).
UPSTREAM = {"anthropic": anthropic, "openai": openai_chat, "compatible": openai_chat, "gemini": gemini}
PASSTHROUGH = {"anthropic": "anthropic", "openai": "openai", "compatible": "openai", "gemini": "gemini"}

BODIES: list[tuple[str, int, bytes]] = [
    ("anthropic", 401, json.dumps({"type": "error", "error": {"type": "authentication_error",
                                                              "message": "invalid key" + LEAK}}).encode()),
    ("openai", 401, json.dumps({"error": {"message": "Incorrect API key provided" + LEAK,
                                          "type": "invalid_request_error", "param": None,
                                          "code": "invalid_api_key"}}).encode()),
    ("gemini", 400, json.dumps({"error": {"code": 400, "message": "API key not valid." + LEAK,
                                          "status": "INVALID_ARGUMENT"}}).encode()),
    ("compatible", 401, json.dumps({"message": "Authentication Fails" + LEAK, "code": 401}).encode()),
    ("compatible", 422, json.dumps({"detail": "bad request" + LEAK}).encode()),
    ("compatible", 503, json.dumps({"error": "busy" + LEAK}).encode()),
    ("compatible", 500, json.dumps({"error": {"message": "oops" + LEAK, "code": 500}}).encode()),
    ("compatible", 502, ("<html>Bad gateway" + LEAK + "</html>").encode()),
]
EVENTS: list[tuple[str, bytes]] = [
    ("anthropic", sse.encode(json.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                                    "message": "Overloaded" + LEAK}}), event="error")),
    ("anthropic", b"event: error\ndata: not json" + LEAK.encode() + b"\n\n"),
    ("openai", sse.encode(json.dumps({"error": {"message": "server error" + LEAK, "type": "server_error",
                                                "param": None, "code": None}}))),
    ("gemini", sse.encode(json.dumps({"error": {"code": 503, "message": "overloaded" + LEAK,
                                                "status": "UNAVAILABLE"}}))),
    ("compatible", sse.encode(json.dumps({"error": {"message": "rate limit reached" + LEAK,
                                                    "code": "rate_limit_exceeded"}}))),
    ("compatible", sse.encode(json.dumps({"error": "upstream gone" + LEAK}))),
]


def assert_clean(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    assert not [s for s in LEAKED if s in text], text


def assert_error_body(caller: str, body: Any) -> None:
    if caller == "anthropic":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    elif caller == "gemini":
        assert {"code", "message", "status"} <= set(body["error"])
    else:
        assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"])


def test_redact_hides_key_like_text_and_the_given_keys() -> None:
    out = redact("x" + LEAK, secrets=(CHANNEL_KEY,))
    assert_clean(out.encode())
    assert "key=[redacted]" in out and "x-api-key: [redacted]" in out


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("vendor", "status", "body"), BODIES, ids=[f"{v}-{s}" for v, s, _ in BODIES])
def test_error_answer_reaches_every_caller_redacted(caller: str, vendor: str, status: int, body: bytes) -> None:
    err = UPSTREAM[vendor].parse_error(status, body, secrets=(CHANNEL_KEY,))
    assert err.message == from_body(status, body, secrets=(CHANNEL_KEY,)).message or vendor == "gemini"
    shown, rendered = CALLERS[caller].render_error(err)
    assert shown == err.status and 400 <= shown < 600
    assert_clean(json.dumps(rendered).encode())
    assert_error_body(caller, rendered)


def _stream_out(caller: str, vendor: str, raw: bytes) -> bytes:
    upstream = UPSTREAM[vendor]
    rel: Any
    if PASSTHROUGH[vendor] == caller:
        rel = relay.PassthroughRelay(upstream, include_usage=True, cost_fn=lambda u: 0, secrets=(CHANNEL_KEY,))
    else:
        rel = relay.TranslateRelay(upstream, CALLERS[caller], model="m", message_id="msg_1", created=1,
                                   include_usage=True, cost_fn=lambda u: 0, secrets=(CHANNEL_KEY,))
    out = rel.feed(raw) + rel.finish()
    assert rel.error is not None and rel.error.status >= 400
    return out


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("vendor", "raw"), EVENTS, ids=[f"{v}-{i}" for i, (v, _) in enumerate(EVENTS)])
def test_error_event_mid_stream_reaches_every_caller_redacted(caller: str, vendor: str, raw: bytes) -> None:
    out = _stream_out(caller, vendor, raw)
    assert_clean(out)
    frames = sse.SSEDecoder().feed(out + b"\n\n")
    last = frames[-1]
    if caller == "responses":
        assert [f.event for f in frames][-2:] == ["error", "response.failed"]
        assert json.loads(last.data)["response"]["status"] == "failed"
    else:
        assert last.event == ("error" if caller == "anthropic" else None)
        assert_error_body(caller, json.loads(last.data))


def test_event_reading_keeps_each_vendors_status() -> None:
    assert from_event({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}).status == 429
    assert from_event({"type": "error", "error": {"type": "overloaded_error", "message": "x"}}).status == 529
    assert from_event({"error": {"message": "x", "type": "requests", "code": "rate_limit_exceeded"}}).status == 429
    assert from_event({"error": "x"}).status == 502
