"""The official OpenAI SDK reads what the Chat Completions codec writes (bytes served in-process)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai as sdk
import pytest

from core.errors import AuthError, ConcurrencyLimited, InvalidRequest, NoChannel
from gateway.protocols import anthropic, openai_chat
from tests.gateway.protocols.test_sse import FIXTURES, parse_stream, render_stream


def client(status: int, body: bytes, content_type: str) -> sdk.OpenAI:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": content_type}, content=body)

    transport = httpx2.MockTransport(answer)
    return sdk.OpenAI(
        api_key="sk-byts-test",
        base_url="http://gw.test/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def final_completion(name: str) -> Any:
    data = render_stream(
        openai_chat, parse_stream(anthropic, (FIXTURES / "anthropic" / f"{name}.sse").read_bytes())
    )
    api = client(200, data, "text/event-stream")
    with api.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "x"}], stream_options={"include_usage": True}
    ) as stream:
        return stream.get_final_completion()


def test_sdk_accumulates_translated_parallel_tool_calls() -> None:
    done = final_completion("tools_parallel")
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking both cities."
    calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls]
    assert calls == [
        ("toolu_01A", "get_weather", {"city": "Zürich"}),
        ("toolu_01B", "get_weather", {"city": "東京"}),
    ]
    assert done.usage.prompt_tokens == 412 and done.usage.completion_tokens == 87


def test_sdk_reads_cache_usage_and_cost() -> None:
    done = final_completion("cache_late")
    assert done.usage.prompt_tokens == 31510 and done.usage.prompt_tokens_details.cached_tokens == 30000
    assert done.usage.model_extra == {"cost_credits": 1234}


def test_sdk_raises_on_translated_stream_error() -> None:
    with pytest.raises(sdk.APIError) as info:
        final_completion("error_midstream")
    assert "Overloaded" in str(info.value) and "SECRET" not in str(info.value)


def test_sdk_reads_rendered_response() -> None:
    resp = anthropic.parse_response(json.loads((FIXTURES / "anthropic" / "response_tools.json").read_text()))
    body = json.dumps(
        openai_chat.render_response(resp, model="claude-sonnet-4-6", created=1763800000)
    ).encode()
    done = client(200, body, "application/json").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert done.choices[0].finish_reason == "tool_calls" and len(done.choices[0].message.tool_calls) == 2
    assert done.usage.prompt_tokens == 2160 and done.usage.prompt_tokens_details.cached_tokens == 2048


@pytest.mark.parametrize(
    ("err", "exc"),
    [
        (InvalidRequest("messages: must be a list", param="messages"), sdk.BadRequestError),
        (AuthError("invalid key"), sdk.AuthenticationError),
        (ConcurrencyLimited("too many streams"), sdk.RateLimitError),
        (NoChannel("no channel configured"), sdk.InternalServerError),
    ],
)
def test_sdk_raises_the_right_error_class(err: Any, exc: type[Exception]) -> None:
    status, body = openai_chat.render_error(err)
    api = client(status, json.dumps(body).encode(), "application/json")
    with pytest.raises(exc) as info:
        api.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == err.code and info.value.status_code == status  # type: ignore[attr-defined]
