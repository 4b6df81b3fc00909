"""OpenAI Responses API, caller side: parse ``POST /v1/responses`` and render what goes back.

Only the caller side exists: no upstream speaks Responses to us.
``previous_response_id`` and ``store`` are handled before this parser runs
(``gateway.responses_store``); ``conversation`` is refused with a 400. Tools the canonical model cannot carry (hosted
tools, custom grammar tools) are dropped, never failing the request; tools in
a ``namespace`` are flattened to ``<namespace>--<name>`` and split back into
``namespace`` + ``name`` on the way out (``NAMESPACE_SEP``).

Opaque reasoning state rides in ``reasoning.encrypted_content``: OpenAI's own
is kept as is, an Anthropic thinking signature is wrapped so that a client
replaying the item (Codex does, with ``store: false``) hands it back intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import InvalidRequest
from gateway.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    RawPart,
    ServerTool,
    TextPart,
    Thinking,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from gateway.protocols import server_tools
from gateway.protocols.common import dumps, parse_data_uri
from gateway.protocols.fields import (
    as_obj,
    invalid,
    opt_bool,
    opt_int,
    opt_list,
    opt_num,
    opt_obj,
    opt_str,
    req_str,
)
from gateway.protocols.history import openai_annotation
from gateway.protocols.openai_responses.response import (
    NAMESPACE_SEP,
    unwrap_reasoning_state,
)

# The gateway resolves previous_response_id before parsing (gateway.responses_store): one that reaches
# the parser was not resolved, and conversations are not kept. Both are refused, never ignored.
_STATEFUL = ("previous_response_id", "conversation")
_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")
_KEPT_EXTRAS = ("include", "prompt_cache_key", "service_tier", "truncation", "metadata", "max_tool_calls")


def parse_request(
    body: Mapping[str, Any], *, version: str | None = None, model: str | None = None, stream: bool | None = None
) -> ChatRequest:
    """Parse a Responses ``create`` body into the canonical request.

    ``model`` and ``stream``, when the URL gives them, stand over the body's.
    """
    body = as_obj(body, "body")
    for key in _STATEFUL:
        if body.get(key) is not None:
            raise InvalidRequest(
                f"'{key}' is not supported: chain responses with 'previous_response_id', "
                "or send the whole conversation in 'input'.",
                param=key,
            )
    if body.get("background"):
        raise InvalidRequest("'background' mode is not supported; stream instead.", param="background")
    system, messages = _parse_input(body.get("input"))
    instructions = opt_str(body.get("instructions"), "instructions")
    if instructions:
        system = (TextPart(instructions), *system)
    tools, namespaces = _parse_tools(body.get("tools"))
    extras: dict[str, Any] = {k: body[k] for k in _KEPT_EXTRAS if body.get(k) is not None}
    if namespaces:
        extras["namespaces"] = namespaces
    text_cfg = body.get("text")
    if text_cfg is not None and as_obj(text_cfg, "text").get("verbosity") is not None:
        extras["verbosity"] = text_cfg["verbosity"]
    user = opt_str(body.get("user"), "user") or opt_str(body.get("safety_identifier"), "safety_identifier")
    return ChatRequest(
        model=model or req_str(body.get("model"), "model"),
        messages=messages,
        system=system,
        max_tokens=opt_int(body.get("max_output_tokens"), "max_output_tokens", minimum=1),
        temperature=opt_num(body.get("temperature"), "temperature"),
        top_p=opt_num(body.get("top_p"), "top_p"),
        stream=bool(stream if stream is not None else opt_bool(body.get("stream"), "stream")),
        tools=tools,
        tool_choice=_parse_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls")),
        thinking=_parse_reasoning(body.get("reasoning")),
        user=user or opt_str(body.get("prompt_cache_key"), "prompt_cache_key"),
        response_format=_parse_text_format(text_cfg),
        extras=extras,
        server_tools=_hosted_tools(body.get("tools")),
        source="responses",
    )


def tool_namespaces(req: ChatRequest) -> dict[str, tuple[str, str]]:
    """Return flat tool name -> (namespace, name) for the namespaced tools of ``req``."""
    raw = req.extras.get("namespaces") or {}
    return {flat: (pair[0], pair[1]) for flat, pair in raw.items()}


# --- input items -------------------------------------------------------------


def _parse_input(value: Any) -> tuple[tuple[TextPart, ...], tuple[Message, ...]]:
    """Turn ``input`` into system text and alternating user/assistant turns."""
    if value is None:
        raise InvalidRequest("Missing required parameter: 'input'", param="input")
    if isinstance(value, str):
        return (), (Message("user", (TextPart(value),)),)
    system: list[TextPart] = []
    turns: list[tuple[str, list[Part]]] = []
    for i, raw in enumerate(opt_list(value, "input")):
        field = f"input[{i}]"
        item = as_obj(raw, field)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                system.extend(p for p in _content(item.get("content"), field, role) if isinstance(p, TextPart))
                continue
            if role not in ("user", "assistant"):
                raise invalid(f"{field}.role", "expected one of user, assistant, system, developer")
            _append(turns, role, _content(item.get("content"), field, role))
        else:
            role, parts = _parse_item(kind, item, field)
            _append(turns, role, parts)
    messages = tuple(Message("user" if r == "user" else "assistant", tuple(p)) for r, p in turns if p)
    return tuple(system), messages


def _append(turns: list[tuple[str, list[Part]]], role: str, parts: list[Part]) -> None:
    if turns and turns[-1][0] == role:
        turns[-1][1].extend(parts)
    else:
        turns.append((role, list(parts)))


def _parse_item(kind: Any, item: Mapping[str, Any], field: str) -> tuple[str, list[Part]]:
    """Parse one non-message item; return the role of the turn it belongs to and its parts."""
    if kind == "function_call":
        name = req_str(item.get("name"), f"{field}.name")
        namespace = opt_str(item.get("namespace"), f"{field}.namespace")
        if namespace and namespace != name:
            name = f"{namespace}{NAMESPACE_SEP}{name}"
        call_id = req_str(item.get("call_id"), f"{field}.call_id")
        args = opt_str(item.get("arguments"), f"{field}.arguments") or "{}"
        return "assistant", [ToolCallPart(id=call_id, name=name, arguments=args)]
    if kind == "custom_tool_call":
        args = dumps({"input": opt_str(item.get("input"), f"{field}.input") or ""})
        name = req_str(item.get("name"), f"{field}.name")
        return "assistant", [ToolCallPart(id=req_str(item.get("call_id"), f"{field}.call_id"), name=name, arguments=args)]
    if kind in ("function_call_output", "custom_tool_call_output"):
        call_id = req_str(item.get("call_id"), f"{field}.call_id")
        return "user", [ToolResultPart(tool_call_id=call_id, content=_tool_output(item.get("output"), field))]
    if kind == "reasoning":
        return "assistant", [_parse_reasoning_item(item, field)]
    if kind == "item_reference":
        raise InvalidRequest(
            f"'{field}' is an item_reference: stored items are not available here; send the item itself.",
            param=field,
        )
    if not isinstance(kind, str):
        raise invalid(f"{field}.type", "expected an item type")
    # Hosted-tool calls and their outputs: only OpenAI itself could use them; kept raw, dropped elsewhere.
    role = "user" if kind.endswith("_output") else "assistant"
    return role, [RawPart(origin="responses", data=dict(item))]


def _parse_reasoning_item(item: Mapping[str, Any], field: str) -> ThinkingPart:
    texts = []
    for key in ("summary", "content"):
        for j, raw in enumerate(opt_list(item.get(key), f"{field}.{key}")):
            texts.append(req_str(as_obj(raw, f"{field}.{key}[{j}]").get("text"), f"{field}.{key}[{j}].text"))
    text = "\n\n".join(texts)
    state = opt_str(item.get("encrypted_content"), f"{field}.encrypted_content")
    if state is None:
        # Readable reasoning with no vendor state (what an upstream's reasoning_content became): an
        # OpenAI-compatible upstream gets it back as reasoning_content, which DeepSeek-style models
        # require on tool-call turns; Anthropic and Gemini drop it as unsigned.
        return ThinkingPart(text=text)
    origin, signature, redacted = unwrap_reasoning_state(state)
    if origin == "anthropic":
        return ThinkingPart(text=text, signature=signature, redacted=redacted, origin="anthropic")
    return ThinkingPart(text=text, encrypted=state, origin="responses")


def _content(value: Any, field: str, role: str) -> list[Part]:
    if isinstance(value, str):
        return [TextPart(value)]
    parts: list[Part] = []
    for j, raw in enumerate(opt_list(value, f"{field}.content")):
        parts.append(_content_part(as_obj(raw, f"{field}.content[{j}]"), f"{field}.content[{j}]"))
    return parts


def _content_part(part: Mapping[str, Any], field: str) -> Part:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
        text = req_str(part.get("text"), f"{field}.text")
        notes = part.get("annotations") if kind == "output_text" else None
        found = tuple(c for c in (openai_annotation(n, text) for n in notes or []) if c is not None)
        return TextPart(text, citations=found)
    if kind == "refusal":
        return TextPart(req_str(part.get("refusal"), f"{field}.refusal"))
    if kind == "input_image":
        url = opt_str(part.get("image_url"), f"{field}.image_url")
        detail = opt_str(part.get("detail"), f"{field}.detail")
        if url is None:
            # file_id images live in OpenAI's file store: useless to any other vendor.
            return RawPart(origin="responses", data=dict(part))
        inline = parse_data_uri(url)
        if inline:
            return ImagePart(media_type=inline[0], data=inline[1], detail=detail)
        return ImagePart(url=url, detail=detail)
    if kind == "input_file":
        return _input_file(part, field)
    if isinstance(kind, str):
        return RawPart(origin="responses", data=dict(part))
    raise invalid(f"{field}.type", "expected a content part type")


def _input_file(part: Mapping[str, Any], field: str) -> Part:
    """``input_file``: inline ``file_data`` (a data URL), a ``file_url`` or an uploaded ``file_id``."""
    filename = opt_str(part.get("filename"), f"{field}.filename")
    file_id = opt_str(part.get("file_id"), f"{field}.file_id")
    if file_id:
        return DocumentPart(file_id=file_id, file_origin="openai", filename=filename)
    url = opt_str(part.get("file_url"), f"{field}.file_url")
    if url:
        return DocumentPart(url=url, filename=filename, title=filename)
    data = req_str(part.get("file_data"), f"{field}.file_data")
    inline = parse_data_uri(data)
    mime, raw = inline if inline else ("application/pdf", data)
    return DocumentPart(media_type=mime, data=raw, filename=filename, title=filename)


def _tool_output(value: Any, field: str) -> tuple[TextPart | ImagePart, ...]:
    if value is None or isinstance(value, str):
        return (TextPart(value or ""),)
    if isinstance(value, Mapping):
        # Older clients send {"content": "...", "success": bool}.
        return (TextPart(opt_str(value.get("content"), f"{field}.output.content") or dumps(value)),)
    out: list[TextPart | ImagePart] = []
    for part in _content(value, f"{field}.output", "user"):
        if isinstance(part, (TextPart, ImagePart)):
            out.append(part)
    return tuple(out)


# --- tools and settings -------------------------------------------------------


def _hosted_tools(value: Any) -> tuple[ServerTool, ...]:
    """Hosted tools (web_search, code_interpreter, file_search, mcp, ...): translated or refused by ``carry``."""
    return tuple(
        server_tools.from_responses(t) for t in value if isinstance(t, Mapping)
        and t.get("type") not in ("function", "namespace", "custom")
    ) if isinstance(value, list) else ()


def _custom_tool(tool: Mapping[str, Any], field: str) -> Tool:
    """A ``custom`` tool as a function taking one string ``input``, its grammar told in the description."""
    fmt = opt_obj(tool.get("format"), f"{field}.format")
    description = opt_str(tool.get("description"), f"{field}.description") or ""
    if fmt is not None and fmt.get("type") == "grammar":
        description += (f"\n\nThe `input` argument must match this {fmt.get('syntax') or 'grammar'} grammar:"
                        f"\n{fmt.get('definition') or ''}")
    return Tool(
        name=req_str(tool.get("name"), f"{field}.name"),
        description=description.strip() or None,
        parameters={"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
        custom_format=dict(fmt) if fmt is not None else {"type": "text"},
    )


def _parse_tools(value: Any) -> tuple[tuple[Tool, ...], dict[str, list[str]]]:
    tools: list[Tool] = []
    namespaces: dict[str, list[str]] = {}
    for i, raw in enumerate(opt_list(value, "tools")):
        tool = as_obj(raw, f"tools[{i}]")
        if tool.get("type") == "function":
            tools.append(_function_tool(tool, f"tools[{i}]"))
        elif tool.get("type") == "custom":
            tools.append(_custom_tool(tool, f"tools[{i}]"))
        elif tool.get("type") == "namespace":
            ns = req_str(tool.get("name"), f"tools[{i}].name")
            for j, nested_raw in enumerate(opt_list(tool.get("tools"), f"tools[{i}].tools")):
                nested = as_obj(nested_raw, f"tools[{i}].tools[{j}]")
                if nested.get("type") != "function":
                    continue
                fn = _function_tool(nested, f"tools[{i}].tools[{j}]", prefix=ns)
                namespaces[fn.name] = [ns, fn.name[len(ns) + len(NAMESPACE_SEP) :]]
                tools.append(fn)
        # Hosted tools (web_search, file_search, mcp, ...): ``_hosted_tools``.
    return tuple(tools), namespaces


def _function_tool(tool: Mapping[str, Any], field: str, prefix: str | None = None) -> Tool:
    name = req_str(tool.get("name"), f"{field}.name")
    params = tool.get("parameters")
    if params is None:
        params = {"type": "object", "properties": {}}
    return Tool(
        name=f"{prefix}{NAMESPACE_SEP}{name}" if prefix else name,
        description=opt_str(tool.get("description"), f"{field}.description"),
        parameters=as_obj(params, f"{field}.parameters"),
        strict=opt_bool(tool.get("strict"), f"{field}.strict"),
    )


def _parse_tool_choice(value: Any, parallel: Any) -> ToolChoice | None:
    disable = None if opt_bool(parallel, "parallel_tool_calls") in (None, True) else True
    if value is None:
        return ToolChoice(disable_parallel=True) if disable else None
    if isinstance(value, str):
        modes = {"auto": "auto", "none": "none", "required": "any"}
        if value not in modes:
            raise invalid("tool_choice", "expected auto, none, required or an object")
        return ToolChoice(mode=modes[value], disable_parallel=disable)  # type: ignore[arg-type]
    choice = as_obj(value, "tool_choice")
    if choice.get("type") == "function":
        name = req_str(choice.get("name"), "tool_choice.name")
        namespace = opt_str(choice.get("namespace"), "tool_choice.namespace")
        if namespace and namespace != name:
            name = f"{namespace}{NAMESPACE_SEP}{name}"
        return ToolChoice(mode="tool", name=name, disable_parallel=disable)
    if choice.get("type") == "allowed_tools":
        mode = "any" if choice.get("mode") == "required" else "auto"
        return ToolChoice(mode=mode, disable_parallel=disable)  # type: ignore[arg-type]
    # A hosted tool was forced: it is dropped, so the model chooses freely.
    return ToolChoice(disable_parallel=disable)


def _parse_reasoning(value: Any) -> Thinking | None:
    if value is None:
        return None
    cfg = as_obj(value, "reasoning")
    effort = opt_str(cfg.get("effort"), "reasoning.effort")
    summary = opt_str(cfg.get("summary") or cfg.get("generate_summary"), "reasoning.summary")
    if effort == "none":
        return Thinking(mode="disabled", summary=summary)
    if effort is None:
        # Codex sends {"summary": "auto"} even to models that cannot reason: not a request to think.
        return None
    if effort not in _EFFORTS:
        raise invalid("reasoning.effort", "expected none, minimal, low, medium, high or xhigh")
    return Thinking(mode="enabled", effort=effort, summary=summary)


def _parse_text_format(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    fmt = as_obj(value, "text").get("format")
    if fmt is None:
        return None
    fmt = as_obj(fmt, "text.format")
    kind = fmt.get("type")
    if kind == "json_schema":
        spec: dict[str, Any] = {
            "name": req_str(fmt.get("name"), "text.format.name"),
            "schema": as_obj(fmt.get("schema"), "text.format.schema"),
        }
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                spec[key] = fmt[key]
        return {"type": "json_schema", "json_schema": spec}
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "text":
        return None
    raise invalid("text.format.type", "expected text, json_schema or json_object")

