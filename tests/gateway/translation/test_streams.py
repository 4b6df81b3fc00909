"""Streams carry what non-stream answers carry, through the official SDKs over HTTP.

A Responses ``custom`` tool's call comes back as ``custom_tool_call``; the web
searches a vendor ran and the citations on its text come back in the caller's
shape; a Gemini call streamed as ``partialArgs`` reaches the caller whole.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as gt

from tests.gateway.translation.upstreams import (
    CALLS,
    MODELS,
    PATCH,
    SEARCH_HIT,
    SEARCH_QUERY,
    SEARCH_TEXT,
    sent,
)

pytestmark = pytest.mark.timeout(60)
CUSTOM = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
          "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
TOOLS = [{"name": n, "description": n, "input_schema": {"type": "object", "properties": {k: {"type": "string"}
                                                                                        for k in a}}}
         for n, a in CALLS]


def oai(tgw, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=tgw.base_url + "/v1", api_key=key, max_retries=0)


def ant(tgw, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=tgw.base_url, api_key=key, max_retries=0)


# --- custom tools --------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", list(MODELS))
def test_custom_tool_call_streams_back_as_custom_tool_call(tgw, tkey, tag, upstream):
    client = oai(tgw, tkey)
    kw: dict[str, Any] = {"model": MODELS[upstream], "input": f"[scn customtool] {tag} patch it", "tools": [CUSTOM]}
    with client.responses.stream(**kw) as stream:
        kinds = [ev.type for ev in stream]
        final = stream.get_final_response()
    (call,) = final.output
    assert (call.type, call.name, call.input) == ("custom_tool_call", "apply_patch", PATCH)
    assert "response.custom_tool_call_input.done" in kinds and "response.custom_tool_call_input.delta" in kinds
    assert not [k for k in kinds if k.startswith("response.function_call")]
    whole = client.responses.create(**kw)
    assert [(i.type, i.name, i.input) for i in whole.output] == [("custom_tool_call", "apply_patch", PATCH)]


# --- web search results and citations --------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "create"])
def test_gemini_search_reaches_an_anthropic_caller_as_blocks(tgw, tkey, tag, stream):
    kw: dict[str, Any] = {
        "model": MODELS["gemini"], "max_tokens": 256, "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "messages": [{"role": "user", "content": f"[scn search] {tag} news?"}]}
    client = ant(tgw, tkey)
    if stream:
        with client.messages.stream(**kw) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**kw)
    assert {"googleSearch": {}} in sent(tgw, "gemini", tag)["tools"]
    # Gemini reports the search with its last chunk: streamed, the text is not held back for it.
    order = ["server_tool_use", "web_search_tool_result", "text"]
    assert [b.type for b in msg.content] == (order[2:] + order[:2] if stream else order)
    kinds = {b.type: b for b in msg.content}
    assert kinds["server_tool_use"].input == {"query": SEARCH_QUERY}
    assert [r.url for r in kinds["web_search_tool_result"].content] == [SEARCH_HIT[0]]  # type: ignore[union-attr]
    text = kinds["text"]
    assert text.text == SEARCH_TEXT  # type: ignore[union-attr]
    assert [(c.url, c.cited_text) for c in text.citations] == [(SEARCH_HIT[0], SEARCH_TEXT)]  # type: ignore[union-attr]


@pytest.mark.parametrize("upstream", ["anthropic", "gemini"])
def test_search_reaches_a_responses_caller_as_web_search_call_and_annotations(tgw, tkey, tag, upstream):
    kw: dict[str, Any] = {"model": MODELS[upstream], "input": f"[scn search] {tag} news?",
                          "tools": [{"type": "web_search"}]}
    client = oai(tgw, tkey)
    with client.responses.stream(**kw) as stream:
        kinds = [ev.type for ev in stream]
        final = stream.get_final_response()
    whole = client.responses.create(**kw)
    for resp in (final, whole):
        (search,) = [i for i in resp.output if i.type == "web_search_call"]
        assert search.action.query == SEARCH_QUERY  # type: ignore[union-attr]
        assert [s.url for s in search.action.sources] == [SEARCH_HIT[0]]  # type: ignore[union-attr]
        assert resp.output_text == SEARCH_TEXT
        (message,) = [i for i in resp.output if i.type == "message"]
        (note,) = message.content[0].annotations  # type: ignore[union-attr]
        assert (note.type, note.url, note.start_index, note.end_index) == (
            "url_citation", SEARCH_HIT[0], 0, len(SEARCH_TEXT))
    assert "response.web_search_call.completed" in kinds and "response.output_text.annotation.added" in kinds


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "create"])
def test_claude_search_reaches_a_gemini_caller_as_grounding_metadata(tgw, tkey, tag, stream):
    client = genai.Client(api_key=tkey, http_options=gt.HttpOptions(base_url=tgw.base_url, api_version="v1beta"))
    kw: dict[str, Any] = {"model": MODELS["anthropic"], "contents": f"[scn search] {tag} news?",
                          "config": gt.GenerateContentConfig(tools=[gt.Tool(google_search=gt.GoogleSearch())])}
    if stream:
        chunks = list(client.models.generate_content_stream(**kw))
        text = "".join(c.text or "" for c in chunks)
        meta = chunks[-1].candidates[0].grounding_metadata  # type: ignore[index]
    else:
        resp = client.models.generate_content(**kw)
        text, meta = resp.text, resp.candidates[0].grounding_metadata  # type: ignore[index]
    assert text == SEARCH_TEXT and meta is not None
    assert meta.web_search_queries == [SEARCH_QUERY]
    assert [c.web.uri for c in meta.grounding_chunks] == [SEARCH_HIT[0]]  # type: ignore[union-attr]
    (support,) = meta.grounding_supports  # type: ignore[misc]
    assert (support.segment.start_index, support.segment.end_index) == (0, len(SEARCH_TEXT.encode()))
    assert support.grounding_chunk_indices == [0]


# --- Gemini partialArgs ------------------------------------------------------------------------------


def test_gemini_partial_args_reach_an_anthropic_caller_whole(tgw, tkey, tag):
    with ant(tgw, tkey).messages.stream(
            model=MODELS["gemini"], max_tokens=256, tools=TOOLS,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": f"[scn partialtools] {tag} weather and time?"}]) as s:
        msg = s.get_final_message()
    assert [(b.name, b.input) for b in msg.content if b.type == "tool_use"] == list(CALLS)
    assert msg.stop_reason == "tool_use"


def test_gemini_partial_args_reach_chat_and_responses_callers_whole(tgw, tkey, tag):
    client = oai(tgw, tkey)
    tools = [{"type": "function", "function": {"name": t["name"], "parameters": t["input_schema"]}} for t in TOOLS]
    chunks = list(client.chat.completions.create(
        model=MODELS["gemini"], stream=True, tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": f"[scn partialtools] {tag} weather and time?"}]))
    args: dict[int, str] = {}
    names: dict[int, str] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            names[call.index] = names.get(call.index, "") + (call.function.name or "")  # type: ignore[union-attr]
            args[call.index] = args.get(call.index, "") + (call.function.arguments or "")  # type: ignore[union-attr]
    assert [(names[i], json.loads(args[i])) for i in sorted(args)] == list(CALLS)
    with client.responses.stream(
            model=MODELS["gemini"], input=f"[scn partialtools] {tag} again",
            tools=[{"type": "function", "name": t["name"], "parameters": t["input_schema"]} for t in TOOLS]) as stream:
        final = stream.get_final_response()
    assert [(i.name, json.loads(i.arguments)) for i in final.output if i.type == "function_call"] == list(CALLS)
