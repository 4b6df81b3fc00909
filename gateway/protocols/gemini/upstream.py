"""Gemini upstream side: the body we send ``generateContent`` and how we read its answers.

- Tool results become ``user`` ``functionResponse`` parts named after the call
  they answer (recovered from the history); the ``response`` is always an
  object (plain text is wrapped as ``{"content": ...}``, an error as ``{"error": ...}``).
- Call ids are not sent. A call's ``thoughtSignature`` is sent back with it;
  the first call of a turn that has none gets Google's documented dummy value.
- Other vendors' opaque reasoning (Anthropic signatures, OpenAI encrypted
  reasoning) is never sent; their readable thinking is dropped too.
- ``parameters`` schemas are cut down to the OpenAPI subset Gemini accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable

from gateway.canonical import ChatRequest, ChatResponse, Part, Thinking, Tool, ToolCallPart, ToolResultPart
from gateway.protocols import server_tools
from gateway.protocols.gemini.grounding import citations_of, cite_texts, search_of, with_searches
from gateway.protocols.gemini.parts import (
    CallIds,
    MakeId,
    parse_upstream_part,
    render_parts,
    stop_from_finish,
    usage_from_gemini,
)
from gateway.protocols.gemini.upstream_stream import default_ids

_SCHEMA_KEYS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
    "propertyOrdering", "default", "items", "minimum", "maximum",
})


def render_request(
    req: ChatRequest, *, upstream_model: str, stream: bool, version: str | None = None
) -> dict[str, Any]:
    """Build the ``generateContent`` body (the model and stream mode go in the URL)."""
    names = _call_names(req)
    body: dict[str, Any] = {"contents": _contents(req, names)}
    if req.system:
        body["systemInstruction"] = {"parts": [{"text": p.text} for p in req.system]}
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    tool_config = _tool_config(req)
    if tool_config:
        body["toolConfig"] = tool_config
    gen = _generation_config(req, upstream_model)
    if gen:
        body["generationConfig"] = gen
    if req.source == "gemini":
        for key in ("safetySettings", "cachedContent", "labels"):
            if key in req.extras:
                body[key] = req.extras[key]
    return body


def passthrough_request(body: Mapping[str, Any], *, upstream_model: str, stream: bool) -> dict[str, Any]:
    """Return the caller's own Gemini body; only the URL names the upstream model."""
    return {k: v for k, v in body.items() if k != "model"}


def parse_response(
    body: Mapping[str, Any], *, make_id: MakeId | None = None, tools: Iterable[Tool] = ()
) -> ChatResponse:
    """Read a non-stream ``GenerateContentResponse`` (``tools`` for symmetry: names are sent whole)."""
    response_id = body.get("responseId") if isinstance(body.get("responseId"), str) else None
    ids = CallIds(make_id or default_ids(response_id))
    candidates = body.get("candidates")
    candidate = candidates[0] if isinstance(candidates, list) and candidates else None
    usage = usage_from_gemini(body.get("usageMetadata"))
    model = str(body.get("modelVersion") or "")
    rid = response_id or "gemini"
    if not isinstance(candidate, Mapping):
        feedback = body.get("promptFeedback")
        blocked = isinstance(feedback, Mapping) and feedback.get("blockReason")
        return ChatResponse(id=rid, model=model, parts=(), stop_reason="refusal" if blocked else "end_turn",
                            usage=usage)
    content = candidate.get("content")
    raw_parts = content.get("parts") if isinstance(content, Mapping) else None
    parts: list[Part] = []
    for i, raw in enumerate(raw_parts if isinstance(raw_parts, list) else []):
        if isinstance(raw, Mapping):
            parts.extend(parse_upstream_part(raw, f"candidates[0].content.parts[{i}]", ids))
    had_calls = any(isinstance(p, ToolCallPart) for p in parts)
    parts = cite_texts(parts, citations_of(candidate))
    search = search_of(candidate, rid)
    if search is not None:
        parts.insert(0, search)
    finish = candidate.get("finishReason") if isinstance(candidate.get("finishReason"), str) else None
    return ChatResponse(
        id=rid, model=model, parts=tuple(parts), stop_reason=stop_from_finish(finish, had_calls=had_calls),
        usage=with_searches(usage, candidate)
    )


