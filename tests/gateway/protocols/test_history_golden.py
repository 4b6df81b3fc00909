"""Golden renders of what a history holds that another vendor cannot take as it is: citations, search records.

A caller's earlier answer comes back in its history with its citations (Anthropic ``citations``, Chat and
Responses ``annotations``) and the record of the searches it ran. Only Anthropic takes citations back, and only
its own: every other target gets the text with its source list appended (``history.with_sources``).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.canonical import Citation
from gateway.protocols import carry, history, registry
from tests.gateway.protocols.test_sse import FIXTURES, check_golden

CARD = SimpleNamespace(id="m", capabilities=("pdf", "web_search", "code_execution", "web_fetch"))
UPSTREAMS = ("anthropic", "openai", "gemini")


def _body(path: str) -> dict[str, Any]:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _render(caller: str, body: dict[str, Any], upstream: str) -> dict[str, Any]:
    req = registry.codec(caller).parse_request(body, model="m")
    req = carry.adapt(req, upstream=upstream, card=CARD)
    return registry.upstream_codec(upstream).render_request(req, upstream_model="m-up", stream=False)


def _golden(path: str, value: Any) -> None:
    check_golden(FIXTURES / path, (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode())


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("caller", ("anthropic", "openai", "responses"))
def test_citations_in_history_render_for_every_upstream(caller: str, upstream: str) -> None:
    if caller == upstream:
        pytest.skip("same protocol: the body passes through")
    sent = _render(caller, _body(f"{caller}/request_history_citations.json"), upstream)
    _golden(f"{upstream}/rendered/request_from_{caller}_history_citations.json", sent)
    text = json.dumps(sent)
    assert "[sources]" in text and "https://news.example/bytespike" in text
    assert "citations" not in text and "annotations" not in text and "encrypted_index" not in text


def test_sources_are_appended_once_each_in_order() -> None:
    web = Citation(url="https://a.example", title="A", quote="said\n  here")
    doc = Citation(url="", title="Memo", quote="")
    assert history.with_sources("Text.", [web, doc, web]) == (
        'Text.\n\n[sources]\n- A https://a.example: "said here"\n- Memo')
    assert history.with_sources("Text.", []) == "Text."
    assert history.with_sources("", [doc]) == "[sources]\n- Memo"
