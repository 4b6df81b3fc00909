"""Other vendors' search records in an Anthropic caller's history, made into what Anthropic takes back.

A search another vendor ran reached an Anthropic caller as ``server_tool_use`` +
``web_search_tool_result`` blocks (``blocks.render_search``) and citations of
kind ``web_search_result_location``, all without the encrypted content and
index only Anthropic's own search gives; Anthropic refuses them without it.
Sent back to Anthropic, the blocks become the text any other vendor gets
(``history.ran_as_text``: the query, then each result's title and URL) and the
citations go into the turn's source list (``history.with_sources``), so the
model still reads what was searched, what was found and what the text cites.
Anthropic's own records are left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.canonical import Citation
from gateway.protocols.history import anthropic_citation, ran_as_text, with_sources


def _made_elsewhere(block: Any) -> bool:
    """A ``web_search_tool_result`` written from another vendor's search: a result without encrypted content."""
    if not isinstance(block, Mapping) or block.get("type") != "web_search_tool_result":
        return False
    found = block.get("content")
    return isinstance(found, list) and (not found or any(
        isinstance(r, Mapping) and not r.get("encrypted_content") for r in found))


def _foreign_citation(value: Any) -> bool:
    return (isinstance(value, Mapping) and value.get("type") == "web_search_result_location"
            and not value.get("encrypted_index"))


def _has_foreign_citations(block: Any) -> bool:
    return (isinstance(block, Mapping) and block.get("type") == "text"
            and any(_foreign_citation(c) for c in block.get("citations") or []))


def _blocks(messages: list[Any]) -> list[Any]:
    return [b for m in messages if isinstance(m, Mapping) and isinstance(m.get("content"), list)
            for b in m["content"]]


def without_foreign_records(messages: list[Any]) -> list[Any]:
    """``messages`` with other vendors' search records as text; the same list when there are none."""
    blocks = _blocks(messages)
    searches = {str(b.get("tool_use_id")) for b in blocks if _made_elsewhere(b)}
    if not searches and not any(_has_foreign_citations(b) for b in blocks):
        return messages
    return [{**m, "content": _turn(m["content"], searches)}
            if isinstance(m, Mapping) and isinstance(m.get("content"), list) else m for m in messages]


def _turn(blocks: list[Any], searches: set[str]) -> list[Any]:
    out: list[Any] = []
    cited: list[Citation] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "server_tool_use" and block.get("id") in searches or (
                kind == "web_search_tool_result" and block.get("tool_use_id") in searches):
            out.append({"type": "text", "text": ran_as_text(block)})
        elif _has_foreign_citations(block):
            notes = block["citations"]
            cited += [c for c in (anthropic_citation(v) for v in notes if _foreign_citation(v)) if c is not None]
            kept = [v for v in notes if not _foreign_citation(v)]
            out.append({**{k: v for k, v in block.items() if k != "citations"}, **({"citations": kept} if kept else {})})
        else:
            out.append(block)
    texts = [i for i, b in enumerate(out) if isinstance(b, Mapping) and b.get("type") == "text"]
    if cited and texts:
        last = out[texts[-1]]
        out[texts[-1]] = {**last, "text": with_sources(str(last.get("text") or ""), cited)}
    return out
