"""Anthropic stream codecs: recorded upstream bytes -> canonical events -> caller bytes."""

from __future__ import annotations

import json

import pytest

from gateway.canonical import Usage
from gateway.canonical_events import (
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from gateway.protocols import anthropic, openai_chat
from gateway.protocols.passthrough import PassthroughStream
from gateway.sse import SSEEvent
from tests.gateway.protocols.test_sse import (
    FIXTURES,
    check_golden,
    decode,
    parse_stream,
    random_cuts,
    render_stream,
)

A = FIXTURES / "anthropic"


def fixture(name: str) -> bytes:
    return (A / f"{name}.sse").read_bytes()


def payloads(data: bytes) -> list[tuple[str | None, dict]]:
    return [(e.event, json.loads(e.data)) for e in decode(data) if e.data != "[DONE]"]


def test_parser_tools_parallel_gives_expected_events() -> None:
    start_usage = Usage(input_tokens=412, output_tokens=1)
    assert parse_stream(anthropic, fixture("tools_parallel")) == [
        MessageStart(id="msg_01Tools", model="claude-sonnet-4-6", usage=start_usage),
        BlockStart(index=0, kind="text"),
        TextDelta(0, "Checking both cities."),
        BlockStop(0),
        BlockStart(index=1, kind="tool_call", id="toolu_01A", name="get_weather"),
        ToolArgsDelta(1, ""),
        ToolArgsDelta(1, '{"ci'),
        ToolArgsDelta(1, 'ty": "Z\\u00'),
        ToolArgsDelta(1, 'fcrich"}'),
        BlockStop(1),
        BlockStart(index=2, kind="tool_call", id="toolu_01B", name="get_weather"),
        ToolArgsDelta(2, '{"city"'),
        ToolArgsDelta(2, ': "東京"}'),
        BlockStop(2),
        MessageDelta(stop_reason="tool_use", usage=Usage(input_tokens=412, output_tokens=87)),
        MessageStop(),
    ]


def test_parser_thinking_keeps_signature_and_redacted_block() -> None:
    events = parse_stream(anthropic, fixture("thinking"))
    assert events[1] == BlockStart(index=0, kind="thinking", origin="anthropic")
    assert events[2:5] == [
        ThinkingDelta(0, "The user wants 17 × 23. "),
        ThinkingDelta(0, "17 × 20 = 340, plus 51 is 391."),
        SignatureDelta(0, "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds", origin="anthropic"),
    ]
    assert (
        BlockStart(index=1, kind="redacted_thinking", redacted=events[6].redacted, origin="anthropic")
        == events[6]
    )
    assert events[6].redacted.startswith("EmwKAhgB")


def test_parser_cache_usage_arriving_late_is_merged() -> None:
    events = parse_stream(anthropic, fixture("cache_late"))
    assert events[0].usage == Usage(input_tokens=10, output_tokens=1)
    [delta] = [e for e in events if isinstance(e, MessageDelta)]
    assert delta.usage == Usage(
        input_tokens=10, output_tokens=42, cache_write_tokens=1500, cache_read_tokens=30000
    )


def test_parser_error_event_becomes_stream_error_without_the_key() -> None:
    events = parse_stream(anthropic, fixture("error_midstream"))
    assert events[-1] == StreamError(
        kind="overloaded_error", message="Overloaded (key [redacted])", status=529
    )
    assert "SECRET" not in repr(events)


def test_parser_early_close_is_a_stream_error() -> None:
    data = fixture("text")
    cut = data.index(b"event: message_delta")
    events = parse_stream(anthropic, data[:cut])
    assert isinstance(events[-1], StreamError) and "before message_stop" in events[-1].message


def test_parser_missing_message_stop_after_delta_still_ends() -> None:
    data = fixture("text")
    events = parse_stream(anthropic, data[: data.index(b"event: message_stop")])
    assert events[-2:] == [MessageDelta(stop_reason="end_turn", usage=Usage(25, 6)), MessageStop()]


def test_parser_malformed_json_is_a_stream_error() -> None:
    parser = anthropic.StreamParser()
    [err] = parser.feed(SSEEvent(event="content_block_delta", data="{not json", raw=b""))
    assert isinstance(err, StreamError)
    assert parser.feed(SSEEvent(event="message_stop", data='{"type":"message_stop"}', raw=b"")) == []
    assert parser.finish() == []


@pytest.mark.parametrize("name", ["text", "tools_parallel", "thinking", "cache_late", "error_midstream"])
def test_parser_same_events_for_random_splits(name: str) -> None:
    data = fixture(name)
    whole = parse_stream(anthropic, data)
    for seed in range(10):
        assert parse_stream(anthropic, data, random_cuts(data, seed)) == whole


@pytest.mark.parametrize("name", ["text", "tools_parallel", "thinking", "cache_late", "error_midstream"])
def test_anthropic_in_anthropic_out_keeps_every_event(name: str) -> None:
    original = [p for p in payloads(fixture(name)) if p[0] != "ping"]
    rendered = payloads(render_stream(anthropic, parse_stream(anthropic, fixture(name)), cost=None))
    assert len(rendered) == len(original)
    for (event, got), (_, want) in zip(rendered, original, strict=True):
        if event == "message_start":
            got["message"]["id"], got["message"]["model"] = want["message"]["id"], want["message"]["model"]
        if event == "message_delta":
            assert want["usage"].items() <= got["usage"].items()  # cumulative usage, never less
            got["usage"] = want["usage"]
        if event == "error":
            assert got["error"]["message"].endswith(
                want["error"]["message"].replace("sk-ant-api03-SECRETsecret123", "[redacted]")
            )
            got["error"]["message"] = want["error"]["message"]
        assert got == want


@pytest.mark.parametrize(
    "name", ["text", "tools_parallel", "reasoning", "cache_late", "no_usage", "error_midstream"]
)
def test_openai_upstream_rendered_for_anthropic_caller_matches_golden(name: str) -> None:
    data = (FIXTURES / "openai" / f"{name}.sse").read_bytes()
    check_golden(
        A / "rendered" / f"from_openai_{name}.sse", render_stream(anthropic, parse_stream(openai_chat, data))
    )


def test_renderer_event_sequence_and_cost() -> None:
    events = parse_stream(openai_chat, (FIXTURES / "openai" / "tools_parallel.sse").read_bytes())
    frames = payloads(render_stream(anthropic, events))
    names = [name for name, _ in frames]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 3
    delta = frames[-2][1]
    assert delta["usage"] == {
        "input_tokens": 412,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2048,
        "output_tokens": 87,
        "cost_credits": 1234,
    }
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}


