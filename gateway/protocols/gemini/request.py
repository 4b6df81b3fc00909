"""Google Gemini ``generateContent`` requests from a caller (the upstream's side is in ``upstream``).

A google-genai client calls ``/v1beta/models/{model}:generateContent`` (or
``:streamGenerateContent?alt=sse``); the model and the stream flag live in the
URL, so ``parse_request`` takes them as keyword arguments (``body["model"]`` is
read when they are not given). Both lowerCamelCase and snake_case fields are
accepted, as Google's own JSON parser does.

Fields no other vendor understands (``safetySettings``, ``cachedContent``,
built-in tools such as ``googleSearch``, penalties, seed, ...) go to
``extras`` and reach only a Gemini upstream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.canonical import (
    MAX_CHOICES,
    ChatRequest,
    Message,
    Part,
    TextPart,
    Thinking,
    Tool,
    ToolChoice,
)
from gateway.protocols import server_tools
from gateway.protocols.fields import (
    as_obj,
    invalid,
    opt_bool,
    opt_int,
    opt_list,
    opt_num,
    opt_str,
    pick,
    str_list,
)
from gateway.protocols.gemini.parts import (
    CallIds,
    MakeId,
    parse_parts,
)

_GEN_EXTRAS = (
    "candidateCount", "presencePenalty", "frequencyPenalty", "seed", "responseModalities",
    "mediaResolution", "speechConfig", "responseLogprobs", "logprobs", "imageConfig",
)
_TOP_EXTRAS = ("safetySettings", "cachedContent", "labels")
_MODES = {"AUTO": "auto", "ANY": "any", "NONE": "none", "VALIDATED": "auto", "MODE_UNSPECIFIED": "auto"}
_LEVELS = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}


def _choices(gen: Mapping[str, Any]) -> int:
    n = opt_int(_gen(gen, "candidateCount"), "generationConfig.candidateCount", minimum=1) or 1
    if n > MAX_CHOICES:
        raise invalid("generationConfig.candidateCount", f"at most {MAX_CHOICES} candidates")
    return n


def parse_request(
    body: Mapping[str, Any],
    *,
    version: str | None = None,
    model: str | None = None,
    stream: bool | None = None,
    make_id: MakeId | None = None,
) -> ChatRequest:
    """Parse a ``GenerateContentRequest`` into the canonical request; ids for calls come from ``make_id``."""
    body = as_obj(body, "body")
    # The URL names the model; the pipeline sets it when the body does not.
    name = model or opt_str(body.get("model"), "model") or ""
    ids = CallIds(make_id or (lambda n: f"call_{n}"))
    gen = as_obj(pick(body, "generationConfig", "generation_config") or {}, "generationConfig")
    tools, builtin = _parse_tools(body.get("tools"))
    extras = _extras(body, gen, builtin)
    return ChatRequest(
        model=name.removeprefix("models/"),
        messages=_parse_contents(body.get("contents"), ids),
        system=_parse_system(pick(body, "systemInstruction", "system_instruction")),
        max_tokens=opt_int(_gen(gen, "maxOutputTokens"), "generationConfig.maxOutputTokens", minimum=1),
        temperature=opt_num(_gen(gen, "temperature"), "generationConfig.temperature"),
        top_p=opt_num(_gen(gen, "topP"), "generationConfig.topP"),
        top_k=opt_int(_gen(gen, "topK"), "generationConfig.topK", minimum=1),
        stop=str_list(_gen(gen, "stopSequences"), "generationConfig.stopSequences"),
        stream=bool(stream if stream is not None else opt_bool(body.get("stream"), "stream")),
        tools=tools,
        tool_choice=_parse_tool_config(pick(body, "toolConfig", "tool_config")),
        thinking=_parse_thinking(_gen(gen, "thinkingConfig")),
        response_format=_parse_format(gen),
        extras=extras,
        server_tools=tuple(t for entry in builtin for t in server_tools.from_gemini(entry)),
        source="gemini",
        n=_choices(gen),
    )


# --- request parts --------------------------------------------------------------------


def _gen(gen: Mapping[str, Any], key: str) -> Any:
    return pick(gen, key, _snake(key))


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", key).lower()


def _parse_contents(value: Any, ids: CallIds) -> tuple[Message, ...]:
    contents = opt_list(value, "contents")
    if not contents:
        raise invalid("contents", "must not be empty")
    turns: list[tuple[str, list[Part]]] = []
    for i, raw in enumerate(contents):
        content = as_obj(raw, f"contents[{i}]")
        role = content.get("role") or "user"
        if role not in ("user", "model", "function"):
            raise invalid(f"contents[{i}].role", "must be user or model")
        canonical = "assistant" if role == "model" else "user"
        parts = parse_parts(content.get("parts") or [], f"contents[{i}].parts", ids)
        if turns and turns[-1][0] == canonical:
            turns[-1][1].extend(parts)
        else:
            turns.append((canonical, parts))
    return tuple(Message("assistant" if r == "assistant" else "user", tuple(p)) for r, p in turns if p)


def _parse_system(value: Any) -> tuple[TextPart, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextPart(value),)
    content = as_obj(value, "systemInstruction")
    texts = []
    for i, raw in enumerate(opt_list(content.get("parts"), "systemInstruction.parts")):
        text = opt_str(as_obj(raw, f"systemInstruction.parts[{i}]").get("text"), f"systemInstruction.parts[{i}].text")
        if text:
            texts.append(TextPart(text))
    return tuple(texts)


def _parse_tools(value: Any) -> tuple[tuple[Tool, ...], list[dict[str, Any]]]:
    tools: list[Tool] = []
    builtin: list[dict[str, Any]] = []
    for i, raw in enumerate(opt_list(value, "tools")):
        entry = as_obj(raw, f"tools[{i}]")
        decls = pick(entry, "functionDeclarations", "function_declarations")
        for j, decl in enumerate(opt_list(decls, f"tools[{i}].functionDeclarations")):
            tools.append(_parse_declaration(as_obj(decl, f"tools[{i}].functionDeclarations[{j}]"), f"tools[{i}]"))
        rest = {k: v for k, v in entry.items() if k not in ("functionDeclarations", "function_declarations")}
        if rest:
            # googleSearch, codeExecution, urlContext...: only Gemini can run them.
            builtin.append(rest)
    return tuple(tools), builtin


def _parse_declaration(decl: Mapping[str, Any], field: str) -> Tool:
    name = opt_str(decl.get("name"), f"{field}.name")
    if not name:
        raise invalid(f"{field}.name", "field required")
    schema = pick(decl, "parametersJsonSchema", "parameters_json_schema")
    if schema is None:
        params = decl.get("parameters")
        schema = _json_schema(as_obj(params, f"{field}.parameters")) if params is not None else None
    return Tool(
        name=name,
        description=opt_str(decl.get("description"), f"{field}.description"),
        parameters=as_obj(schema, f"{field}.parameters") if schema is not None else {"type": "object", "properties": {}},
    )


def _json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI subset (``type: "STRING"``, ``nullable``) -> plain JSON Schema."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key in ("properties", "$defs", "definitions") and isinstance(value, Mapping):
            out[key] = {k: _json_schema(v) for k, v in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
            out[key] = _json_schema(value)
        elif key in ("nullable", "propertyOrdering"):
            continue
        else:
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _parse_tool_config(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    cfg = as_obj(value, "toolConfig")
    fcc = pick(cfg, "functionCallingConfig", "function_calling_config")
    if fcc is None:
        return None
    fcc = as_obj(fcc, "toolConfig.functionCallingConfig")
    mode = opt_str(fcc.get("mode"), "toolConfig.functionCallingConfig.mode") or "AUTO"
    if mode.upper() not in _MODES:
        raise invalid("toolConfig.functionCallingConfig.mode", "must be AUTO, ANY, NONE or VALIDATED")
    allowed = str_list(pick(fcc, "allowedFunctionNames", "allowed_function_names"),
                       "toolConfig.functionCallingConfig.allowedFunctionNames")
    canonical = _MODES[mode.upper()]
    if canonical == "any" and len(allowed) == 1:
        return ToolChoice(mode="tool", name=allowed[0])
    return ToolChoice(mode=canonical)  # type: ignore[arg-type]


def _parse_thinking(value: Any) -> Thinking | None:
    if value is None:
        return None
    cfg = as_obj(value, "generationConfig.thinkingConfig")
    budget = opt_int(pick(cfg, "thinkingBudget", "thinking_budget"), "generationConfig.thinkingConfig.thinkingBudget",
                     minimum=-1)
    level = opt_str(pick(cfg, "thinkingLevel", "thinking_level"), "generationConfig.thinkingConfig.thinkingLevel")
    if level is not None:
        if level.upper() not in _LEVELS and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
            raise invalid("generationConfig.thinkingConfig.thinkingLevel", "must be MINIMAL, LOW, MEDIUM or HIGH")
        return Thinking(mode="enabled", effort=_LEVELS.get(level.upper()))
    if budget == 0:
        return Thinking(mode="disabled")
    if budget is None or budget == -1:
        # includeThoughts alone, or the dynamic budget: the model decides how much to think.
        return Thinking(mode="adaptive")
    return Thinking(mode="enabled", budget_tokens=budget)


def _parse_format(gen: Mapping[str, Any]) -> Mapping[str, Any] | None:
    mime = opt_str(_gen(gen, "responseMimeType"), "generationConfig.responseMimeType")
    schema = _gen(gen, "responseJsonSchema")
    if schema is None and _gen(gen, "responseSchema") is not None:
        schema = _json_schema(as_obj(_gen(gen, "responseSchema"), "generationConfig.responseSchema"))
    if schema is not None:
        spec = {"name": "response", "schema": as_obj(schema, "generationConfig.responseSchema")}
        return {"type": "json_schema", "json_schema": spec}
    if mime == "application/json":
        return {"type": "json_object"}
    return None


def _extras(body: Mapping[str, Any], gen: Mapping[str, Any], builtin: list[dict[str, Any]]) -> dict[str, Any]:
    """Fields only Gemini understands (built-in tools travel as ``server_tools``)."""
    extras: dict[str, Any] = {}
    for key in _TOP_EXTRAS:
        value = pick(body, key, _snake(key))
        if value is not None:
            extras[key] = value
    generation = {k: _gen(gen, k) for k in _GEN_EXTRAS if _gen(gen, k) is not None}
    thinking = _gen(gen, "thinkingConfig")
    if thinking is not None:
        generation["thinkingConfig"] = thinking
    if generation:
        extras["generationConfig"] = generation
    tool_cfg = pick(body, "toolConfig", "tool_config")
    if isinstance(tool_cfg, Mapping):
        other = {k: v for k, v in tool_cfg.items() if k not in ("functionCallingConfig", "function_calling_config")}
        if other:
            extras["toolConfig"] = other
    return extras
