"""OpenAI Responses API: the response object and the ``response.*`` event stream.

The stream and the non-stream object are built by the same rules so that the
SDK's ``responses.stream(...).get_final_response()`` assembles exactly what
``responses.create(...)`` returns:

- consecutive text blocks share one ``message`` item (one ``output_text`` part each);
- a thinking block becomes a ``reasoning`` item with one ``summary_text`` part, or
  none when it carries neither text nor state this protocol can hand back;
- each tool call is a ``function_call`` item, or a ``custom_tool_call`` for a ``custom`` tool;
- a search the upstream ran is a ``web_search_call`` item;
- item ids are ``<msg|rs|fc|ctc|ws>_<response id>_<output index>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from gateway.canonical import (
    ChatResponse,
    Citation,
    Part,
    SearchPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from gateway.canonical_events import MessageDelta, MessageStart
from gateway.protocols.common import cited_span, loads_object

# Tools in a namespace reach other vendors as "<namespace>--<name>": valid in every vendor's tool
# names, readable to a model, and (a doubled hyphen being rare in a function name) reversible from
# the name alone, so the renderers need no request state to give the call its namespace back.
NAMESPACE_SEP = "--"
_STATE_PREFIX = {"signature": "bsk1.anthropic.", "redacted": "bsk1.anthropic-redacted."}
_INCOMPLETE = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "refusal": "content_filter",
}


# --- opaque reasoning state ----------------------------------------------------


def wrap_reasoning_state(part: ThinkingPart) -> str | None:
    """Return the ``encrypted_content`` that lets a client hand ``part``'s state back, if any."""
    if part.origin == "responses" and part.encrypted:
        return part.encrypted
    if part.origin == "anthropic" and part.redacted:
        return _STATE_PREFIX["redacted"] + part.redacted
    if part.origin == "anthropic" and part.signature:
        return _STATE_PREFIX["signature"] + part.signature
    return None


def unwrap_reasoning_state(state: str) -> tuple[str | None, str | None, str | None]:
    """Split ``encrypted_content`` into (origin, signature, redacted); origin None: OpenAI's own."""
    for kind, prefix in _STATE_PREFIX.items():
        if state.startswith(prefix):
            value = state[len(prefix) :]
            return ("anthropic", value, None) if kind == "signature" else ("anthropic", None, value)
    return None, None, None


# --- the response object ---------------------------------------------------------


def response_id(raw_id: str) -> str:
    return raw_id if raw_id.startswith("resp_") else "resp_" + _safe(raw_id)


def item_id(prefix: str, resp_id: str, output_index: int) -> str:
    return f"{prefix}_{resp_id[len('resp_'):]}_{output_index}"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text) or "0"


def function_call_item(
    fc_id: str, part: ToolCallPart, namespaces: Mapping[str, tuple[str, str]] | None, *, done: bool
) -> dict[str, Any]:
    if part.custom:
        return custom_call_item(fc_id, part, done=done)
    item: dict[str, Any] = {
        "id": fc_id,
        "type": "function_call",
        "status": "completed" if done else "in_progress",
        "arguments": (part.arguments or "{}") if done else "",
        "call_id": part.id,
        "name": part.name,
    }
    split = split_name(part.name, namespaces)
    if split is not None:
        item["namespace"], item["name"] = split
    return item


def custom_call_item(ctc_id: str, part: ToolCallPart, *, done: bool = True) -> dict[str, Any]:
    """A call of a ``custom`` tool, sent upstream as a function taking ``{"input": ...}``."""
    value = loads_object(part.arguments or "{}") or {}
    text = value.get("input")
    return {"id": ctc_id, "type": "custom_tool_call", "status": "completed" if done else "in_progress",
            "call_id": part.id, "name": part.name,
            "input": "" if not done else text if isinstance(text, str) else part.arguments}


_INPUT_OPEN = re.compile(r'\s*\{\s*"input"\s*:\s*"')
_HIGH_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}$")


class CustomInput:
    """Decode the ``input`` string of a custom tool's streamed ``{"input": "..."}`` arguments as they arrive."""

    def __init__(self) -> None:
        self.raw = ""
        self.shown = ""
        self._pos = -1
        self._closed = False

    def feed(self, piece: str) -> str:
        """Add a piece of the arguments; return the newly certain text of ``input`` ("" when none)."""
        self.raw += piece
        if self._pos < 0:
            found = _INPUT_OPEN.match(self.raw)
            if found is None:
                return ""
            self._pos = found.end()
        raw, i = self.raw, self._pos
        while i < len(raw) and not self._closed:
            if raw[i] == '"':
                self._closed = True
            elif raw[i] == "\\":
                step = 6 if raw[i + 1 : i + 2] == "u" else 2
                if i + step > len(raw):
                    break
                i += step
                continue
            else:
                i += 1
        chunk = raw[self._pos : i]
        if not self._closed and _HIGH_SURROGATE.search(chunk):
            chunk, i = chunk[:-6], i - 6  # wait for the low half of the pair
        try:
            text = json.loads('"' + chunk + '"')
        except ValueError:
            return ""
        self._pos = i
        self.shown += text
        return str(text)


