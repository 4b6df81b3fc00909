"""Chat Completions messages and content parts <-> canonical turns.

``system``/``developer`` messages anywhere become the canonical system text;
runs of ``tool`` messages become one user turn of tool results, and going
back out tool results are sent first, as ``tool`` messages, then the rest of
the turn. Chat Completions has no error flag on a tool result: an error's
text is prefixed with ``Error: ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Iterable

from gateway.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    RawPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from gateway.protocols import common as c
from gateway.protocols.fields import as_list, as_obj, invalid, req_str
from gateway.protocols.history import openai_annotation

TOOL_ERROR_PREFIX = "Error: "

# --- parsing a caller's messages ------------------------------------------------------


def cache_of(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Return the ``cache_control`` extension on a part, message or tool, if any."""
    value = spec.get("cache_control")  # an extension some clients send for Anthropic models
    return value if isinstance(value, Mapping) else None


def _parse_part(item: Any, field: str) -> Part:
    part = as_obj(item, field)
    kind = part.get("type")
    if kind == "text":
        return TextPart(req_str(part.get("text"), f"{field}.text"), cache_control=cache_of(part))
    if kind == "refusal":
        return TextPart(req_str(part.get("refusal"), f"{field}.refusal"))
    if kind == "image_url":
        spec = part.get("image_url")
        url = (
            spec
            if isinstance(spec, str)
            else req_str(as_obj(spec, f"{field}.image_url").get("url"), f"{field}.image_url.url")
        )
        detail = spec.get("detail") if isinstance(spec, Mapping) else None
        detail = detail if isinstance(detail, str) else None
        inline = c.parse_data_uri(url)
        if inline is not None:
            return ImagePart(
                media_type=inline[0], data=inline[1], detail=detail, cache_control=cache_of(part)
            )
        return ImagePart(url=url, detail=detail, cache_control=cache_of(part))
    if kind == "file":
        return _parse_file(as_obj(part.get("file"), f"{field}.file"), field)
    if not isinstance(kind, str):
        raise invalid(f"{field}.type", "field required")
    return RawPart(origin="openai", data=dict(part))  # audio: OpenAI-only


def _parse_file(spec: Mapping[str, Any], field: str) -> DocumentPart:
    """A ``file`` part: inline ``file_data`` (a data URL) or an uploaded ``file_id``."""
    filename = spec.get("filename") if isinstance(spec.get("filename"), str) else None
    file_id = spec.get("file_id")
    if isinstance(file_id, str) and file_id:
        return DocumentPart(file_id=file_id, file_origin="openai", filename=filename)
    data = req_str(spec.get("file_data"), f"{field}.file.file_data")
    inline = c.parse_data_uri(data)
    mime, raw = inline if inline else ("application/pdf", data)
    return DocumentPart(media_type=mime, data=raw, filename=filename, title=filename)


def _parse_content(value: Any, field: str, cache: Mapping[str, Any] | None = None) -> list[Part]:
    if value is None:
        return []
    if isinstance(value, str):
        return [TextPart(value, cache_control=cache)] if value or cache else []
    parts = [_parse_part(p, f"{field}[{i}]") for i, p in enumerate(as_list(value, field))]
    if cache is not None and parts and isinstance(parts[-1], TextPart) and parts[-1].cache_control is None:
        parts[-1] = TextPart(parts[-1].text, cache_control=cache)
    return parts


def _parse_tool_calls(value: Any, field: str) -> list[Part]:
    calls: list[Part] = []
    for i, item in enumerate(as_list(value or [], field)):
        call = as_obj(item, f"{field}[{i}]")
        fn = as_obj(call.get("function"), f"{field}[{i}].function")
        args = fn.get("arguments")
        calls.append(
            ToolCallPart(
                id=req_str(call.get("id"), f"{field}[{i}].id"),
                name=req_str(fn.get("name"), f"{field}[{i}].function.name"),
                arguments=args if isinstance(args, str) else c.dump_arguments(args),
            )
        )
    return calls


