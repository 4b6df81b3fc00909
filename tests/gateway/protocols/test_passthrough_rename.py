"""The model rename in passthrough answers: every member, and the fast path gives exactly what the pattern gives."""

from __future__ import annotations

import json
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.protocols.passthrough import model_rewriter


def by_pattern(key: str, model: str, data: bytes) -> bytes:
    pattern = re.compile(rb'([{,]\s*"' + re.escape(key.encode()) + rb'"\s*:\s*)"(?:[^"\\]|\\.)*"')
    value = json.dumps(model).encode()
    return pattern.sub(lambda m: m.group(1) + value, data)


PIECES = [b'{"model":"gpt-fake"', b',"model":"gpt-fake"', b'"model":"x\\"y"', b'{ "model" : "a b"', b'"model"',
          b'"text":"the \\"model\\":\\"q\\""', b'{"id":"c1"', b',"choices":[]', b"}", b"\n\n", b"data: ", b'"model":',
          b'"modelx":"no"', b',"model":"', b'\\', b'"', b"{", b",", b'"model":"gpt-fake-2025"}']


@settings(max_examples=400, deadline=None)
@example([b',"model":"', b'{"model":"gpt-fake"'], "gpt-5-4")  # a value that ends where a member begins
@given(st.lists(st.sampled_from(PIECES), max_size=8), st.sampled_from(["gpt-5-4", 'we"ird', "claude-sonnet-4-6"]))
def test_the_fast_path_matches_the_pattern(parts: list[bytes], model: str) -> None:
    data = b"".join(parts)
    assert model_rewriter("model", model)(data) == by_pattern("model", model, data)


def test_a_real_chunk_is_renamed_once() -> None:
    chunk = (b'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-fake","choices":'
             b'[{"delta":{"content":"\\"model\\":\\"gpt-fake\\""}}]}\n\n')
    out = model_rewriter("model", "gpt-5-4")(chunk)
    assert out == chunk.replace(b'"model":"gpt-fake"', b'"model":"gpt-5-4"', 1)
    assert b'\\"model\\":\\"gpt-fake\\"' in out