def split_name(name: str, namespaces: Mapping[str, tuple[str, str]] | None) -> tuple[str, str] | None:
    """Return (namespace, name) for a flattened tool name; ``namespaces``, when given, is exact."""
    if namespaces is not None:
        return namespaces.get(name)
    namespace, sep, inner = name.partition(NAMESPACE_SEP)
    return (namespace, inner) if sep and namespace and inner else None


def web_search_item(ws_id: str, part: SearchPart) -> dict[str, Any]:
    """A search the upstream ran, as a ``web_search_call`` item with its query and sources."""
    action: dict[str, Any] = {"type": "search", "query": "; ".join(q for q in part.queries if q)}
    if part.sources:
        action["sources"] = [{"type": "url", "url": url} for url, _ in part.sources]
    return {"id": ws_id, "type": "web_search_call", "status": "completed", "action": action}


def reasoning_item(rs_id: str, text: str, state: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": rs_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if state is not None:
        item["encrypted_content"] = state
    return item


def output_text(text: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": []}


def url_citations(text: str, citations: tuple[Citation, ...] | list[Citation]) -> list[dict[str, Any]]:
    """A text's web citations as ``url_citation`` annotations over the characters each supports."""
    out = []
    for citation in citations:
        start, end = cited_span(text, citation)
        out.append({"type": "url_citation", "start_index": start, "end_index": end, "url": citation.url,
                    "title": citation.title})
    return out


def message_item(
    msg_id: str, texts: list[str], *, done: bool, notes: list[list[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """A ``message`` item, one ``output_text`` part per text; ``notes`` are each part's annotations."""
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "status": "completed" if done else "in_progress",
        "content": [output_text(t, notes[i] if notes else None) for i, t in enumerate(texts)],
    }


def usage_object(usage: Usage, cost_credits: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
    }
    if cost_credits is not None:
        out["cost_credits"] = cost_credits
    return out


def response_object(
    resp_id: str,
    *,
    model: str,
    created: int,
    output: list[dict[str, Any]],
    status: str,
    stop_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the ``response`` object shared by the non-stream body and the lifecycle events."""
    reason = _INCOMPLETE.get(stop_reason or "")
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": reason} if status == "incomplete" and reason else None,
        "instructions": None,
        "metadata": {},
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "store": False,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def final_status(stop_reason: str | None) -> str:
    """``completed`` or ``incomplete`` for a canonical stop reason."""
    return "incomplete" if stop_reason in _INCOMPLETE else "completed"


def render_response(
    resp: ChatResponse,
    *,
    model: str,
    created: int,
    cost_credits: int | None = None,
    namespaces: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Render the full Response object for a non-stream call."""
    rid = response_id(resp.id)
    output: list[dict[str, Any]] = []
    texts: list[str] | None = None
    notes: list[list[dict[str, Any]]] = []
    for part in resp.parts:
        if isinstance(part, TextPart):
            if texts is None:
                texts, notes = [], []
                output.append(message_item(item_id("msg", rid, len(output)), texts, done=True))
            texts.append(part.text)
            notes.append(url_citations(part.text, part.citations))
            output[-1]["content"] = message_item("", texts, done=True, notes=notes)["content"]
            continue
        item = _non_text_item(part, rid, len(output), namespaces)
        if item is not None:
            output.append(item)
            texts = None
    status = final_status(resp.stop_reason)
    return response_object(
        rid, model=model, created=created, output=output, status=status,
        stop_reason=resp.stop_reason, usage=usage_object(resp.usage, cost_credits),
    )


def _non_text_item(
    part: Part, rid: str, index: int, namespaces: Mapping[str, tuple[str, str]] | None
) -> dict[str, Any] | None:
    if isinstance(part, ToolCallPart):
        return function_call_item(item_id("ctc" if part.custom else "fc", rid, index), part, namespaces, done=True)
    if isinstance(part, SearchPart):
        return web_search_item(item_id("ws", rid, index), part)
    if isinstance(part, ThinkingPart):
        state = wrap_reasoning_state(part)
        if part.text or state is not None:
            return reasoning_item(item_id("rs", rid, index), part.text, state)
    # Images, raw vendor blocks and tool results have no place in a Responses output.
    return None


def signature_state(signature: str, origin: str | None) -> str | None:
    """State for a streamed signature delta, wrapped like ``wrap_reasoning_state``."""
    if origin == "responses":
        return signature
    if origin == "anthropic":
        return _STATE_PREFIX["signature"] + signature
    return None


def redacted_state(data: str) -> str:
    return _STATE_PREFIX["redacted"] + data


def event_usage(start: MessageStart | None, delta: MessageDelta | None) -> Usage:
    usage = start.usage if start else Usage()
    return usage.merged(delta.usage) if delta and delta.usage else usage


