"""OpenAI Responses event stream: golden bytes, and the official SDK reading it like the API's own."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterable

import httpx2
import openai
import pytest

from core.errors import InvalidRequest
from gateway.canonical import ChatResponse, TextPart, ThinkingPart, ToolCallPart, Usage
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
from gateway.protocols import openai_responses as responses
from gateway.sse import SSEDecoder

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "responses"
CREATED = 1763800000
MESSAGE_ID = "resp_0a1b2c3d"

USAGE = Usage(input_tokens=12, output_tokens=40, cache_read_tokens=30, reasoning_tokens=15)

CASES: dict[str, list[StreamEvent]] = {
    "text": [
        MessageStart(id="msg_01", model="claude-sonnet-4-6", usage=Usage(input_tokens=12)),
        BlockStart(0, "text"), TextDelta(0, "Hello"), TextDelta(0, ", wor"), TextDelta(0, "ld!"), BlockStop(0),
        MessageDelta(stop_reason="end_turn", usage=Usage(input_tokens=12, output_tokens=5), cost_credits=321),
        MessageStop(),
    ],
    "tools_parallel": [
        MessageStart(id="msg_02", model="gpt-5-4"),
        BlockStart(0, "text"), TextDelta(0, "Checking both."), BlockStop(0),
        BlockStart(1, "tool_call", id="call_A1", name="get_weather"),
        ToolArgsDelta(1, '{"ci'), ToolArgsDelta(1, 'ty": "Z\\u00'), ToolArgsDelta(1, 'fcrich"}'), BlockStop(1),
        BlockStart(2, "tool_call", id="call_B2", name="mcp__github--create_issue"),
        ToolArgsDelta(2, "{"), ToolArgsDelta(2, '"title": "fl'), ToolArgsDelta(2, 'aky \\"te'), ToolArgsDelta(2, 'st\\""}'),
        BlockStop(2),
        MessageDelta(stop_reason="tool_use", usage=USAGE, cost_credits=98),
        MessageStop(),
    ],
    "reasoning": [
        MessageStart(id="msg_03", model="claude-opus-4-6", usage=Usage(input_tokens=12, cache_read_tokens=30)),
        BlockStart(0, "thinking", origin="anthropic"),
        ThinkingDelta(0, "**Plan**\n\nCompare "), ThinkingDelta(0, "the two options."),
        SignatureDelta(0, "EqQBCkYIBxgCsig==", origin="anthropic"), BlockStop(0),
        BlockStart(1, "text"), TextDelta(1, "Take the train."), BlockStop(1),
        MessageDelta(stop_reason="max_tokens", usage=USAGE, cost_credits=55),
        MessageStop(),
    ],
    "error_midstream": [
        MessageStart(id="msg_04", model="gemini-3-1-pro"),
        BlockStart(0, "text"), TextDelta(0, "Partial ans"),
        StreamError(kind="overloaded_error", message="upstream overloaded", status=529),
        TextDelta(0, "never sent"), MessageStop(),
    ],
}


def render(events: Iterable[StreamEvent], **kw: Any) -> bytes:
    renderer = responses.StreamRenderer(model="claude-sonnet-4-6", message_id=MESSAGE_ID, created=CREATED, **kw)
    return b"".join(renderer.render(e) for e in events)


def decode(data: bytes) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    events = decoder.feed(data) + decoder.flush()
    out = []
    for ev in events:
        payload = json.loads(ev.data)
        assert ev.event == payload["type"]
        out.append(payload)
    return out


def sdk_client(handler: Any) -> openai.OpenAI:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="sk-byts-test", base_url="http://gw.test/v1", http_client=http, max_retries=0)


def serve(stream_body: bytes, body: dict[str, Any] | None = None, status: int = 200) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if json.loads(request.content).get("stream"):
            return httpx2.Response(status, content=stream_body, headers={"content-type": "text/event-stream"})
        return httpx2.Response(status, json=body)

    return sdk_client(handler)


@pytest.mark.parametrize("case", sorted(CASES))
def test_stream_golden_bytes(case: str) -> None:
    assert render(CASES[case]) == (FIXTURES / f"{case}.sse").read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_stream_sequence_numbers_and_framing(case: str) -> None:
    data = (FIXTURES / f"{case}.sse").read_bytes()
    events = decode(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    rng = random.Random(case)
    for _ in range(10):
        decoder, got, last = SSEDecoder(), [], 0
        for cut in sorted(rng.sample(range(1, len(data)), 11)) + [len(data)]:
            got += decoder.feed(data[last:cut])
            last = cut
        assert [json.loads(e.data) for e in got + decoder.flush()] == events


def test_text_stream_event_order() -> None:
    types = [e["type"] for e in decode(render(CASES["text"]))]
    assert types == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]


def _final_response(events: list[StreamEvent]) -> ChatResponse:
    """The ChatResponse a pipeline would have accumulated from ``events`` (for the non-stream twin)."""
    parts: dict[int, Any] = {}
    delta = MessageDelta()
    for ev in events:
        if isinstance(ev, BlockStart):
            parts[ev.index] = [ev, ""]
        elif isinstance(ev, (TextDelta, ThinkingDelta)):
            parts[ev.index][1] += ev.text
        elif isinstance(ev, ToolArgsDelta):
            parts[ev.index][1] += ev.partial_json
        elif isinstance(ev, SignatureDelta):
            parts[ev.index].append(ev.signature)
        elif isinstance(ev, MessageDelta):
            delta = ev
    out: list[Any] = []
    for start, text, *sig in parts.values():
        if start.kind == "text":
            out.append(TextPart(text))
        elif start.kind == "thinking":
            out.append(ThinkingPart(text=text, signature=sig[0] if sig else None, origin=start.origin))
        else:
            out.append(ToolCallPart(id=start.id, name=start.name, arguments=text))
    return ChatResponse(id=MESSAGE_ID, model="m", parts=tuple(out), stop_reason=delta.stop_reason,
                        usage=delta.usage or Usage())


def _strip_parsed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_parsed(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments")}
    if isinstance(value, list):
        return [_strip_parsed(v) for v in value]
    return value


@pytest.mark.parametrize("case", ["text", "tools_parallel"])
def test_sdk_stream_final_response_equals_non_stream(case: str) -> None:
    events = CASES[case]
    delta = next(e for e in events if isinstance(e, MessageDelta))
    body = responses.render_response(_final_response(events), model="claude-sonnet-4-6", created=CREATED,
                                     cost_credits=delta.cost_credits)
    client = serve(render(events), body)
    with client.responses.stream(model="claude-sonnet-4-6", input="hi") as stream:
        seen = [ev.type for ev in stream]
        final = stream.get_final_response()
    plain = client.responses.create(model="claude-sonnet-4-6", input="hi")
    assert _strip_parsed(final.model_dump()) == plain.model_dump()
    assert seen[-1] == "response.completed"
    assert final.usage is not None and final.usage.model_extra == {"cost_credits": delta.cost_credits}


def test_sdk_reads_parallel_calls_with_namespace() -> None:
    client = serve(render(CASES["tools_parallel"]))
    with client.responses.stream(model="m", input="hi") as stream:
        deltas = [ev.snapshot for ev in stream if ev.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.call_id, c.name, c.namespace, json.loads(c.arguments)) for c in calls] == [
        ("call_A1", "get_weather", None, {"city": "Zürich"}),
        ("call_B2", "create_issue", "mcp__github", {"title": 'flaky "test"'}),
    ]
    assert deltas[2] == '{"city": "Z\\u00fcrich"}'
    assert final.output_text == "Checking both."
    assert final.usage is not None and final.usage.input_tokens == 42
    assert final.usage.input_tokens_details.cached_tokens == 30
    assert final.usage.output_tokens_details.reasoning_tokens == 15 and final.usage.total_tokens == 82


def test_sdk_reads_reasoning_summary_and_incomplete() -> None:
    client = serve(render(CASES["reasoning"]))
    stream = client.responses.create(model="m", input="hi", stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[2:6] == ["response.output_item.added", "response.reasoning_summary_part.added",
                          "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta"]
    assert events[-1].type == "response.incomplete"
    final = events[-1].response
    assert final.incomplete_details is not None and final.incomplete_details.reason == "max_output_tokens"
    reasoning = final.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.summary[0].text == "**Plan**\n\nCompare the two options."
    assert reasoning.encrypted_content == "bsk1.anthropic.EqQBCkYIBxgCsig=="


def test_sdk_sees_error_then_failed() -> None:
    client = serve(render(CASES["error_midstream"]))
    events = list(client.responses.create(model="m", input="hi", stream=True))
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    assert events[-2].message == "upstream overloaded" and events[-2].code == "overloaded_error"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "server_error"
    assert failed.output == []  # the unfinished message is not reported as output


def test_stream_error_before_anything_still_opens_the_response() -> None:
    events = decode(render([StreamError(message="no upstream answered", status=502)]))
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "error", "response.failed"]


def test_interleaved_tool_blocks_keep_their_own_items() -> None:
    events = [
        MessageStart(id="m", model="m"),
        BlockStart(0, "tool_call", id="c0", name="a"), BlockStart(1, "tool_call", id="c1", name="b"),
        ToolArgsDelta(0, '{"x":'), ToolArgsDelta(1, '{"y":'), ToolArgsDelta(1, "2}"), ToolArgsDelta(0, "1}"),
        BlockStop(1), BlockStop(0), MessageDelta(stop_reason="tool_use"), MessageStop(),
    ]
    final = decode(render(events))[-1]["response"]
    assert [(o["call_id"], o["arguments"]) for o in final["output"]] == [("c0", '{"x":1}'), ("c1", '{"y":2}')]


def test_message_stop_closes_open_blocks() -> None:
    events = [MessageStart(id="m", model="m"), BlockStart(0, "text"), TextDelta(0, "cut"), MessageStop()]
    decoded = decode(render(events))
    assert decoded[-1]["type"] == "response.completed"
    assert decoded[-1]["response"]["output"][0]["content"][0]["text"] == "cut"


def test_render_stream_error_makes_the_sdk_raise() -> None:
    client = serve(responses.render_stream_error(InvalidRequest("input: field required", param="input")))
    with pytest.raises(openai.APIError) as info:
        list(client.responses.create(model="m", input="hi", stream=True))
    assert "input: field required" in info.value.message


def test_sdk_raises_typed_error_for_rendered_error() -> None:
    status, body = responses.render_error(InvalidRequest("previous_response_id: not supported",
                                                         param="previous_response_id"))
    client = serve(b"", body, status=status)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="m", input="x")
    assert info.value.code == "invalid_param" and info.value.param == "previous_response_id"


PATCH = '*** Begin Patch\n*** Update File: "café.py"\n+print("\\u00e9 😀")\n*** End Patch'


@pytest.mark.parametrize("step", [1, 3, 7, 64])
def test_custom_tool_call_streams_its_input(step: int) -> None:
    """A call of a ``custom`` tool streams ``input`` as text, whatever the cuts in its JSON arguments."""
    args = json.dumps({"input": PATCH})
    events: list[StreamEvent] = [
        MessageStart(id=MESSAGE_ID, model="m"),
        BlockStart(0, "tool_call", id="toolu_1", name="apply_patch", custom=True),
        *[ToolArgsDelta(0, args[i:i + step]) for i in range(0, len(args), step)],
        BlockStop(0), MessageDelta(stop_reason="tool_use", usage=Usage(1, 2)), MessageStop(),
    ]
    frames = decode(render(events))
    added = next(f for f in frames if f["type"] == "response.output_item.added")["item"]
    assert (added["type"], added["status"], added["input"]) == ("custom_tool_call", "in_progress", "")
    deltas = [f["delta"] for f in frames if f["type"] == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == PATCH and all(deltas)
    (done,) = [f for f in frames if f["type"] == "response.custom_tool_call_input.done"]
    assert done["input"] == PATCH and done["item_id"] == added["id"]
    assert not [f for f in frames if f["type"].startswith("response.function_call")]
    client = serve(render(events))
    with client.responses.stream(model="m", input="hi") as stream:
        final = stream.get_final_response()
    (call,) = final.output
    assert (call.type, call.call_id, call.name, call.input) == ("custom_tool_call", "toolu_1", "apply_patch", PATCH)


def test_custom_tool_call_with_other_arguments_keeps_them_as_input() -> None:
    events: list[StreamEvent] = [
        BlockStart(0, "tool_call", id="toolu_1", name="apply_patch", custom=True),
        ToolArgsDelta(0, '{"city": '), ToolArgsDelta(0, '"Paris"}'), BlockStop(0), MessageStop(),
    ]
    frames = decode(render(events))
    (done,) = [f for f in frames if f["type"] == "response.custom_tool_call_input.done"]
    assert done["input"] == '{"city": "Paris"}'
    assert "".join(f["delta"] for f in frames if f["type"] == "response.custom_tool_call_input.delta") == done["input"]
