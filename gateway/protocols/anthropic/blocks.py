"""Anthropic content blocks and turns <-> canonical parts and messages.

Blocks only Anthropic understands (documents, server tool blocks, file
images) travel as ``RawPart``; thinking is sent back only when Anthropic can
verify it (signed, or redacted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from gateway.canonical import (
    Citation,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    RawPart,
    SearchPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from gateway.protocols import common as c
from gateway.protocols.fields import as_list, as_obj, invalid, opt_bool, opt_str, req_str
from gateway.protocols.history import anthropic_citation

# --- content blocks ------------------------------------------------------------


def cache_of(block: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Return a block's ``cache_control`` marker, if it has one."""
    value = block.get("cache_control")
    return value if isinstance(value, Mapping) else None


def _image(block: Mapping[str, Any], field: str) -> Part:
    source = as_obj(block.get("source"), f"{field}.source")
    kind = source.get("type")
    if kind == "base64":
        return ImagePart(
            media_type=req_str(source.get("media_type"), f"{field}.source.media_type"),
            data=req_str(source.get("data"), f"{field}.source.data"),
            cache_control=cache_of(block),
        )
    if kind == "url":
        return ImagePart(url=req_str(source.get("url"), f"{field}.source.url"), cache_control=cache_of(block))
    return RawPart(origin="anthropic", data=dict(block))  # file ids and future sources


def _document(block: Mapping[str, Any], field: str) -> Part:
    """A ``document`` block: base64 PDF, plain text, a URL or a Files API id (``content`` sources stay raw)."""
    source = as_obj(block.get("source"), f"{field}.source")
    kind = source.get("type")
    citations = block.get("citations")
    common: dict[str, Any] = {
        "title": opt_str(block.get("title"), f"{field}.title"),
        "context": opt_str(block.get("context"), f"{field}.context"),
        "citations": dict(citations) if isinstance(citations, Mapping) else None,
        "cache_control": cache_of(block),
    }
    if kind == "base64":
        mime = opt_str(source.get("media_type"), f"{field}.source.media_type") or "application/pdf"
        return DocumentPart(media_type=mime, data=req_str(source.get("data"), f"{field}.source.data"), **common)
    if kind == "text":
        return DocumentPart(media_type="text/plain", text=req_str(source.get("data"), f"{field}.source.data"),
                            **common)
    if kind == "url":
        return DocumentPart(url=req_str(source.get("url"), f"{field}.source.url"), **common)
    if kind == "file":
        return DocumentPart(file_id=req_str(source.get("file_id"), f"{field}.source.file_id"),
                            file_origin="anthropic", **common)
    return RawPart(origin="anthropic", data=dict(block))


def render_document(part: DocumentPart) -> dict[str, Any]:
    """A canonical document as an Anthropic ``document`` block (plain text as a text source)."""
    source: dict[str, Any]
    if part.file_id is not None:
        source = {"type": "file", "file_id": part.file_id}
    elif part.text is not None or (part.media_type == "text/plain" and part.data is not None):
        source = {"type": "text", "media_type": "text/plain", "data": c.document_text(part)}
    elif part.data is not None:
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
    else:
        source = {"type": "url", "url": part.url or ""}
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.title is not None:
        block["title"] = part.title
    if part.context is not None:
        block["context"] = part.context
    if part.citations is not None:
        block["citations"] = dict(part.citations)
    return with_cache(block, part.cache_control)


def _result_content(value: Any, field: str) -> tuple[TextPart | ImagePart, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextPart(value),) if value else ()
    out: list[TextPart | ImagePart] = []
    for i, item in enumerate(as_list(value, field)):
        block = as_obj(item, f"{field}[{i}]")
        if block.get("type") == "text":
            out.append(
                TextPart(req_str(block.get("text"), f"{field}[{i}].text"), cache_control=cache_of(block))
            )
        elif block.get("type") == "image":
            image = _image(block, f"{field}[{i}]")
            if isinstance(image, ImagePart):
                out.append(image)
        # Other blocks (documents, search results) have no form outside Anthropic: dropped.
    return tuple(out)


