"""Property tests: the Responses stream and the non-stream object agree; input items parse faithfully."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.canonical import ChatResponse, TextPart, ThinkingPart, ToolCallPart, ToolResultPart, Usage
from gateway.canonical_events import (
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from gateway.protocols import openai_responses as responses
from gateway.sse import SSEDecoder

FAST = settings(max_examples=100, deadline=None)

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=25)
names = st.sampled_from(["shell", "get_weather", "mcp__github--create_issue", "ns--tool"])
signatures = st.none() | st.text("ABCDEFabcdef0123456789+/=", min_size=4, max_size=16)


@st.composite
def responses_(draw: Any) -> ChatResponse:
    parts: list[Any] = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "thinking", "call"]))
        if kind == "text":
            parts.append(TextPart(draw(words)))
        elif kind == "thinking":
            origin = draw(st.sampled_from(["anthropic", "gemini", "openai"]))
            parts.append(ThinkingPart(text=draw(st.just("") | words), signature=draw(signatures), origin=origin))
        else:
            args = json.dumps({"q": draw(words)}, ensure_ascii=False)
            parts.append(ToolCallPart(id=f"call_{i}", name=draw(names), arguments=args))
    output = draw(st.integers(0, 9000))
    usage = Usage(input_tokens=draw(st.integers(0, 9000)), output_tokens=output,
                  cache_write_tokens=draw(st.integers(0, 900)), cache_read_tokens=draw(st.integers(0, 9000)),
                  reasoning_tokens=draw(st.integers(0, output)))
    stop = draw(st.sampled_from(["end_turn", "tool_use", "max_tokens", "refusal", "stop_sequence"]))
    return ChatResponse(id="resp_prop", model="m", parts=tuple(parts), stop_reason=stop, usage=usage)


def events_of(resp: ChatResponse, cut: int) -> list[StreamEvent]:
    """The canonical stream for ``resp``, every delta cut into pieces of ``cut`` characters."""

    def pieces(text: str) -> list[str]:
        return [text[i : i + cut] for i in range(0, len(text), cut)]

    events: list[StreamEvent] = [MessageStart(id=resp.id, model=resp.model)]
    for i, part in enumerate(resp.parts):
        if isinstance(part, TextPart):
            events += [BlockStart(i, "text"), *(TextDelta(i, p) for p in pieces(part.text)), BlockStop(i)]
        elif isinstance(part, ThinkingPart):
            events += [BlockStart(i, "thinking", origin=part.origin), *(ThinkingDelta(i, p) for p in pieces(part.text))]
            if part.signature:
                events.append(SignatureDelta(i, part.signature, origin=part.origin))
            events.append(BlockStop(i))
        elif isinstance(part, ToolCallPart):
            events += [BlockStart(i, "tool_call", id=part.id, name=part.name),
                       *(ToolArgsDelta(i, p) for p in pieces(part.arguments)), BlockStop(i)]
    return events + [MessageDelta(stop_reason=resp.stop_reason, usage=resp.usage, cost_credits=7), MessageStop()]


@FAST
@given(responses_(), st.integers(1, 7))
def test_stream_final_object_equals_non_stream(resp: ChatResponse, cut: int) -> None:
    renderer = responses.StreamRenderer(model="m", message_id=resp.id, created=5)
    data = b"".join(renderer.render(e) for e in events_of(resp, cut))
    decoder = SSEDecoder()
    events = [json.loads(e.data) for e in decoder.feed(data) + decoder.flush()]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    done = {e["output_index"]: e["item"] for e in events if e["type"] == "response.output_item.done"}
    assert added == list(range(len(added))) and sorted(done) == added
    final = events[-1]
    assert final["type"] in ("response.completed", "response.incomplete")
    plain = responses.render_response(resp, model="m", created=5, cost_credits=7)
    assert final["response"] == plain
    assert [done[i] for i in added] == plain["output"]


@st.composite
def input_items(draw: Any) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
    """Responses input items and the (role, part) pairs they must parse to."""
    items: list[dict[str, Any]] = []
    expected: list[tuple[str, Any]] = []
    for n in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["user", "assistant", "call", "output"]))
        text = draw(words)
        if kind == "user":
            items.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
            expected.append(("user", TextPart(text)))
        elif kind == "assistant":
            items.append({"role": "assistant", "content": [{"type": "output_text", "text": text}]})
            expected.append(("assistant", TextPart(text)))
        elif kind == "call":
            name, namespace = draw(st.sampled_from([("shell", None), ("create_issue", "mcp__github")]))
            args = json.dumps({"cmd": text})
            item = {"type": "function_call", "call_id": f"c{n}", "name": name, "arguments": args}
            if namespace:
                item["namespace"] = namespace
            items.append(item)
            flat = f"{namespace}--{name}" if namespace else name
            expected.append(("assistant", ToolCallPart(id=f"c{n}", name=flat, arguments=args)))
        else:
            items.append({"type": "function_call_output", "call_id": f"c{n}", "output": text})
            expected.append(("user", ToolResultPart(tool_call_id=f"c{n}", content=(TextPart(text),))))
    return items, expected


@FAST
@given(input_items())
def test_input_items_parse_in_order_into_alternating_turns(case: tuple[list[dict[str, Any]], list[Any]]) -> None:
    items, expected = case
    req = responses.parse_request({"model": "m", "input": items})
    flat = [(m.role, p) for m in req.messages for p in m.parts]
    assert flat == expected
    roles = [m.role for m in req.messages]
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
