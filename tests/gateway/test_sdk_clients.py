"""The official SDKs against the gunicorn-served gateway: same-protocol calls, stream and not."""

from __future__ import annotations

import anthropic
import openai
import pytest
import requests


def ant(gateway, key: str, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0, **kw)


def oai(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def test_messages_create_passthrough_keeps_content_usage_and_stop(gateway, shared_key):
    msg = ant(gateway, shared_key).messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi [fake in=40 out=9]"}])
    assert msg.content[0].text == "Hello from the fake upstream, one word at a time."
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (40, 9)
    seen = gateway.fakes["anthropic"].seen[-1]
    assert seen.body["model"] == "claude-sonnet-4-6-upstream"
    assert seen.path == "/v1/messages"
    assert seen.key in ("sk-up-ant-AAAA1111", "sk-up-ant-BBBB2222")


def test_messages_stream_helper_assembles_final_message(gateway, shared_key):
    with ant(gateway, shared_key).messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi [fake out=9]"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake upstream, one word at a time."
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 9


def test_chat_completions_create_passthrough(gateway, shared_key):
    resp = oai(gateway, shared_key).chat.completions.create(
        model="gpt-5-4", messages=[{"role": "user", "content": "hi [fake in=30 cached=10 out=5]"}])
    assert resp.choices[0].message.content == "Hello from the fake upstream, one word at a time."
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (40, 5)
    assert gateway.fakes["openai"].seen[-1].body["model"] == "gpt-5-4-upstream"


def test_chat_completions_stream_hides_usage_chunk_unless_asked(gateway, shared_key):
    client = oai(gateway, shared_key)
    chunks = list(client.chat.completions.create(
        model="gpt-5-4", stream=True, messages=[{"role": "user", "content": "hi"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from the fake upstream, one word at a time.")
    assert all(c.usage is None for c in chunks)
    assert gateway.fakes["openai"].seen[-1].body["stream_options"]["include_usage"] is True
    chunks = list(client.chat.completions.create(
        model="gpt-5-4", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi [fake out=7]"}]))
    assert chunks[-1].usage.completion_tokens == 7
    assert chunks[-1].choices == []


def test_sdk_typed_errors(gateway, shared_key):
    with pytest.raises(anthropic.AuthenticationError):
        ant(gateway, "sk-byts-" + "x" * 40).messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        oai(gateway, "sk-byts-" + "x" * 40).chat.completions.create(
            model="gpt-5-4", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.NotFoundError) as exc:
        ant(gateway, shared_key).messages.create(
            model="claude-nonexistent-9", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert "claude-nonexistent-9" in str(exc.value)
    with pytest.raises(openai.NotFoundError):
        oai(gateway, shared_key).chat.completions.create(
            model="gpt-nonexistent", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.BadRequestError):
        ant(gateway, shared_key).messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": 5}])
    with pytest.raises(openai.BadRequestError):
        oai(gateway, shared_key).chat.completions.create(model="gpt-5-4", messages="not a list")


def test_raw_errors_have_caller_shape(gateway, shared_key):
    h = {"x-api-key": shared_key, "content-type": "application/json"}
    r = requests.post(gateway.base_url + "/v1/messages", data=b"{not json", headers=h)
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.headers["x-bytespike-request-id"].startswith("req_")
    assert r.headers["x-bytespike-cost-credits"] == "0"
    r = requests.post(gateway.base_url + "/v1/messages", headers=h,
                      json={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
    r = requests.post(gateway.base_url + "/v1/chat/completions", data=b"[1, 2]",
                      headers={"authorization": f"Bearer {shared_key}"})
    assert r.status_code == 400 and set(r.json()["error"]) >= {"message", "type", "param", "code"}
    assert "x-ratelimit-remaining" in {k.lower() for k in r.headers}
