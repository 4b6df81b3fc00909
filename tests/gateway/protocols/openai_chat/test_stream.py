"""Chat Completions stream codecs: recorded upstream chunks -> canonical events -> caller chunks."""

from __future__ import annotations

import json

import pytest

from gateway.canonical import Tool, Usage
from gateway.canonical_events import (
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from gateway.protocols import anthropic, openai_chat
from gateway.protocols.common import truncate_tool_name
from gateway.protocols.passthrough import PassthroughStream
from gateway.sse import SSEEvent, encode
from tests.gateway.protocols.test_sse import (
    FIXTURES,
    check_golden,
    decode,
    parse_stream,
    random_cuts,
    render_stream,
)

OPENAI = FIXTURES / "openai"
NAMES = ["text", "tools_parallel", "reasoning", "cache_late", "no_usage", "error_midstream"]


def fixture(name: str) -> bytes:
    return (OPENAI / f"{name}.sse").read_bytes()


def chunks(data: bytes) -> list[dict | str]:
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in decode(data)]


def test_parser_tools_parallel_gives_expected_events() -> None:
    assert parse_stream(openai_chat, fixture("tools_parallel")) == [
        MessageStart(id="chatcmpl-Tools", model="gpt-5-4"),
        BlockStart(index=0, kind="text"),
        TextDelta(0, "Checking both cities."),
        BlockStop(0),
        BlockStart(index=1, kind="tool_call", id="call_A1", name="get_weather"),
        ToolArgsDelta(1, '{"ci'),
        ToolArgsDelta(1, 'ty": "Z\\u00'),
        ToolArgsDelta(1, 'fcrich"}'),
        BlockStop(1),
        BlockStart(index=2, kind="tool_call", id="call_B2", name="get_weather"),
        ToolArgsDelta(2, '{"city"'),
        ToolArgsDelta(2, ': "東京"}'),
        BlockStop(2),
        MessageDelta(
            stop_reason="tool_use", usage=Usage(input_tokens=412, output_tokens=87, cache_read_tokens=2048)
        ),
        MessageStop(),
    ]


def test_parser_reasoning_content_becomes_thinking_block() -> None:
    events = parse_stream(openai_chat, fixture("reasoning"))
    assert events[1:6] == [
        BlockStart(index=0, kind="thinking", origin="openai"),
        ThinkingDelta(0, "17 × 20 = 340, "),
        ThinkingDelta(0, "plus 51 is 391."),
        BlockStop(0),
        BlockStart(index=1, kind="text"),
    ]
    usage = Usage(input_tokens=56, output_tokens=300, cache_read_tokens=64, reasoning_tokens=250)
    assert events[-2:] == [MessageDelta(stop_reason="end_turn", usage=usage), MessageStop()]


def test_parser_cache_usage_arriving_after_finish() -> None:
    [delta] = [e for e in parse_stream(openai_chat, fixture("cache_late")) if isinstance(e, MessageDelta)]
    assert delta.usage == Usage(
        input_tokens=10, output_tokens=42, cache_write_tokens=1500, cache_read_tokens=30000
    )


def test_parser_missing_usage_chunk_still_ends() -> None:
    events = parse_stream(openai_chat, fixture("no_usage"))
    assert events[-2:] == [MessageDelta(stop_reason="end_turn", usage=None), MessageStop()]


def test_parser_finish_without_done_still_ends() -> None:
    data = fixture("text")
    events = parse_stream(openai_chat, data[: data.index(b"data: [DONE]")])
    assert events[-2:] == [MessageDelta(stop_reason="end_turn", usage=Usage(25, 6)), MessageStop()]


def test_parser_early_close_without_finish_is_a_stream_error() -> None:
    data = fixture("tools_parallel")
    cut = data.rindex(b"data: ", 0, data.index(b'"finish_reason":"tool_calls"'))
    events = parse_stream(openai_chat, data[:cut])
    assert isinstance(events[-1], StreamError) and "finish_reason" in events[-1].message


def test_parser_error_chunk_is_a_stream_error_without_the_key() -> None:
    events = parse_stream(openai_chat, fixture("error_midstream"))
    assert events[-1] == StreamError(
        kind="overloaded_error", message="The server is overloaded (key [redacted])", status=529
    )


@pytest.mark.parametrize("name", NAMES)
def test_parser_same_events_for_random_splits(name: str) -> None:
    data = fixture(name)
    whole = parse_stream(openai_chat, data)
    for seed in range(10):
        assert parse_stream(openai_chat, data, random_cuts(data, seed)) == whole


