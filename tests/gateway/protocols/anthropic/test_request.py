"""Anthropic Messages codec: request, response and error shapes on both sides."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from core.errors import InsufficientBalance, InvalidRequest, ModelNotFound, RateLimited, UpstreamError
from gateway.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    RawPart,
    TextPart,
    Thinking,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from gateway.protocols import anthropic, openai_chat
from tests.gateway.protocols.test_sse import FIXTURES, check_golden

A = FIXTURES / "anthropic"


def load(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def golden_json(path: str, value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=2) + "\n"
    check_golden(FIXTURES / path, text.encode())


def minimal(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(over)
    return body


def test_parse_claude_code_body() -> None:
    req = anthropic.parse_request(load("anthropic/request_claude_code.json"), version="2026-10-21")
    assert req.source == "anthropic" and req.stream and req.max_tokens == 32000
    assert req.system[1].cache_control == {"type": "ephemeral"}
    assert req.thinking == Thinking(mode="enabled", budget_tokens=31999)
    assert json.loads(req.user or "")["session_id"].startswith("8d2f8f1e")
    assert set(req.extras) == {"context_management", "output_config"}
    (search,) = req.server_tools
    assert search.kind == "web_search" and search.config == {"max_uses": 5}
    assert search.raw == {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    assert [t.name for t in req.tools][0] == "get_weather" and req.tools[1].cache_control == {
        "type": "ephemeral"
    }
    thinking, text, call_a, call_b = req.messages[1].parts
    assert thinking == ThinkingPart(
        text="Two cities: call the tool twice in parallel.",
        signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        origin="anthropic",
    )
    assert call_a == ToolCallPart(id="toolu_01A", name="get_weather", arguments='{"city":"Zürich"}')
    result_a, result_b, tail = req.messages[2].parts
    assert result_b == ToolResultPart(
        tool_call_id="toolu_01B",
        content=(TextPart("service unavailable"),),
        is_error=True,
        cache_control={"type": "ephemeral"},
    )
    assert tail == TextPart("Also, is the Tokyo lookup retryable?")


def test_claude_code_body_back_to_anthropic_keeps_everything() -> None:
    body = load("anthropic/request_claude_code.json")
    req = anthropic.parse_request(body)
    out = anthropic.render_request(req, upstream_model="claude-sonnet-4-6", stream=True, version="2023-06-01")
    # The thinking budget rules out sampling fields: temperature is the only thing left behind;
    # a result of one plain text block is written as the equivalent string.
    want = {k: v for k, v in copy.deepcopy(body).items() if k != "temperature"}
    want["messages"][2]["content"][1]["content"] = "service unavailable"
    assert out == want


def test_claude_code_body_to_openai_matches_golden() -> None:
    req = anthropic.parse_request(load("anthropic/request_claude_code.json"))
    golden_json("openai/rendered/request_from_anthropic_claude_code.json",
                openai_chat.render_request(req, upstream_model="gpt-5-4", stream=True))  # fmt: skip


def test_openai_body_to_anthropic_matches_golden() -> None:
    req = openai_chat.parse_request(load("openai/request_tools.json"))
    golden_json("anthropic/rendered/request_from_openai_tools.json",
                anthropic.render_request(req, upstream_model="claude-sonnet-4-6", stream=True))  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.pop("max_tokens"), "max_tokens: field required"),
        (lambda b: b.update(max_tokens="10"), "max_tokens: must be an integer"),
        (lambda b: b.update(max_tokens=-1), "max_tokens: must be >= 0"),
        (lambda b: b.pop("model"), "model: field required"),
        (lambda b: b.pop("messages"), "messages: field required"),
        (lambda b: b.update(messages={"role": "user"}), "messages: must be a list"),
        (lambda b: b.update(messages=["hi"]), "messages[0]: must be an object"),
        (
            lambda b: b.update(messages=[{"role": "system", "content": "x"}]),
            "messages[0].role: must be 'user' or 'assistant'",
        ),
        (lambda b: b.update(messages=[{"role": "user"}]), "messages[0].content: field required"),
        (
            lambda b: b.update(messages=[{"role": "user", "content": [{"text": "x"}]}]),
            "messages[0].content[0].type: field required",
        ),
        (
            lambda b: b.update(messages=[{"role": "user", "content": [{"type": "text", "text": 3}]}]),
            "messages[0].content[0].text: must be a string",
        ),
        (
            lambda b: b.update(messages=[{"role": "user", "content": [{"type": "image", "source": "x"}]}]),
            "messages[0].content[0].source: must be an object",
        ),
        (
            lambda b: b.update(messages=[{"role": "user", "content": [{"type": "tool_result"}]}]),
            "messages[0].content[0].tool_use_id: field required",
        ),
        (lambda b: b.update(system=[{"type": "text"}]), "system[0].text: field required"),
        (lambda b: b.update(temperature="hot"), "temperature: must be a number"),
        (lambda b: b.update(stream="yes"), "stream: must be a boolean"),
        (lambda b: b.update(stop_sequences="END"), "stop_sequences: must be a list"),
        (lambda b: b.update(tools=[{"description": "x"}]), "tools[0].name: field required"),
        (
            lambda b: b.update(tool_choice={"type": "sometimes"}),
            "tool_choice.type: must be one of auto, any, tool, none",
        ),
        (lambda b: b.update(tool_choice={"type": "tool"}), "tool_choice.name: field required"),
        (lambda b: b.update(thinking={"type": "enabled"}), "thinking.budget_tokens: field required"),
        (lambda b: b.update(metadata="u1"), "metadata: must be an object"),
    ],
)
def test_parse_invalid_body_names_the_field(mutate: Any, message: str) -> None:
    body = minimal()
    mutate(body)
    with pytest.raises(InvalidRequest) as info:
        anthropic.parse_request(body)
    assert info.value.message == message and info.value.status == 400


def test_parse_body_not_an_object() -> None:
    with pytest.raises(InvalidRequest, match="body: must be an object"):
        anthropic.parse_request([1, 2])  # type: ignore[arg-type]


def test_render_drops_sampling_for_2026_version_and_defaults_max_tokens() -> None:
    req = ChatRequest(
        model="m", messages=(Message("user", (TextPart("hi"),)),), temperature=0.5, top_p=0.9, top_k=5
    )
    old = anthropic.render_request(req, upstream_model="claude-x", stream=False, version="2023-06-01")
    new = anthropic.render_request(
        req, upstream_model="claude-x", stream=False, version="2026-10-21", default_max_tokens=64000
    )
    assert (old["temperature"], old["top_p"], old["top_k"], old["max_tokens"]) == (0.5, 0.9, 5, 4096)
    assert (
        "temperature" not in new and "top_p" not in new and "top_k" not in new and new["max_tokens"] == 64000
    )


def test_render_clamps_openai_temperature_and_drops_whitespace_stops() -> None:
    req = ChatRequest(
        model="m",
        messages=(Message("user", (TextPart("hi"),)),),
        temperature=1.7,
        stop=(" ", "\n", "END"),
        source="openai",
    )
    out = anthropic.render_request(req, upstream_model="c", stream=False)
    assert out["temperature"] == 1.0 and out["stop_sequences"] == ["END"]


@pytest.mark.parametrize(
    ("thinking", "max_tokens", "expected"),
    [
        (Thinking(mode="enabled", effort="low"), 8000, {"type": "enabled", "budget_tokens": 1024}),
        (Thinking(mode="enabled", effort="high"), 8000, {"type": "enabled", "budget_tokens": 4096}),
        (Thinking(mode="enabled", budget_tokens=10000), 8000, {"type": "enabled", "budget_tokens": 4000}),
        (Thinking(mode="enabled", budget_tokens=2000), 1500, {"type": "enabled", "budget_tokens": 1024}),
        (Thinking(mode="enabled", budget_tokens=2000), 1024, None),
        (Thinking(mode="adaptive"), 8000, {"type": "adaptive"}),
        (Thinking(mode="disabled", effort="none"), 8000, {"type": "disabled"}),
    ],
)
def test_render_thinking_budget(thinking: Thinking, max_tokens: int, expected: dict | None) -> None:
    req = ChatRequest(
        model="m", messages=(Message("user", (TextPart("hi"),)),), max_tokens=max_tokens, thinking=thinking
    )
    assert anthropic.render_request(req, upstream_model="c", stream=False).get("thinking") == expected


def test_render_forced_tool_drops_thinking() -> None:
    req = ChatRequest(
        model="m", messages=(Message("user", (TextPart("hi"),)),), tools=(Tool(name="f"),),
        tool_choice=ToolChoice(mode="tool", name="f"), thinking=Thinking(effort="high"),
    )  # fmt: skip
    out = anthropic.render_request(req, upstream_model="c", stream=False)
    assert out["tool_choice"] == {"type": "tool", "name": "f"} and "thinking" not in out


def test_render_merges_turns_strips_foreign_state_and_sanitizes_ids() -> None:
    req = ChatRequest(
        model="m",
        messages=(
            Message("user", (TextPart("a"),)),
            Message("user", (TextPart(""), TextPart("b"))),
            Message("assistant", (
                ThinkingPart(text="deepseek thoughts", origin="openai"),
                ThinkingPart(text="unsigned"),
                ThinkingPart(text="gemini", signature="sig", origin="gemini"),
                ThinkingPart(text="signed", signature="sig", origin="anthropic"),
                ThinkingPart(redacted="blob", origin="anthropic"),
                RawPart(origin="gemini", data={"executableCode": {}}),
                ToolCallPart(id="functions.get:0", name="get", arguments="not json"),
            )),
            Message("user", (TextPart("then"), ToolResultPart(tool_call_id="functions.get:0"))),
        ),
        tools=(), tool_choice=ToolChoice(mode="auto"), extras={"seed": 1}, source="openai",
    )  # fmt: skip
    out = anthropic.render_request(req, upstream_model="c", stream=False)
    assert "tool_choice" not in out and "seed" not in out
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "signed", "signature": "sig"},
            {"type": "redacted_thinking", "data": "blob"},
            {"type": "tool_use", "id": "functions_get_0", "name": "get", "input": {}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "functions_get_0"}, {"type": "text", "text": "then"}]},
    ]  # fmt: skip


def test_render_images_url_data_uri_and_base64() -> None:
    parts = (
        ImagePart(url="https://x/a.png"),
        ImagePart(url="data:image/webp;base64,UklG"),
        ImagePart(media_type="image/gif", data="R0lG"),
    )
    out = anthropic.render_request(
        ChatRequest(model="m", messages=(Message("user", parts),)), upstream_model="c", stream=False
    )
    assert [b["source"] for b in out["messages"][0]["content"]] == [
        {"type": "url", "url": "https://x/a.png"},
        {"type": "base64", "media_type": "image/webp", "data": "UklG"},
        {"type": "base64", "media_type": "image/gif", "data": "R0lG"},
    ]


def test_response_round_trip_and_usage() -> None:
    body = load("anthropic/response_tools.json")
    resp = anthropic.parse_response(body)
    assert resp.stop_reason == "tool_use"
    assert resp.usage == Usage(
        input_tokens=12, output_tokens=35, cache_write_tokens=100, cache_read_tokens=2048
    )
    out = anthropic.render_response(resp, model="claude-sonnet-4-6", created=0)
    want = copy.deepcopy(body)
    for key in ("cache_creation", "service_tier"):
        want["usage"].pop(key)
    assert out == want


def test_render_response_shows_foreign_reasoning_unsigned() -> None:
    resp = openai_chat.parse_response(load("openai/response_reasoning_tools.json"))
    out = anthropic.render_response(resp, model="deepseek-v4-pro", created=0)
    assert out["content"][0] == {"type": "thinking", "thinking": "Two cities, two calls.", "signature": ""}
    assert out["content"][2] == {
        "type": "tool_use",
        "id": "call_A1",
        "name": "get_weather",
        "input": {"city": "Zürich"},
    }
    assert out["stop_reason"] == "tool_use"
    assert out["usage"] == {
        "input_tokens": 112,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2048,
        "output_tokens": 35,
    }
    # ...and the caller's next turn sends it back unsigned: replayed to DeepSeek, never to Anthropic.
    req = anthropic.parse_request(minimal(messages=[{"role": "assistant", "content": out["content"]}]))
    assert (
        anthropic.render_request(req, upstream_model="c", stream=False)["messages"][0]["content"][0]["type"]
        == "text"
    )
    assert (
        openai_chat.render_request(req, upstream_model="d", stream=False)["messages"][0]["reasoning_content"]
        == "Two cities, two calls."
    )


def test_parse_response_malformed_is_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        anthropic.parse_response({"content": [{"type": "text"}]})


@pytest.mark.parametrize(
    ("err", "status", "kind", "message"),
    [
        (
            InvalidRequest("max_tokens: field required"),
            400,
            "invalid_request_error",
            "invalid_param: max_tokens: field required",
        ),
        (
            InsufficientBalance("balance too low"),
            402,
            "billing_error",
            "insufficient_balance: balance too low",
        ),
        (
            ModelNotFound("model 'x' not found"),
            404,
            "not_found_error",
            "model_not_found: model 'x' not found",
        ),
        (RateLimited("slow down"), 429, "rate_limit_error", "rate_limit_error: slow down"),
        (
            UpstreamError("upstream overloaded", status=529),
            529,
            "overloaded_error",
            "upstream_error: upstream overloaded",
        ),
    ],
)
def test_render_error_shape(err: Any, status: int, kind: str, message: str) -> None:
    assert anthropic.render_error(err) == (
        status,
        {"type": "error", "error": {"type": kind, "message": message}},
    )


def test_render_stream_error_event() -> None:
    out = anthropic.render_stream_error(UpstreamError("gone", status=502))
    assert (
        out
        == b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"upstream_error: gone"}}\n\n'
    )


@pytest.mark.parametrize(
    ("status", "shown", "code"),
    [(529, 529, "upstream_error"), (429, 429, "rate_limit_error"), (500, 502, "upstream_error"),
     (503, 503, "upstream_error"), (401, 502, "upstream_error"), (400, 400, "upstream_error")],
)  # fmt: skip
def test_parse_error_status_mapping(status: int, shown: int, code: str) -> None:
    err = anthropic.parse_error(status, (A / "error_overloaded.json").read_bytes())
    assert (err.status, err.upstream_status, err.code) == (shown, status, code)
    assert "Overloaded" in err.message


def test_parse_error_context_length_and_garbage() -> None:
    body = b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}'
    assert anthropic.parse_error(400, body).code == "context_length_exceeded"
    err = anthropic.parse_error(502, b"<html>Bad gateway x-api-key: sk-ant-abcdef123456</html>")
    assert err.status == 502 and "sk-ant" not in err.message


def test_passthrough_request_changes_only_model_and_stream() -> None:
    body = load("anthropic/request_claude_code.json")
    out = anthropic.passthrough_request(body, upstream_model="claude-sonnet-4-6-20261001", stream=True)
    assert out == {**body, "model": "claude-sonnet-4-6-20261001"}
    assert body["model"] == "claude-sonnet-4-6"


def test_render_response_for_responses_from_chat_response() -> None:
    resp = ChatResponse(
        id="msg_1",
        model="m",
        parts=(TextPart("hi"), RawPart(origin="gemini", data={"x": 1})),
        stop_reason="max_tokens",
    )
    out = anthropic.render_response(resp, model="m", created=0)
    assert out["content"] == [{"type": "text", "text": "hi"}] and out["stop_reason"] == "max_tokens"
