"""Golden renders of documents and server tools: each caller's body as each upstream receives it."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from core.errors import InvalidRequest
from gateway.protocols import carry, registry
from tests.gateway.protocols.test_sse import FIXTURES, check_golden

CARD = SimpleNamespace(id="m", capabilities=("pdf", "web_search", "code_execution", "web_fetch"))
CALLERS = {"anthropic": "anthropic", "openai": "openai", "responses": "responses", "gemini": "gemini"}
UPSTREAMS = ("anthropic", "openai", "gemini")


def _render(caller: str, fixture: str, upstream: str) -> dict[str, Any]:
    body = json.loads((FIXTURES / caller / fixture).read_text(encoding="utf-8"))
    req = registry.codec(caller).parse_request(body, model="m")
    req = carry.adapt(req, upstream=upstream, card=CARD)
    return registry.upstream_codec(upstream).render_request(req, upstream_model="m-up", stream=False)


def _golden(path: str, value: Any) -> None:
    check_golden(FIXTURES / path, (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode())


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("caller", CALLERS)
def test_documents_render_for_every_upstream(caller: str, upstream: str) -> None:
    if caller == upstream:
        pytest.skip("same protocol: the body passes through")
    _golden(f"{upstream}/rendered/request_from_{caller}_documents.json", _render(caller, "request_documents.json", upstream))


@pytest.mark.parametrize("upstream", ("anthropic", "gemini"))
@pytest.mark.parametrize("caller", ("anthropic", "responses", "gemini"))
def test_server_tools_render_where_the_upstream_runs_them(caller: str, upstream: str) -> None:
    if caller == upstream:
        pytest.skip("same protocol: the body passes through")
    _golden(f"{upstream}/rendered/request_from_{caller}_search.json", _render(caller, "request_search.json", upstream))


@pytest.mark.parametrize("caller", ("anthropic", "responses", "gemini"))
def test_server_tools_refused_for_chat_completions(caller: str) -> None:
    with pytest.raises(InvalidRequest, match="cannot be sent to model 'm'"):
        _render(caller, "request_search.json", "openai")