def _tool_result(msg: Mapping[str, Any], field: str) -> ToolResultPart:
    content = [
        p
        for p in _parse_content(msg.get("content"), f"{field}.content")
        if isinstance(p, (TextPart, ImagePart))
    ]
    return ToolResultPart(
        tool_call_id=req_str(msg.get("tool_call_id"), f"{field}.tool_call_id"),
        content=tuple(content),
        cache_control=cache_of(msg),
    )


def _assistant(msg: Mapping[str, Any], field: str) -> list[Part]:
    parts: list[Part] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ThinkingPart(text=reasoning, origin="openai"))
    parts += _cited(_parse_content(msg.get("content"), f"{field}.content", cache_of(msg)), msg.get("annotations"))
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(TextPart(refusal))
    return parts + _parse_tool_calls(msg.get("tool_calls"), f"{field}.tool_calls")


def _cited(parts: list[Part], notes: Any) -> list[Part]:
    """An answer replayed with its ``annotations`` (url citations): they go on its last text part."""
    texts = [i for i, p in enumerate(parts) if isinstance(p, TextPart)]
    if not isinstance(notes, list) or not notes or not texts:
        return parts
    whole = text_of(parts)
    found = tuple(c for c in (openai_annotation(n, whole) for n in notes) if c is not None)
    last = parts[texts[-1]]
    assert isinstance(last, TextPart)
    return [*parts[:texts[-1]], replace(last, citations=found), *parts[texts[-1] + 1:]] if found else parts


def parse_messages(value: Any) -> tuple[tuple[TextPart, ...], tuple[Message, ...]]:
    """Split the ``messages`` list into system text and user/assistant turns."""
    if value is None:
        raise invalid("messages", "field required")
    system: list[TextPart] = []
    turns: list[Message] = []
    for i, item in enumerate(as_list(value, "messages")):
        field = f"messages[{i}]"
        msg = as_obj(item, field)
        role = msg.get("role")
        if role in ("system", "developer"):
            parts = _parse_content(msg.get("content"), f"{field}.content", cache_of(msg))
            system += [p for p in parts if isinstance(p, TextPart)]
        elif role == "user":
            turns.append(
                Message("user", tuple(_parse_content(msg.get("content"), f"{field}.content", cache_of(msg))))
            )
        elif role == "assistant":
            turns.append(Message("assistant", tuple(_assistant(msg, field))))
        elif role == "tool":
            result = _tool_result(msg, field)
            # Consecutive tool messages answer one assistant turn: one user turn of results.
            if (
                turns
                and turns[-1].role == "user"
                and all(isinstance(p, ToolResultPart) for p in turns[-1].parts)
            ):
                turns[-1] = Message("user", turns[-1].parts + (result,))
            else:
                turns.append(Message("user", (result,)))
        else:
            raise invalid(f"{field}.role", "must be one of system, developer, user, assistant, tool")
    return tuple(system), tuple(turns)


# --- rendering messages for an upstream ------------------------------------------------


def text_of(parts: Iterable[Part]) -> str:
    """Join the text parts among ``parts``."""
    return "".join(p.text for p in parts if isinstance(p, TextPart))


def _image_part(part: ImagePart) -> dict[str, Any]:
    url = c.data_uri(part.media_type, part.data) if part.data is not None else part.url or ""
    spec: dict[str, Any] = {"url": url}
    if part.detail is not None:
        spec["detail"] = part.detail
    return {"type": "image_url", "image_url": spec}


def _user_content(parts: list[Part]) -> str | list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart) and part.text:
            items.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            items.append(_image_part(part))
        elif isinstance(part, DocumentPart):
            items += _document_items(part)
        elif isinstance(part, RawPart) and part.origin == "openai":
            items.append(dict(part.data))
    if not items:
        return None
    if len(items) == 1 and items[0]["type"] == "text":
        return str(items[0]["text"])
    return items


