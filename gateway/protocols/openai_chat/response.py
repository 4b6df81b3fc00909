"""OpenAI Chat Completions answers: an upstream's read into canonical form, a caller's written from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable

from core.errors import UpstreamError
from gateway.canonical import (
    ChatResponse,
    ThinkingPart,
    Tool,
    ToolCallPart,
)
from gateway.protocols import common as c
from gateway.protocols.openai_chat.messages import (
    message_parts,
    text_of,
)


def parse_response(body: Mapping[str, Any], *, tools: Iterable[Tool] = ()) -> ChatResponse:
    """Read an OpenAI-compatible upstream's answer; ``tools`` maps truncated names back."""
    try:
        choices = body["choices"]
        choice = choices[0] if choices else {}
        resp_id = str(body.get("id") or "")
        parts = message_parts(choice.get("message") or {}, c.tool_name_map(t.name for t in tools), resp_id)
        finish = choice.get("finish_reason")
        model = str(body.get("model") or "")
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise UpstreamError("upstream returned a malformed chat completion") from exc
    had_calls = any(isinstance(p, ToolCallPart) for p in parts)
    return ChatResponse(
        id=resp_id,
        model=model,
        parts=parts,
        stop_reason=c.stop_reason(finish if isinstance(finish, str) else "stop", had_tool_calls=had_calls),
        usage=c.usage_from_openai(body.get("usage")),
    )


def render_response(resp: ChatResponse, *, model: str, created: int) -> dict[str, Any]:
    """Build the ``chat.completion`` answer for a caller."""
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
        for p in resp.parts
        if isinstance(p, ToolCallPart)
    ]
    text = text_of(resp.parts)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
    }
    reasoning = "".join(p.text for p in resp.parts if isinstance(p, ThinkingPart))
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": c.finish_reason(resp.stop_reason),
    }
    return {
        "id": resp.id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": c.usage_to_openai(resp.usage),
    }
