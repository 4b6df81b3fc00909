"""OpenAI Responses caller side: request parsing (Codex CLI bodies included), the response object, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidRequest, RateLimited, UpstreamError
from gateway.canonical import (
    ChatResponse,
    DocumentPart,
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
from gateway.protocols import openai_responses as responses

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "responses"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def test_parse_codex_cli_body() -> None:
    req = responses.parse_request(load("request_codex.json"))
    assert req.model == "claude-sonnet-4-6" and req.stream and req.source == "responses"
    assert [p.text for p in req.system] == [
        "<permissions instructions>\nFilesystem sandboxing: workspace-write.\n</permissions instructions>"]
    assert [m.role for m in req.messages] == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert len(req.messages[0].parts) == 2
    assert req.messages[1].parts == (
        ThinkingPart(text="**Listing files**", encrypted="gAAAAABpQ2Xx-opaque-reasoning-state==", origin="responses"),
        ToolCallPart(id="call_x1Yz", name="shell_command", arguments='{"command":"ls","workdir":"/home/dev/app"}'),
    )
    assert req.messages[2].parts == (
        ToolResultPart(tool_call_id="call_x1Yz", content=(TextPart("README.md\nsrc\n"),)),
    )
    assert req.messages[3].parts == (
        ToolCallPart(id="call_x2Yz", name="mcp__github--create_issue", arguments='{"title":"Add tests"}'),)
    assert req.messages[4].parts == (
        ToolResultPart(tool_call_id="call_x2Yz", content=(TextPart("Issue #12 created"),)),)
    assert req.messages[5].parts == (TextPart("Two entries; issue #12 is open."),)
    # web_search is a server tool (translated or refused per upstream); the custom (grammar) tool becomes a
    # function taking one string `input`; the namespace is flattened.
    assert [t.name for t in req.tools] == ["shell_command", "update_plan", "mcp__github--create_issue", "apply_patch"]
    assert req.tools[3].parameters["required"] == ["input"] and req.tools[3].custom_format is not None
    assert [t.kind for t in req.server_tools] == ["web_search"]
    assert req.tools[2].parameters["required"] == ["title"]
    assert req.thinking is None  # summary alone is not a request to reason
    assert req.user == "0199a2b4-7c1e-7d52-9f0a-3e5b6c7d8e9f"
    assert req.tool_choice == ToolChoice(mode="auto")
    assert req.extras["include"] == ["reasoning.encrypted_content"]
    assert req.extras["namespaces"] == {"mcp__github--create_issue": ["mcp__github", "create_issue"]}


def test_parse_full_body() -> None:
    req = responses.parse_request(load("request_full.json"))
    assert [p.text for p in req.system] == ["Answer in French.", "Be concise."]
    assert req.messages[0] == Message("user", (
        TextPart("What is in this picture?"),
        ImagePart(media_type="image/png", data="iVBORw0KGgo=", detail="low"),
        ImagePart(url="https://example.com/cat.jpg"),
    ))
    assert req.messages[1] == Message("assistant", (
        ThinkingPart(text="", signature="EqQBCkYIBxgCKkCsig", origin="anthropic"),
        TextPart("Un chat."),
        ToolCallPart(id="call_9", name="lookup", arguments='{"q":"chat"}'),
    ))
    assert req.messages[2] == Message("user", (
        ToolResultPart(tool_call_id="call_9", content=(TextPart("felis catus"),)), TextPart("Merci!")))
    assert req.tools == (Tool(name="lookup", strict=True),)
    assert req.tool_choice == ToolChoice(mode="tool", name="lookup", disable_parallel=True)
    assert (req.max_tokens, req.temperature, req.top_p) == (2048, 0.3, 0.8)
    assert req.thinking == Thinking(mode="enabled", effort="high", summary="detailed")
    assert req.response_format == {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": load("request_full.json")["text"]["format"]["schema"], "strict": True}}
    assert req.user == "user-7" and not req.stream


def test_parse_string_input_and_hosted_items() -> None:
    req = responses.parse_request({"model": "m", "input": "Hi", "instructions": None, "store": True})
    assert req.messages == (Message("user", (TextPart("Hi"),)),) and req.system == ()
    req = responses.parse_request({"model": "m", "input": [
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
        {"type": "message", "role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]},
    ], "reasoning": {"effort": "none"}, "tool_choice": {"type": "web_search"}})
    assert isinstance(req.messages[0].parts[0], RawPart) and req.messages[0].role == "assistant"
    assert isinstance(req.messages[1].parts[0], DocumentPart) and req.messages[1].parts[0].file_id == "file-1"
    assert req.thinking == Thinking(mode="disabled") and req.tool_choice == ToolChoice()


@pytest.mark.parametrize(
    "body,field",
    [
        ({"input": "hi"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": [7]}, "input[0]"),
        ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "input[0].content[0].text"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"model": "m", "input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"model": "m", "input": "x", "conversation": "conv_1"}, "conversation"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "temperature": "hot"}, "temperature"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream"),
    ],
)
def test_parse_invalid_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        responses.parse_request(body)
    assert info.value.param == field and field in info.value.message


def test_unresolved_state_is_refused_not_ignored() -> None:
    # The gateway resolves previous_response_id before parsing; the pure codec never drops it silently.
    for key in ("previous_response_id", "conversation"):
        with pytest.raises(InvalidRequest) as info:
            responses.parse_request({"model": "m", "input": "x", key: "resp_1"})
        assert "previous_response_id" in info.value.message and info.value.status == 400


# --- the response object ------------------------------------------------------------------

RESPONSE = ChatResponse(
    id="msg_01AbC",
    model="claude-sonnet-4-6",
    parts=(
        ThinkingPart(text="Plan: check both.", signature="EqQBsig", origin="anthropic"),
        TextPart("Checking "),
        TextPart("both."),
        ToolCallPart(id="toolu_1", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCallPart(id="toolu_2", name="mcp__github--create_issue", arguments=""),
        ImagePart(url="https://example.com/x.png"),
    ),
    stop_reason="tool_use",
    usage=Usage(input_tokens=30, output_tokens=50, cache_write_tokens=10, cache_read_tokens=60, reasoning_tokens=20),
)


def test_render_response_golden() -> None:
    body = responses.render_response(RESPONSE, model="claude-sonnet-4-6", created=1763800000, cost_credits=777)
    assert body == {
        "id": "resp_msg_01AbC", "object": "response", "created_at": 1763800000, "status": "completed",
        "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
        "model": "claude-sonnet-4-6",
        "output": [
            {"id": "rs_msg_01AbC_0", "type": "reasoning",
             "summary": [{"type": "summary_text", "text": "Plan: check both."}],
             "encrypted_content": "bsk1.anthropic.EqQBsig"},
            {"id": "msg_msg_01AbC_1", "type": "message", "role": "assistant", "status": "completed", "content": [
                {"type": "output_text", "text": "Checking ", "annotations": [], "logprobs": []},
                {"type": "output_text", "text": "both.", "annotations": [], "logprobs": []}]},
            {"id": "fc_msg_01AbC_2", "type": "function_call", "status": "completed",
             "arguments": '{"city":"Paris"}', "call_id": "toolu_1", "name": "get_weather"},
            {"id": "fc_msg_01AbC_3", "type": "function_call", "status": "completed", "arguments": "{}",
             "call_id": "toolu_2", "name": "create_issue", "namespace": "mcp__github"},
        ],
        "parallel_tool_calls": True, "store": False, "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 60}, "output_tokens": 50,
                  "output_tokens_details": {"reasoning_tokens": 20}, "total_tokens": 150, "cost_credits": 777},
    }


@pytest.mark.parametrize("stop,reason", [("max_tokens", "max_output_tokens"), ("refusal", "content_filter"),
                                         ("model_context_window_exceeded", "max_output_tokens")])
def test_render_response_incomplete(stop: str, reason: str) -> None:
    resp = ChatResponse(id="x", model="m", parts=(TextPart("cut"),), stop_reason=stop)
    body = responses.render_response(resp, model="m", created=0)
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": reason}


def test_reasoning_state_round_trips_through_the_client() -> None:
    body = responses.render_response(RESPONSE, model="m", created=0)
    replay = responses.parse_request({"model": "m", "input": [
        {"role": "user", "content": "go"}, *body["output"],
        {"type": "function_call_output", "call_id": "toolu_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "toolu_2", "output": "ok"}]})
    assistant = replay.messages[1].parts
    assert assistant[0] == ThinkingPart(text="Plan: check both.", signature="EqQBsig", origin="anthropic")
    assert assistant[1:3] == (TextPart("Checking "), TextPart("both."))
    assert assistant[4] == ToolCallPart(id="toolu_2", name="mcp__github--create_issue", arguments="{}")
    redacted = ChatResponse(id="x", model="m", parts=(ThinkingPart(redacted="opaque", origin="anthropic"),))
    item = responses.render_response(redacted, model="m", created=0)["output"][0]
    assert item["summary"] == [] and item["encrypted_content"] == "bsk1.anthropic-redacted.opaque"
    back = responses.parse_request({"model": "m", "input": [item]}).messages[0].parts[0]
    assert back == ThinkingPart(redacted="opaque", origin="anthropic")


def test_foreign_reasoning_without_text_leaves_no_item() -> None:
    resp = ChatResponse(id="x", model="m", parts=(ThinkingPart(signature="g", origin="gemini"), TextPart("hi")))
    output = responses.render_response(resp, model="m", created=0)["output"]
    assert [o["type"] for o in output] == ["message"]


def test_render_error_openai_shape() -> None:
    assert responses.render_error(InvalidRequest("input: field required", param="input")) == (
        400, {"error": {"message": "input: field required", "type": "invalid_request_error", "param": "input",
                        "code": "invalid_param"}})
    status, body = responses.render_error(RateLimited("slow down", code="concurrency_limit"))
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert responses.render_error(UpstreamError("gone"))[1]["error"]["type"] == "server_error"
