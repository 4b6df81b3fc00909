"""Chat Completions codec: request, response and error shapes on both sides."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.errors import AuthError, ConcurrencyLimited, InvalidRequest, NoChannel, QuotaExceeded, UpstreamError
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
from gateway.protocols.common import truncate_tool_name
from tests.gateway.protocols.test_sse import FIXTURES

LONG = "mcp__workspace_filesystem_server__read_text_file_with_line_numbers_and_ranges"


def load(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def minimal(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-5-4", "messages": [{"role": "user", "content": "hi"}]}
    body.update(over)
    return body


def test_parse_request_with_tools_images_and_extensions() -> None:
    req = openai_chat.parse_request(load("openai/request_tools.json"))
    assert req.source == "openai" and req.stream and req.max_tokens == 2048
    assert [p.text for p in req.system] == ["You are a weather assistant.", "Answer in one sentence."]
    assert [m.role for m in req.messages] == ["user", "assistant", "user", "user"]
    text, inline, remote = req.messages[0].parts
    assert text == TextPart("Weather in Zürich and 東京? Here is a map.", cache_control={"type": "ephemeral"})
    assert inline == ImagePart(media_type="image/png", data="iVBORw0KGgo=", detail="low")
    assert remote == ImagePart(url="https://example.com/map.jpg")
    assert req.messages[1].parts[0] == ThinkingPart(text="Two cities, two calls.", origin="openai")
    assert req.messages[2].parts == (
        ToolResultPart(tool_call_id="call_A1", content=(TextPart("14°C, light rain"),)),
        ToolResultPart(tool_call_id="call_B2", content=(TextPart("22°C, clear"),)),
    )
    assert req.tools[0].cache_control == {"type": "ephemeral"}
    assert req.tool_choice == ToolChoice(mode="any", disable_parallel=True)
    assert req.thinking == Thinking(mode="enabled", effort="low")
    assert req.stop == ("\n\n\n", "END", "  ") and req.user == "user-42"
    assert req.extras == {"seed": 7, "n": 1, "logprobs": False, "stream_options": {"include_usage": True}}
    assert openai_chat.include_usage(req)


def test_parse_request_system_anywhere_and_message_level_cache_control() -> None:
    body = minimal(messages=[
        {"role": "user", "content": "a", "cache_control": {"type": "ephemeral"}},
        {"role": "system", "content": [{"type": "text", "text": "late rule", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}, {"type": "refusal", "refusal": "no"}]},
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]},
    ])  # fmt: skip
    req = openai_chat.parse_request(body)
    assert req.system == (TextPart("late rule", cache_control={"type": "ephemeral", "ttl": "1h"}),)
    assert req.messages[0].parts == (TextPart("a", cache_control={"type": "ephemeral"}),)
    assert req.messages[1].parts == (TextPart("ok"), TextPart("no"))
    assert req.messages[2].parts == (
        RawPart(
            origin="openai", data={"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}
        ),
    )
    assert not openai_chat.include_usage(req)
    out = openai_chat.render_request(req, upstream_model="gpt", stream=False)
    assert out["messages"][0] == {"role": "system", "content": "late rule"}
    assert out["messages"][-1]["content"] == [
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}
    ]
    assert (
        anthropic.render_request(req, upstream_model="c", stream=False)["messages"][-1]["role"] == "assistant"
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.pop("model"), "model: field required"),
        (lambda b: b.pop("messages"), "messages: field required"),
        (lambda b: b.update(messages="hi"), "messages: must be a list"),
        (
            lambda b: b.update(messages=[{"role": "robot", "content": "x"}]),
            "messages[0].role: must be one of system, developer, user, assistant, tool",
        ),
        (
            lambda b: b.update(messages=[{"role": "user", "content": 5}]),
            "messages[0].content: must be a list",
        ),
        (
            lambda b: b.update(messages=[{"role": "user", "content": [{"type": "text"}]}]),
            "messages[0].content[0].text: field required",
        ),
        (
            lambda b: b.update(
                messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]
            ),
            "messages[0].content[0].image_url.url: field required",
        ),
        (
            lambda b: b.update(messages=[{"role": "tool", "content": "x"}]),
            "messages[0].tool_call_id: field required",
        ),
        (
            lambda b: b.update(messages=[{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]),
            "messages[0].tool_calls[0].function.name: field required",
        ),
        (lambda b: b.update(max_tokens=1.5), "max_tokens: must be an integer"),
        (lambda b: b.update(max_completion_tokens=True), "max_completion_tokens: must be an integer"),
        (lambda b: b.update(n=129), "n: at most 128 choices"),
        (lambda b: b.update(n=0), "n: must be >= 1"),
        (lambda b: b.update(stop=[1]), "stop[0]: must be a string"),
        (
            lambda b: b.update(tool_choice="always"),
            "tool_choice: must be one of none, auto, required or a function",
        ),
        (
            lambda b: b.update(tool_choice={"type": "function", "function": {}}),
            "tool_choice.function.name: field required",
        ),
        (lambda b: b.update(tools=[{"type": "function"}]), "tools[0].function: must be an object"),
        (lambda b: b.update(parallel_tool_calls="no"), "parallel_tool_calls: must be a boolean"),
        (lambda b: b.update(stream_options=True), "stream_options: must be an object"),
        (lambda b: b.update(user=42), "user: must be a string"),
    ],
)
def test_parse_invalid_body_names_the_field(mutate: Any, message: str) -> None:
    body = minimal()
    mutate(body)
    with pytest.raises(InvalidRequest) as info:
        openai_chat.parse_request(body)
    assert info.value.message == message and info.value.param == message.split(":")[0]


def test_render_tool_results_before_user_content_with_error_prefix_and_images() -> None:
    req = ChatRequest(
        model="m",
        messages=(
            Message("assistant", (ToolCallPart(id="toolu_1", name=LONG, arguments='{"path":"a"}'), ToolCallPart(id="toolu_2", name="g"))),
            Message("user", (
                TextPart("and now?"),
                ToolResultPart(tool_call_id="toolu_1", content=(TextPart("no such file"),), is_error=True),
                ToolResultPart(tool_call_id="toolu_2", content=(TextPart("chart:"), ImagePart(media_type="image/png", data="AAA"))),
            )),
        ),
        tools=(Tool(name=LONG), Tool(name="g")), tool_choice=ToolChoice(mode="tool", name=LONG, disable_parallel=True),
        stop=("a", "b", "c", "d", "e"), max_tokens=100,
    )  # fmt: skip
    out = openai_chat.render_request(req, upstream_model="gpt", stream=False, version="legacy")
    short = truncate_tool_name(LONG)
    assert len(short) == 64 and short.startswith(LONG[:55])
    assert out["messages"] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": short, "arguments": '{"path":"a"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: no such file"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "chart:"},
        {"role": "user", "content": [
            {"type": "text", "text": "and now?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
        ]},
    ]  # fmt: skip
    assert out["tools"][0]["function"]["name"] == short
    assert out["tool_choice"] == {"type": "function", "function": {"name": short}}
    assert (
        out["parallel_tool_calls"] is False
        and out["max_tokens"] == 100
        and out["stop"] == ["a", "b", "c", "d"]
    )
    assert "stream_options" not in out and out["stream"] is False


def test_render_stream_always_asks_for_usage_and_keeps_openai_extras_only() -> None:
    req = openai_chat.parse_request(
        minimal(seed=3, stream_options={"include_usage": False, "include_obfuscation": False})
    )
    out = openai_chat.render_request(req, upstream_model="gpt", stream=True)
    assert out["seed"] == 3 and out["stream_options"] == {"include_usage": True, "include_obfuscation": False}
    from_anthropic = anthropic.parse_request(
        {"model": "c", "max_tokens": 5, "messages": [], "context_management": {}}
    )
    out = openai_chat.render_request(from_anthropic, upstream_model="gpt", stream=True)
    assert "context_management" not in out and out["max_completion_tokens"] == 5


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        (Thinking(budget_tokens=1024), "low"),
        (Thinking(budget_tokens=2048), "medium"),
        (Thinking(budget_tokens=31999), "high"),
        (Thinking(mode="adaptive"), "medium"),
        (Thinking(mode="enabled", effort="minimal"), "minimal"),
        (Thinking(mode="disabled"), None),
    ],
)
def test_render_reasoning_effort(thinking: Thinking, effort: str | None) -> None:
    req = ChatRequest(model="m", messages=(), thinking=thinking)
    assert openai_chat.render_request(req, upstream_model="o", stream=False).get("reasoning_effort") == effort


def test_parse_response_reasoning_tools_and_usage() -> None:
    resp = openai_chat.parse_response(load("openai/response_reasoning_tools.json"))
    assert resp.parts == (
        ThinkingPart(text="Two cities, two calls.", origin="openai"),
        TextPart("Checking both cities."),
        ToolCallPart(id="call_A1", name="get_weather", arguments='{"city":"Zürich"}'),
        ToolCallPart(id="call_B2", name="get_weather", arguments='{"city":"東京"}'),
    )
    assert resp.stop_reason == "tool_use"
    assert resp.usage == Usage(
        input_tokens=112, output_tokens=35, cache_read_tokens=2048, reasoning_tokens=20
    )


def test_parse_response_maps_truncated_names_and_stop_with_calls() -> None:
    body = {"id": "c1", "model": "m", "choices": [{"finish_reason": "stop", "message": {"content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": truncate_tool_name(LONG), "arguments": "{}"}}]}}]}  # fmt: skip
    resp = openai_chat.parse_response(body, tools=[Tool(name=LONG)])
    assert (
        resp.parts == (ToolCallPart(id="call_1", name=LONG, arguments="{}"),)
        and resp.stop_reason == "tool_use"
    )


@pytest.mark.parametrize("body", [{}, {"choices": "x"}, {"choices": [{"message": {"tool_calls": [1]}}]}])
def test_parse_response_malformed_is_upstream_error(body: dict) -> None:
    with pytest.raises(UpstreamError):
        openai_chat.parse_response(body)


def test_render_response_from_anthropic_answer() -> None:
    resp = anthropic.parse_response(load("anthropic/response_tools.json"))
    out = openai_chat.render_response(resp, model="claude-sonnet-4-6", created=1763800000)
    assert out == {
        "id": "msg_01Resp", "object": "chat.completion", "created": 1763800000, "model": "claude-sonnet-4-6",
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking both cities.", "refusal": None, "reasoning_content": "Two cities.",
            "tool_calls": [
                {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Zürich"}'}},
                {"id": "toolu_01B", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"東京"}'}},
            ]}}],
        "usage": {"prompt_tokens": 2160, "completion_tokens": 35, "total_tokens": 2195,
                  "prompt_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 100},
                  "completion_tokens_details": {"reasoning_tokens": 0}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("refusal", "content_filter"), ("pause_turn", "length"), ("model_context_window_exceeded", "length"), ("odd", "stop")],
)  # fmt: skip
def test_render_response_finish_reasons(stop: str, finish: str) -> None:
    resp = ChatResponse(id="x", model="m", parts=(TextPart("t"),), stop_reason=stop)
    assert openai_chat.render_response(resp, model="m", created=0)["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(
    ("err", "status", "type_", "code"),
    [
        (
            InvalidRequest("messages: must be a list", param="messages"),
            400,
            "invalid_request_error",
            "invalid_param",
        ),
        (AuthError("invalid key"), 401, "authentication_error", "invalid_api_key"),
        (QuotaExceeded("quota"), 402, "insufficient_quota", "quota_exceeded"),
        (ConcurrencyLimited("busy"), 429, "rate_limit_error", "concurrency_limit"),
        (NoChannel("no channel configured"), 503, "server_error", "no_channel"),
    ],
)
def test_render_error_shape(err: Any, status: int, type_: str, code: str) -> None:
    got_status, body = openai_chat.render_error(err)
    assert got_status == status
    assert body == {"error": {"message": err.message, "type": type_, "param": err.param, "code": code}}


def test_render_stream_error_is_a_data_frame() -> None:
    out = openai_chat.render_stream_error(UpstreamError("gone"))
    assert (
        out
        == b'data: {"error":{"message":"gone","type":"server_error","param":null,"code":"upstream_error"}}\n\n'
    )


def test_parse_error_hides_the_key_and_maps_status() -> None:
    body = (FIXTURES / "openai" / "error_invalid_key.json").read_bytes()
    err = openai_chat.parse_error(401, body)
    assert err.status == 502 and err.upstream_status == 401 and "sk-proj" not in err.message
    assert "invalid_request_error" in err.message
    rate = openai_chat.parse_error(
        429, b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    )
    assert (rate.status, rate.code) == (429, "rate_limit_error")
    assert (
        openai_chat.parse_error(
            400, b'{"error":{"message":"This model\'s maximum context length is 8192 tokens"}}'
        ).code
        == "context_length_exceeded"
    )
    assert openai_chat.parse_error(503, b'{"error":"busy, Bearer abc.def"}').message.endswith(
        "busy, [redacted]"
    )


def test_passthrough_request_forces_usage_in_stream() -> None:
    body = minimal(stream_options={"include_obfuscation": False})
    out = openai_chat.passthrough_request(body, upstream_model="gpt-5.4", stream=True)
    assert out == {
        **body,
        "model": "gpt-5.4",
        "stream": True,
        "stream_options": {"include_obfuscation": False, "include_usage": True},
    }
    assert "stream_options" not in openai_chat.passthrough_request(body, upstream_model="g", stream=False)
