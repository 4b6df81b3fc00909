"""Gemini upstream side: request bodies, responses, streams split anywhere, passthrough, errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from core.errors import InvalidRequest
from gateway.canonical import (
    ChatRequest,
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
from gateway.protocols import gemini, registry
from gateway.protocols.gemini.parts import DUMMY_SIGNATURE
from gateway.protocols.passthrough import PassthroughStream
from gateway.sse import SSEDecoder
from tests.gateway.protocols.test_sse import check_golden, render_stream

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "gemini"
STREAMS = sorted(FIXTURES.glob("*.sse"))


def parse_stream(data: bytes, cuts: list[int]) -> list[StreamEvent]:
    """Feed ``data`` split at ``cuts`` through the SSE decoder and the Gemini stream parser."""
    decoder, parser = SSEDecoder(), gemini.StreamParser()
    events: list[StreamEvent] = []
    last = 0
    for cut in sorted(cuts) + [len(data)]:
        for ev in decoder.feed(data[last:cut]):
            events += parser.feed(ev)
        last = cut
    for ev in decoder.flush():
        events += parser.feed(ev)
    return events + parser.finish()


def fixture_events(name: str) -> list[StreamEvent]:
    return parse_stream((FIXTURES / name).read_bytes(), [])


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.name)
def test_stream_parser_split_anywhere_gives_same_events(path: Path) -> None:
    data = path.read_bytes()
    whole = parse_stream(data, [])
    rng = random.Random(path.name)
    for _ in range(15):
        assert parse_stream(data, rng.sample(range(1, len(data)), 9)) == whole
    assert parse_stream(data, list(range(1, len(data)))) == whole


def test_stream_parser_text_merges_chunks_and_bills_last_usage() -> None:
    events = fixture_events("text.sse")
    assert events[0] == MessageStart(id="aBcD1234efGh", model="gemini-3.1-pro-preview")
    assert events[1] == BlockStart(index=0, kind="text", origin="gemini")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris is cloudy, 18°C — bring a jacket."
    assert events[-3:] == [
        BlockStop(0),
        MessageDelta(stop_reason="end_turn", usage=Usage(input_tokens=12, output_tokens=11)),
        MessageStop(),
    ]


def test_stream_parser_parallel_calls_keep_signature_and_make_ids() -> None:
    events = fixture_events("tools_parallel.sse")
    assert events[1:5] == [
        BlockStart(index=0, kind="thinking", origin="gemini"),
        ThinkingDelta(0, "Checking both cities."),
        SignatureDelta(0, "EuYBCuMBAdHtim9sig==", origin="gemini"),
        BlockStop(0),
    ]
    assert events[5:11] == [
        BlockStart(1, "tool_call", id="call_aBcD1234efGh_0", name="get_weather", signature="CiQBcsjafNsig2==",
                   origin="gemini"),
        ToolArgsDelta(1, '{"city":"Zürich"}'),
        BlockStop(1),
        BlockStart(2, "tool_call", id="call_aBcD1234efGh_1", name="get_weather", origin="gemini"),
        ToolArgsDelta(2, '{"city":"Paris","unit":"celsius"}'),
        BlockStop(2),
    ]
    usage = Usage(input_tokens=16, output_tokens=75, cache_read_tokens=64, reasoning_tokens=45)
    assert events[11:] == [MessageDelta(stop_reason="tool_use", usage=usage), MessageStop()]


def test_stream_parser_thinking_then_text_signature_on_empty_part() -> None:
    events = fixture_events("thinking.sse")
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    assert thinking == "**Weighing options**\n\nThe user wants a short answer."
    kinds = [(e.kind, e.index) for e in events if isinstance(e, BlockStart)]
    assert kinds == [("thinking", 0), ("text", 1), ("thinking", 2)]
    assert SignatureDelta(2, "Cp0CAdHtim9finalsig==", origin="gemini") in events
    assert events[-2] == MessageDelta(stop_reason="end_turn", usage=Usage(input_tokens=20, output_tokens=37,
                                                                           reasoning_tokens=33))


def test_stream_parser_usage_only_at_end_and_max_tokens() -> None:
    events = fixture_events("usage_late.sse")
    assert events[-2] == MessageDelta(stop_reason="max_tokens", usage=Usage(input_tokens=7, output_tokens=5))


def test_stream_parser_midstream_error_is_stream_error_without_key() -> None:
    events = fixture_events("error_midstream.sse")
    assert events[-2:] == [BlockStop(0), events[-1]]
    err = events[-1]
    assert isinstance(err, StreamError) and err.status == 503 and err.kind == "overloaded_error"
    assert "overloaded" in err.message and "AIza" not in err.message


def test_stream_parser_early_end_is_stream_error() -> None:
    events = fixture_events("early_end.sse")
    assert not any(isinstance(e, (MessageDelta, MessageStop)) for e in events)
    assert isinstance(events[-1], StreamError) and "finishReason" in events[-1].message


def test_stream_parser_bad_json_is_stream_error() -> None:
    events = parse_stream(b"data: {not json\n\n", [])
    assert isinstance(events[-1], StreamError)


def test_parse_response_tools_thinking_usage() -> None:
    body = json.loads((FIXTURES / "response_tools.json").read_text())
    resp = gemini.parse_response(body)
    assert resp.id == "aBcD1234efGh" and resp.model == "gemini-3.1-pro-preview"
    assert resp.parts == (
        ThinkingPart(text="I should look both up.", origin="gemini"),
        ToolCallPart(id="call_aBcD1234efGh_0", name="get_weather", arguments='{"city":"Paris"}',
                     signature="CiQBcsjafNsig=="),
        ToolCallPart(id="call_aBcD1234efGh_1", name="get_time", arguments="{}"),
    )
    assert resp.stop_reason == "tool_use"
    assert resp.usage == Usage(input_tokens=20, output_tokens=73, cache_read_tokens=100, reasoning_tokens=64)


def test_parse_response_counts_inclusive_candidates_once() -> None:
    meta = {"promptTokenCount": 10, "candidatesTokenCount": 30, "thoughtsTokenCount": 20, "totalTokenCount": 40}
    resp = gemini.parse_response({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}],
                                  "usageMetadata": meta})
    assert resp.usage.output_tokens == 30 and resp.usage.reasoning_tokens == 20


def test_parse_response_blocked_prompt_is_refusal() -> None:
    resp = gemini.parse_response(json.loads((FIXTURES / "response_blocked.json").read_text()))
    assert resp.parts == () and resp.stop_reason == "refusal"


@pytest.mark.parametrize(
    "finish,stop", [("STOP", "end_turn"), ("MAX_TOKENS", "max_tokens"), ("SAFETY", "refusal"),
                    ("RECITATION", "refusal"), ("MALFORMED_FUNCTION_CALL", "end_turn"), ("NEW_REASON", "end_turn")],
)
def test_parse_response_finish_reason_table(finish: str, stop: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": finish}]}
    assert gemini.parse_response(body).stop_reason == stop


def test_parse_error_keeps_status_and_hides_key() -> None:
    err = gemini.parse_error(400, (FIXTURES / "error_invalid_key.json").read_bytes())
    assert err.upstream_status == 401 and err.status == 502  # Google's 400 for a bad key is our problem
    assert "API key not valid" in err.message and "AIza" not in err.message
    assert gemini.parse_error(429, b'{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}').status == 429
    assert gemini.parse_error(500, b"<html>oops</html>").status == 502
    bad = gemini.parse_error(400, b'{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}')
    assert (bad.status, bad.upstream_status) == (400, 400)


# --- render_request -------------------------------------------------------------------


def _cross_vendor_request() -> ChatRequest:
    """A conversation that came from an OpenAI-style caller: ids, no signatures, foreign reasoning."""
    return ChatRequest(
        model="gemini-3-1-pro",
        system=(TextPart("Be brief."),),
        messages=(
            Message("user", (TextPart("Weather in Paris and the time?"), ImagePart(url="https://x.test/a.webp"))),
            Message("assistant", (
                ThinkingPart(text="plan", signature="anthropic-sig", origin="anthropic"),
                ThinkingPart(text="", encrypted="gAAAA", origin="responses"),
                TextPart("Looking."),
                ToolCallPart(id="toolu_1", name="get_weather", arguments='{"city":"Paris"}'),
                ToolCallPart(id="toolu_2", name="get_time", arguments=""),
            )),
            Message("user", (
                TextPart("and hurry"),
                ToolResultPart(tool_call_id="toolu_2", content=(TextPart("12:00"),)),
                ToolResultPart(tool_call_id="toolu_1", content=(TextPart('{"temp": 18}'),
                                                               ImagePart(media_type="image/png", data="iVBO"))),
            )),
            Message("assistant", (ToolCallPart(id="toolu_3", name="get_time", arguments="{}"),)),
            Message("user", (ToolResultPart(tool_call_id="toolu_3", content=(TextPart("boom"),), is_error=True),)),
        ),
        tools=(
            Tool(name="get_weather", description="Weather.", parameters={
                "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "const": "c"}},
                "required": ["city"], "additionalProperties": False}),
            Tool(name="get_time", parameters={"type": "object", "properties": {}}),
        ),
        tool_choice=ToolChoice(mode="tool", name="get_weather", disable_parallel=True),
        max_tokens=512, temperature=0.2, top_p=0.9, stop=("END",),
        thinking=Thinking(mode="enabled", effort="medium"),
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}}},
        user="someone", source="openai",
    )


def test_render_request_cross_vendor_golden() -> None:
    body = gemini.render_request(_cross_vendor_request(), upstream_model="gemini-3-1-pro", stream=True)
    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris and the time?"},
                                       {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/a.webp"}}]},
            {"role": "model", "parts": [
                {"text": "Looking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": DUMMY_SIGNATURE},
                {"functionCall": {"name": "get_time", "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_time", "response": {"content": "12:00"}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp": 18}}},
                {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                {"text": "and hurry"},
            ]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_time", "args": {}},
                                         "thoughtSignature": DUMMY_SIGNATURE}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {"error": "boom"}}}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather.", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"},
                                                 "unit": {"type": "string", "nullable": True, "enum": ["c"]}},
                "required": ["city"]}},
            {"name": "get_time"},
        ]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {
            "maxOutputTokens": 512, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"],
            "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "high"},
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    }
    assert "anthropic-sig" not in json.dumps(body) and "gAAAA" not in json.dumps(body)


def test_render_request_gemini_2_takes_budgets() -> None:
    body = gemini.render_request(_cross_vendor_request(), upstream_model="gemini-2.5-flash", stream=False)
    assert body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 8192}


def test_render_request_unknown_tool_result_is_400() -> None:
    req = ChatRequest(model="m", messages=(Message("user", (ToolResultPart(tool_call_id="nope"),)),))
    with pytest.raises(InvalidRequest) as info:
        gemini.render_request(req, upstream_model="gemini-3-1-pro", stream=False)
    assert info.value.param == "messages"


def test_render_request_same_protocol_round_trip_keeps_gemini_fields() -> None:
    body = json.loads((FIXTURES / "request.json").read_text())
    req = gemini.parse_request(body, model="gemini-3-1-pro")
    out = gemini.render_request(req, upstream_model="gemini-3-1-pro", stream=False)
    assert out["contents"][1]["parts"][0]["thoughtSignature"] == "CiQBcsjafNsig=="
    assert out["contents"][2]["parts"][0] == {"functionResponse": {"name": "get_weather",
                                                                   "response": {"content": "18C, cloudy"}}}
    assert out["safetySettings"] == body["safetySettings"]
    assert {"googleSearch": {}} in out["tools"]
    assert out["generationConfig"]["seed"] == 7
    assert out["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}


def test_passthrough_adds_cost_to_last_chunk_only() -> None:
    data = (FIXTURES / "tools_parallel.sse").read_bytes()
    stream = PassthroughStream(gemini.PASSTHROUGH, include_usage=False, cost_fn=lambda u: u.output_tokens * 10)
    decoder = SSEDecoder()
    events = decoder.feed(data) + decoder.flush()
    out = [stream.feed(ev) for ev in events]
    assert out[0] == events[0].raw
    last = json.loads(out[1].decode().removeprefix("data: "))
    original = json.loads(events[1].data)
    assert last["usageMetadata"] == {**original["usageMetadata"], "costCredits": 750}
    assert last["candidates"] == original["candidates"]
    assert stream.done and stream.error is None
    assert stream.usage == Usage(input_tokens=16, output_tokens=75, cache_read_tokens=64, reasoning_tokens=45)


def test_passthrough_forwards_an_early_end_unchanged() -> None:
    data = (FIXTURES / "early_end.sse").read_bytes()
    stream = PassthroughStream(gemini.PASSTHROUGH, include_usage=True, cost_fn=lambda u: 1)
    decoder = SSEDecoder()
    assert b"".join(stream.feed(ev) for ev in decoder.feed(data) + decoder.flush()) == data
    assert not stream.done and stream.error is None


def test_passthrough_error_chunk_is_rewritten_without_the_key() -> None:
    data = (FIXTURES / "error_midstream.sse").read_bytes()
    stream = PassthroughStream(gemini.PASSTHROUGH, include_usage=True, cost_fn=lambda u: 1)
    decoder = SSEDecoder()
    events = decoder.feed(data) + decoder.flush()
    out = [stream.feed(ev) for ev in events]
    assert out[0] == events[0].raw  # content before the error goes through unchanged
    assert b"AIza" not in out[1] and b"key=[redacted]" in out[1]
    error = json.loads(out[1].decode().removeprefix("data: "))["error"]
    assert error["code"] == 503 and error["status"] == "UNAVAILABLE"
    assert error["message"].startswith("overloaded_error: The model is overloaded.")
    assert not stream.done and stream.error is not None and stream.error.status == 503


def test_passthrough_request_drops_only_the_model() -> None:
    body = json.loads((FIXTURES / "request.json").read_text())
    assert gemini.passthrough_request({**body, "model": "x"}, upstream_model="gemini-3-1-pro", stream=True) == body


PARTIAL_ARGS = {"location": 'Boston, "MA" ☀', "days": 3, "opts": {"units": ["celsius"], "alerts": True}, "note": None}


def test_stream_parser_assembles_partial_args() -> None:
    """A call streamed as ``partialArgs`` opens at its first piece and ends with its whole arguments."""
    events = fixture_events("partial_args.sse")
    assert events[4] == BlockStart(1, "tool_call", id="call_vtxPartial1_0", name="get_weather",
                                   signature="CiQBcsjafNsig2==", origin="gemini")
    calls = [(e.index, json.loads(e.partial_json)) for e in events if isinstance(e, ToolArgsDelta)]
    assert calls == [(1, PARTIAL_ARGS), (2, {"tz": "America/New_York"})]
    assert [type(e).__name__ for e in events[5:]] == [
        "ToolArgsDelta", "BlockStop", "BlockStart", "ToolArgsDelta", "BlockStop", "MessageDelta", "MessageStop"]
    assert events[-2].stop_reason == "tool_use"  # type: ignore[union-attr]


@pytest.mark.parametrize("caller", ["anthropic", "openai_chat", "openai_responses"])
def test_partial_args_rendered_for_other_callers_match_golden(caller: str) -> None:
    name = {"openai_chat": "openai", "openai_responses": "responses"}.get(caller, caller)
    out = render_stream(registry.codec(name), fixture_events("partial_args.sse"))
    check_golden(FIXTURES.parent / name / "rendered" / "stream_from_gemini_partial_args.sse", out)


def test_partial_args_ended_by_the_finish_chunk_and_unknown_paths_skipped() -> None:
    chunks = [
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "willContinue": True}}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"partialArgs": [
            {"jsonPath": "$.a['b c'][1]", "stringValue": "x"}, {"jsonPath": "a.b", "stringValue": "lost"}],
            "willContinue": True}}]}, "finishReason": "STOP"}]},
    ]
    data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    events = parse_stream(data, [])
    (args,) = [e for e in events if isinstance(e, ToolArgsDelta)]
    assert json.loads(args.partial_json) == {"a": {"b c": [None, "x"]}}
    assert isinstance(events[-1], MessageStop)
