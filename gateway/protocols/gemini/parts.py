"""Gemini ``Part`` <-> canonical parts, usage and finish reasons: shared by both sides of the codec.

Rules that both directions keep:

- ``thought: true`` text is a ``ThinkingPart(origin="gemini")`` carrying its own signature;
- a ``thoughtSignature`` on any other non-call part becomes an empty
  ``ThinkingPart(origin="gemini", signature=...)`` placed just before it, and is
  put back on the part that follows it when rendered;
- a ``functionCall``'s signature stays on its ``ToolCallPart``;
- Gemini has no call ids: a missing id is made by the ``make_id`` given, and a
  ``functionResponse`` is matched to the oldest unanswered call of that name.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Mapping
from typing import Any, Callable

from core.errors import InvalidRequest
from gateway.canonical import (
    DocumentPart,
    ImagePart,
    Part,
    RawPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from gateway.protocols.common import count, document_b64, dumps, load_arguments, loads_object
from gateway.protocols.fields import as_obj, invalid, opt_str, pick, req_str

# Google's documented value for a call whose signature was lost (history from another model).
DUMMY_SIGNATURE = base64.b64encode(b"skip_thought_signature_validator").decode()

FINISH_TO_STOP = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "LANGUAGE": "refusal",
    "OTHER": "refusal",
    "BLOCKLIST": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
    "IMAGE_PROHIBITED_CONTENT": "refusal",
    "IMAGE_OTHER": "refusal",
    "IMAGE_RECITATION": "refusal",
    "NO_IMAGE": "refusal",
    "MALFORMED_FUNCTION_CALL": "end_turn",
    "UNEXPECTED_TOOL_CALL": "end_turn",
    "FINISH_REASON_UNSPECIFIED": "end_turn",
}
STOP_TO_FINISH = {
    "end_turn": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "model_context_window_exceeded": "MAX_TOKENS",
    "refusal": "SAFETY",
}

MakeId = Callable[[int], str]
DOCUMENT_TYPES = ("application/pdf", "text/plain")
FILES_API = "https://generativelanguage.googleapis.com/"


def stop_from_finish(finish: str | None, *, had_calls: bool) -> str:
    """Gemini finishReason -> canonical stop reason; a turn that called functions is ``tool_use``."""
    stop = FINISH_TO_STOP.get(finish or "STOP", "end_turn")
    return "tool_use" if had_calls and stop == "end_turn" else stop


def usage_from_gemini(meta: Any) -> Usage:
    """``usageMetadata`` -> canonical usage (uncached input; output includes thoughts)."""
    if not isinstance(meta, Mapping):
        return Usage()
    prompt = count(meta.get("promptTokenCount")) + count(meta.get("toolUsePromptTokenCount"))
    cached = count(meta.get("cachedContentTokenCount"))
    candidates = count(meta.get("candidatesTokenCount"))
    thoughts = count(meta.get("thoughtsTokenCount"))
    total = count(meta.get("totalTokenCount"))
    # Some backends count thoughts inside candidatesTokenCount: then the total says so.
    output = candidates if thoughts and prompt + candidates == total else candidates + thoughts
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=output,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def usage_to_gemini(usage: Usage, cost_credits: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.prompt_tokens + usage.output_tokens,
    }
    if usage.cache_read_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    if cost_credits is not None:
        out["costCredits"] = cost_credits
    return out


class CallIds:
    """Give Gemini's id-less calls ids, and find the call a ``functionResponse`` answers."""

    def __init__(self, make_id: MakeId) -> None:
        self._make_id = make_id
        self._made = 0
        self._pending: dict[str, deque[str]] = {}

    def call(self, name: str, given: str | None) -> str:
        call_id = given or self._next()
        self._pending.setdefault(name, deque()).append(call_id)
        return call_id

    def result(self, name: str, given: str | None) -> str:
        queue = self._pending.get(name)
        if given:
            if queue and given in queue:
                queue.remove(given)
            return given
        return queue.popleft() if queue else self._next()

    def _next(self) -> str:
        made = self._make_id(self._made)
        self._made += 1
        return made


# --- Gemini -> canonical ------------------------------------------------------------


def parse_parts(raw_parts: Any, field: str, ids: CallIds) -> list[Part]:
    """Turn a ``Content.parts`` array into canonical parts."""
    if not isinstance(raw_parts, list):
        raise invalid(field, "must be a list")
    out: list[Part] = []
    for i, raw in enumerate(raw_parts):
        out.extend(parse_part(as_obj(raw, f"{field}[{i}]"), f"{field}[{i}]", ids))
    return out


