"""OpenAI Responses errors: the body and the stream events an OpenAI SDK raises."""

from __future__ import annotations

from typing import Any

from core.errors import GatewayError
from gateway.canonical_events import StreamError
from gateway.protocols.common import dumps
from gateway.sse import encode


def render_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """Render ``err`` in OpenAI's error envelope."""
    body = {"message": err.message, "type": openai_error_type(err), "param": err.param, "code": err.code}
    return err.status, {"error": body}


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error_type(err: GatewayError) -> str:
    """OpenAI's ``error.type`` for the status of ``err``."""
    return _ERROR_TYPES.get(err.status, "server_error" if err.status >= 500 else "invalid_request_error")


def render_stream_error(err: GatewayError) -> bytes:
    """Render an ``error`` event for a stream that failed before any renderer ran.

    The nested ``error`` object makes the OpenAI SDK raise ``APIError`` with the message.
    """
    body = {"message": err.message, "type": openai_error_type(err), "param": err.param, "code": err.code}
    data = {"type": "error", "sequence_number": 0, "code": err.code, "message": err.message,
            "param": err.param, "error": body}
    return encode(dumps(data), "error")


def failed_error(err: StreamError) -> dict[str, Any]:
    """The ``response.error`` object of a failed stream, with one of the SDK's known codes."""
    code = "rate_limit_exceeded" if err.status == 429 else "server_error"
    return {"code": code, "message": err.message}