def test_renderer_skips_foreign_blocks_and_renumbers() -> None:
    events = [
        MessageStart(id="x", model="m"),
        BlockStart(index=0, kind="raw", raw={"type": "executable_code"}, origin="gemini"),
        BlockStop(0),
        BlockStart(index=1, kind="thinking", origin="responses"),
        ThinkingDelta(1, "hmm"),
        SignatureDelta(1, "encrypted-blob", origin="responses"),
        BlockStop(1),
        BlockStart(index=2, kind="text"),
        TextDelta(2, "hi"),
        MessageStop(),
    ]
    frames = payloads(render_stream(anthropic, events))
    indexes = [p["index"] for name, p in frames if name.startswith("content_block")]
    assert indexes == [0, 0, 0, 1, 1, 1]  # text block closed before the synthesized message_delta
    assert "encrypted-blob" not in json.dumps(frames)
    assert [name for name, _ in frames][-2:] == ["message_delta", "message_stop"]


def test_renderer_starts_message_when_first_event_is_not_start_and_stops_after_error() -> None:
    renderer = anthropic.StreamRenderer(model="m", message_id="msg_gw", created=0)
    out = renderer.render(BlockStart(index=0, kind="text"))
    assert out.startswith(b"event: message_start\n") and b'"id":"msg_gw"' in out
    err = renderer.render(StreamError(kind="overloaded_error", message="busy", status=529))
    assert payloads(err) == [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "upstream_error: busy"}})
    ]
    assert renderer.render(MessageStop()) == b""


def test_passthrough_adds_cost_to_message_delta_only() -> None:
    data = fixture("cache_late")
    stream = PassthroughStream(anthropic.PASSTHROUGH, include_usage=False,
                               cost_fn=lambda u: u.cache_read_tokens + u.output_tokens)
    out = b"".join(stream.feed(e) for e in decode(data))
    got, want = payloads(out), payloads(data)
    assert got[:-2] == want[:-2] and got[-1] == want[-1]
    assert got[-2][1]["usage"] == {**want[-2][1]["usage"], "cost_credits": 30042}
    assert stream.done and stream.error is None
    assert stream.usage == Usage(
        input_tokens=10, output_tokens=42, cache_write_tokens=1500, cache_read_tokens=30000
    )
    assert out.replace(b',"cost_credits":30042', b"") == data


def test_passthrough_error_is_cleaned_and_recorded() -> None:
    stream = PassthroughStream(anthropic.PASSTHROUGH, include_usage=True, cost_fn=lambda u: 0)
    out = b"".join(stream.feed(e) for e in decode(fixture("error_midstream")))
    assert b"SECRET" not in out and b"event: error" in out
    assert stream.error is not None and stream.error.status == 529 and not stream.done
