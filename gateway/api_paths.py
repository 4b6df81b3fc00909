"""Every path under /v1/, /v1beta/ and /api/ answers JSON: 404 and 405 in the caller's shape, no redirects.

Werkzeug would answer an unknown API path with an HTML page, a trailing-slash
mismatch with a 308, and a site route (``/<lang>/...``) could take an API path
for a page. The guard runs as the first URL-value preprocessor, before any
site hook can abort with HTML, and answers in the shape the caller's SDK
parses: Gemini's on /v1beta, Anthropic's on the Anthropic-only paths, the
models endpoints by the caller's headers, OpenAI's elsewhere.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import MethodNotAllowed

from core.errors import GatewayError, NotFound
from gateway import pipeline
from gateway.call import Call
from gateway.models_api import caller_of_models

API_ROOTS = ("/v1", "/v1beta", "/api")
ANTHROPIC_ONLY = "/v1/messages"


def is_api(path: str) -> bool:
    return any(path == root or path.startswith(root + "/") for root in API_ROOTS)


def caller_for(path: str) -> str:
    """The protocol whose error shape this path's callers parse."""
    if path == "/v1beta" or path.startswith("/v1beta/"):
        return "gemini"
    if path == ANTHROPIC_ONLY or path.startswith(ANTHROPIC_ONLY + "/"):
        return "anthropic"
    if path == "/v1/models" or path.startswith("/v1/models/"):
        return caller_of_models()
    return "openai"


def _guard(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Abort with a JSON 404/405 when an API path matched no API route."""
    if not is_api(request.path):
        return
    exc = request.routing_exception
    rule = request.url_rule
    if exc is None and rule is not None and not rule.rule.startswith("/<lang>"):
        return  # an API route: it renders its own errors
    caller = caller_for(request.path)
    call = Call(caller)
    if isinstance(exc, MethodNotAllowed):
        allowed = sorted(exc.valid_methods or ())
        err = GatewayError(f"method {request.method} is not allowed on {request.path} (allowed: {', '.join(allowed)})",
                           status=405, code="method_not_allowed", headers={"Allow": ", ".join(allowed)})
    else:
        err = NotFound(f"no such endpoint: {request.method} {request.path}")
    abort(pipeline.error_response(call, err))


KEY_ROOTS = ("/v1/", "/v1beta/")  # callers authenticate by API key: no cookie session


class KeySessions(SecureCookieSessionInterface):
    """No cookie session on the key-authenticated gateway paths: nothing there reads or writes one.

    Opening one (a signer built, the cookie checked) and deciding not to save it cost
    every call; a null session reads as empty and is never saved.
    """

    def open_session(self, app: Flask, request: Any) -> Any:
        if request.path.startswith(KEY_ROOTS):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Register the guard ahead of every other URL-value preprocessor (the site's language check)."""
    app.url_value_preprocessors.setdefault(None, []).insert(0, _guard)
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = KeySessions()
