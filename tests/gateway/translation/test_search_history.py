"""Searches and citations from an earlier answer, sent back in the history, reach every upstream in a form it takes.

A search another vendor ran reached an Anthropic caller as ``server_tool_use`` + ``web_search_tool_result``
blocks and ``web_search_result_location`` citations without Anthropic's encrypted content, and a Responses
caller as a ``web_search_call`` item and ``url_citation`` annotations. Sent back, nothing reaches an upstream
in a form it refuses (the scripted fakes refuse what the vendor does): Anthropic's own records go back to it
as they are; any other becomes text with the query, the results and the sources the text cites.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.gateway.translation.upstreams import MODELS, SEARCH_HIT, SEARCH_QUERY, SEARCH_TEXT, sent

pytestmark = pytest.mark.timeout(60)
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search"}
GEMINI_HIT = f"- news.example {SEARCH_HIT[0]}"  # Gemini titles a source by its site
CLAUDE_HIT = f"- {SEARCH_HIT[1]} {SEARCH_HIT[0]}"


def ant(tgw, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=tgw.base_url, api_key=key, max_retries=0)


def oai(tgw, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=tgw.base_url + "/v1", api_key=key, max_retries=0)


def _assistant(body: dict[str, Any], upstream: str) -> Any:
    """The earlier answer as the upstream received it: its blocks, message content or parts."""
    if upstream == "gemini":
        return next(c for c in body["contents"] if c["role"] == "model")["parts"]
    return next(m for m in body["messages"] if m["role"] == "assistant")["content"]


def _anthropic_turns(tgw, key: str, tag: str, first: str) -> list[dict[str, Any]]:
    """A search answered by ``first``'s model for an Anthropic caller, replayed as its SDK gives it, and a question."""
    question = {"role": "user", "content": f"[scn search] {tag} news?"}
    msg = ant(tgw, key).messages.create(model=MODELS[first], max_tokens=256, tools=[SEARCH_TOOL],  # type: ignore[list-item]
                                        messages=[question])  # type: ignore[list-item]
    replay = [b.model_dump(exclude_none=True) for b in msg.content]
    return [question, {"role": "assistant", "content": replay}, {"role": "user", "content": f"{tag} more [scn after]"}]


def test_gemini_search_in_an_anthropic_history_reaches_anthropic_as_text(tgw, tkey, tag):
    turns = _anthropic_turns(tgw, tkey, tag, "gemini")
    assert turns[1]["content"][1]["content"][0]["encrypted_content"] == ""  # what Anthropic would refuse
    msg = ant(tgw, tkey).messages.create(model=MODELS["anthropic"], max_tokens=256, messages=turns)  # type: ignore[arg-type]
    assert msg.content[0].text == "It is 18C and sunny; the time is 14:00."  # type: ignore[union-attr]
    body = sent(tgw, "anthropic", tag, "[scn after]")
    assert _assistant(body, "anthropic") == [
        {"type": "text", "text": f"[web search: {SEARCH_QUERY}]"},
        {"type": "text", "text": f"[search results]\n{GEMINI_HIT}"},
        {"type": "text", "text": f'{SEARCH_TEXT}\n\n[sources]\n{GEMINI_HIT}: "{SEARCH_TEXT}"'},
    ]
    assert body["messages"][0] == turns[0] and body["messages"][2] == turns[2]  # the rest as the caller sent it


def test_claude_search_in_an_anthropic_history_goes_back_to_anthropic_as_it_is(tgw, tkey, tag):
    turns = _anthropic_turns(tgw, tkey, tag, "anthropic")
    ant(tgw, tkey).messages.create(model=MODELS["anthropic"], max_tokens=256, messages=turns)  # type: ignore[arg-type]
    blocks = _assistant(sent(tgw, "anthropic", tag, "[scn after]"), "anthropic")
    assert blocks == turns[1]["content"]
    assert blocks[1]["content"][0]["encrypted_content"] and blocks[2]["citations"][0]["encrypted_index"]


@pytest.mark.parametrize("first", ["anthropic", "gemini"])
@pytest.mark.parametrize("upstream", ["openai", "gemini"])
def test_search_in_an_anthropic_history_reaches_other_vendors_as_text(tgw, tkey, tag, first, upstream):
    turns = _anthropic_turns(tgw, tkey, tag, first)
    ant(tgw, tkey).messages.create(model=MODELS[upstream], max_tokens=256, messages=turns)  # type: ignore[arg-type]
    got = _assistant(sent(tgw, upstream, tag, "[scn after]"), upstream)
    hit = GEMINI_HIT if first == "gemini" else CLAUDE_HIT
    quote = SEARCH_TEXT if first == "gemini" else SEARCH_TEXT[:18]  # Claude's scripted citation quotes a part
    texts = [f"[web search: {SEARCH_QUERY}]\n\n", f"[search results]\n{hit}\n\n",
             f'{SEARCH_TEXT}\n\n[sources]\n{hit}: "{quote}"']
    assert got == ("".join(texts) if upstream == "openai" else [{"text": t} for t in texts])


@pytest.mark.parametrize("upstream", ["anthropic", "openai", "gemini"])
@pytest.mark.parametrize("chain", [True, False], ids=["previous_response_id", "replayed"])
def test_gemini_search_in_a_responses_history_reaches_every_upstream_as_text(tgw, tkey, tag, upstream, chain):
    client = oai(tgw, tkey)
    first = client.responses.create(model=MODELS["gemini"], input=f"[scn search] {tag} news?",
                                    tools=[{"type": "web_search"}])
    assert [i.type for i in first.output] == ["web_search_call", "message"]
    more = [{"role": "user", "content": f"{tag} more [scn after]"}]
    if chain:
        client.responses.create(model=MODELS[upstream], input=more, previous_response_id=first.id)  # type: ignore[arg-type]
    else:
        replay = [{"role": "user", "content": f"[scn search] {tag} news?"},
                  *[i.model_dump(exclude_none=True) for i in first.output], *more]
        client.responses.create(model=MODELS[upstream], input=replay, store=False)  # type: ignore[arg-type]
    got = _assistant(sent(tgw, upstream, tag, "[scn after]"), upstream)
    texts = [f"[web search: {SEARCH_QUERY}]\n[search results]\n- {SEARCH_HIT[0]}\n\n",
             f"{SEARCH_TEXT}\n\n[sources]\n{GEMINI_HIT}"]
    expected = {"anthropic": [{"type": "text", "text": t} for t in texts], "openai": "".join(texts),
                "gemini": [{"text": t} for t in texts]}[upstream]
    assert got == expected
    assert "encrypted" not in json.dumps(got)
