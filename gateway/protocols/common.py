"""Pure helpers shared by the protocol codecs.

Tool-name truncation, the stop reason tables, usage conversion, reasoning
effort <-> thinking budget, ``data:`` URIs and compact JSON. Field validation
lives in ``fields``, upstream errors in ``upstream_error``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Iterable

from gateway.canonical import Citation, Usage

# --- tool names and ids -----------------------------------------------------

MAX_TOOL_NAME = 64
_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")


def truncate_tool_name(name: str) -> str:
    """Fit a tool name into 64 characters: the first 55, ``_`` and 8 hex of its sha256."""
    if len(name) <= MAX_TOOL_NAME:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{name[:55]}_{digest}"


def tool_name_map(names: Iterable[str]) -> dict[str, str]:
    """Map each truncated wire name back to the declared name it came from."""
    return {truncate_tool_name(n): n for n in names if len(n) > MAX_TOOL_NAME}


def sanitize_tool_id(call_id: str) -> str:
    """Make a call id acceptable to Anthropic (``^[a-zA-Z0-9_-]+$``), the same way every time."""
    return _ID_BAD.sub("_", call_id) or "toolu_"


def load_arguments(text: str) -> dict[str, Any]:
    """Parse tool-call arguments into an object; anything else (broken, truncated, a list) is ``{}``."""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dump_arguments(value: Any) -> str:
    """Write tool-call arguments as compact JSON, keeping non-ASCII text as is."""
    return json.dumps(value if value is not None else {}, ensure_ascii=False, separators=(",", ":"))


# --- stop reasons -----------------------------------------------------------

STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "length",
    "model_context_window_exceeded": "length",
    "compaction": "length",
}
FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: str | None) -> str | None:
    """Anthropic stop reason -> OpenAI finish reason (unknown -> ``stop``)."""
    return None if stop_reason is None else STOP_TO_FINISH.get(stop_reason, "stop")


def stop_reason(finish: str | None, *, had_tool_calls: bool = False) -> str | None:
    """OpenAI finish reason -> Anthropic stop reason (unknown -> ``end_turn``)."""
    if finish is None:
        return None
    mapped = FINISH_TO_STOP.get(finish, "end_turn")
    # Some compatible vendors say "stop" after tool calls; the calls are what matter.
    return "tool_use" if mapped == "end_turn" and had_tool_calls else mapped


# --- usage -------------------------------------------------------------------


def count(value: Any) -> int:
    """A token count from a vendor body: non-negative int, anything else 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(int(value), 0)


def usage_from_openai(body: Mapping[str, Any] | None) -> Usage:
    """OpenAI usage -> canonical; ``prompt_tokens`` includes cached tokens, so subtract them."""
    if not isinstance(body, Mapping):
        return Usage()
    prompt = body.get("prompt_tokens_details")
    prompt = prompt if isinstance(prompt, Mapping) else {}
    done = body.get("completion_tokens_details")
    done = done if isinstance(done, Mapping) else {}
    # DeepSeek reports cache hits at the top level.
    read = count(prompt.get("cached_tokens")) or count(body.get("prompt_cache_hit_tokens"))
    write = count(prompt.get("cache_write_tokens")) or count(body.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=max(count(body.get("prompt_tokens")) - read - write, 0),
        output_tokens=count(body.get("completion_tokens")),
        cache_write_tokens=write,
        cache_read_tokens=read,
        reasoning_tokens=count(done.get("reasoning_tokens")),
    )


def usage_to_openai(usage: Usage, *, cost_credits: int | None = None) -> dict[str, Any]:
    """Canonical usage -> OpenAI ``usage`` (``prompt_tokens`` counts cached tokens too)."""
    prompt_details: dict[str, Any] = {"cached_tokens": usage.cache_read_tokens}
    if usage.cache_write_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
    if cost_credits is not None:
        out["cost_credits"] = cost_credits
    return out


def usage_from_anthropic(body: Mapping[str, Any] | None) -> Usage:
    """Anthropic ``usage`` -> canonical (the field names differ, the meaning does not)."""
    if not isinstance(body, Mapping):
        return Usage()
    details = body.get("output_tokens_details")
    details = details if isinstance(details, Mapping) else {}
    server = body.get("server_tool_use")
    server = server if isinstance(server, Mapping) else {}
    return Usage(
        web_searches=count(server.get("web_search_requests")),
        input_tokens=count(body.get("input_tokens")),
        output_tokens=count(body.get("output_tokens")),
        cache_write_tokens=count(body.get("cache_creation_input_tokens")),
        cache_read_tokens=count(body.get("cache_read_input_tokens")),
        reasoning_tokens=count(details.get("reasoning_tokens")),
    )


def usage_to_anthropic(usage: Usage, *, cost_credits: int | None = None) -> dict[str, Any]:
    """Canonical usage -> Anthropic ``usage``, with the call's cost when it is known."""
    out: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
    if cost_credits is not None:
        out["cost_credits"] = cost_credits
    return out


# --- reasoning effort <-> thinking budget -------------------------------------

EFFORT_BUDGET = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192}
MIN_THINKING_BUDGET = 1024


def effort_to_budget(effort: str | None) -> int:
    """OpenAI ``reasoning_effort`` -> Anthropic ``budget_tokens`` (unknown efforts read as medium)."""
    return EFFORT_BUDGET.get(effort or "medium", EFFORT_BUDGET["medium"])


def budget_to_effort(budget: int | None) -> str:
    """Anthropic ``budget_tokens`` -> the nearest effort every reasoning model accepts."""
    if budget is None:
        return "medium"
    if budget < EFFORT_BUDGET["medium"]:
        return "low"
    if budget < EFFORT_BUDGET["high"]:
        return "medium"
    return "high"


# --- images ------------------------------------------------------------------

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[^;,]*)*;base64,(?P<data>.*)$", re.S)


def parse_data_uri(url: str) -> tuple[str, str] | None:
    """Split ``data:<mime>;base64,<data>`` into (mime, data); None for any other URL."""
    match = _DATA_URI.match(url)
    return (match["mime"], match["data"]) if match else None


def data_uri(media_type: str | None, data: str) -> str:
    """Build a ``data:`` URI for inline image bytes given as base64."""
    return f"data:{media_type or 'image/png'};base64,{data}"


# --- JSON ----------------------------------------------------------------------


def dumps(value: Any) -> str:
    """Serialise compactly, keeping non-ASCII text as is (the wire form every vendor uses)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads_object(text: str) -> dict[str, Any] | None:
    """Parse JSON text that should hold an object; None when it does not."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- documents -------------------------------------------------------------------


def document_text(part: Any) -> str:
    """The text of a plain-text ``DocumentPart`` given as text or as base64 bytes."""
    if part.text is not None:
        return str(part.text)
    try:
        return base64.b64decode(part.data or "").decode("utf-8", "replace")
    except ValueError:
        return ""


def document_b64(part: Any) -> str:
    """A document's bytes as base64 (plain text encoded as UTF-8)."""
    if part.data is not None:
        return str(part.data)
    return base64.b64encode(str(part.text or "").encode("utf-8")).decode("ascii")


def cited_span(text: str, citation: Citation) -> tuple[int, int]:
    """The character range of ``text`` a citation supports: its ``span`` where found, else all of it."""
    start = text.find(citation.span) if citation.span else -1
    return (start, start + len(citation.span)) if start >= 0 else (0, len(text))
