"""OpenAI errors: the body and the stream chunk an OpenAI SDK raises, and an upstream's error read."""

from __future__ import annotations

import json
from typing import Any, Iterable

from core.errors import GatewayError, UpstreamError
from gateway import sse
from gateway.canonical_events import StreamError
from gateway.protocols import upstream_error


def render_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """Give the status and ``{"error": {...}}`` body an OpenAI SDK expects."""
    return err.status, error_body(err)


def render_stream_error(err: GatewayError) -> bytes:
    """Frame an error as the last ``data:`` of a stream (no ``[DONE]`` follows)."""
    return sse.encode(json.dumps(error_body(err), ensure_ascii=False, separators=(",", ":")))


def parse_error(status: int, body: bytes, *, secrets: Iterable[str] = ()) -> UpstreamError:
    """Map an OpenAI-compatible upstream's error answer; the message never carries a key."""
    return upstream_error.from_body(status, body, secrets=secrets)


def error_type(status: int) -> str:
    """The OpenAI ``error.type`` for a status."""
    if status == 401:
        return "authentication_error"
    if status == 402:
        return "insufficient_quota"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def error_body(err: GatewayError | StreamError) -> dict[str, Any]:
    """Build the OpenAI ``{"error": {...}}`` body for a gateway or in-stream error."""
    if isinstance(err, StreamError):
        return {
            "error": {"message": err.message, "type": error_type(err.status), "param": None, "code": err.kind}
        }
    return {
        "error": {
            "message": err.message,
            "type": error_type(err.status),
            "param": err.param,
            "code": err.code,
        }
    }