def parse_part(part: Mapping[str, Any], field: str, ids: CallIds) -> list[Part]:
    signature = opt_str(pick(part, "thoughtSignature", "thought_signature"), f"{field}.thoughtSignature")
    text = opt_str(part.get("text"), f"{field}.text")
    if part.get("thought") is True:
        return [ThinkingPart(text=text or "", signature=signature, origin="gemini")]
    call = pick(part, "functionCall", "function_call")
    if call is not None:
        return [_parse_call(as_obj(call, f"{field}.functionCall"), f"{field}.functionCall", ids, signature)]
    lead: list[Part] = [ThinkingPart(signature=signature, origin="gemini")] if signature else []
    if text is not None:
        return lead + ([TextPart(text)] if text else [])
    result = pick(part, "functionResponse", "function_response")
    if result is not None:
        return lead + [_parse_result(as_obj(result, f"{field}.functionResponse"), f"{field}.functionResponse", ids)]
    media = _parse_media(part, field)
    if media is not None:
        return lead + [media]
    if lead and len(part) == 1:
        return lead
    return lead + [RawPart(origin="gemini", data=dict(part))]


def parse_upstream_part(part: Mapping[str, Any], field: str, ids: CallIds) -> list[Part]:
    """Like ``parse_part`` for what a Gemini upstream sent: a part we cannot read is kept raw, not a 400."""
    try:
        return parse_part(part, field, ids)
    except InvalidRequest:
        return [RawPart(origin="gemini", data=dict(part))]


def _parse_call(call: Mapping[str, Any], field: str, ids: CallIds, signature: str | None) -> ToolCallPart:
    name = req_str(call.get("name"), f"{field}.name")
    args = call.get("args")
    arguments = dumps(as_obj(args, f"{field}.args")) if args is not None else "{}"
    call_id = ids.call(name, opt_str(call.get("id"), f"{field}.id"))
    return ToolCallPart(id=call_id, name=name, arguments=arguments, signature=signature)


def _parse_result(result: Mapping[str, Any], field: str, ids: CallIds) -> ToolResultPart:
    name = req_str(result.get("name"), f"{field}.name")
    response = result.get("response")
    response = as_obj(response, f"{field}.response") if response is not None else {}
    is_error = set(response) == {"error"}
    value = response.get("error") if is_error else _only_text(response)
    text = value if isinstance(value, str) else dumps(value if is_error else response)
    call_id = ids.result(name, opt_str(result.get("id"), f"{field}.id"))
    return ToolResultPart(tool_call_id=call_id, content=(TextPart(text),), is_error=is_error, name=name)


def _only_text(response: Mapping[str, Any]) -> Any:
    """The plain text of ``{"content": "..."}`` / ``{"output": "..."}``; else the whole object."""
    if len(response) == 1:
        (key, value), = response.items()
        if key in ("content", "output", "result") and isinstance(value, str):
            return value
    return response


def _parse_media(part: Mapping[str, Any], field: str) -> Part | None:
    inline = pick(part, "inlineData", "inline_data")
    if inline is not None:
        blob = as_obj(inline, f"{field}.inlineData")
        mime = req_str(pick(blob, "mimeType", "mime_type"), f"{field}.inlineData.mimeType")
        data = req_str(blob.get("data"), f"{field}.inlineData.data")
        if mime in DOCUMENT_TYPES:
            return DocumentPart(media_type=mime, data=data)
        return ImagePart(media_type=mime, data=data) if mime.startswith("image/") else RawPart("gemini", dict(part))
    ref = pick(part, "fileData", "file_data")
    if ref is not None:
        ref = as_obj(ref, f"{field}.fileData")
        uri = req_str(pick(ref, "fileUri", "file_uri"), f"{field}.fileData.fileUri")
        ref_mime = opt_str(pick(ref, "mimeType", "mime_type"), f"{field}.fileData.mimeType")
        if ref_mime is None or ref_mime.startswith("image/"):
            return ImagePart(media_type=ref_mime, url=uri)
        if ref_mime in DOCUMENT_TYPES:
            if uri.startswith(FILES_API):  # uploaded to Google's file store: useless elsewhere
                return DocumentPart(media_type=ref_mime, file_id=uri, file_origin="gemini")
            return DocumentPart(media_type=ref_mime, url=uri)
        return RawPart("gemini", dict(part))
    return None


