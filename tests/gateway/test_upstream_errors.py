"""Every vendor's error, with key-like text in it, reaches every caller redacted and in the caller's shape.

The fakes echo key-like text (``key=AIza...``, ``sk-...``, a Bearer token, an
``x-api-key`` value, the upstream key they were sent) in an error answer
before the first byte and in an error event in the middle of a stream; the
gateway must show none of it, through a passthrough and a translation alike.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.gateway.conftest import MODELS, UPSTREAM_KEYS
from tests.gateway.translation.raw import events, native_body, post

CALLERS = ("anthropic", "openai", "responses", "gemini")
VENDORS = ("anthropic", "openai", "gemini")
LEAKED = ("AIza", "sk-", "LEAKLEAK", "eyLEAK", *(k for keys in UPSTREAM_KEYS.values() for k in keys))
CASES = [(c, v, m) for c in CALLERS for v in VENDORS for m in ("create", "stream-early", "stream-mid")]


def assert_clean(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    assert not [s for s in LEAKED if s in text], text
    assert "[redacted]" in text  # the upstream's words came through, cleaned


def assert_error_body(caller: str, body: Any) -> None:
    """The error body each caller's SDK reads."""
    if caller == "anthropic":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    elif caller == "gemini":
        assert {"code", "message", "status"} <= set(body["error"])
    else:
        assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"])


def assert_error_end(caller: str, evs: list[tuple[str | None, Any]]) -> None:
    """The stream ends with the caller's own error event."""
    name, last = evs[-1]
    if caller == "anthropic":
        assert name == "error"
        assert_error_body(caller, last)
    elif caller == "responses":
        assert [n for n, _ in evs][-2:] == ["error", "response.failed"]
        assert last["response"]["status"] == "failed" and last["response"]["error"]["message"]
    else:
        assert_error_body(caller, last)


@pytest.mark.parametrize(("caller", "vendor", "mode"), CASES, ids=["-".join(c) for c in CASES])
def test_upstream_error_is_redacted_in_the_callers_shape(gateway, shared_key, caller, vendor, mode):
    model = MODELS[vendor]
    directive = "[fake midfail=1 leak=1]" if mode == "stream-mid" else "[fake fail=400 leak=1]"
    stream = mode != "create"
    resp = post(gateway, shared_key, caller, model, native_body(caller, model, f"hi {directive}", stream=stream),
                stream=stream)
    data = resp.content
    assert_clean(data)
    if mode == "stream-mid":
        assert resp.status_code == 200
        assert_error_end(caller, events(resp))
    else:
        assert resp.status_code == 400
        assert_error_body(caller, json.loads(data))
