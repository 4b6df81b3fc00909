"""What each vendor refuses: the request rules a translation can break, checked by the scripted fakes.

A fake answers a body that breaks one of these with the vendor's own 400, so a
translation that would fail against the real API fails here too.
"""

from __future__ import annotations

import re
from typing import Any


def camel(value: Any) -> Any:
    """Google reads snake_case and lowerCamelCase alike (google-genai sends the former): compare in one."""
    if isinstance(value, list):
        return [camel(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): v if k in ("args", "response") else camel(v)
            for k, v in value.items()}



TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def refusal(vendor: str, body: dict[str, Any]) -> str | None:
    """The vendor's 400 message for a body it would refuse (the rules that translation can break), else None."""
    return {"anthropic": _anthropic_refusal, "openai": _openai_refusal, "gemini": _gemini_refusal}[vendor](body)


def _anthropic_refusal(body: dict[str, Any]) -> str | None:
    turns = body.get("messages") or []
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    if [m["role"] for m in turns] != [("user", "assistant")[i % 2] for i in range(len(turns))]:
        return "messages: roles must alternate between user and assistant, starting with user"
    thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    if thinking and (body.get("thinking") or {}).get("budget_tokens", 1024) >= body["max_tokens"]:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    last_calls: set[str] = set()
    for n, m in enumerate(turns):
        blocks = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
        if not blocks:
            return f"messages.{n}: all messages must have non-empty content"
        for k, b in enumerate(blocks):
            if b["type"] == "text" and not b["text"]:
                return f"messages.{n}: text content blocks must be non-empty"
            problem = _anthropic_search_refusal(b, f"messages.{n}.content.{k}")
            if problem is not None:
                return problem
            if b["type"] == "tool_use" and not TOOL_ID.match(b["id"]):
                return f"messages.{n}: tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
            if b["type"] == "tool_result" and b["tool_use_id"] not in last_calls:
                return f"messages.{n}: unexpected `tool_use_id` found in `tool_result` blocks: {b['tool_use_id']}"
        if m["role"] == "assistant":
            last_calls = {b["id"] for b in blocks if b["type"] == "tool_use"}
    final = next((m for m in reversed(turns) if m["role"] == "assistant"), None)
    if thinking and final and isinstance(final["content"], list) and any(
            b["type"] == "tool_use" for b in final["content"]) and final["content"][0]["type"] not in (
            "thinking", "redacted_thinking"):
        return ("Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, "
                "a final `assistant` message must start with a thinking block")
    return None


def _anthropic_search_refusal(block: dict[str, Any], where: str) -> str | None:
    """Search records only Anthropic's own search can give: its encrypted result content and citation index."""
    if block["type"] == "web_search_tool_result" and isinstance(block.get("content"), list):
        for j, result in enumerate(block["content"]):
            if not result.get("encrypted_content"):
                return f"{where}.content.{j}.encrypted_content: invalid encrypted content"
    for j, citation in enumerate(block.get("citations") or [] if block["type"] == "text" else []):
        if citation.get("type") == "web_search_result_location" and not citation.get("encrypted_index"):
            return f"{where}.citations.{j}.encrypted_index: invalid encrypted index"
    return None


def _openai_refusal(body: dict[str, Any]) -> str | None:
    open_calls: set[str] = set()
    for n, m in enumerate(body.get("messages") or []):
        if m["role"] == "tool":
            if m["tool_call_id"] not in open_calls:
                return (f"Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                        f"with 'tool_calls' (messages.[{n}])")
            open_calls.discard(m["tool_call_id"])
            continue
        if open_calls:
            return f"An assistant message with 'tool_calls' must be followed by tool messages (messages.[{n}])"
        if m["role"] == "assistant":
            open_calls = {t["id"] for t in m.get("tool_calls") or []}
            if m.get("content") is None and not open_calls:
                return f"messages.[{n}]: assistant content is required unless tool_calls is given"
    for t in body.get("tools") or []:
        if len(t["function"]["name"]) > 64:
            return "Invalid 'tools[0].function.name': string too long. Expected a string with maximum length 64"
    return None


GEMINI_PART_KEYS = {"text", "thought", "thoughtSignature", "inlineData", "fileData", "functionCall",
                    "functionResponse", "executableCode", "codeExecutionResult", "videoMetadata", "partMetadata"}


def _gemini_refusal(body: dict[str, Any]) -> str | None:
    contents = camel(body.get("contents") or [])
    calls = 0
    for n, c in enumerate(contents):
        parts = c.get("parts") or []
        if c.get("role") not in ("user", "model") or not parts:
            return f"contents[{n}]: role must be user or model, with at least one part"
        unknown = sorted({k for k in c if k not in ("role", "parts")} | {k for p in parts for k in p
                                                                        if k not in GEMINI_PART_KEYS})
        if unknown:
            return f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at 'contents[{n}]'"
        answers = sum(1 for p in parts if "functionResponse" in p)
        if answers and answers != calls:
            return ("Please ensure that the number of function response parts is equal to the number of "
                    "function call parts of the function call turn.")
        calls = sum(1 for p in parts if "functionCall" in p) if c["role"] == "model" else 0
    return None



def error_body(vendor: str, message: str) -> dict[str, Any]:
    if vendor == "anthropic":
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}, "request_id": "req_x"}
    if vendor == "openai":
        return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
