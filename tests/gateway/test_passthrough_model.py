"""A passthrough answer names the id the caller asked for, not the channel's upstream name (API.md §2).

The test channels map each model to ``<id>-upstream`` (``model_map``); the fake vendors
echo the name they were sent, so every answer below would name the upstream's model
if the gateway forwarded it unchanged.
"""

from __future__ import annotations

import anthropic
import openai

from tests.gateway.test_gemini_caller import body, data_events, gen

TEXT = "Hello from the fake upstream, one word at a time."


def ant(gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0)


def oai(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def test_anthropic_message_names_the_asked_id(gateway, shared_key):
    msg = ant(gateway, shared_key).messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert gateway.fakes["anthropic"].seen[-1].body["model"] == "claude-sonnet-4-6-upstream"
    assert msg.model == "claude-sonnet-4-6"
    assert msg.content[0].text == TEXT


def test_anthropic_stream_message_start_names_the_asked_id(gateway, shared_key):
    with ant(gateway, shared_key).messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi [fake out=9]"}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    starts = [e for e in events if e.type == "message_start"]
    assert [e.message.model for e in starts] == ["claude-sonnet-4-6"]
    assert final.model == "claude-sonnet-4-6"
    assert "".join(b.text for b in final.content) == TEXT
    assert final.usage.output_tokens == 9


def test_openai_completion_names_the_asked_id(gateway, shared_key):
    resp = oai(gateway, shared_key).chat.completions.create(
        model="gpt-5-4", messages=[{"role": "user", "content": "hi"}])
    assert gateway.fakes["openai"].seen[-1].body["model"] == "gpt-5-4-upstream"
    assert resp.model == "gpt-5-4"
    assert resp.choices[0].message.content == TEXT


def test_openai_stream_every_chunk_names_the_asked_id(gateway, shared_key):
    chunks = list(oai(gateway, shared_key).chat.completions.create(
        model="gpt-5-4", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi [fake out=7]"}]))
    assert len(chunks) > 3
    assert {c.model for c in chunks} == {"gpt-5-4"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[-1].usage.completion_tokens == 7


def test_gemini_answer_names_the_asked_id(gateway, shared_key):
    r = gen(gateway, "gemini-3-1-pro", body("hi"), headers={"x-goog-api-key": shared_key})
    assert r.status_code == 200, r.text
    assert gateway.fakes["gemini"].seen[-1].path == "/v1beta/models/gemini-3-1-pro-upstream:generateContent"
    assert r.json()["modelVersion"] == "gemini-3-1-pro"
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == TEXT


def test_gemini_stream_every_chunk_names_the_asked_id(gateway, shared_key):
    r = gen(gateway, "gemini-3-1-pro", body("hi [fake in=20 out=6]"), stream=True,
            headers={"x-goog-api-key": shared_key})
    assert r.status_code == 200, r.text
    events = data_events(r.content)
    assert len(events) > 3
    assert {e["modelVersion"] for e in events} == {"gemini-3-1-pro"}
    assert "".join(p.get("text", "") for e in events for c in e.get("candidates", [])
                   for p in c["content"]["parts"]) == TEXT
    assert events[-1]["usageMetadata"]["costCredits"] == 20 * 2 + 6 * 12
