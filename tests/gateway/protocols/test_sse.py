"""The SSE decoder must give the same events however the bytes are split."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gateway.sse import SSEDecoder, SSEEvent, encode

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
STREAMS = sorted(FIXTURES.glob("anthropic/*.sse")) + sorted(FIXTURES.glob("openai/*.sse"))


def decode(data: bytes, cuts: list[int] | None = None) -> list[SSEEvent]:
    """Decode ``data`` fed in pieces split at ``cuts`` (byte offsets), then flush."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    last = 0
    for cut in sorted(cuts or []) + [len(data)]:
        events += decoder.feed(data[last:cut])
        last = cut
    return events + decoder.flush()


def random_cuts(data: bytes, seed: int, count: int = 12) -> list[int]:
    rng = random.Random(seed)
    return rng.sample(range(1, len(data)), min(count, len(data) - 1))


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_decoder_split_anywhere_gives_same_events(path: Path) -> None:
    data = path.read_bytes()
    whole = decode(data)
    assert whole and b"".join(e.raw for e in whole) == data
    for seed in range(20):
        assert decode(data, random_cuts(data, seed)) == whole
    assert decode(data, list(range(1, len(data)))) == whole  # one byte at a time


def test_decoder_crlf_and_cr_line_endings() -> None:
    lf = b"event: a\ndata: 1\n\ndata: 2\n\n"
    for eol in (b"\r\n", b"\r"):
        data = lf.replace(b"\n", eol)
        events = decode(data, list(range(1, len(data))))
        assert [(e.event, e.data) for e in events] == [("a", "1"), (None, "2")]
        assert b"".join(e.raw for e in events) == data


def test_decoder_cr_lf_split_across_feeds_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n\r") == []
    assert [e.data for e in decoder.feed(b"\n")] == ["x"]


def test_decoder_multiline_data_comments_and_fields() -> None:
    data = b": keep-alive\n\nid: 7\nretry: 100\nevent: msg\ndata: first\ndata:second\ndata\n: inside\n\n"
    events = decode(data)
    assert [(e.event, e.data) for e in events] == [("msg", "first\nsecond\n")]


def test_decoder_flush_dispatches_event_without_blank_line() -> None:
    events = decode(b'data: {"a":1}\n\ndata: [DONE]')
    assert [e.data for e in events] == ['{"a":1}', "[DONE]"]
    assert events[-1].raw == b"data: [DONE]\n\n"
    assert decode(b"data: tail\n") == [SSEEvent(event=None, data="tail", raw=b"data: tail\n\n")]


def test_decoder_multibyte_character_split_mid_sequence() -> None:
    data = "data: 東京 wörld\n\n".encode()
    assert decode(data, list(range(1, len(data))))[0].data == "東京 wörld"


def test_decoder_strips_bom_and_ignores_empty_blocks() -> None:
    events = decode(b"\xef\xbb\xbfdata: a\n\n\n\n\ndata: b\n\n")
    assert [e.data for e in events] == ["a", "b"]


def test_encode_frames_event_and_multiline_data() -> None:
    assert encode('{"a":1}') == b'data: {"a":1}\n\n'
    assert encode("x\ny", event="message_stop") == b"event: message_stop\ndata: x\ndata: y\n\n"
    [event] = decode(encode("one\ntwo", event="e"))
    assert (event.event, event.data) == ("e", "one\ntwo")


# --- helpers the codec stream tests share -------------------------------------------


def parse_stream(codec, data: bytes, cuts: list[int] | None = None, **kw) -> list:  # type: ignore[no-untyped-def]
    """Run recorded upstream bytes through ``codec.StreamParser`` to the end of the stream."""
    parser = codec.StreamParser(**kw)
    events: list = []
    for event in decode(data, cuts):
        events += parser.feed(event)
    return events + parser.finish()


def render_stream(codec, events: list, *, cost: int | None = 1234, include_usage: bool = True) -> bytes:  # type: ignore[no-untyped-def]
    """Render canonical events for a caller, the pipeline's cost filled into each message delta."""
    from dataclasses import replace

    from gateway.canonical_events import MessageDelta

    renderer = codec.StreamRenderer(
        model="bytespike-test", message_id="gw_01", created=1763800000, include_usage=include_usage
    )
    return b"".join(
        renderer.render(replace(e, cost_credits=cost) if isinstance(e, MessageDelta) else e) for e in events
    )


def check_golden(path: Path, actual: bytes) -> None:
    """Compare with a golden file; BYTESPIKE_REGEN_GOLDEN=1 rewrites it (review the diff)."""
    import os

    if os.environ.get("BYTESPIKE_REGEN_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
    assert actual == path.read_bytes()
