"""Anthropic Messages requests: a caller's body parsed, an upstream's rendered or passed through.

Request fields the canonical model does not carry (``context_management``,
``output_config``, ``service_tier``, ``container``, server tools, ...) are
kept in ``ChatRequest.extras`` and sent again only to an Anthropic upstream.
Content blocks and turns live in ``blocks``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway.canonical import (
    ChatRequest,
    ServerTool,
    TextPart,
    Thinking,
    Tool,
    ToolChoice,
)
from gateway.protocols import common as c
from gateway.protocols import server_tools
from gateway.protocols.anthropic.blocks import (
    cache_of,
    parse_messages,
    parse_system,
    render_messages,
    with_cache,
)
from gateway.protocols.anthropic.records import without_foreign_records
from gateway.protocols.fields import (
    as_list,
    as_obj,
    as_str,
    extras_of,
    invalid,
    opt_bool,
    opt_int,
    opt_num,
    opt_obj,
    opt_str,
    req_str,
)

VERSION_WITHOUT_SAMPLING = "2026-10-21"
DEFAULT_MAX_TOKENS = 4096
KNOWN_FIELDS = (
    "model", "max_tokens", "messages", "system", "stop_sequences", "stream", "tools",
    "tool_choice", "thinking", "metadata", "temperature", "top_p", "top_k",
)  # fmt: skip
CUSTOM_TOOL_TYPES = (None, "custom")


# --- caller side: request ------------------------------------------------------------


def _parse_tools(value: Any) -> tuple[tuple[Tool, ...], list[ServerTool]]:
    """Split declared tools into custom tools and Anthropic server tools (``server_tools``)."""
    tools: list[Tool] = []
    server: list[ServerTool] = []
    for i, item in enumerate(as_list(value or [], "tools")):
        field = f"tools[{i}]"
        spec = as_obj(item, field)
        if spec.get("type") not in CUSTOM_TOOL_TYPES:
            server.append(server_tools.from_anthropic(spec))
            continue
        schema = opt_obj(spec.get("input_schema"), f"{field}.input_schema")
        tools.append(
            Tool(
                name=req_str(spec.get("name"), f"{field}.name"),
                description=opt_str(spec.get("description"), f"{field}.description"),
                parameters=dict(schema) if schema is not None else {"type": "object", "properties": {}},
                strict=opt_bool(spec.get("strict"), f"{field}.strict"),
                cache_control=cache_of(spec),
            )
        )
    return tuple(tools), server


def _parse_tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    spec = as_obj(value, "tool_choice")
    mode = spec.get("type")
    if mode not in ("auto", "any", "tool", "none"):
        raise invalid("tool_choice.type", "must be one of auto, any, tool, none")
    name = req_str(spec.get("name"), "tool_choice.name") if mode == "tool" else None
    disable = opt_bool(spec.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use")
    return ToolChoice(mode=mode, name=name, disable_parallel=disable)


def _parse_thinking(value: Any) -> Thinking | None:
    if value is None:
        return None
    spec = as_obj(value, "thinking")
    mode = spec.get("type")
    if mode == "enabled":
        budget = opt_int(spec.get("budget_tokens"), "thinking.budget_tokens", minimum=0)
        if budget is None:
            raise invalid("thinking.budget_tokens", "field required")
        return Thinking(mode="enabled", budget_tokens=budget)
    if mode in ("adaptive", "disabled"):
        return Thinking(mode=mode)
    raise invalid("thinking.type", "must be one of enabled, adaptive, disabled")


def _parse_user(metadata: Mapping[str, Any] | None) -> str | None:
    user = (metadata or {}).get("user_id")
    if user is None or isinstance(user, str):
        return user
    return json.dumps(user, separators=(",", ":"))


def _response_format(extras: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Read ``output_config.format`` (structured output) as OpenAI's ``response_format``."""
    config = extras.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else None
    if (
        isinstance(fmt, Mapping)
        and fmt.get("type") == "json_schema"
        and isinstance(fmt.get("schema"), Mapping)
    ):
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": dict(fmt["schema"])}}
    return None


def parse_request(
    body: Mapping[str, Any], *, version: str | None = None, model: str | None = None, stream: bool | None = None
) -> ChatRequest:
    """Read a caller's Messages body; every Anthropic version is accepted, sampling fields included.

    ``model`` and ``stream``, when the URL gives them, stand over the body's.
    """
    body = as_obj(body, "body")
    max_tokens = opt_int(body.get("max_tokens"), "max_tokens", minimum=0)
    if max_tokens is None:
        raise invalid("max_tokens", "field required")
    stop = body.get("stop_sequences")
    tools, server = _parse_tools(body.get("tools"))
    extras = extras_of(body, KNOWN_FIELDS)
    return ChatRequest(
        model=model or req_str(body.get("model"), "model"),
        messages=parse_messages(body.get("messages")),
        system=parse_system(body.get("system")),
        max_tokens=max_tokens,
        temperature=opt_num(body.get("temperature"), "temperature"),
        top_p=opt_num(body.get("top_p"), "top_p"),
        top_k=opt_int(body.get("top_k"), "top_k", minimum=0),
        stop=tuple(
            as_str(s, f"stop_sequences[{i}]") for i, s in enumerate(as_list(stop or [], "stop_sequences"))
        ),
        stream=bool(stream if stream is not None else opt_bool(body.get("stream"), "stream")),
        tools=tools,
        tool_choice=_parse_tool_choice(body.get("tool_choice")),
        thinking=_parse_thinking(body.get("thinking")),
        user=_parse_user(opt_obj(body.get("metadata"), "metadata")),
        response_format=_response_format(extras),
        extras=extras,
        server_tools=tuple(server),
        source="anthropic",
    )


