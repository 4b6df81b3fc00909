"""Vendor-run tools (web search, code execution, URL fetch) in each protocol's words.

Each caller's codec reads its declaration into a ``ServerTool`` (``kind`` +
portable ``config``); each upstream's codec writes the kind in its own shape.
A kind an upstream cannot run is refused by ``carry`` before the call.

| kind | Anthropic | Responses | Gemini |
|---|---|---|---|
| ``web_search`` | ``web_search_20250305`` | ``web_search`` / ``web_search_preview`` | ``googleSearch`` |
| ``code_execution`` | ``code_execution_20250825`` | ``code_interpreter`` | ``codeExecution`` |
| ``web_fetch`` | ``web_fetch_20250910`` | — | ``urlContext`` |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.canonical import ServerTool

PORTABLE_KINDS = ("web_search", "code_execution", "web_fetch")
_CONFIG_KEYS = ("max_uses", "allowed_domains", "blocked_domains", "user_location")

# --- Anthropic ------------------------------------------------------------------

_ANTHROPIC_PREFIX = {"web_search_": "web_search", "code_execution_": "code_execution", "web_fetch_": "web_fetch"}
ANTHROPIC_TYPES = {
    "web_search": ("web_search_20250305", "web_search"),
    "code_execution": ("code_execution_20250825", "code_execution"),
    "web_fetch": ("web_fetch_20250910", "web_fetch"),
}


def from_anthropic(spec: Mapping[str, Any]) -> ServerTool:
    kind = str(spec.get("type"))
    portable = next((k for p, k in _ANTHROPIC_PREFIX.items() if kind.startswith(p)), kind)
    config = {k: spec[k] for k in _CONFIG_KEYS if spec.get(k) is not None}
    return ServerTool(kind=portable, label=kind, origin="anthropic", raw=dict(spec), config=config)


def to_anthropic(tool: ServerTool) -> dict[str, Any]:
    if tool.origin == "anthropic":
        return dict(tool.raw)
    kind, name = ANTHROPIC_TYPES[tool.kind]
    out: dict[str, Any] = {"type": kind, "name": name}
    if tool.kind == "web_search":
        out.update({k: v for k, v in tool.config.items() if k in _CONFIG_KEYS})
    return out


# --- Responses --------------------------------------------------------------------

_RESPONSES_KINDS = {"web_search": "web_search", "web_search_preview": "web_search",
                    "code_interpreter": "code_execution"}


def from_responses(spec: Mapping[str, Any]) -> ServerTool:
    label = str(spec.get("type"))
    base = label.split("_20", 1)[0]  # web_search_2025_08_26, web_search_preview_2025_03_11
    kind = _RESPONSES_KINDS.get(base, label)
    config: dict[str, Any] = {}
    filters = spec.get("filters")
    if kind == "web_search" and isinstance(filters, Mapping) and filters.get("allowed_domains"):
        config["allowed_domains"] = list(filters["allowed_domains"])
    location = spec.get("user_location")
    if isinstance(location, Mapping):
        config["user_location"] = {"type": "approximate",
                                   **{k: v for k, v in location.items() if k != "type" and v is not None}}
    return ServerTool(kind=kind, label=label, origin="responses", raw=dict(spec), config=config)


# --- Gemini -------------------------------------------------------------------------

_GEMINI_KINDS = {"googleSearch": "web_search", "google_search": "web_search",
                 "googleSearchRetrieval": "web_search", "google_search_retrieval": "web_search",
                 "codeExecution": "code_execution", "code_execution": "code_execution",
                 "urlContext": "web_fetch", "url_context": "web_fetch"}
GEMINI_KEYS = {"web_search": "googleSearch", "code_execution": "codeExecution", "web_fetch": "urlContext"}


def from_gemini(entry: Mapping[str, Any]) -> list[ServerTool]:
    """One Gemini ``Tool`` entry (its function declarations aside) -> the built-in tools it switches on."""
    out = []
    for key in entry:
        if key in ("functionDeclarations", "function_declarations"):
            continue
        kind = _GEMINI_KINDS.get(key, key)
        out.append(ServerTool(kind=kind, label=key, origin="gemini", raw={key: entry[key]}))
    return out


def to_gemini(tool: ServerTool) -> dict[str, Any]:
    if tool.origin == "gemini":
        return dict(tool.raw)
    return {GEMINI_KEYS[tool.kind]: {}}
