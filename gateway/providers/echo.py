"""The built-in demo channel ``bytespike-echo``: answers offline by echoing the last user text.

It speaks the Anthropic protocol from memory, so every caller protocol
reaches it the way it reaches a real Anthropic upstream (passthrough for
Anthropic callers, translation for the rest). Usage is plausible: about four
characters a token, as the reservation estimate assumes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any, Iterator

from core.channels import ChannelConfig

from .base import Prepared, Provider

GREETING = "Hello from ByteSpike! This is the free demo model; it echoes your last message."


def _last_user_text(payload: Mapping[str, Any]) -> str:
    for msg in reversed(payload.get("messages") or []):
        if not isinstance(msg, Mapping) or msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [b.get("text", "") for b in content if isinstance(b, Mapping) and b.get("type") == "text"]
            if any(texts):
                return "\n".join(t for t in texts if t)
    return ""


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _sse(event: str, obj: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(obj, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


class LocalReply:
    """An answer produced in memory, shaped like an HTTP reply."""

    status = 200
    retry_after = None

    def __init__(self, body: bytes | None = None, events: list[bytes] | None = None) -> None:
        self._body = body or b""
        self._events = events or []
        self.headers = {"content-type": "text/event-stream" if events is not None else "application/json"}

    def read(self) -> bytes:
        return self._body

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        yield from self._events

    def close(self) -> None:
        self._events = []


class EchoProvider(Provider):
    protocol = "anthropic"

    def vendor(self, channel: ChannelConfig, default: str = "") -> str:
        return "bytespike"

    def url(self, channel: ChannelConfig, upstream_model: str, stream: bool) -> str:
        return "builtin://echo"

    def auth_headers(self, api_key: str, version: str | None) -> dict[str, str]:
        return {}

    def send(self, prepared: Prepared, *, timeout: tuple[float, float]) -> LocalReply:  # type: ignore[override]
        payload = prepared.payload or {}
        text = _last_user_text(payload) or GREETING
        limit = payload.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and _tokens(text) > limit:
            text, stop = text[: limit * 4], "max_tokens"
        else:
            stop = "end_turn"
        model = str(payload.get("model") or "bytespike-echo")
        usage = {"input_tokens": _tokens(prepared.body.decode("utf-8", "replace")), "output_tokens": _tokens(text),
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        mid = "msg_echo_" + secrets.token_hex(8)
        if not prepared.stream:
            body = {"id": mid, "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": text}], "stop_reason": stop,
                    "stop_sequence": None, "usage": usage}
            return LocalReply(body=json.dumps(body, ensure_ascii=False).encode())
        start_usage = dict(usage, output_tokens=1)
        events = [
            _sse("message_start", {"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
            _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
        ]
        for piece in _pieces(text):
            events.append(_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                       "delta": {"type": "text_delta", "text": piece}}))
        events += [
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                   "usage": {"output_tokens": usage["output_tokens"]}}),
            _sse("message_stop", {"type": "message_stop"}),
        ]
        return LocalReply(events=events)


def _pieces(text: str) -> list[str]:
    """Split text into word-sized pieces that join back exactly."""
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch == " ":
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out or [""]
