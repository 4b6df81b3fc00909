"""OpenAI Chat Completions requests: a caller's body parsed, an upstream's rendered or passed through.

``system``/``developer`` messages anywhere become the canonical system text;
runs of ``tool`` messages become one user turn of tool results. Fields the
canonical model does not carry (``seed``, ``logprobs``, ``n`` = 1, ...) are
kept in ``ChatRequest.extras`` and sent again only to an OpenAI-compatible
upstream. Messages live in ``messages``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.canonical import (
    MAX_CHOICES,
    ChatRequest,
    ServerTool,
    Thinking,
    Tool,
    ToolChoice,
)
from gateway.protocols import common as c
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
from gateway.protocols.openai_chat.messages import (
    cache_of,
    parse_messages,
    render_messages,
)

KNOWN_FIELDS = (
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
    "stream", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort", "user",
    "response_format",
)  # fmt: skip
LEGACY_MAX_TOKENS = "legacy"  # render_request(version=...) for upstreams that only know max_tokens
MAX_STOPS = 4


# --- caller side: request ------------------------------------------------------------


def _server_tools(value: Any) -> tuple[ServerTool, ...]:
    """``custom`` (grammar) tools: carried to an OpenAI upstream only, refused elsewhere (``carry``)."""
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping) and item.get("type", "function") != "function":
            label = str(item.get("type"))
            out.append(ServerTool(kind=f"openai:{label}", label=label, origin="openai", raw=dict(item)))
    return tuple(out)


def _parse_tools(value: Any) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for i, item in enumerate(as_list(value or [], "tools")):
        spec = as_obj(item, f"tools[{i}]")
        if spec.get("type", "function") != "function":
            continue  # custom tools: ``_server_tools``
        fn = as_obj(spec.get("function"), f"tools[{i}].function")
        params = opt_obj(fn.get("parameters"), f"tools[{i}].function.parameters")
        tools.append(
            Tool(
                name=req_str(fn.get("name"), f"tools[{i}].function.name"),
                description=opt_str(fn.get("description"), f"tools[{i}].function.description"),
                parameters=dict(params) if params is not None else {"type": "object", "properties": {}},
                strict=opt_bool(fn.get("strict"), f"tools[{i}].function.strict"),
                cache_control=cache_of(spec) or cache_of(fn),
            )
        )
    return tuple(tools)


def _parse_tool_choice(value: Any, parallel: bool | None) -> ToolChoice | None:
    disable = None if parallel is None else not parallel
    if value is None:
        return None if disable is None else ToolChoice(mode="auto", disable_parallel=disable)
    modes = {"auto": "auto", "required": "any", "none": "none"}
    if isinstance(value, str):
        if value not in modes:
            raise invalid("tool_choice", "must be one of none, auto, required or a function")
        return ToolChoice(mode=modes[value], disable_parallel=disable)  # type: ignore[arg-type]
    spec = as_obj(value, "tool_choice")
    if spec.get("type") == "function":
        fn = as_obj(spec.get("function"), "tool_choice.function")
        return ToolChoice(
            mode="tool", name=req_str(fn.get("name"), "tool_choice.function.name"), disable_parallel=disable
        )
    return ToolChoice(mode="auto", disable_parallel=disable)  # allowed_tools and the like


def _parse_stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(as_str(s, f"stop[{i}]") for i, s in enumerate(as_list(value, "stop")))


def _parse_thinking(effort: str | None) -> Thinking | None:
    if effort is None:
        return None
    if effort == "none":
        return Thinking(mode="disabled", effort="none")
    return Thinking(mode="enabled", effort=effort)


def parse_request(
    body: Mapping[str, Any], *, version: str | None = None, model: str | None = None, stream: bool | None = None
) -> ChatRequest:
    """Read a caller's Chat Completions body.

    ``model`` and ``stream``, when the URL gives them, stand over the body's.
    """
    body = as_obj(body, "body")
    n = opt_int(body.get("n"), "n", minimum=1) or 1
    if n > MAX_CHOICES:
        raise invalid("n", f"at most {MAX_CHOICES} choices")
    max_tokens = opt_int(body.get("max_completion_tokens"), "max_completion_tokens", minimum=0)
    if max_tokens is None:
        max_tokens = opt_int(body.get("max_tokens"), "max_tokens", minimum=0)
    opt_obj(body.get("stream_options"), "stream_options")
    system, messages = parse_messages(body.get("messages"))
    return ChatRequest(
        model=model or req_str(body.get("model"), "model"),
        messages=messages,
        system=system,
        max_tokens=max_tokens,
        temperature=opt_num(body.get("temperature"), "temperature"),
        top_p=opt_num(body.get("top_p"), "top_p"),
        stop=_parse_stop(body.get("stop")),
        stream=bool(stream if stream is not None else opt_bool(body.get("stream"), "stream")),
        tools=_parse_tools(body.get("tools")),
        server_tools=_server_tools(body.get("tools")),
        tool_choice=_parse_tool_choice(body.get("tool_choice"), opt_bool(body.get("parallel_tool_calls"), "parallel_tool_calls")),
        thinking=_parse_thinking(opt_str(body.get("reasoning_effort"), "reasoning_effort")),
        user=opt_str(body.get("user"), "user"),
        response_format=opt_obj(body.get("response_format"), "response_format"),
        extras=extras_of(body, KNOWN_FIELDS),
        source="openai",
        n=n,
    )


def include_usage(req: ChatRequest) -> bool:
    """Whether an OpenAI caller asked for the usage chunk (``stream_options.include_usage``)."""
    options = req.extras.get("stream_options") if req.source == "openai" else None
    return bool(isinstance(options, Mapping) and options.get("include_usage"))


# --- upstream side: request ----------------------------------------------------------


def _render_tool(tool: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": c.truncate_tool_name(tool.name)}
    if tool.description is not None:
        fn["description"] = tool.description
    fn["parameters"] = dict(tool.parameters)
    if tool.strict is not None:
        fn["strict"] = tool.strict
    return {"type": "function", "function": fn}


def _render_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": c.truncate_tool_name(choice.name or "")}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.mode]


def _reasoning_effort(thinking: Thinking) -> str | None:
    if thinking.effort is not None:
        return thinking.effort
    if thinking.mode == "disabled":
        return None
    return c.budget_to_effort(thinking.budget_tokens)


def render_request(
    req: ChatRequest, *, upstream_model: str, stream: bool, version: str | None = None
) -> dict[str, Any]:
    """Build the body for an OpenAI-compatible upstream (``version="legacy"``: ``max_tokens``)."""
    out: dict[str, Any] = {"model": upstream_model, "messages": render_messages(req)}
    if req.max_tokens is not None:
        out["max_tokens" if version == LEGACY_MAX_TOKENS else "max_completion_tokens"] = req.max_tokens
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["top_p"] = req.top_p
    if req.stop:
        out["stop"] = list(req.stop[:MAX_STOPS])
    if req.tools:
        out["tools"] = [_render_tool(t) for t in req.tools]
        if req.tool_choice is not None:
            out["tool_choice"] = _render_tool_choice(req.tool_choice)
            if req.tool_choice.disable_parallel is not None and req.tool_choice.mode != "none":
                out["parallel_tool_calls"] = not req.tool_choice.disable_parallel
    if req.thinking is not None and (effort := _reasoning_effort(req.thinking)) is not None:
        out["reasoning_effort"] = effort
    if req.user is not None:
        out["user"] = req.user
    if req.response_format is not None:
        out["response_format"] = dict(req.response_format)
    if req.source == "openai":
        out.update(req.extras)
    out["stream"] = stream
    if stream:
        out["stream_options"] = {**(out.get("stream_options") or {}), "include_usage": True}
    else:
        out.pop("stream_options", None)
    return out


def passthrough_request(body: Mapping[str, Any], *, upstream_model: str, stream: bool) -> dict[str, Any]:
    """Forward a caller's body but for the model, the stream flag and usage in the stream."""
    out = dict(as_obj(body, "body"))
    out["model"] = upstream_model
    out["stream"] = stream
    if stream:
        options = out.get("stream_options")
        out["stream_options"] = {**(options if isinstance(options, Mapping) else {}), "include_usage": True}
    else:
        out.pop("stream_options", None)
    return out


# --- responses -----------------------------------------------------------------------


# --- errors --------------------------------------------------------------------------


