"""Anthropic errors: the body and the stream event an Anthropic SDK raises, and an upstream's error read."""

from __future__ import annotations

import json
from typing import Any, Iterable

from core.errors import GatewayError, UpstreamError
from gateway import sse
from gateway.canonical_events import StreamError
from gateway.protocols import upstream_error


def error_body(err: GatewayError) -> dict[str, Any]:
    """Build the Anthropic error body, naming the contract code in the message."""
    message = err.message if err.message.startswith(err.code) else f"{err.code}: {err.message}"
    return {"type": "error", "error": {"type": err.kind, "message": message}}


def render_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """Give the status and body an Anthropic SDK expects for this error."""
    return err.status, error_body(err)


def render_stream_error(err: GatewayError) -> bytes:
    """Frame an error as the ``event: error`` an Anthropic SDK raises mid-stream."""
    return error_frame(err)


def parse_error(status: int, body: bytes, *, secrets: Iterable[str] = ()) -> UpstreamError:
    """Map an Anthropic upstream's error answer; the message never carries a key."""
    return upstream_error.from_body(status, body, secrets=secrets)


def error_frame(err: StreamError | GatewayError) -> bytes:
    """Frame an ``event: error``; the message starts with the contract code."""
    code = getattr(err, "code", None) or "upstream_error"
    message = err.message if err.message.startswith(code) else f"{code}: {err.message}"
    payload = {"type": "error", "error": {"type": err.kind, "message": message}}
    return sse.encode(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), event="error")