# --- request pieces ---------------------------------------------------------------------


def _call_names(req: ChatRequest) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in req.messages:
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                names[part.id] = part.name
    return names


def _contents(req: ChatRequest, names: Mapping[str, str]) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    for message in req.messages:
        role = "model" if message.role == "assistant" else "user"
        # Tool results first: Gemini pairs functionResponse parts with the calls just made.
        ordered = sorted(message.parts, key=lambda p: 0 if isinstance(p, ToolResultPart) else 1)
        parts = render_parts(ordered if role == "user" else list(message.parts), upstream=True, names=names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _tools(req: ChatRequest) -> list[dict[str, Any]]:
    decls = []
    for tool in req.tools:
        decl: dict[str, Any] = {"name": tool.name}
        if tool.description:
            decl["description"] = tool.description
        params = clean_schema(tool.parameters)
        if isinstance(params, dict) and (params.get("properties") or params.get("type") != "object"):
            decl["parameters"] = params
        decls.append(decl)
    tools: list[dict[str, Any]] = [{"functionDeclarations": decls}] if decls else []
    tools.extend(server_tools.to_gemini(t) for t in req.server_tools)  # kinds ``carry`` let through
    return tools


def clean_schema(schema: Any) -> Any:
    """Keep only the schema keys Gemini's ``parameters`` accepts, recursively."""
    if isinstance(schema, list):
        return [clean_schema(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            out["type"] = kinds[0] if kinds else "string"
            if "null" in value:
                out["nullable"] = True
        elif key == "const":
            out["enum"] = [value]
        elif key == "properties" and isinstance(value, Mapping):
            out[key] = {k: clean_schema(v) for k, v in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = clean_schema(value)
        elif key == "oneOf":
            out["anyOf"] = clean_schema(value)
        elif key in _SCHEMA_KEYS:
            out[key] = value
    return out


def _tool_config(req: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = dict(req.extras.get("toolConfig") or {}) if req.source == "gemini" else {}
    choice = req.tool_choice
    if choice is not None and req.tools:
        fcc: dict[str, Any] = {"mode": {"auto": "AUTO", "any": "ANY", "none": "NONE", "tool": "ANY"}[choice.mode]}
        if choice.mode == "tool" and choice.name:
            fcc["allowedFunctionNames"] = [choice.name]
        config["functionCallingConfig"] = fcc
    return config


def _generation_config(req: ChatRequest, upstream_model: str) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    if req.source == "gemini":
        gen.update(req.extras.get("generationConfig") or {})
    for key, value in (("maxOutputTokens", req.max_tokens), ("temperature", req.temperature),
                       ("topP", req.top_p), ("topK", req.top_k)):
        if value is not None:
            gen[key] = value
    if req.stop:
        gen["stopSequences"] = list(req.stop)
    if "thinkingConfig" not in gen and req.thinking is not None:
        thinking = thinking_config(req.thinking, upstream_model)
        if thinking:
            gen["thinkingConfig"] = thinking
    fmt = req.response_format or {}
    if fmt.get("type") in ("json_schema", "json_object"):
        gen["responseMimeType"] = "application/json"
        spec = fmt.get("json_schema")
        if isinstance(spec, Mapping) and isinstance(spec.get("schema"), Mapping):
            gen["responseSchema"] = clean_schema(spec["schema"])
    return gen


_LEVEL = {"minimal": "low", "low": "low", "medium": "high", "high": "high", "xhigh": "high"}
_BUDGET = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}


def thinking_config(thinking: Thinking, upstream_model: str) -> dict[str, Any]:
    """Canonical thinking -> ``thinkingConfig``; Gemini 2.x takes budgets, later models levels."""
    if thinking.mode == "disabled":
        return {}  # several Gemini models cannot turn thinking off: leave it at the model's default
    config: dict[str, Any] = {"includeThoughts": True}
    if thinking.budget_tokens is not None:
        config["thinkingBudget"] = thinking.budget_tokens
    elif thinking.effort is not None:
        if "gemini-2" in upstream_model:
            config["thinkingBudget"] = _BUDGET.get(thinking.effort, 8192)
        else:
            config["thinkingLevel"] = _LEVEL.get(thinking.effort, "high")
    return config
