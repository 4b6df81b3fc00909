"""Tool results that do not map one-to-one: errors, images, and Gemini results that name no call id."""

from __future__ import annotations

import json

import pytest
from google.genai import types as gt

from tests.gateway.translation.callers import CALLERS, PNG_B64, TOOLS
from tests.gateway.translation.upstreams import MODELS, TEXT, sent

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("upstream", ["openai", "gemini"])
def test_anthropic_error_and_image_results_reach_other_vendors(tgw, tkey, tag, upstream):
    client = CALLERS["anthropic"](tgw.base_url, tkey).client  # type: ignore[attr-defined]
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
    msg = client.messages.create(model=MODELS[upstream], max_tokens=512, messages=[
        {"role": "user", "content": f"{tag} weather and a chart?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_01W", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_01T", "name": "get_time", "input": {"tz": "Europe/Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01W", "is_error": True, "content": "service down"},
            {"type": "tool_result", "tool_use_id": "toolu_01T", "content": [{"type": "text", "text": "14:00"}, image]},
            {"type": "text", "text": "and now?"}]},
    ], tools=[{"name": n, "description": d, "input_schema": s} for n, d, s in TOOLS])
    assert msg.content[0].text == TEXT
    got = sent(tgw, upstream, tag)
    if upstream == "openai":
        assert got["messages"][-3:] == [
            {"role": "tool", "tool_call_id": "toolu_01W", "content": "Error: service down"},
            {"role": "tool", "tool_call_id": "toolu_01T", "content": "14:00"},
            {"role": "user", "content": [{"type": "text", "text": "and now?"}, {
                "type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}]}]
    else:
        assert got["contents"][-1] == {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"error": "service down"}}},
            {"functionResponse": {"name": "get_time", "response": {"content": "14:00"}}},
            {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
            {"text": "and now?"}]}


@pytest.mark.parametrize("upstream", ["anthropic", "openai"])
def test_gemini_results_without_ids_pair_with_their_calls_by_name(tgw, tkey, tag, upstream):
    """google-genai users often build results with Part.from_function_response(name=..., response=...)."""
    client = CALLERS["gemini"](tgw.base_url, tkey).client  # type: ignore[attr-defined]
    contents = [
        gt.Content(role="user", parts=[gt.Part(text=f"{tag} weather twice and the time")]),
        gt.Content(role="model", parts=[
            gt.Part(function_call=gt.FunctionCall(name="get_weather", args={"city": "Paris"})),
            gt.Part(function_call=gt.FunctionCall(name="get_time", args={"tz": "Europe/Paris"})),
            gt.Part(function_call=gt.FunctionCall(name="get_weather", args={"city": "Lyon"}))]),
        gt.Content(role="user", parts=[
            gt.Part.from_function_response(name="get_time", response={"content": "14:00"}),
            gt.Part.from_function_response(name="get_weather", response={"content": "18C"}),
            gt.Part.from_function_response(name="get_weather", response={"content": "21C"})]),
    ]
    config = gt.GenerateContentConfig(tools=[gt.Tool(function_declarations=[
        gt.FunctionDeclaration(name=n, description=d, parameters_json_schema=s) for n, d, s in TOOLS])])
    resp = client.models.generate_content(model=MODELS[upstream], contents=contents, config=config)
    assert resp.text == TEXT
    got = sent(tgw, upstream, tag)
    if upstream == "anthropic":
        calls = [(b["id"], b["input"]) for b in got["messages"][1]["content"]]
        results = {b["tool_use_id"]: b["content"] for b in got["messages"][2]["content"]}
    else:
        calls = [(t["id"], tuple(json.loads(t["function"]["arguments"]).values()))
                 for t in got["messages"][1]["tool_calls"]]
        results = {m["tool_call_id"]: m["content"] for m in got["messages"][2:5]}
    ids = [i for i, _ in calls]
    assert len(set(ids)) == 3
    # Same-name results answer that name's calls in order: Paris then Lyon.
    assert [results[i] for i in ids] == ["18C", "14:00", "21C"]
