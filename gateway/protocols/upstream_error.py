"""The one reading of an upstream's error, whatever its vendor, made safe to show a caller.

Every path that meets an upstream error comes through here: a non-stream
error answer (``from_body``), an error before a stream's first byte (the same),
and an error event in the middle of a stream (``from_event``), whether the
caller's protocol is the upstream's own (passthrough) or another
(translation). Both read Anthropic, OpenAI, OpenAI-compatible and Google
shapes, map the upstream's status to the one the caller sees, and pass the
message through ``redact``: a caller never sees a key, the channel's own keys
included. The caller's codec then renders the result in its own shape
(``render_error`` / ``render_stream_error`` or its stream renderer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Iterable

from core.errors import ANTHROPIC_KIND, UpstreamError
from gateway.canonical_events import StreamError

MAX_MESSAGE = 500
_SECRETS = (
    re.compile(r"\bsk-[A-Za-z0-9_*.\-]{4,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{10,}"),
    re.compile(r"(?i)\bbearer\s+[^\s\"',]+"),
    re.compile(r"(?i)\b(api[_-]?key|x-api-key|x-goog-api-key|key|token|access_token|secret)"
               r"([\"']?\s*[=:]\s*[\"']?)[^\s&\"',]+"),
)
_CONTEXT_HINTS = (
    "context length",
    "context_length",
    "context window",
    "prompt is too long",
    "too many tokens",
)
# Anthropic's error types and the status each stands for (also read from OpenAI-shaped events).
KIND_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 502,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove anything that looks like a credential, and the given ``secrets`` themselves."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    for pattern in _SECRETS:
        if pattern.groups == 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


def caller_status(upstream_status: int) -> int:
    """The status a caller sees for an upstream's error status.

    The caller's own mistakes (400, 413, 422) and throttling (429) keep their
    status; an upstream's 401/402/403/404 is the gateway's configuration, not
    the caller's, so it becomes 502 like every other upstream failure, except
    503 and 529 which tell clients to back off.
    """
    if upstream_status in (400, 413, 422, 429, 503, 529):
        return upstream_status
    if 400 <= upstream_status < 500 and upstream_status not in (401, 402, 403, 404, 408):
        return 400
    return 502


def _load(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8", "replace")) if body.strip() else None
    except ValueError:
        return None


def error_fields(body: bytes) -> tuple[str | None, str | None, str | None]:
    """Pull (type, message, code) out of an Anthropic, OpenAI, OpenAI-compatible or Google error body."""
    doc = _load(body)
    if not isinstance(doc, Mapping):
        text = body.decode("utf-8", "replace").strip()
        return None, (text[:300] or None), None
    err = doc.get("error", doc)
    if isinstance(err, str):
        return None, err, None
    if not isinstance(err, Mapping):
        return None, None, None
    kind = err.get("type") or err.get("status")
    message = err.get("message") or doc.get("message") or doc.get("detail")
    code = err.get("code")
    return (
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) else None,
        code if isinstance(code, str) else None,
    )


def from_body(status: int, body: bytes, *, secrets: Iterable[str] = ()) -> UpstreamError:
    """Map an upstream's error answer (any vendor's shape) to an ``UpstreamError`` safe to show the caller."""
    kind, message, code = error_fields(body)
    label = redact(kind or code or "error", secrets)[:80]
    text = redact(message or "no message", secrets)[:MAX_MESSAGE]
    shown = caller_status(status)
    msg = f"upstream returned {status} {label}: {text}"
    if shown == 400 and any(hint in text.lower() for hint in _CONTEXT_HINTS):
        return _UpstreamContextTooLong(msg, upstream_status=status, status=400)
    contract = {429: "rate_limit_error"}.get(shown)
    return UpstreamError(msg, upstream_status=status, status=shown, code=contract)


class _UpstreamContextTooLong(UpstreamError):
    """An upstream's 400 that says the prompt does not fit: the contract's ``context_length_exceeded``."""

    code = "context_length_exceeded"


def _event_kind(payload: Mapping[str, Any], err: Mapping[str, Any]) -> tuple[str, int]:
    """(Anthropic error type, status) for an in-stream error of any vendor."""
    code = err.get("code")
    if isinstance(code, int) and not isinstance(code, bool):  # Google: the HTTP status itself
        shown = caller_status(code)
        return ANTHROPIC_KIND.get(shown, "api_error"), shown
    kind = err.get("type")
    if payload.get("type") == "error" and isinstance(kind, str):  # Anthropic: the type names the status
        return kind, KIND_STATUS.get(kind, 502)
    label = f"{kind} {code}".lower()
    if "rate_limit" in label:
        return "rate_limit_error", 429
    if "overload" in label:
        return "overloaded_error", 529
    return "api_error", 502


def from_event(payload: Any, *, secrets: Iterable[str] = ()) -> StreamError:
    """Read an error event in an upstream's stream (any vendor's shape) as a ``StreamError`` safe to show."""
    if not isinstance(payload, Mapping):
        text = payload if isinstance(payload, str) and payload.strip() else "upstream stream failed"
        return StreamError(kind="api_error", message=redact(text, secrets)[:MAX_MESSAGE], status=502)
    err = payload.get("error")
    err = err if isinstance(err, Mapping) else {"message": err}
    kind, status = _event_kind(payload, err)
    message = err.get("message") if isinstance(err.get("message"), str) else "upstream stream failed"
    return StreamError(kind=kind, message=redact(str(message), secrets)[:MAX_MESSAGE], status=status)
