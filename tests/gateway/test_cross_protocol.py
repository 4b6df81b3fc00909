"""Calls whose caller protocol differs from the upstream's: translated both ways, stream and not."""

from __future__ import annotations

import anthropic
import openai

TEXT = "Hello from the fake upstream, one word at a time."


def ant(gateway, key):
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0)


def oai(gateway, key):
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def test_anthropic_caller_to_openai_upstream(gateway, shared_key):
    msg = ant(gateway, shared_key).messages.create(
        model="gpt-5-4", max_tokens=50, system="be brief",
        messages=[{"role": "user", "content": "hi [fake in=20 cached=4 out=6]"}])
    assert msg.content[0].text == TEXT
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 20 and msg.usage.output_tokens == 6
    assert msg.usage.cache_read_input_tokens == 4
    sent = gateway.fakes["openai"].seen[-1].body
    assert sent["model"] == "gpt-5-4-upstream"
    assert sent["messages"][0]["role"] in ("system", "developer")


def test_anthropic_stream_from_openai_upstream_matches_non_stream(gateway, shared_key):
    client = ant(gateway, shared_key)
    with client.messages.stream(model="gpt-5-4", max_tokens=50,
                                messages=[{"role": "user", "content": "hi [fake out=6]"}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == TEXT
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 6
    assert gateway.fakes["openai"].seen[-1].body["stream_options"]["include_usage"] is True


def test_anthropic_tool_call_from_openai_upstream(gateway, shared_key):
    msg = ant(gateway, shared_key).messages.create(
        model="gpt-5-4", max_tokens=50,
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        messages=[{"role": "user", "content": "weather? [fake tool=get_weather]"}])
    assert msg.stop_reason == "tool_use"
    call = [b for b in msg.content if b.type == "tool_use"][0]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}


def test_openai_caller_to_anthropic_upstream(gateway, shared_key):
    resp = oai(gateway, shared_key).chat.completions.create(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "hi [fake in=30 cached=10 out=5]"}])
    assert resp.choices[0].message.content == TEXT
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == 40 and resp.usage.completion_tokens == 5
    sent = gateway.fakes["anthropic"].seen[-1]
    assert sent.body["max_tokens"] > 0
    assert sent.headers["anthropic-version"] == "2023-06-01"


def test_openai_stream_helper_from_anthropic_upstream(gateway, shared_key):
    client = oai(gateway, shared_key)
    with client.chat.completions.stream(model="claude-sonnet-4-6",
                                        messages=[{"role": "user", "content": "hi [fake out=5]"}]) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == TEXT
    assert final.choices[0].finish_reason == "stop"


def test_responses_caller_non_stream_and_stream_agree(gateway, shared_key):
    client = oai(gateway, shared_key)
    resp = client.responses.create(model="claude-sonnet-4-6", input="hi [fake out=5]")
    assert resp.output_text == TEXT
    assert resp.usage.output_tokens == 5
    with client.responses.stream(model="gpt-5-4", input="hi [fake out=5]") as s:
        final = s.get_final_response()
    assert final.output_text == TEXT
    assert final.status == "completed"
    assert final.usage.output_tokens == 5


def test_echo_demo_model_answers_every_protocol(gateway, shared_key):
    msg = ant(gateway, shared_key).messages.create(
        model="bytespike-echo", max_tokens=100, messages=[{"role": "user", "content": "ping pong"}])
    assert msg.content[0].text == "ping pong"
    resp = oai(gateway, shared_key).chat.completions.create(
        model="bytespike-echo", messages=[{"role": "user", "content": "ping pong"}])
    assert resp.choices[0].message.content == "ping pong"
    chunks = list(oai(gateway, shared_key).chat.completions.create(
        model="bytespike-echo", stream=True, messages=[{"role": "user", "content": "one two three"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    with oai(gateway, shared_key).responses.stream(model="bytespike-echo", input="echo me") as s:
        assert s.get_final_response().output_text == "echo me"
