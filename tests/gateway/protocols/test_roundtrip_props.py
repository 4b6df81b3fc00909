"""Property: what both protocols can carry survives render -> parse, for bodies and for streams."""

from __future__ import annotations

import random
from dataclasses import replace
from types import ModuleType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
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
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from gateway.protocols import anthropic, openai_chat
from gateway.protocols.common import dump_arguments
from gateway.protocols.passthrough import PassthroughStream
from tests.gateway.protocols.test_sse import decode, random_cuts

SETTINGS = settings(max_examples=100, deadline=None)
CODECS = {"anthropic": anthropic, "openai": openai_chat}

text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
ident = st.from_regex(r"[a-zA-Z0-9_-]{1,12}", fullmatch=True)
name = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_-]{0,20}", fullmatch=True)
cache = st.none() | st.just({"type": "ephemeral"})
args = st.dictionaries(
    st.text(max_size=5), st.integers() | st.text(max_size=5) | st.booleans(), max_size=3
).map(dump_arguments)
image = st.builds(
    ImagePart, media_type=st.just("image/png"), data=st.from_regex(r"[A-Za-z0-9+/]{4,12}", fullmatch=True)
) | st.builds(ImagePart, url=st.from_regex(r"https://example\.com/[a-z]{1,8}\.png", fullmatch=True))
tokens = st.integers(0, 10**6)


@st.composite
def messages(draw: Any, proto: str) -> tuple[Message, ...]:
    turns = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            parts: list[Part] = [
                TextPart(draw(text), cache_control=draw(cache)) for _ in range(draw(st.integers(0, 2)))
            ]
            parts += draw(st.lists(image, max_size=2))
            result_content = st.lists(st.builds(TextPart, text), max_size=2)
            parts += [
                ToolResultPart(
                    tool_call_id=draw(ident),
                    content=tuple(draw(result_content)),
                    is_error=draw(st.booleans()),
                    cache_control=draw(cache),
                )
                for _ in range(draw(st.integers(0, 2)))
            ]
            turns.append(Message("user", tuple(parts) or (TextPart(draw(text)),)))
        else:
            parts = []
            if draw(st.booleans()):
                signed = ThinkingPart(text=draw(text), signature=draw(ident), origin="anthropic")
                parts.append(
                    signed if proto == "anthropic" else ThinkingPart(text=draw(text), origin="openai")
                )
            parts += [TextPart(draw(text)) for _ in range(draw(st.integers(0, 2)))]
            parts += [
                ToolCallPart(id=draw(ident), name=draw(name), arguments=draw(args))
                for _ in range(draw(st.integers(0, 2)))
            ]
            turns.append(Message("assistant", tuple(parts) or (TextPart(draw(text)),)))
    return tuple(turns)


@st.composite
def requests(draw: Any, proto: str) -> ChatRequest:
    tools = tuple(
        Tool(
            name=n,
            description=draw(st.none() | text),
            parameters={"type": "object", "properties": {}},
            cache_control=draw(cache) if proto == "anthropic" else None,
            strict=draw(st.none() | st.booleans()),
        )
        for n in draw(st.lists(name, max_size=3, unique=True))
    )
    choice = None
    if tools and draw(st.booleans()):
        mode = draw(st.sampled_from(["auto", "any", "none", "tool"]))
        disable = None if mode == "none" else draw(st.none() | st.booleans())
        choice = ToolChoice(
            mode=mode, name=tools[0].name if mode == "tool" else None, disable_parallel=disable
        )
    max_tokens = draw(st.integers(1, 64000))
    if proto == "anthropic":
        thinking = draw(st.none() | st.just(Thinking(mode="adaptive")) | st.just(Thinking(mode="disabled")))
        if max_tokens > 1025 and draw(st.booleans()):
            thinking = Thinking(mode="enabled", budget_tokens=draw(st.integers(1024, max_tokens - 1)))
        if (
            choice is not None
            and choice.mode in ("any", "tool")
            and thinking is not None
            and thinking.mode != "disabled"
        ):
            thinking = None
    else:
        effort = draw(st.sampled_from([None, "minimal", "low", "medium", "high", "none"]))
        thinking = (
            None
            if effort is None
            else Thinking(mode="disabled" if effort == "none" else "enabled", effort=effort)
        )
    sampling = thinking is None or thinking.mode == "disabled" or proto == "openai"
    return ChatRequest(
        model="m",
        messages=draw(messages(proto)),
        system=tuple(TextPart(t) for t in draw(st.lists(text, max_size=2))),
        max_tokens=max_tokens,
        temperature=draw(st.none() | st.floats(0, 1)) if sampling else None,
        top_p=draw(st.none() | st.floats(0, 1)) if sampling else None,
        top_k=draw(st.none() | st.integers(1, 100)) if sampling and proto == "anthropic" else None,
        stop=tuple(draw(st.lists(text.filter(str.strip), max_size=4))),
        stream=draw(st.booleans()),
        tools=tools,
        tool_choice=choice,
        thinking=thinking,
        user=draw(st.none() | text),
        source=proto,  # type: ignore[arg-type]
    )