def _document_items(part: DocumentPart) -> list[dict[str, Any]]:
    """A PDF as a ``file`` part; a plain-text document as text (its title first); ``context`` as text."""
    items = [{"type": "text", "text": part.context}] if part.context else []
    if part.media_type == "text/plain" and part.file_id is None:
        head = f"{part.title}\n\n" if part.title else ""
        return items + [{"type": "text", "text": head + c.document_text(part)}]
    if part.file_id is not None:
        return items + [{"type": "file", "file": {"file_id": part.file_id}}]
    name = part.filename or part.title or "document.pdf"
    data = c.data_uri(part.media_type, c.document_b64(part))
    return items + [{"type": "file", "file": {"filename": name, "file_data": data}}]


def _tool_message(part: ToolResultPart) -> dict[str, Any]:
    text = text_of(part.content)
    # Chat Completions has no error flag: the rule is a visible prefix.
    if part.is_error and not text.startswith(TOOL_ERROR_PREFIX):
        text = TOOL_ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": part.tool_call_id, "content": text}


def _render_user(msg: Message) -> list[dict[str, Any]]:
    """Tool results first (they must follow the assistant's calls), then the rest of the turn."""
    out = [_tool_message(p) for p in msg.parts if isinstance(p, ToolResultPart)]
    rest: list[Part] = [p for p in msg.parts if not isinstance(p, ToolResultPart)]
    # Tool messages carry text only: images from results ride along in the user message.
    rest += [
        i for p in msg.parts if isinstance(p, ToolResultPart) for i in p.content if isinstance(i, ImagePart)
    ]
    content = _user_content(rest)
    if content is not None:
        out.append({"role": "user", "content": content})
    return out


def _render_assistant(msg: Message) -> dict[str, Any] | None:
    calls = [
        {
            "id": p.id,
            "type": "function",
            "function": {"name": c.truncate_tool_name(p.name), "arguments": p.arguments},
        }
        for p in msg.parts
        if isinstance(p, ToolCallPart)
    ]
    text = text_of(msg.parts)
    # Replayed reasoning (DeepSeek-style) only when it was never another vendor's signed state;
    # Gemini's thought text is readable (its signature is never sent).
    reasoning = "".join(
        p.text for p in msg.parts if isinstance(p, ThinkingPart) and p.origin in (None, "openai", "gemini")
    )
    if not calls and not text and not reasoning:
        return None
    out: dict[str, Any] = {"role": "assistant", "content": text or None}
    if reasoning:
        out["reasoning_content"] = reasoning
    if calls:
        out["tool_calls"] = calls
    return out


def render_messages(req: ChatRequest) -> list[dict[str, Any]]:
    """Render the system text and turns as Chat Completions messages."""
    out: list[dict[str, Any]] = []
    system = "\n\n".join(p.text for p in req.system if p.text)
    if system:
        out.append({"role": "system", "content": system})
    for msg in req.messages:
        if msg.role == "user":
            out += _render_user(msg)
        elif (turn := _render_assistant(msg)) is not None:
            out.append(turn)
    return out


# --- an upstream's answer ----------------------------------------------------------------


def message_parts(message: Mapping[str, Any], names: Mapping[str, str], resp_id: str) -> tuple[Part, ...]:
    """Read an answer's message: reasoning, then text, then calls (truncated names mapped back)."""
    parts: list[Part] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ThinkingPart(text=reasoning, origin="openai"))
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text") or "" for p in content if isinstance(p, Mapping))
    if isinstance(content, str) and content:
        parts.append(TextPart(content))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append(TextPart(message["refusal"]))
    for i, call in enumerate(message.get("tool_calls") or []):
        fn = call.get("function") or {}
        args = fn.get("arguments")
        name = str(fn.get("name") or "")
        parts.append(
            ToolCallPart(
                id=str(call.get("id") or f"call_{resp_id}_{i}"),
                name=names.get(name, name),
                arguments=args if isinstance(args, str) else c.dump_arguments(args),
            )
        )
    return tuple(parts)
