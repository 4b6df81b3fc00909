"""Property tests: Gemini there and back keeps every field both sides share."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
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
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from gateway.protocols import gemini
from gateway.protocols.gemini.parts import DUMMY_SIGNATURE
from gateway.sse import SSEDecoder

FAST = settings(max_examples=100, deadline=None)

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="{}"),
                min_size=1, max_size=30)
names = st.sampled_from(["get_weather", "search", "run-cmd", "lookup_v2"])
signatures = st.none() | st.text("ABCDEFabcdef0123456789+/=", min_size=4, max_size=20)
json_values = st.one_of(st.integers(-1000, 1000), st.booleans(), words, st.none())
arguments = st.dictionaries(st.sampled_from(["city", "q", "n", "flag"]), json_values, max_size=3)


@st.composite
def conversations(draw: Any) -> tuple[Message, ...]:
    """User/assistant turns; every call is answered, in order, in the next user turn."""
    messages: list[Message] = [Message("user", tuple(draw(st.lists(words.map(TextPart), min_size=1, max_size=2))))]
    counter = 0
    for _ in range(draw(st.integers(0, 3))):
        calls = []
        for _ in range(draw(st.integers(0, 2))):
            calls.append(ToolCallPart(id=f"call_{counter}", name=draw(names),
                                      arguments=json.dumps(draw(arguments), separators=(",", ":"), ensure_ascii=False),
                                      signature=draw(signatures)))
            counter += 1
        text = [TextPart(t) for t in draw(st.lists(words, max_size=1))]
        if not text and not calls:
            text = [TextPart("ok")]
        messages.append(Message("assistant", (*text, *calls)))
        results = [ToolResultPart(tool_call_id=c.id, content=(TextPart(draw(words)),), name=c.name) for c in calls]
        extra: list[TextPart | ImagePart] = [TextPart(t) for t in draw(st.lists(words, max_size=1))]
        if draw(st.booleans()):
            extra.append(ImagePart(media_type="image/png", data="iVBORw0KGgo="))
        if not results and not extra:
            extra = [TextPart("go on")]
        messages.append(Message("user", (*results, *extra)))
    return tuple(messages)


@st.composite
def requests(draw: Any) -> ChatRequest:
    tools = tuple(Tool(name=n, description=draw(st.none() | words),
                       parameters={"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]})
                  for n in draw(st.lists(names, unique=True, max_size=3)))
    return ChatRequest(
        model="gemini-3-1-pro",
        system=tuple(TextPart(t) for t in draw(st.lists(words, max_size=2))),
        messages=draw(conversations()),
        tools=tools,
        max_tokens=draw(st.none() | st.integers(1, 100000)),
        temperature=draw(st.none() | st.floats(0, 2)),
        top_p=draw(st.none() | st.floats(0, 1)),
        top_k=draw(st.none() | st.integers(1, 100)),
        stop=tuple(draw(st.lists(words, max_size=3))),
        source="anthropic",
    )


def _expected_call(call: ToolCallPart, first_in_turn: bool) -> ToolCallPart:
    return ToolCallPart(id=call.id, name=call.name, arguments=call.arguments,
                        signature=call.signature or (DUMMY_SIGNATURE if first_in_turn else None))


@FAST
@given(requests())
def test_request_there_and_back(req: ChatRequest) -> None:
    body = gemini.render_request(req, upstream_model="gemini-3-1-pro", stream=False)
    back = gemini.parse_request(json.loads(json.dumps(body)), model=req.model, make_id=lambda n: f"call_{n}")
    assert back.system == req.system
    assert (back.max_tokens, back.top_k, back.stop) == (req.max_tokens, req.top_k, req.stop)
    assert (back.temperature, back.top_p) == (req.temperature, req.top_p)
    assert [(t.name, t.description, dict(t.parameters)) for t in back.tools] == [
        (t.name, t.description, dict(t.parameters)) for t in req.tools]
    assert len(back.messages) == len(req.messages)
    for sent, got in zip(req.messages, back.messages, strict=True):
        assert sent.role == got.role
        expected: list[Any] = []
        first = True
        for part in sent.parts:
            if isinstance(part, ToolCallPart):
                expected.append(_expected_call(part, first))
                first = False
            else:
                expected.append(part)
        assert list(got.parts) == expected


@st.composite
def responses(draw: Any) -> ChatResponse:
    parts: list[Any] = []
    for i in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["text", "thinking", "call"]))
        if kind == "text":
            parts.append(TextPart(draw(words)))
        elif kind == "thinking":
            parts.append(ThinkingPart(text=draw(words), signature=draw(signatures), origin="gemini"))
        else:
            args = json.dumps(draw(arguments), separators=(",", ":"), ensure_ascii=False)
            parts.append(ToolCallPart(id=f"toolu_{i}", name=draw(names), arguments=args, signature=draw(signatures)))
    output = draw(st.integers(0, 5000))
    usage = Usage(input_tokens=draw(st.integers(0, 5000)), output_tokens=output,
                  cache_read_tokens=draw(st.integers(0, 5000)), reasoning_tokens=draw(st.integers(0, output)))
    has_calls = any(isinstance(p, ToolCallPart) for p in parts)
    stop = "tool_use" if has_calls else draw(st.sampled_from(["end_turn", "max_tokens", "refusal"]))
    return ChatResponse(id="resp-1", model="gemini-3-1-pro", parts=tuple(parts), stop_reason=stop, usage=usage)


@FAST
@given(responses())
def test_response_there_and_back(resp: ChatResponse) -> None:
    body = gemini.render_response(resp, model=resp.model, created=0)
    back = gemini.parse_response(json.loads(json.dumps(body)))
    assert back == resp


def events_of(resp: ChatResponse, pieces: int) -> list[StreamEvent]:
    events: list[StreamEvent] = [MessageStart(id=resp.id, model=resp.model)]
    for i, part in enumerate(resp.parts):
        if isinstance(part, TextPart):
            step = max(1, len(part.text) // pieces)
            chunks = [part.text[j : j + step] for j in range(0, len(part.text), step)]
            events += [BlockStart(i, "text"), *(TextDelta(i, c) for c in chunks), BlockStop(i)]
        elif isinstance(part, ThinkingPart):
            events += [BlockStart(i, "thinking", origin="gemini"), ThinkingDelta(i, part.text)]
            if part.signature:
                events.append(SignatureDelta(i, part.signature, origin="gemini"))
            events.append(BlockStop(i))
        elif isinstance(part, ToolCallPart):
            events += [BlockStart(i, "tool_call", id=part.id, name=part.name, signature=part.signature,
                                  origin="gemini"), ToolArgsDelta(i, part.arguments), BlockStop(i)]
    return events + [MessageDelta(stop_reason=resp.stop_reason, usage=resp.usage), MessageStop()]


def _collect(events: list[StreamEvent]) -> tuple[str, str, list[tuple[str, str, str | None]], Any, Any]:
    text, thinking, calls, stop, usage = "", "", [], None, None
    open_calls: dict[int, list[Any]] = {}
    for ev in events:
        if isinstance(ev, TextDelta):
            text += ev.text
        elif isinstance(ev, ThinkingDelta):
            thinking += ev.text
        elif isinstance(ev, BlockStart) and ev.kind == "tool_call":
            open_calls[ev.index] = [ev.name, "", ev.signature]
        elif isinstance(ev, ToolArgsDelta):
            open_calls[ev.index][1] += ev.partial_json
        elif isinstance(ev, BlockStop) and ev.index in open_calls:
            calls.append(tuple(open_calls.pop(ev.index)))
        elif isinstance(ev, MessageDelta):
            stop, usage = ev.stop_reason, ev.usage
    return text, thinking, calls, stop, usage


@FAST
@given(responses(), st.integers(1, 4), st.randoms(use_true_random=False))
def test_stream_there_and_back_split_anywhere(resp: ChatResponse, pieces: int, rng: Any) -> None:
    renderer = gemini.StreamRenderer(model=resp.model, message_id=resp.id, created=0)
    data = b"".join(renderer.render(e) for e in events_of(resp, pieces))
    cuts = sorted(rng.sample(range(1, len(data)), min(8, len(data) - 1)))
    decoder, parser, got, last = SSEDecoder(), gemini.StreamParser(), [], 0
    for cut in [*cuts, len(data)]:
        for ev in decoder.feed(data[last:cut]):
            got += parser.feed(ev)
        last = cut
    got += parser.finish()
    assert isinstance(got[-1], MessageStop)
    text, thinking, calls, stop, usage = _collect(got)
    assert text == "".join(p.text for p in resp.parts if isinstance(p, TextPart))
    assert thinking == "".join(p.text for p in resp.parts if isinstance(p, ThinkingPart))
    assert calls == [(p.name, p.arguments, p.signature) for p in resp.parts if isinstance(p, ToolCallPart)]
    assert (stop, usage) == (resp.stop_reason, resp.usage)
