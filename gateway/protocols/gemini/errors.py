"""Gemini errors: Google's RPC error body and stream chunk, and an upstream's error read."""

from __future__ import annotations

from typing import Any, Iterable

from core.errors import GOOGLE_STATUS, GatewayError, UpstreamError
from gateway.protocols import upstream_error
from gateway.protocols.common import dumps
from gateway.sse import encode


def render_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """Render ``err`` in Google's RPC error shape."""
    return err.status, error_payload(err.status, err.message, err.code)


def render_stream_error(err: GatewayError) -> bytes:
    """Render the in-stream error chunk Google sends: ``data: {"error": {...}}``."""
    return encode(dumps(error_payload(err.status, err.message, err.code)))


def error_payload(status: int, message: str, code: str | None) -> dict[str, Any]:
    """Google's RPC error body; the contract's code is named in the message and in ``details``."""
    shown = message if not code or message.startswith(code) else f"{code}: {message}"
    google = GOOGLE_STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    error: dict[str, Any] = {"code": status, "message": shown, "status": google}
    if code:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code.upper(), "domain": "bytespike"}
        ]
    return {"error": error}


def parse_error(status: int, body: bytes, *, secrets: Iterable[str] = ()) -> UpstreamError:
    """Map Google's error body to an ``UpstreamError``: upstream status kept, keys never shown.

    Google answers a bad key (``API_KEY_INVALID``) and a billing or region problem
    (``FAILED_PRECONDITION``) with 400: those are the gateway's configuration, not
    the caller's request, so the caller sees 502 and routing sees an auth failure.
    """
    err = upstream_error.from_body(status, body, secrets=secrets)
    if status == 400 and (b"API_KEY_INVALID" in body or b"FAILED_PRECONDITION" in body):
        return UpstreamError(err.message, upstream_status=401 if b"API_KEY_INVALID" in body else 400, status=502)
    return err