def message_shape(messages: tuple[Message, ...], proto: str) -> list[dict[str, Any]]:
    """Shared content per turn, adjacent same-role turns merged (Anthropic merges; OpenAI splits results out)."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        if not out or out[-1]["role"] != msg.role:
            out.append(
                {"role": msg.role, "text": "", "images": [], "calls": [], "results": [], "thinking": []}
            )
        turn = out[-1]
        for p in msg.parts:
            if isinstance(p, TextPart):
                turn["text"] += p.text
                if proto == "anthropic" and p.cache_control is not None:
                    turn.setdefault("cache", []).append((len(turn["text"]), p.cache_control))
            elif isinstance(p, ImagePart):
                turn["images"].append((p.media_type, p.data, p.url))
            elif isinstance(p, ToolCallPart):
                turn["calls"].append((p.id, p.name, p.arguments))
            elif isinstance(p, ToolResultPart):
                result_text = "".join(c.text for c in p.content if isinstance(c, TextPart))
                if proto == "openai" and p.is_error:
                    result_text = "Error: " + result_text  # Chat Completions has no error flag
                extra = (p.is_error, p.cache_control) if proto == "anthropic" else None
                turn["results"].append((p.tool_call_id, result_text, extra))
            elif isinstance(p, ThinkingPart):
                turn["thinking"].append((p.text, p.signature if proto == "anthropic" else None))
    if proto == "openai":
        for turn in out:  # consecutive reasoning and text are joined on one assistant message
            turn["thinking"] = [("".join(t for t, _ in turn["thinking"]), None)] if turn["thinking"] else []
    return out


def request_shape(req: ChatRequest, proto: str) -> dict[str, Any]:
    return {
        "system": "\n\n".join(p.text for p in req.system) if proto == "openai" else req.system,
        "messages": message_shape(req.messages, proto),
        "max_tokens": req.max_tokens,
        "sampling": (req.temperature, req.top_p, req.top_k),
        "stop": req.stop,
        "stream": req.stream,
        "tools": req.tools,
        "tool_choice": req.tool_choice,
        "thinking": req.thinking,
        "user": req.user,
    }


def check_request(proto: str, req: ChatRequest) -> None:
    codec: ModuleType = CODECS[proto]
    body = codec.render_request(req, upstream_model="m", stream=req.stream)
    back = codec.parse_request(body)
    assert request_shape(back, proto) == request_shape(req, proto)


@SETTINGS
@given(requests("anthropic"))
def test_anthropic_request_round_trip(req: ChatRequest) -> None:
    check_request("anthropic", req)


@SETTINGS
@given(requests("openai"))
def test_openai_request_round_trip(req: ChatRequest) -> None:
    check_request("openai", req)


# --- responses and streams ------------------------------------------------------------


@st.composite
def responses(draw: Any, proto: str) -> ChatResponse:
    parts: list[Part] = []
    if draw(st.booleans()):
        signature = draw(ident) if proto == "anthropic" else None
        parts.append(ThinkingPart(text=draw(text), signature=signature, origin=proto))  # type: ignore[arg-type]
    parts += [TextPart(draw(text)) for _ in range(draw(st.integers(0, 2)))]
    calls = [
        ToolCallPart(id=draw(ident), name=draw(name), arguments=draw(args))
        for _ in range(draw(st.integers(0, 3)))
    ]
    stops = ["end_turn", "max_tokens", "refusal"] + (
        ["stop_sequence", "pause_turn"] if proto == "anthropic" else []
    )
    stop = "tool_use" if calls else draw(st.sampled_from(stops))
    usage = Usage(
        input_tokens=draw(tokens), output_tokens=draw(tokens), cache_write_tokens=draw(tokens),
        cache_read_tokens=draw(tokens), reasoning_tokens=draw(tokens) if proto == "openai" else 0,
    )  # fmt: skip
    return ChatResponse(id="resp_1", model="m", parts=tuple(parts + calls), stop_reason=stop, usage=usage)


def response_shape(resp: ChatResponse, proto: str) -> dict[str, Any]:
    items: list[list[Any]] = []
    for p in resp.parts:
        if isinstance(p, TextPart) and items and items[-1][0] == "text":
            items[-1][1] += p.text  # adjacent text is one block or one string on the other side
        elif isinstance(p, TextPart):
            items.append(["text", p.text])
        elif isinstance(p, ThinkingPart):
            items.append(["thinking", p.text, p.signature if proto == "anthropic" else None])
        elif isinstance(p, ToolCallPart):
            items.append(["call", p.id, p.name, p.arguments])
    return {"items": items, "stop": resp.stop_reason, "usage": resp.usage}


@SETTINGS
@given(st.sampled_from(["anthropic", "openai"]).flatmap(lambda p: st.tuples(st.just(p), responses(p))))
def test_response_round_trip(case: tuple[str, ChatResponse]) -> None:
    proto, resp = case
    codec: ModuleType = CODECS[proto]
    if (
        proto == "openai"
        and resp.stop_reason == "end_turn"
        and any(isinstance(p, ToolCallPart) for p in resp.parts)
    ):
        resp = replace(resp, stop_reason="tool_use")
    back = codec.parse_response(codec.render_response(resp, model="m", created=1))
    assert response_shape(back, proto) == response_shape(resp, proto)


def to_events(resp: ChatResponse, rng: random.Random) -> list[StreamEvent]:
    """Stream a response the way an upstream would: text and arguments cut at random places."""

    def pieces(s: str) -> list[str]:
        cuts = sorted(rng.sample(range(1, len(s)), min(3, len(s) - 1))) if len(s) > 1 else []
        return [s[a:b] for a, b in zip([0] + cuts, cuts + [len(s)], strict=True)]

    u = resp.usage
    events: list[StreamEvent] = [MessageStart(id=resp.id, model="m", usage=replace(u, output_tokens=0))]
    for i, p in enumerate(resp.parts):
        if isinstance(p, TextPart):
            events += [BlockStart(i, "text")] + [TextDelta(i, s) for s in pieces(p.text)]
        elif isinstance(p, ThinkingPart):
            events += [BlockStart(i, "thinking", origin=p.origin)] + [
                ThinkingDelta(i, s) for s in pieces(p.text)
            ]
            events += [SignatureDelta(i, p.signature, origin=p.origin)] if p.signature else []
        elif isinstance(p, ToolCallPart):
            events += [BlockStart(i, "tool_call", id=p.id, name=p.name)] + [
                ToolArgsDelta(i, s) for s in pieces(p.arguments)
            ]
        events.append(BlockStop(i))
    return events + [MessageDelta(stop_reason=resp.stop_reason, usage=u, cost_credits=5), MessageStop()]


def assemble(events: list[StreamEvent]) -> ChatResponse:
    """Fold canonical events back into the answer they describe."""
    blocks: dict[int, dict[str, Any]] = {}
    stop, usage = None, Usage()
    for e in events:
        if isinstance(e, BlockStart):
            blocks[e.index] = {
                "kind": e.kind,
                "text": "",
                "id": e.id,
                "name": e.name,
                "sig": None,
                "origin": e.origin,
            }
        elif isinstance(e, (TextDelta, ThinkingDelta)):
            blocks[e.index]["text"] += e.text
        elif isinstance(e, ToolArgsDelta):
            blocks[e.index]["text"] += e.partial_json
        elif isinstance(e, SignatureDelta):
            blocks[e.index]["sig"] = e.signature
        elif isinstance(e, MessageDelta):
            stop, usage = e.stop_reason, e.usage or usage
    parts: list[Part] = []
    for _, b in sorted(blocks.items()):
        if b["kind"] == "text":
            parts.append(TextPart(b["text"]))
        elif b["kind"] == "thinking":
            parts.append(ThinkingPart(text=b["text"], signature=b["sig"], origin=b["origin"]))
        elif b["kind"] == "tool_call":
            parts.append(ToolCallPart(id=b["id"], name=b["name"], arguments=b["text"]))
    assert isinstance(events[-1], MessageStop)
    return ChatResponse(id="", model="", parts=tuple(parts), stop_reason=stop, usage=usage)


@SETTINGS
@given(
    st.sampled_from(["anthropic", "openai"]).flatmap(lambda p: st.tuples(st.just(p), responses(p))),
    st.integers(0, 2**16),
)
def test_stream_round_trip(case: tuple[str, ChatResponse], seed: int) -> None:
    proto, resp = case
    codec: ModuleType = CODECS[proto]
    rng = random.Random(seed)
    renderer = codec.StreamRenderer(model="m", message_id="gw_1", created=1, include_usage=True)
    data = b"".join(renderer.render(e) for e in to_events(resp, rng))
    parser = codec.StreamParser()
    events: list[StreamEvent] = []
    for event in decode(data, random_cuts(data, seed, count=8)):
        events += parser.feed(event)
    back = assemble(events + parser.finish())
    assert response_shape(back, proto) == response_shape(resp, proto)


# --- hostile input: only the documented errors ever escape ---------------------------

json_leaf = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=4)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
KEYS = ["type", "text", "role", "content", "source", "id", "name", "input", "tool_use_id", "tool_call_id", "tool_calls",
        "function", "arguments", "image_url", "url", "data", "media_type", "is_error", "cache_control", "thinking",
        "signature", "index", "delta", "choices", "usage", "message", "content_block", "error", "finish_reason"]  # fmt: skip


def shaped(depth: int = 3) -> st.SearchStrategy[Any]:
    """JSON that looks like the protocols' objects: their keys, wrong values."""
    if depth == 0:
        return json_value
    inner = shaped(depth - 1)
    return (
        json_value | st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    )