# --- canonical -> Gemini ------------------------------------------------------------


def render_parts(
    parts: tuple[Part, ...] | list[Part],
    *,
    upstream: bool,
    names: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Turn canonical parts into Gemini parts.

    ``upstream``: going to Gemini itself, so ids are left out, foreign reasoning
    is dropped and the first unsigned call of the turn gets the dummy signature;
    otherwise the parts go back to a Gemini-shaped caller, ids included.
    """
    out: list[dict[str, Any]] = []
    pending: str | None = None
    signed_turn = False
    for part in parts:
        if isinstance(part, ThinkingPart):
            if part.origin == "gemini" and not part.text:
                pending = part.signature or pending
                continue
            if part.origin != "gemini" and (upstream or not part.text):
                continue
            rendered: dict[str, Any] = {"text": part.text, "thought": True}
            if part.origin == "gemini" and part.signature:
                rendered["thoughtSignature"] = part.signature
        elif isinstance(part, ToolCallPart):
            rendered = _render_call(part, upstream=upstream)
            signature = part.signature or pending
            if upstream and not signature and not signed_turn:
                signature = DUMMY_SIGNATURE
            if signature:
                rendered["thoughtSignature"] = signature
            signed_turn = True
            pending = None
        else:
            rendered_or_none = _render_plain(part, names, upstream=upstream)
            if rendered_or_none is None:
                continue
            rendered = rendered_or_none
        if pending and "thoughtSignature" not in rendered:
            rendered["thoughtSignature"] = pending
        pending = None
        out.append(rendered)
        if isinstance(part, ToolResultPart):
            out.extend(result_images(part))
    if pending:
        out.append({"text": "", "thoughtSignature": pending})
    return out


def _render_call(part: ToolCallPart, *, upstream: bool) -> dict[str, Any]:
    args: dict[str, Any] = load_arguments(part.arguments)
    call: dict[str, Any] = {"name": part.name, "args": args}
    if not upstream:
        call = {"id": part.id, **call}
    return {"functionCall": call}


def _render_plain(part: Part, names: Mapping[str, str] | None, *, upstream: bool) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"text": part.text} if part.text or not upstream else None
    if isinstance(part, ImagePart):
        return render_image(part)
    if isinstance(part, DocumentPart):
        return render_document(part)
    if isinstance(part, ToolResultPart):
        return _render_result(part, names or {}, upstream=upstream)
    if isinstance(part, RawPart) and part.origin == "gemini":
        return dict(part.data)
    return None


def render_image(part: ImagePart) -> dict[str, Any] | None:
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type or "image/png", "data": part.data}}
    if part.url is not None:
        return {"fileData": {"mimeType": part.media_type or _guess_mime(part.url), "fileUri": part.url}}
    return None


def render_document(part: DocumentPart) -> dict[str, Any]:
    """A document as ``inlineData`` (plain text UTF-8 encoded) or ``fileData`` (a URL or a Files API uri)."""
    if part.file_id is not None or part.url is not None:
        return {"fileData": {"mimeType": part.media_type, "fileUri": part.file_id or part.url}}
    return {"inlineData": {"mimeType": part.media_type, "data": document_b64(part)}}


def _guess_mime(url: str) -> str:
    tail = url.lower().split("?", 1)[0].rsplit(".", 1)[-1]
    return {"png": "image/png", "gif": "image/gif", "webp": "image/webp", "heic": "image/heic"}.get(tail, "image/jpeg")


def _render_result(part: ToolResultPart, names: Mapping[str, str], *, upstream: bool) -> dict[str, Any]:
    name = part.name or names.get(part.tool_call_id)
    if not name:
        raise invalid("messages", f"tool result '{part.tool_call_id}' answers no earlier tool call")
    text = "".join(p.text for p in part.content if isinstance(p, TextPart))
    obj = loads_object(text)
    if part.is_error:
        response: dict[str, Any] = {"error": obj if obj is not None else text}
    else:
        response = obj if obj is not None else {"content": text}
    result: dict[str, Any] = {"name": name, "response": response}
    if not upstream:
        result = {"id": part.tool_call_id, **result}
    return {"functionResponse": result}


def result_images(part: ToolResultPart) -> list[dict[str, Any]]:
    """Images a tool returned: Gemini takes them as parts next to the functionResponse."""
    out = []
    for p in part.content:
        if isinstance(p, ImagePart):
            rendered = render_image(p)
            if rendered is not None:
                out.append(rendered)
    return out
