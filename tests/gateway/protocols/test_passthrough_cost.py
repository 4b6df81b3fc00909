"""The cost goes into the final usage object of a passthrough stream; the rest of the event is the upstream's text."""

from __future__ import annotations

import json

import pytest

from gateway.protocols.passthrough import with_member


@pytest.mark.parametrize("data", [
    '{"id":"c1","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":3}}',
    '{"id": "c1", "choices": [], "usage" : { "prompt_tokens": 4 , "completion_tokens": 3 } }',
    '{"usage":{},"id":"c1"}',
    '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}',
    '{"usage":{"prompt_tokens":4,"prompt_tokens_details":{"cached_tokens":1}},"choices":[]}',
])
def test_the_member_lands_in_the_usage_object_and_nothing_else_moves(data):
    current = json.loads(data)["usage"]
    out = with_member(data, "usage", "cost_credits", 57, current)
    assert out is not None
    assert json.loads(out) == {**json.loads(data), "usage": {**current, "cost_credits": 57}}
    assert out.replace(',"cost_credits":57', "").replace('"cost_credits":57', "") == data


@pytest.mark.parametrize("data", [
    '{"usage":{"prompt_tokens":4},"x":{"usage":{"a":1}}}',  # named twice: which one is top-level is not certain
    '{"us\\u0061ge":{"prompt_tokens":4},"x":"usage"}',  # a key behind an escape
    '{"usage":{"prompt_tokens":4,"cost_credits":9}}',  # already there
    '{"usage":null}',
    '{"usage":[1]}',
])
def test_anything_uncertain_is_left_to_a_full_render(data):
    parsed = json.loads(data)
    current = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else {}
    assert with_member(data, "usage", "cost_credits", 57, current) is None