ANTHROPIC_TOP = [
    "system",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "thinking",
    "metadata",
    "temperature",
    "top_k",
]
OPENAI_TOP = ["max_tokens", "stop", "stream", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort", "n", "user", "response_format"]  # fmt: skip


@SETTINGS
@given(st.sampled_from(["anthropic", "openai"]), shaped(), st.data())
def test_parse_request_raises_only_invalid_request(proto: str, messages_value: Any, data: Any) -> None:
    from core.errors import InvalidRequest

    tops = ANTHROPIC_TOP if proto == "anthropic" else OPENAI_TOP
    body = {"model": "m", "max_tokens": 10, "messages": messages_value}
    body.update(data.draw(st.dictionaries(st.sampled_from(tops), shaped(2), max_size=3)))
    try:
        req = CODECS[proto].parse_request(body)
    except InvalidRequest as err:
        assert err.status == 400 and ":" in err.message
        return
    for other in CODECS.values():  # whatever parses can be rendered for any upstream
        other.render_request(req, upstream_model="u", stream=True)


@SETTINGS
@given(st.sampled_from(["anthropic", "openai"]), shaped())
def test_parse_response_raises_only_upstream_error(proto: str, body: Any) -> None:
    from core.errors import UpstreamError

    try:
        CODECS[proto].parse_response(body)
    except UpstreamError as err:
        assert err.status == 502


@SETTINGS
@given(
    st.sampled_from(["anthropic", "openai"]),
    st.lists(st.tuples(st.none() | st.sampled_from(["message_start", "error"]), shaped()), max_size=6),
)
def test_stream_parsers_and_passthrough_never_raise(proto: str, frames: list[tuple[str | None, Any]]) -> None:
    import json

    from gateway.sse import SSEEvent

    codec = CODECS[proto]
    parser = codec.StreamParser()
    passthrough = PassthroughStream(codec.PASSTHROUGH, include_usage=False, cost_fn=lambda u: 1)
    renderer = codec.StreamRenderer(model="m", message_id="x", created=0)
    for name, payload in frames:
        event = SSEEvent(event=name, data=json.dumps(payload), raw=b"")
        for canonical in parser.feed(event):
            renderer.render(canonical)
        passthrough.feed(event)
    assert all(renderer.render(e) is not None for e in parser.finish())
