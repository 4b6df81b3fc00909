"""The model endpoints as the SDKs call them, and JSON (never HTML, never a redirect) on every API path."""

from __future__ import annotations

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gt

SERVED = {"claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro", "bytespike-echo"}


@pytest.mark.parametrize("api_version", [None, "v1beta"])
def test_models_google_genai_list_and_get(gateway, shared_key, api_version):
    opts = gt.HttpOptions(base_url=gateway.base_url, api_version=api_version) if api_version else \
        gt.HttpOptions(base_url=gateway.base_url)
    client = genai.Client(api_key=shared_key, http_options=opts)
    models = list(client.models.list())
    assert {m.name for m in models} == {f"models/{m}" for m in SERVED}
    m = client.models.get(model="gemini-3-1-pro")
    assert m.name == "models/gemini-3-1-pro" and m.input_token_limit == 1048576
    assert "generateContent" in m.supported_actions
    assert client.models.get(model="models/claude-sonnet-4-6").display_name.startswith("Claude Sonnet 4.6")
    with pytest.raises(genai_errors.ClientError) as info:
        client.models.get(model="nope-model")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"


def test_models_gemini_shape_by_query_key_and_401(gateway, shared_key):
    r = requests.get(gateway.base_url + "/v1/models", params={"key": shared_key}, timeout=30)
    assert r.status_code == 200 and {m["name"] for m in r.json()["models"]} == {f"models/{m}" for m in SERVED}
    r = requests.get(gateway.base_url + "/v1beta/models/gpt-5-4", params={"key": shared_key}, timeout=30)
    assert r.json()["name"] == "models/gpt-5-4" and r.json()["outputTokenLimit"] > 0
    r = requests.get(gateway.base_url + "/v1beta/models", timeout=30)
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"


def test_models_openai_sdk_retrieve(gateway, shared_key):
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=shared_key, max_retries=0)
    m = client.models.retrieve("gpt-5-4")
    assert (m.id, m.object, m.owned_by) == ("gpt-5-4", "model", "openai") and m.created > 0
    assert {m.id for m in client.models.list()} == SERVED
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gpt-9")
    assert info.value.code == "model_not_found" and "gpt-9" in info.value.message
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("deepseek-v4-pro")  # on the card, but no channel serves it


@pytest.mark.parametrize("auth", ["x-api-key", "bearer"])
def test_models_anthropic_sdk_list_and_retrieve(gateway, shared_key, auth):
    kw = {"api_key": shared_key} if auth == "x-api-key" else {"auth_token": shared_key, "api_key": None}
    client = anthropic.Anthropic(base_url=gateway.base_url, max_retries=0, **kw)
    page = client.models.list()
    assert {m.id for m in page.data} == SERVED and not page.has_more
    m = client.models.retrieve("claude-sonnet-4-6")
    assert (m.id, m.type, m.display_name) == ("claude-sonnet-4-6", "model", "Claude Sonnet 4.6")
    with pytest.raises(anthropic.NotFoundError) as info:
        client.models.retrieve("claude-9")
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "not_found_error"


OPENAI, ANTHROPIC, GOOGLE = "openai", "anthropic", "google"
PATHS = [
    ("GET", "/v1/nope", 404, OPENAI), ("GET", "/v1/nope/", 404, OPENAI), ("GET", "/v1", 404, OPENAI),
    ("GET", "/v1/", 404, OPENAI), ("GET", "/v1/models/", 404, OPENAI), ("GET", "/v1/chat/completions", 405, OPENAI),
    ("POST", "/v1/chat/completions/", 404, OPENAI), ("DELETE", "/v1/models", 405, OPENAI),
    ("PUT", "/v1/embeddings", 405, OPENAI), ("GET", "/v1/messages", 405, ANTHROPIC),
    ("POST", "/v1/messages/", 404, ANTHROPIC), ("GET", "/v1/messages/batches", 404, ANTHROPIC),
    ("GET", "/api/v1/nope", 404, OPENAI), ("GET", "/api/", 404, OPENAI), ("GET", "/api/v1/me/account/", 404, OPENAI),
    ("POST", "/api/pricing", 405, OPENAI), ("DELETE", "/api/v1/me/usage", 405, OPENAI),
    ("GET", "/v1beta/nope", 404, GOOGLE), ("GET", "/v1beta/models/", 404, GOOGLE), ("GET", "/v1beta", 404, GOOGLE),
    ("DELETE", "/v1beta/models", 405, GOOGLE), ("POST", "/v1beta/models/gemini-3-1-pro:countTokens", 404, GOOGLE),
]


@pytest.mark.parametrize(("method", "path", "status", "shape"), PATHS)
def test_api_paths_answer_json_in_the_callers_shape(gateway, method, path, status, shape):
    r = requests.request(method, gateway.base_url + path, timeout=30, allow_redirects=False,
                         headers={"x-goog-api-key": "sk-byts-unused"} if shape == GOOGLE else {})
    assert r.status_code == status, (path, r.status_code, r.text[:200])
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    if shape == OPENAI:
        assert set(body["error"]) >= {"message", "type", "code"}
    elif shape == ANTHROPIC:
        assert body["type"] == "error" and body["error"]["type"] and body["error"]["message"]
    else:
        assert body["error"]["code"] == status and body["error"]["status"] == "NOT_FOUND"
    if status == 405:
        assert r.headers["allow"]


def test_api_paths_site_pages_keep_their_html_404(gateway):
    r = requests.get(gateway.base_url + "/en/nope/", timeout=30)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
