"""The byte-scanning passthrough sends exactly what the full SSE decoder path sends, however the bytes split."""

from __future__ import annotations

import json

import pytest

from gateway.canonical import Usage
from gateway.protocols import registry
from gateway.relay import PassthroughRelay


def _cost(u: Usage) -> int:
    return u.input_tokens * 3 + u.output_tokens * 15


def _dumps(body: dict, compact: bool) -> str:
    return json.dumps(body, separators=(",", ":")) if compact else json.dumps(body)


def openai_stream(compact: bool = False) -> bytes:
    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> bytes:
        body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
                "usage": usage}
        return b"data: " + _dumps(body, compact).encode() + b"\n\n"
    return (b": keep-alive\n\n" + chunk({"role": "assistant", "content": ""})
            + b"".join(chunk({"content": w + ' "model":"x" usage'}) for w in ("Hi", "there", "\u00e9t\u00e9"))
            + b"\n" + chunk({}, "stop") + chunk({}, None, {"prompt_tokens": 4, "completion_tokens": 3}, False)
            + b"data: [DONE]\n\n")


def anthropic_stream(compact: bool = False) -> bytes:
    def ev(name: str, body: dict) -> bytes:
        return f"event: {name}\ndata: {_dumps(body, compact)}\n\n".encode()
    return (ev("message_start", {"type": "message_start", "message": {
                "id": "m", "type": "message", "role": "assistant", "model": "up-model", "content": [],
                "usage": {"input_tokens": 5, "output_tokens": 1}}})
            + ev("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}})
            + ev("ping", {"type": "ping"})
            + b"".join(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": w}}) for w in ("a", "b\n"))
            + ev("content_block_stop", {"type": "content_block_stop", "index": 0})
            + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                   "usage": {"output_tokens": 2}})
            + ev("message_stop", {"type": "message_stop"}))


def gemini_stream(compact: bool = False) -> bytes:
    def ev(body: dict) -> bytes:
        return b"data: " + _dumps(body, compact).encode() + b"\n\n"
    part = {"content": {"parts": [{"text": "hi"}], "role": "model"}, "index": 0}
    return (ev({"candidates": [part], "modelVersion": "up-model"})
            + ev({"candidates": [{**part, "finishReason": "STOP"}], "modelVersion": "up-model",
                  "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}))


# As Python's json writes it (a space after each separator) and compact, as the vendors write it (the
# relay's fast paths: a run of events at once, the model renamed in one pass).
CASES = [(name, make(compact)) for compact in (False, True)
         for name, make in (("openai", openai_stream), ("anthropic", anthropic_stream), ("gemini", gemini_stream))]
IDS = [f"{name}-{'compact' if compact else 'spaced'}" for compact in (False, True)
       for name in ("openai", "anthropic", "gemini")]


def run(protocol: str, pieces: list[bytes], *, slow: bool, model: str | None, include_usage: bool = True):
    relay = PassthroughRelay(registry.upstream_codec(protocol), include_usage=include_usage, cost_fn=_cost,
                             secrets=(), model=model)
    relay._slow = slow  # the full decoder for every event: the reference
    out = b"".join(relay.feed(p) for p in pieces) + relay.finish()
    return out, relay.usage, relay.done, relay.delivered_tokens


@pytest.mark.parametrize("protocol,raw", CASES, ids=IDS)
@pytest.mark.parametrize("model", [None, "asked-id"])
def test_byte_scan_matches_the_decoder_at_every_split(protocol, raw, model):
    want = run(protocol, [raw], slow=True, model=model)
    assert want[2] and want[1] is not None
    for cut in range(1, len(raw)):
        assert run(protocol, [raw[:cut], raw[cut:]], slow=False, model=model) == want, cut
    assert run(protocol, [raw[i:i + 7] for i in range(0, len(raw), 7)], slow=False, model=model) == want


@pytest.mark.parametrize("protocol,raw", CASES, ids=IDS)
def test_model_is_renamed_in_every_event_and_text_is_untouched(protocol, raw):
    out = run(protocol, [raw], slow=False, model="asked-id")[0]
    assert b"up-model" not in out
    key = b'"modelVersion"' if protocol == "gemini" else b'"model"'
    assert out.count(key + b': "asked-id"') + out.count(key + b':"asked-id"') == raw.count(b"up-model")
    if protocol == "openai":
        assert out.count(b'\\"model\\":\\"x\\"') == 3  # text that looks like a member is text


def test_blocks_that_are_not_one_event_and_one_data_line_are_read_as_the_decoder_reads_them():
    # Two data lines in one block and an event with no data: the line counts of the pair match a run of
    # plain blocks, so only looking at each block tells them apart.
    odd = b"event: x\ndata: {\"a\":1}\ndata: {\"b\":2}\n\nevent: y\n\n"
    raw = anthropic_stream(True).replace(b"event: content_block_stop", odd + b"event: content_block_stop", 1)
    want = run("anthropic", [raw], slow=True, model="asked-id")
    for cut in range(1, len(raw), 5):
        assert run("anthropic", [raw[:cut], raw[cut:]], slow=False, model="asked-id") == want, cut
    assert run("anthropic", [raw], slow=False, model="asked-id") == want


def test_crlf_and_bom_streams_take_the_decoder():
    raw = openai_stream()
    crlf = b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n")
    want = run("openai", [crlf], slow=True, model="asked-id")
    assert run("openai", [crlf[:10], crlf[10:]], slow=False, model="asked-id") == want


def test_usage_chunk_hidden_unless_asked():
    out = run("openai", [openai_stream()], slow=False, model=None, include_usage=False)[0]
    assert b'"usage": {' not in out and b"[DONE]" in out