# --- upstream side: request ----------------------------------------------------------


def _render_tool(tool: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        spec["description"] = tool.description
    spec["input_schema"] = dict(tool.parameters)
    if tool.strict is not None:
        spec["strict"] = tool.strict
    return with_cache(spec, tool.cache_control)


def _render_tool_choice(choice: ToolChoice) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": choice.mode}
    if choice.mode == "tool":
        spec["name"] = choice.name or ""
    if choice.disable_parallel is not None and choice.mode != "none":
        spec["disable_parallel_tool_use"] = choice.disable_parallel
    return spec


def _render_thinking(thinking: Thinking, max_tokens: int) -> dict[str, Any] | None:
    if thinking.mode == "disabled":
        return {"type": "disabled"}
    if thinking.mode == "adaptive":
        return {"type": "adaptive"}
    budget = max(thinking.budget_tokens or c.effort_to_budget(thinking.effort), c.MIN_THINKING_BUDGET)
    if budget >= max_tokens:
        # The budget must stay below max_tokens: keep half for the answer, or think not at all.
        budget = max(max_tokens // 2, c.MIN_THINKING_BUDGET)
    return {"type": "enabled", "budget_tokens": budget} if budget < max_tokens else None


def _render_system(parts: tuple[TextPart, ...]) -> str | list[dict[str, Any]] | None:
    parts = tuple(p for p in parts if p.text)
    if not parts:
        return None
    if len(parts) == 1 and parts[0].cache_control is None:
        return parts[0].text
    return [with_cache({"type": "text", "text": p.text}, p.cache_control) for p in parts]


def _sampling(req: ChatRequest, out: dict[str, Any]) -> None:
    if req.temperature is not None:
        out["temperature"] = min(max(req.temperature, 0.0), 1.0)  # OpenAI allows up to 2
    if req.top_p is not None:
        out["top_p"] = req.top_p
    if req.top_k is not None:
        out["top_k"] = req.top_k


def _structured_output(req: ChatRequest) -> dict[str, Any] | None:
    fmt = req.response_format or {}
    schema = fmt.get("json_schema") if fmt.get("type") == "json_schema" else None
    if isinstance(schema, Mapping) and isinstance(schema.get("schema"), Mapping):
        return {"format": {"type": "json_schema", "schema": dict(schema["schema"])}}
    return None


def _thinking_lost(messages: list[dict[str, Any]]) -> bool:
    """Whether the last assistant turn calls tools but does not open with a thinking block."""
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    blocks = last["content"] if last is not None else []
    calls = any(b.get("type") == "tool_use" for b in blocks)
    return calls and blocks[0].get("type") not in ("thinking", "redacted_thinking")


def render_request(
    req: ChatRequest,
    *,
    upstream_model: str,
    stream: bool,
    version: str | None = None,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
) -> dict[str, Any]:
    """Build the Messages body for an Anthropic upstream."""
    max_tokens = req.max_tokens if req.max_tokens is not None else default_max_tokens
    out: dict[str, Any] = {"model": upstream_model, "max_tokens": max_tokens}
    system = _render_system(req.system)
    if system is not None:
        out["system"] = system
    out["messages"] = render_messages(req.messages)
    tools = [_render_tool(t) for t in req.tools] + [server_tools.to_anthropic(t) for t in req.server_tools]
    if tools:
        out["tools"] = tools
        if req.tool_choice is not None:
            out["tool_choice"] = _render_tool_choice(req.tool_choice)
    forced = out.get("tool_choice", {}).get("type") in ("any", "tool")
    # Anthropic refuses thinking while a tool is forced (the forced call is what the caller asked for),
    # and when the last assistant turn calls tools without its signed thinking, which another protocol's
    # history cannot carry: then this turn goes without thinking.
    off = forced or (req.source != "anthropic" and _thinking_lost(out["messages"]))
    if req.thinking is not None and not (off and req.thinking.mode != "disabled"):
        thinking = _render_thinking(req.thinking, max_tokens)
        if thinking is not None:
            out["thinking"] = thinking
    stops = [s for s in req.stop if s.strip()]  # Anthropic rejects whitespace-only sequences
    if stops:
        out["stop_sequences"] = stops
    # 2026-10-21 refuses sampling fields; so does any version while the model thinks.
    thinking_on = out.get("thinking", {}).get("type") in ("enabled", "adaptive")
    if version != VERSION_WITHOUT_SAMPLING and not thinking_on:
        _sampling(req, out)
    if req.user is not None:
        out["metadata"] = {"user_id": req.user}
    if req.source == "anthropic":
        out.update(req.extras)
    elif (structured := _structured_output(req)) is not None:
        out["output_config"] = structured
    out["stream"] = stream
    return out


def passthrough_request(body: Mapping[str, Any], *, upstream_model: str, stream: bool) -> dict[str, Any]:
    """Forward a caller's body unchanged but for the model, the stream flag and other vendors' search records.

    Searches another vendor ran reached the caller in Anthropic's blocks, without the encrypted content
    Anthropic refuses to do without: in the history they go back as text (``records``).
    """
    out = dict(as_obj(body, "body"))
    out["model"] = upstream_model
    out["stream"] = stream
    if isinstance(out.get("messages"), list):
        out["messages"] = without_foreign_records(out["messages"])
    return out


# --- responses -----------------------------------------------------------------------


# --- errors --------------------------------------------------------------------------


