"""Gemini caller side: what a google-genai client sends us and what it gets back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import httpx2
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from core.errors import GatewayError, InvalidRequest, RateLimited
from gateway.canonical import (
    ChatResponse,
    ImagePart,
    Message,
    TextPart,
    Thinking,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from gateway.canonical_events import (
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from gateway.protocols import gemini

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "gemini"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def test_parse_request_reference_body() -> None:
    req = gemini.parse_request(load("request.json"), model="gemini-3-1-pro", stream=True)
    assert req.model == "gemini-3-1-pro" and req.stream and req.source == "gemini"
    assert req.system == (TextPart("You are terse."),)
    assert req.messages == (
        Message("user", (TextPart("Weather in Paris?"), ImagePart(media_type="image/png", data="iVBORw0KGgo="))),
        Message("assistant", (ToolCallPart(id="call_0", name="get_weather", arguments='{"city":"Paris"}',
                                           signature="CiQBcsjafNsig=="),)),
        Message("user", (ToolResultPart(tool_call_id="call_0", content=(TextPart("18C, cloudy"),),
                                        name="get_weather"),)),
    )
    assert req.tools == (Tool(name="get_weather", description="Current weather for a city.", parameters={
        "type": "object",
        "properties": {"city": {"type": "string"},
                       "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}),)
    assert req.tool_choice == ToolChoice(mode="tool", name="get_weather")
    assert (req.max_tokens, req.temperature, req.top_p, req.top_k, req.stop) == (1024, 0.7, 0.95, 40, ("END",))
    assert req.thinking == Thinking(mode="enabled", budget_tokens=1024)
    assert [(t.kind, t.raw) for t in req.server_tools] == [("web_search", {"googleSearch": {}})]
    assert req.extras["safetySettings"][0]["threshold"] == "BLOCK_ONLY_HIGH"
    assert req.extras["generationConfig"]["seed"] == 7


def test_parse_request_snake_case() -> None:
    req = gemini.parse_request(load("request_snake_case.json"), model="models/gemini-3-1-pro")
    assert req.model == "gemini-3-1-pro"
    assert req.system == (TextPart("Be brief."),)
    assert req.messages[0].parts[1] == ImagePart(media_type="image/jpeg", data="/9j/4AAQ")
    assert req.tools[0].parameters["additionalProperties"] is False
    assert req.tool_choice == ToolChoice(mode="none")
    assert req.max_tokens == 64 and req.stop == ("\n\n",)
    assert req.thinking == Thinking(mode="enabled", effort="low")
    assert req.response_format == {"type": "json_schema", "json_schema": {
        "name": "response", "schema": {"type": "object", "properties": {"answer": {"type": "string"}}}}}


def test_parse_request_function_responses_match_calls_by_name_and_order() -> None:
    body = {"contents": [
        {"role": "user", "parts": [{"text": "two lookups"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"n": 1}}},
                                    {"functionCall": {"name": "g", "args": {}}},
                                    {"functionCall": {"name": "f", "args": {"n": 2}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "one"}}},
                                   {"functionResponse": {"name": "f", "response": {"n": 2}}},
                                   {"functionResponse": {"name": "g", "response": {"error": "down"}}}]},
        {"role": "model", "parts": [{"functionCall": {"id": "given", "name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "given", "name": "f", "response": {}}}]},
    ]}
    req = gemini.parse_request(body, model="m", make_id=lambda n: f"id{n}")
    calls = [p.id for p in req.messages[1].parts if isinstance(p, ToolCallPart)]
    assert calls == ["id0", "id1", "id2"]
    results = req.messages[2].parts
    assert [(r.tool_call_id, r.content[0].text, r.is_error) for r in results if isinstance(r, ToolResultPart)] == [
        ("id0", "one", False), ("id2", '{"n":2}', False), ("id1", "down", True)]
    assert req.messages[4].parts[0].tool_call_id == "given"  # type: ignore[union-attr]


def test_parse_request_thought_parts_and_text_signatures() -> None:
    body = {"contents": [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "pondering", "thought": True, "thoughtSignature": "s1"},
                                    {"text": "Hello", "thoughtSignature": "s2"}]},
        {"role": "user", "parts": [{"text": "again"}]},
    ]}
    req = gemini.parse_request(body, model="m")
    assert req.messages[1].parts == (
        ThinkingPart(text="pondering", signature="s1", origin="gemini"),
        ThinkingPart(signature="s2", origin="gemini"),
        TextPart("Hello"),
    )
    back = gemini.render_request(req, upstream_model="gemini-3-1-pro", stream=False)
    assert back["contents"][1]["parts"] == body["contents"][1]["parts"]  # type: ignore[index]


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "contents"),
        ({"contents": "hi"}, "contents"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [{"role": "user", "parts": {"text": "x"}}]}, "contents[0].parts"),
        ({"contents": [{"parts": [{"functionCall": {"args": {}}}]}]}, "contents[0].parts[0].functionCall.name"),
        ({"contents": [{"parts": [{"inlineData": {"data": "x"}}]}]}, "contents[0].parts[0].inlineData.mimeType"),
        ({"contents": [{"parts": [{"text": 3}]}]}, "contents[0].parts[0].text"),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": "9"}},
         "generationConfig.maxOutputTokens"),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"thinkingConfig": {"thinkingLevel": "MAX"}}},
         "generationConfig.thinkingConfig.thinkingLevel"),
        ({"contents": [{"parts": [{"text": "x"}]}], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
         "toolConfig.functionCallingConfig.mode"),
        ({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{"description": "d"}]}]},
         "tools[0].name"),
        ({"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": 5}, "systemInstruction"),
    ],
)
def test_parse_request_invalid_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        gemini.parse_request(body, model="m")
    assert info.value.param == field and field in info.value.message


# --- rendering ---------------------------------------------------------------------------

RESPONSE = ChatResponse(
    id="req_42",
    model="claude-sonnet-4-6",
    parts=(
        ThinkingPart(text="Two cities.", signature="anthropic-sig", origin="anthropic"),
        TextPart("Checking."),
        ToolCallPart(id="toolu_01", name="get_weather", arguments='{"city":"Zürich"}'),
        ToolCallPart(id="toolu_02", name="get_weather", arguments='{"city":"Paris"}', signature="gsig"),
    ),
    stop_reason="tool_use",
    usage=Usage(input_tokens=20, output_tokens=40, cache_write_tokens=5, cache_read_tokens=100, reasoning_tokens=12),
)


def events_of(resp: ChatResponse) -> Iterator[StreamEvent]:
    """The canonical stream an upstream would have sent for ``resp`` (text split in two deltas)."""
    yield MessageStart(id=resp.id, model=resp.model, usage=Usage(input_tokens=resp.usage.input_tokens))
    for i, part in enumerate(resp.parts):
        if isinstance(part, TextPart):
            yield from (BlockStart(i, "text"), TextDelta(i, part.text[:3]), TextDelta(i, part.text[3:]), BlockStop(i))
        elif isinstance(part, ThinkingPart):
            yield BlockStart(i, "thinking", origin=part.origin)
            yield ThinkingDelta(i, part.text)
            if part.signature:
                yield SignatureDelta(i, part.signature, origin=part.origin)
            yield BlockStop(i)
        elif isinstance(part, ToolCallPart):
            yield BlockStart(i, "tool_call", id=part.id, name=part.name, signature=part.signature)
            yield from (ToolArgsDelta(i, part.arguments[:5]), ToolArgsDelta(i, part.arguments[5:]), BlockStop(i))
    yield MessageDelta(stop_reason=resp.stop_reason, usage=resp.usage, cost_credits=1234)
    yield MessageStop()


def render_stream(resp: ChatResponse) -> bytes:
    renderer = gemini.StreamRenderer(model="claude-sonnet-4-6", message_id=resp.id, created=1763800000)
    return b"".join(renderer.render(e) for e in events_of(resp))


def test_render_response_golden() -> None:
    body = gemini.render_response(RESPONSE, model="claude-sonnet-4-6", created=1763800000, cost_credits=1234)
    assert body == {
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "Two cities.", "thought": True},
                {"text": "Checking."},
                {"functionCall": {"id": "toolu_01", "name": "get_weather", "args": {"city": "Zürich"}}},
                {"functionCall": {"id": "toolu_02", "name": "get_weather", "args": {"city": "Paris"}},
                 "thoughtSignature": "gsig"},
            ]},
            "finishReason": "STOP",
            "index": 0,
        }],
        "usageMetadata": {"promptTokenCount": 125, "candidatesTokenCount": 28, "totalTokenCount": 165,
                          "cachedContentTokenCount": 100, "thoughtsTokenCount": 12, "costCredits": 1234},
        "modelVersion": "claude-sonnet-4-6",
        "responseId": "req_42",
    }


def test_stream_renderer_golden_bytes() -> None:
    assert render_stream(RESPONSE) == (FIXTURES / "caller_tools.sse").read_bytes()


def test_stream_renderer_error_is_google_error_chunk() -> None:
    renderer = gemini.StreamRenderer(model="m", message_id="r", created=0)
    out = renderer.render(MessageStart(id="r", model="m")) + renderer.render(BlockStart(0, "text"))
    out += renderer.render(TextDelta(0, "Part"))
    out += renderer.render(StreamError(kind="overloaded_error", message="upstream overloaded", status=529))
    assert out.endswith(b'data: {"error":{"code":529,"message":"overloaded_error: upstream overloaded",'
                        b'"status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",'
                        b'"reason":"OVERLOADED_ERROR","domain":"bytespike"}]}}\n\n')
    assert renderer.render(MessageStop()) == b""


def test_render_error_google_shape() -> None:
    status, body = gemini.render_error(RateLimited("too many requests", code="concurrency_limit"))
    assert status == 429
    assert body["error"]["code"] == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert body["error"]["message"] == "concurrency_limit: too many requests"
    assert gemini.render_stream_error(GatewayError("boom")).startswith(b'data: {"error":{"code":500,')


# --- the official google-genai client --------------------------------------------------------


def genai_client(handler: Any) -> genai.Client:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return genai.Client(api_key="sk-byts-test", http_options=types.HttpOptions(base_url="http://gw.test",
                                                                               httpx_client=http))


def test_google_genai_client_reads_non_stream_and_stream() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        model = request.url.path.split("/models/")[1].split(":")[0]
        req = gemini.parse_request(body, model=model, stream="streamGenerateContent" in request.url.path)
        seen.append({"path": request.url.path, "req": req, "key": request.headers.get("x-goog-api-key")})
        if req.stream:
            return httpx2.Response(200, content=render_stream(RESPONSE), headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, json=gemini.render_response(RESPONSE, model=req.model, created=0, cost_credits=9))

    client = genai_client(handler)
    config = types.GenerateContentConfig(
        system_instruction="Be brief.", max_output_tokens=100,
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
            name="get_weather", parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}))])],
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=2048),
    )
    reply = client.models.generate_content(model="claude-sonnet-4-6", contents="Weather?", config=config)
    assert reply.text == "Checking."
    assert [(c.name, c.args) for c in reply.function_calls or []] == [
        ("get_weather", {"city": "Zürich"}), ("get_weather", {"city": "Paris"})]
    assert reply.usage_metadata is not None and reply.usage_metadata.prompt_token_count == 125
    assert reply.usage_metadata.thoughts_token_count == 12
    req = seen[0]["req"]
    assert seen[0]["key"] == "sk-byts-test" and seen[0]["path"].endswith("/claude-sonnet-4-6:generateContent")
    assert req.system == (TextPart("Be brief."),) and req.max_tokens == 100
    assert req.thinking == Thinking(mode="enabled", budget_tokens=2048)
    assert req.tools[0].parameters == {"type": "object", "properties": {"city": {"type": "string"}}}

    chunks = list(client.models.generate_content_stream(model="claude-sonnet-4-6", contents="Weather?"))
    assert "".join(c.text or "" for c in chunks) == "Checking."
    calls = [fc.name for c in chunks for fc in (c.function_calls or [])]
    assert calls == ["get_weather", "get_weather"]
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata and chunks[-1].usage_metadata.total_token_count == 165


def test_google_genai_client_raises_on_rendered_error() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        status, body = gemini.render_error(InvalidRequest("contents: must not be empty", param="contents"))
        return httpx2.Response(status, json=body)

    with pytest.raises(genai_errors.ClientError) as info:
        genai_client(handler).models.generate_content(model="m", contents="x")
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert "contents" in (info.value.message or "")