def test_parser_interleaved_calls_keep_their_own_blocks_and_order() -> None:
    def frame(delta: dict, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return encode(json.dumps({"id": "c", "model": "m", "choices": [choice]}))

    def call(i: int, args: str, cid: str | None = None) -> dict:
        spec: dict = {"index": i, "function": {"arguments": args}}
        if cid:
            spec.update(id=cid, type="function", function={"name": f"f{i}", "arguments": args})
        return {"tool_calls": [spec]}

    data = (
        frame(call(0, '{"a"', "c0"))
        + frame(call(1, '{"b"', "c1"))
        + frame(call(0, ":1}"))
        + frame(call(1, ":2}"))
    )
    events = parse_stream(openai_chat, data + frame({}, "tool_calls") + encode("[DONE]"))
    args: dict[int, str] = {}
    for e in events:
        if isinstance(e, ToolArgsDelta):
            args[e.index] = args.get(e.index, "") + e.partial_json
    starts = [e for e in events if isinstance(e, BlockStart)]
    assert [(s.index, s.id) for s in starts] == [(0, "c0"), (1, "c1")]
    assert args == {0: '{"a":1}', 1: '{"b":2}'}


def test_parser_maps_truncated_tool_names_back() -> None:
    long = "mcp__workspace_filesystem_server__read_text_file_with_line_numbers_and_ranges"
    chunk = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": truncate_tool_name(long), "arguments": "{}"}}
    ]}}]}  # fmt: skip
    parser = openai_chat.StreamParser(tools=[Tool(name=long)])
    events = parser.feed(SSEEvent(event=None, data=json.dumps(chunk), raw=b""))
    assert BlockStart(index=0, kind="tool_call", id="call_1", name=long) in events


@pytest.mark.parametrize("name", ["text", "tools_parallel", "thinking", "cache_late", "error_midstream"])
def test_anthropic_upstream_rendered_for_openai_caller_matches_golden(name: str) -> None:
    data = (FIXTURES / "anthropic" / f"{name}.sse").read_bytes()
    check_golden(
        OPENAI / "rendered" / f"from_anthropic_{name}.sse",
        render_stream(openai_chat, parse_stream(anthropic, data)),
    )


def test_renderer_chunks_share_id_and_end_with_usage_then_done() -> None:
    out = chunks(
        render_stream(
            openai_chat, parse_stream(anthropic, (FIXTURES / "anthropic" / "tools_parallel.sse").read_bytes())
        )
    )
    assert out[-1] == "[DONE]"
    body = [c for c in out if isinstance(c, dict)]
    assert {(c["id"], c["created"], c["model"]) for c in body} == {("gw_01", 1763800000, "bytespike-test")}
    assert body[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    calls = [tc for c in body for ch in c["choices"] for tc in ch["delta"].get("tool_calls", [])]
    assert [tc["index"] for tc in calls if "id" in tc] == [
        0,
        1,
    ]  # counts calls, not blocks (text was block 0)
    assert body[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert body[-1]["choices"] == [] and body[-1]["usage"]["cost_credits"] == 1234
    assert body[-1]["usage"]["prompt_tokens"] == 412 and body[-1]["usage"]["completion_tokens"] == 87


def test_renderer_without_include_usage_has_no_usage_chunk() -> None:
    events = parse_stream(anthropic, (FIXTURES / "anthropic" / "text.sse").read_bytes())
    out = chunks(render_stream(openai_chat, events, include_usage=False))
    assert out[-1] == "[DONE]"
    assert all(c["choices"] and "usage" not in c for c in out if isinstance(c, dict))


def test_renderer_error_frame_has_no_done() -> None:
    events = parse_stream(anthropic, (FIXTURES / "anthropic" / "error_midstream.sse").read_bytes())
    out = chunks(render_stream(openai_chat, events))
    assert "[DONE]" not in out
    assert out[-1] == {
        "error": {
            "message": "Overloaded (key [redacted])",
            "type": "server_error",
            "param": None,
            "code": "overloaded_error",
        }
    }


@pytest.mark.parametrize("include_usage", [True, False])
def test_passthrough_costs_or_hides_usage_chunk(include_usage: bool) -> None:
    data = fixture("cache_late")
    stream = PassthroughStream(openai_chat.PASSTHROUGH, include_usage=include_usage, cost_fn=lambda u: u.input_tokens * 2)
    out = b"".join(stream.feed(e) for e in decode(data))
    got, want = chunks(out), chunks(data)
    if include_usage:
        assert got[:-2] == want[:-2] and got[-1] == "[DONE]"
        assert got[-2]["usage"] == {**want[-2]["usage"], "cost_credits": 20}
    else:
        assert got == want[:-2] + ["[DONE]"]
    assert stream.done and stream.usage == Usage(
        input_tokens=10, output_tokens=42, cache_write_tokens=1500, cache_read_tokens=30000
    )


def test_passthrough_forwards_other_chunks_byte_for_byte_and_cleans_errors() -> None:
    stream = PassthroughStream(openai_chat.PASSTHROUGH, include_usage=True, cost_fn=lambda u: 0)
    events = decode(fixture("error_midstream"))
    out = [stream.feed(e) for e in events]
    assert out[:2] == [e.raw for e in events[:2]]
    assert b"SECRET" not in out[2] and stream.error is not None and not stream.done


def test_parser_usage_on_the_finishing_choice() -> None:
    chunk = {"id": "c", "model": "kimi-k2-6", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop",
             "usage": {"prompt_tokens": 10, "completion_tokens": 2, "cached_tokens": 0}}]}  # fmt: skip
    events = parse_stream(openai_chat, encode(json.dumps(chunk)) + encode("[DONE]"))
    assert events[-2:] == [MessageDelta(stop_reason="end_turn", usage=Usage(10, 2)), MessageStop()]
