"""Reasoning state in a conversation's history, across protocols.

Opaque state goes back only to the vendor that made it (Anthropic signatures
are stripped for the others, and return to Anthropic intact from a Responses
client's ``encrypted_content``); readable reasoning is replayed to an
OpenAI-compatible upstream on tool-call turns (DeepSeek requires it); and a
thinking tool loop through Anthropic never sends a history Anthropic refuses.
"""

from __future__ import annotations

import json

import pytest

from tests.gateway.translation.callers import CALLERS, Results, User
from tests.gateway.translation.upstreams import ANT_SIGNATURE, CALLS, MODELS, REDACTED, TEXT, THOUGHT, sent

pytestmark = pytest.mark.timeout(60)
HISTORY_SIGNATURE = "EuYBCkQIBRgCIkDhistory-signature-0002"


@pytest.mark.parametrize("upstream", ["openai", "gemini"])
def test_anthropic_signature_in_history_is_stripped_for_other_vendors(tgw, tkey, tag, upstream):
    client = CALLERS["anthropic"](tgw.base_url, tkey).client  # type: ignore[attr-defined]
    msg = client.messages.create(model=MODELS[upstream], max_tokens=1024, messages=[
        {"role": "user", "content": f"{tag} weather?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Call the tool.", "signature": HISTORY_SIGNATURE},
            {"type": "redacted_thinking", "data": "RkFLRS1yZWRhY3RlZA=="},
            {"type": "tool_use", "id": "toolu_01X", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01X", "content": "18C"}]},
    ], tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}])
    assert msg.content[0].text == TEXT
    text = json.dumps(sent(tgw, upstream, tag))
    assert HISTORY_SIGNATURE not in text and "RkFLRS1yZWRhY3RlZA==" not in text and ANT_SIGNATURE not in text
    assert '"signature"' not in text


@pytest.mark.parametrize("caller", list(CALLERS))
def test_reasoning_is_replayed_to_an_openai_compatible_upstream_on_tool_turns(tgw, tkey, tag, caller):
    c = CALLERS[caller](tgw.base_url, tkey)
    user = User(f"[scn thinktools] {tag} weather and time?")
    first = c.call(MODELS["openai"], [user], stream=True, tools=True, thinking=True)
    assert first.thinking == THOUGHT and len(first.calls) == 2
    results = Results(tuple((i, n, f"ok {n} [scn after]") for i, n, _ in first.calls))
    c.call(MODELS["openai"], [user, first, results], stream=False, tools=True, thinking=True)
    turns = sent(tgw, "openai", tag, "[scn after]")["messages"]
    assistant = next(m for m in turns if m["role"] == "assistant")
    assert [t["function"]["name"] for t in assistant["tool_calls"]] == [n for n, _ in CALLS]
    assert assistant.get("reasoning_content") == THOUGHT


@pytest.mark.parametrize("caller", list(CALLERS))
def test_thinking_tool_loop_through_anthropic(tgw, tkey, tag, caller):
    """Turn two of a tool loop with thinking on: Anthropic refuses a final tool-use turn without its thinking."""
    c = CALLERS[caller](tgw.base_url, tkey)
    user = User(f"[scn thinktools] {tag} weather and time?")
    first = c.call(MODELS["anthropic"], [user], stream=True, tools=True, thinking=True)
    assert first.thinking == THOUGHT and len(first.calls) == 2
    results = Results(tuple((i, n, f"ok {n} [scn after]") for i, n, _ in first.calls))
    second = c.call(MODELS["anthropic"], [user, first, results], stream=False, tools=True, thinking=True)
    assert second.text == "It is 18C and sunny; the time is 14:00."
    got = sent(tgw, "anthropic", tag, "[scn after]")
    head = got["messages"][1]["content"][0]
    if caller in ("anthropic", "responses"):  # they carry the signature: the thinking goes back intact
        assert head == {"type": "thinking", "thinking": THOUGHT, "signature": ANT_SIGNATURE}
        assert got["thinking"]["type"] == "enabled"
    else:  # the signature is lost on the way through these protocols: no thinking this turn
        assert head["type"] == "tool_use" and "thinking" not in got


def test_redacted_thinking_returns_to_anthropic_through_a_responses_client(tgw, tkey, tag):
    """Codex keeps reasoning items (store=false) and sends them back: Anthropic must get its blocks intact."""
    c = CALLERS["responses"](tgw.base_url, tkey)
    user = User(f"[scn redacted] {tag} weather and time?")
    first = c.call(MODELS["anthropic"], [user], stream=True, tools=True, thinking=True)
    states = [i.get("encrypted_content") for i in first.replay if i["type"] == "reasoning"]
    assert states == ["bsk1.anthropic." + ANT_SIGNATURE, "bsk1.anthropic-redacted." + REDACTED]
    results = Results(tuple((i, n, f"ok {n} [scn after]") for i, n, _ in first.calls))
    c.call(MODELS["anthropic"], [user, first, results], stream=False, tools=True, thinking=True)
    head = sent(tgw, "anthropic", tag, "[scn after]")["messages"][1]["content"][:3]
    assert head[:2] == [{"type": "thinking", "thinking": THOUGHT, "signature": ANT_SIGNATURE},
                        {"type": "redacted_thinking", "data": REDACTED}]
    assert head[2]["type"] == "tool_use"
