"""Malformed input never reaches a 5xx: every chat surface, the account API and the playground.

Hypothesis builds hostile bodies (deep nesting, huge and non-finite numbers,
lone surrogates, NUL, wrong types in every field the pipeline reads) and
sends them in process through the whole app on SQLite with the offline demo
model. ``make fuzz`` sends many more over HTTP to a served app on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import accounts
from tests.conftest import make_app

SURFACES = {
    "/v1/messages": "anthropic",
    "/v1/messages/count_tokens": "anthropic",
    "/v1/chat/completions": "openai",
    "/v1/responses": "openai",
    "/v1/embeddings": "openai",
    "/v1beta/models/bytespike-echo:generateContent": "gemini",
    "/v1beta/models/bytespike-echo:streamGenerateContent?alt=sse": "gemini",
    "/api/v1/keys": "openai",
    "/api/v1/me/billing/topup": "openai",
}
NASTY_TEXT = ["\ud800", "a\x00b", "\udfff", "𝔘", "", " ", "bytespike-echo", "no-such-model-1", "x" * 300]
NASTY_RAW = [
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b"[1]", b"null", b'"x"', b"1e999",
    b'{"model":"bytespike-echo","max_tokens":1e999}', b'{"model":"bytespike-echo","max_tokens":NaN}',
    b'{"model":"bytespike-echo","max_tokens":10000000000000000000}', b'{"model":"\\ud800"}',
    b'{"model":"bytespike-echo","messages":[{"role":"user","content":"\\udc00"}],"max_tokens":5}',
    b'{"model":"bytespike-echo","metadata":{"user_id":"\\ud800"},"messages":[],"max_tokens":5}',
    b"\xff\xfe", b"", b"{", b'{"model": "a\\u0000b", "max_tokens": 1, "messages": []}',
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(NASTY_TEXT), st.text(max_size=20),
)
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                           max_leaves=20)
FIELDS = ["model", "max_tokens", "max_output_tokens", "messages", "input", "contents", "system", "tools",
          "tool_choice", "stream", "temperature", "top_p", "top_k", "n", "stop", "metadata", "user", "thinking",
          "stream_options", "generationConfig", "response_format", "instructions", "name", "quota_credits",
          "amount_cny", "method", "rpm", "expires_in_days"]
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    with app.app_context():
        key = accounts.create_account("fuzz@example.com", 10**9)[1].raw
    yield app, key
    app.extensions["bytespike_db"].dispose()


def _send(app: Any, key: str, path: str, data: bytes) -> None:
    r = app.test_client().post(path, data=data, headers={"x-api-key": key, "content-type": "application/json",
                                                          "x-goog-api-key": key})
    body = r.get_data()  # streams are read to the end, so a late failure shows too
    assert r.status_code < 500, (path, data[:200], r.status_code, body[:300])
    assert r.status_code != 401, "the fuzz key must authenticate, or nothing past auth is tried"
    if path.startswith(("/v1/", "/v1beta/", "/api/")) and r.status_code >= 400:
        json.loads(body)  # errors are JSON in the caller's shape, never an HTML page


@pytest.mark.parametrize("path", list(SURFACES))
@pytest.mark.parametrize("raw", NASTY_RAW, ids=range(len(NASTY_RAW)))
def test_fuzz_known_triggers_answer_4xx(fuzz_app, path, raw):
    app, key = fuzz_app
    _send(app, key, path, raw)


@pytest.mark.parametrize("path", list(SURFACES))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=bodies)
def test_fuzz_bodies_never_reach_5xx(fuzz_app, path, body):
    app, key = fuzz_app
    base = {"model": "bytespike-echo", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    _send(app, key, path, json.dumps({**base, **body}, ensure_ascii=True).encode("utf-8", "surrogatepass"))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=json_values)
def test_fuzz_playground_and_console_json_never_reach_5xx(fuzz_app, body):
    app, _ = fuzz_app
    data = json.dumps(body).encode()
    r = app.test_client().post("/en/playground/run", data=data, headers={"content-type": "application/json"})
    assert r.status_code < 500, (data[:200], r.status_code)
