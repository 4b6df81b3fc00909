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


# --- searches another vendor ran, in the history -------------------------------------------------


def test_foreign_search_records_reach_anthropic_as_text_when_passed_through() -> None:
    """An Anthropic caller's history to Anthropic: Gemini's search as text, Claude's own search as it was."""
    body = _body("anthropic/request_history_foreign_search.json")
    sent = registry.upstream_codec("anthropic").passthrough_request(body, upstream_model="m-up", stream=False)
    _golden("anthropic/rendered/passthrough_foreign_search.json", sent)
    assert sent["messages"][1]["content"][0] == {"type": "text", "text": "[web search: ByteSpike launch]"}
    assert sent["messages"][3] == body["messages"][3]  # Anthropic's own records, untouched
    assert '"encrypted_content": ""' not in json.dumps(sent) and '"encrypted_index": ""' not in json.dumps(sent)


def test_history_without_foreign_records_passes_through_as_it_is() -> None:
    body = _body("anthropic/request_history_citations.json")
    sent = registry.upstream_codec("anthropic").passthrough_request(body, upstream_model="m-up", stream=False)
    assert sent["messages"] is body["messages"]


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("caller", ("anthropic", "responses"))
def test_foreign_search_records_render_as_text_for_other_upstreams(caller: str, upstream: str) -> None:
    if caller == upstream:
        pytest.skip("same protocol: the body passes through (above)")
    sent = _render(caller, _body(f"{caller}/request_history_foreign_search.json"), upstream)
    _golden(f"{upstream}/rendered/request_from_{caller}_foreign_search.json", sent)
    text = json.dumps(sent)
    assert "[web search: ByteSpike launch]" in text and "encrypted" not in text and "[sources]" in text