def parse_block(item: Any, field: str) -> Part:
    """Turn one Anthropic content block into a canonical part."""
    block = as_obj(item, field)
    kind = block.get("type")
    if kind == "text":
        return TextPart(req_str(block.get("text"), f"{field}.text"), cache_control=cache_of(block))
    if kind == "image":
        return _image(block, field)
    if kind == "document":
        return _document(block, field)
    if kind == "tool_use":
        return ToolCallPart(
            id=req_str(block.get("id"), f"{field}.id"),
            name=req_str(block.get("name"), f"{field}.name"),
            arguments=c.dump_arguments(block.get("input")),
            cache_control=cache_of(block),
        )
    if kind == "tool_result":
        return ToolResultPart(
            tool_call_id=req_str(block.get("tool_use_id"), f"{field}.tool_use_id"),
            content=_result_content(block.get("content"), f"{field}.content"),
            is_error=bool(opt_bool(block.get("is_error"), f"{field}.is_error")),
            cache_control=cache_of(block),
        )
    if kind == "thinking":
        signature = opt_str(block.get("signature"), f"{field}.signature") or None
        return ThinkingPart(
            text=opt_str(block.get("thinking"), f"{field}.thinking") or "",
            signature=signature,
            origin="anthropic" if signature else None,
        )
    if kind == "redacted_thinking":
        return ThinkingPart(redacted=req_str(block.get("data"), f"{field}.data"), origin="anthropic")
    if not isinstance(kind, str):
        raise invalid(f"{field}.type", "field required")
    return RawPart(origin="anthropic", data=dict(block))


def with_cache(block: dict[str, Any], cache: Mapping[str, Any] | None) -> dict[str, Any]:
    """Put a ``cache_control`` marker back on a rendered block."""
    if cache is not None:
        block["cache_control"] = dict(cache)
    return block


def _render_image(part: ImagePart) -> dict[str, Any]:
    inline = c.parse_data_uri(part.url) if part.url else None
    if part.data is not None:
        source = {"type": "base64", "media_type": part.media_type or "image/png", "data": part.data}
    elif inline is not None:
        source = {"type": "base64", "media_type": inline[0], "data": inline[1]}
    else:
        source = {"type": "url", "url": part.url or ""}
    return with_cache({"type": "image", "source": source}, part.cache_control)


