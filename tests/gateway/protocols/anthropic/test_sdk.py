"""The official Anthropic SDK reads what the Anthropic codec writes (bytes served in-process)."""

from __future__ import annotations

import json
from typing import Any

import anthropic as sdk
import httpx2
import pytest

from core.errors import InsufficientBalance, InvalidRequest, ModelNotFound, RateLimited, UpstreamError
from gateway.protocols import anthropic, openai_chat
from tests.gateway.protocols.test_sse import FIXTURES, parse_stream, render_stream


def client(status: int, body: bytes, content_type: str) -> sdk.Anthropic:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": content_type}, content=body)

    transport = httpx2.MockTransport(answer)
    return sdk.Anthropic(
        api_key="sk-byts-test",
        base_url="http://gw.test",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def final_message(name: str) -> Any:
    data = render_stream(
        anthropic, parse_stream(openai_chat, (FIXTURES / "openai" / f"{name}.sse").read_bytes())
    )
    with client(200, data, "text/event-stream").messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        return stream.get_final_message()


def test_sdk_accumulates_translated_parallel_tool_calls() -> None:
    msg = final_message("tools_parallel")
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    assert [(b.id, b.input) for b in msg.content[1:]] == [
        ("call_A1", {"city": "Zürich"}),
        ("call_B2", {"city": "東京"}),
    ]
    assert (
        msg.stop_reason == "tool_use"
        and msg.usage.input_tokens == 412
        and msg.usage.cache_read_input_tokens == 2048
    )


def test_sdk_reads_translated_reasoning_and_late_cache_usage() -> None:
    msg = final_message("reasoning")
    assert msg.content[0].type == "thinking" and msg.content[0].thinking == "17 × 20 = 340, plus 51 is 391."
    assert msg.content[1].text == "17 × 23 = 391."
    late = final_message("cache_late")
    assert (
        late.usage.cache_creation_input_tokens,
        late.usage.cache_read_input_tokens,
        late.usage.output_tokens,
    ) == (1500, 30000, 42)


def test_sdk_raises_on_translated_stream_error() -> None:
    with pytest.raises(sdk.APIStatusError) as info:
        final_message("error_midstream")
    assert "overloaded" in str(info.value).lower() and "SECRET" not in str(info.value)


def test_sdk_reads_rendered_response() -> None:
    resp = openai_chat.parse_response(
        json.loads((FIXTURES / "openai" / "response_reasoning_tools.json").read_text())
    )
    body = json.dumps(anthropic.render_response(resp, model="deepseek-v4-pro", created=0)).encode()
    msg = client(200, body, "application/json").messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert msg.usage.cache_read_input_tokens == 2048


@pytest.mark.parametrize(
    ("err", "exc"),
    [
        (InvalidRequest("max_tokens: field required"), sdk.BadRequestError),
        (InsufficientBalance("balance too low"), sdk.APIStatusError),
        (ModelNotFound("no such model"), sdk.NotFoundError),
        (RateLimited("slow down"), sdk.RateLimitError),
        (UpstreamError("overloaded", status=529), sdk.APIStatusError),
    ],
)
def test_sdk_raises_the_right_error_class(err: Any, exc: type[Exception]) -> None:
    status, body = anthropic.render_error(err)
    api = client(status, json.dumps(body).encode(), "application/json")
    with pytest.raises(exc) as info:
        api.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert err.code in str(info.value) and info.value.status_code == status  # type: ignore[attr-defined]
