"""Read the caller's API key from whichever header layout its SDK uses."""

from __future__ import annotations

from flask import Request


def extract_key(request: Request, *, gemini: bool = False) -> str:
    """Return the key: x-api-key wins over Bearer; the Gemini surface also takes x-goog-api-key or ?key=."""
    key = request.headers.get("x-api-key", "").strip()
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if gemini:
        key = request.headers.get("x-goog-api-key", "").strip() or request.args.get("key", "").strip()
    return key


def client_ip(request: Request) -> str:
    """The peer address (a trusted proxy in front rewrites it via ProxyFix, not here)."""
    return request.remote_addr or ""