def _render_result(part: ToolResultPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": c.sanitize_tool_id(part.tool_call_id)}
    items = [
        with_cache({"type": "text", "text": p.text}, p.cache_control)
        if isinstance(p, TextPart)
        else _render_image(p)
        for p in part.content
        if not (isinstance(p, TextPart) and not p.text)
    ]
    if len(items) == 1 and items[0]["type"] == "text" and "cache_control" not in items[0]:
        block["content"] = items[0]["text"]
    elif items:
        block["content"] = items
    if part.is_error:
        block["is_error"] = True
    return with_cache(block, part.cache_control)


def render_part(part: Part) -> dict[str, Any] | None:
    """Turn a canonical part into an Anthropic block; None when Anthropic cannot take it."""
    if isinstance(part, TextPart):
        return with_cache({"type": "text", "text": part.text}, part.cache_control) if part.text else None
    if isinstance(part, ImagePart):
        return _render_image(part)
    if isinstance(part, ToolCallPart):
        block = {
            "type": "tool_use",
            "id": c.sanitize_tool_id(part.id),
            "name": part.name,
            "input": c.load_arguments(part.arguments),
        }
        return with_cache(block, part.cache_control)
    if isinstance(part, ToolResultPart):
        return _render_result(part)
    if isinstance(part, DocumentPart):
        return render_document(part)
    if isinstance(part, SearchPart):
        return None  # an answer's record: ``render_client_blocks`` writes it for a caller
    if isinstance(part, ThinkingPart):
        # Only Anthropic can verify a signature; unsigned or foreign reasoning is dropped.
        if part.origin not in (None, "anthropic"):
            return None
        if part.redacted:
            return {"type": "redacted_thinking", "data": part.redacted}
        if part.signature:
            return {"type": "thinking", "thinking": part.text, "signature": part.signature}
        return None
    return dict(part.data) if part.origin == "anthropic" else None


# --- turns -------------------------------------------------------------------------


def parse_messages(value: Any) -> tuple[Message, ...]:
    """Read the ``messages`` list; content may be a string or a list of blocks."""
    if value is None:
        raise invalid("messages", "field required")
    out: list[Message] = []
    for i, item in enumerate(as_list(value, "messages")):
        field = f"messages[{i}]"
        msg = as_obj(item, field)
        role = msg.get("role")
        if role not in ("user", "assistant"):
            raise invalid(f"{field}.role", "must be 'user' or 'assistant'")
        content = msg.get("content")
        if isinstance(content, str):
            parts: tuple[Part, ...] = (TextPart(content),)
        elif content is None:
            raise invalid(f"{field}.content", "field required")
        else:
            blocks = as_list(content, f"{field}.content")
            parts = tuple(_history_block(b, f"{field}.content[{j}]") for j, b in enumerate(blocks))
        out.append(Message(role=role, parts=parts))
    return tuple(out)


def _history_block(item: Any, field: str) -> Part:
    """A block of a caller's turn; a text keeps its citations of every kind (``carry`` folds them for others)."""
    part = parse_block(item, field)
    cited = item.get("citations") if isinstance(part, TextPart) else None
    if isinstance(part, TextPart) and isinstance(cited, list):
        found = tuple(c for c in (anthropic_citation(v) for v in cited) if c is not None)
        return replace(part, citations=found) if found else part
    return part


def parse_system(value: Any) -> tuple[TextPart, ...]:
    """Read ``system``: a string or text blocks (which may carry ``cache_control``)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextPart(value),) if value else ()
    parts = []
    for i, item in enumerate(as_list(value, "system")):
        block = as_obj(item, f"system[{i}]")
        parts.append(TextPart(req_str(block.get("text"), f"system[{i}].text"), cache_control=cache_of(block)))
    return tuple(parts)


def render_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Render turns, merging adjacent same-role turns (Anthropic wants them alternating)."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        blocks = [b for b in (render_part(p) for p in msg.parts) if b is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == msg.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": msg.role, "content": blocks})
    for turn in out:
        # Tool results must lead their user turn.
        turn["content"].sort(key=lambda b: b.get("type") != "tool_result")
    return out


def searches_of(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """An upstream answer's web-search blocks as ``SearchPart``s (the raw blocks stay for Anthropic callers)."""
    out: list[Part] = []
    queries: dict[str, str] = {}
    for part in parts:
        out.append(part)
        data = part.data if isinstance(part, RawPart) else {}
        if data.get("type") == "server_tool_use" and data.get("name") == "web_search":
            query = (data.get("input") or {}).get("query")
            queries[str(data.get("id"))] = query if isinstance(query, str) else ""
        elif data.get("type") == "web_search_tool_result":
            out.append(search_record(data, queries))
    return tuple(out)


def search_record(result: Mapping[str, Any], queries: Mapping[str, str]) -> SearchPart:
    """A ``web_search_tool_result`` block as a ``SearchPart``; ``queries`` maps call ids to their queries."""
    call_id = str(result.get("tool_use_id"))
    found = result.get("content")
    found = found if isinstance(found, list) else []
    sources = tuple((str(r.get("url")), str(r.get("title") or "")) for r in found
                    if isinstance(r, Mapping) and r.get("url"))
    return SearchPart(id=call_id, queries=(queries.get(call_id, ""),), sources=sources)


def render_search(part: SearchPart) -> list[dict[str, Any]]:
    """A search another vendor ran, as Anthropic's ``server_tool_use`` + ``web_search_tool_result`` blocks."""
    call_id = "srvtoolu_" + c.sanitize_tool_id(part.id)
    results = [{"type": "web_search_result", "url": url, "title": title, "encrypted_content": "", "page_age": None}
               for url, title in part.sources]
    return [{"type": "server_tool_use", "id": call_id, "name": "web_search",
             "input": {"query": "; ".join(q for q in part.queries if q)}},
            {"type": "web_search_tool_result", "tool_use_id": call_id, "content": results}]


def citation_of(value: Any) -> Citation | None:
    """A ``web_search_result_location`` citation; None for other kinds (documents stay with Anthropic)."""
    if not isinstance(value, Mapping) or value.get("type") != "web_search_result_location" or not value.get("url"):
        return None
    quote = value.get("cited_text")
    return Citation(url=str(value["url"]), title=str(value.get("title") or ""),
                    quote=quote if isinstance(quote, str) else "")


def render_citation(citation: Citation) -> dict[str, Any]:
    """Another vendor's citation as a ``web_search_result_location`` (it has no encrypted index to give)."""
    return {"type": "web_search_result_location", "url": citation.url, "title": citation.title,
            "cited_text": citation.quote or citation.span, "encrypted_index": ""}


def with_citations(part: Part, block: Mapping[str, Any]) -> Part:
    """An answer's text part with the web citations of its block."""
    found = [c for c in (citation_of(v) for v in block.get("citations") or []) if c is not None]
    return TextPart(part.text, citations=tuple(found)) if isinstance(part, TextPart) and found else part


def render_client_part(part: Part) -> dict[str, Any] | None:
    """Render an answer's part for an Anthropic caller: foreign reasoning is shown, unsigned."""
    if isinstance(part, RawPart) and part.origin != "anthropic":
        return None
    if isinstance(part, TextPart) and part.citations and part.text:
        return {"type": "text", "text": part.text, "citations": [render_citation(c) for c in part.citations]}
    block = render_part(part)
    if block is None and isinstance(part, ThinkingPart) and part.text:
        return {"type": "thinking", "thinking": part.text, "signature": ""}
    return block
