"""Gemini grounding <-> canonical searches and citations: shared by both sides of the codec.

A grounded Gemini answer carries ``groundingMetadata``: the queries it ran
(``webSearchQueries``), the web sources (``groundingChunks``) and which
stretch of the text each source supports (``groundingSupports``). Read, they
become a ``SearchPart``, ``Citation``s on the text parts and the searches
billed in ``Usage``; another vendor's searches and citations are written back
as ``groundingMetadata`` for a Gemini caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.canonical import Citation, Part, SearchPart, TextPart, Usage
from gateway.protocols.common import cited_span


def with_searches(usage: Usage, candidate: Any) -> Usage:
    """Add the searches a grounded answer ran (``groundingMetadata.webSearchQueries``) to its usage."""
    meta = candidate.get("groundingMetadata") if isinstance(candidate, Mapping) else None
    queries = meta.get("webSearchQueries") if isinstance(meta, Mapping) else None
    if not isinstance(queries, list) or not queries:
        return usage
    return Usage(usage.input_tokens, usage.output_tokens, usage.cache_write_tokens, usage.cache_read_tokens,
                 usage.reasoning_tokens, web_searches=len(queries))


def search_of(candidate: Any, rid: str) -> SearchPart | None:
    """A grounded answer's ``groundingMetadata`` as a ``SearchPart`` (queries and web sources)."""
    meta = candidate.get("groundingMetadata") if isinstance(candidate, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    queries = tuple(q for q in meta.get("webSearchQueries") or [] if isinstance(q, str))
    webs = [ch.get("web") for ch in meta.get("groundingChunks") or [] if isinstance(ch, Mapping)]
    sources = tuple((str(w.get("uri")), str(w.get("title") or "")) for w in webs if isinstance(w, Mapping) and w.get("uri"))
    return SearchPart(id=f"{rid}_search", queries=queries, sources=sources) if queries or sources else None


def citations_of(candidate: Any) -> list[Citation]:
    """A grounded answer's ``groundingSupports``: one citation per supported segment and source."""
    meta = candidate.get("groundingMetadata") if isinstance(candidate, Mapping) else None
    if not isinstance(meta, Mapping):
        return []
    chunks = [ch.get("web") if isinstance(ch, Mapping) else None for ch in meta.get("groundingChunks") or []]
    out = []
    for support in meta.get("groundingSupports") or []:
        segment = support.get("segment") if isinstance(support, Mapping) else None
        span = segment.get("text") if isinstance(segment, Mapping) else None
        for k in support.get("groundingChunkIndices") or [] if isinstance(support, Mapping) else []:
            web = chunks[k] if isinstance(k, int) and 0 <= k < len(chunks) else None
            if isinstance(web, Mapping) and web.get("uri"):
                out.append(Citation(url=str(web["uri"]), title=str(web.get("title") or ""),
                                    span=span if isinstance(span, str) else ""))
    return out


def cite_texts(parts: list[Part], citations: list[Citation]) -> list[Part]:
    """Put each citation on the text part holding its segment (the last text part when none does)."""
    texts = {i: p.text for i, p in enumerate(parts) if isinstance(p, TextPart) and p.text}
    if not texts or not citations:
        return parts
    out = list(parts)
    for citation in citations:
        at = next((i for i, text in texts.items() if citation.span and citation.span in text), max(texts))
        part = out[at]
        assert isinstance(part, TextPart)
        out[at] = TextPart(part.text, part.cache_control, citations=(*part.citations, citation))
    return out


def grounding_of(parts: Any) -> dict[str, Any] | None:
    """Searches and citations another vendor gave, as ``groundingMetadata`` for a Gemini caller.

    Segment offsets are UTF-8 byte offsets into the answer's text parts taken together.
    """
    found = [p for p in parts if isinstance(p, SearchPart)]
    chunks = [(url, title) for p in found for url, title in p.sources]
    supports: list[dict[str, Any]] = []
    offset = 0
    for part in parts:
        if not isinstance(part, TextPart):
            continue
        for citation in part.citations:
            if citation.url not in [url for url, _ in chunks]:
                chunks.append((citation.url, citation.title))
            start, end = cited_span(part.text, citation)
            before = offset + len(part.text[:start].encode())
            supports.append({"segment": {"startIndex": before, "endIndex": before + len(part.text[start:end].encode()),
                                         "text": part.text[start:end]},
                             "groundingChunkIndices": [[url for url, _ in chunks].index(citation.url)]})
        offset += len(part.text.encode())
    if not found and not supports:
        return None
    out: dict[str, Any] = {
        "webSearchQueries": [q for p in found for q in p.queries if q],
        "groundingChunks": [{"web": {"uri": url, "title": title}} for url, title in chunks],
    }
    if supports:
        out["groundingSupports"] = supports
    return out
