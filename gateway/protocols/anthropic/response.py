"""Anthropic Messages answers: an upstream's read into canonical form, a caller's written from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable

from core.errors import GatewayError, UpstreamError
from gateway.canonical import (
    ChatResponse,
    RawPart,
    SearchPart,
    Tool,
)
from gateway.protocols import common as c
from gateway.protocols.anthropic.blocks import (
    parse_block,
    render_client_part,
    render_search,
    searches_of,
    with_citations,
)
from gateway.protocols.fields import (
    as_list,
    as_obj,
)


def parse_response(body: Mapping[str, Any], *, tools: Iterable[Tool] = ()) -> ChatResponse:
    """Read an Anthropic upstream's non-stream answer (``tools`` is accepted for symmetry; names are never cut)."""
    try:
        body = as_obj(body, "response")
        blocks = as_list(body.get("content") or [], "content")
        parts = searches_of(tuple(with_citations(parse_block(b, f"content[{i}]"), as_obj(b, f"content[{i}]"))
                                  for i, b in enumerate(blocks)))
    except GatewayError as exc:
        raise UpstreamError(f"upstream returned a malformed message: {exc.message}") from exc
    stop = body.get("stop_reason")
    seq = body.get("stop_sequence")
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        parts=parts,
        stop_reason=stop if isinstance(stop, str) else None,
        stop_sequence=seq if isinstance(seq, str) else None,
        usage=c.usage_from_anthropic(body.get("usage")),
    )


def render_response(resp: ChatResponse, *, model: str, created: int) -> dict[str, Any]:
    """Build the Messages answer for a caller (``created`` is not part of this shape)."""
    content: list[dict[str, Any]] = []
    for part in resp.parts:
        if isinstance(part, SearchPart):
            # Anthropic's own search blocks are already there (raw); another vendor's search is written out.
            if not any(isinstance(p, RawPart) and p.origin == "anthropic" for p in resp.parts):
                content += render_search(part)
            continue
        block = render_client_part(part)
        if block is not None:
            content.append(block)
    return {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": resp.stop_reason,
        "stop_sequence": resp.stop_sequence,
        "usage": c.usage_to_anthropic(resp.usage),
    }
