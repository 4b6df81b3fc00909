"""What an upstream can carry: every request part reaches it, is translated, or is refused with 400.

``adapt`` runs before a translated request is rendered (``gateway.upstream``),
``check_model`` before any request, passed through or not. Nothing here
drops a part: a part the target cannot take raises ``InvalidRequest`` naming
the part and the model, before the upstream is called (the call is free).

- documents need the model's ``pdf`` capability (plain text always goes, as
  a document or as text); a URL document cannot reach Chat Completions; a
  ``file_id`` lives in one vendor's file store and cannot leave it;
- server tools run where the upstream protocol has the same kind
  (``server_tools``) and the model's card lists it (``web_search``,
  ``code_execution``, ``web_fetch``);
- blocks only one protocol understands (``RawPart``) go to that protocol
  only; the record of a server tool already run (a search call and its
  results) becomes readable text for any other (``history``);
- citations on a text in the history go with the text as its source list
  (``history.with_sources``): a translated request never carries them as
  citations, since only Anthropic takes them back, and only its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Iterator

from core.errors import InvalidRequest
from gateway.canonical import (
    ChatRequest,
    ChatResponse,
    DocumentPart,
    Message,
    Part,
    RawPart,
    ServerTool,
    TextPart,
    Tool,
    ToolCallPart,
)
from gateway.canonical_events import BlockStart, StreamEvent
from gateway.protocols.history import RAN, ran_as_text, with_sources

# Which server-tool kinds each upstream protocol can run, and the knobs it takes for them.
RUNS: dict[str, dict[str, tuple[str, ...]]] = {
    "anthropic": {
        "web_search": ("max_uses", "allowed_domains", "blocked_domains", "user_location"),
        "code_execution": (),
        "web_fetch": ("max_uses", "allowed_domains", "blocked_domains"),
    },
    # Gemini bounds its own searches per turn: a max_uses cap is met, not sent (the docs' table says so).
    "gemini": {"web_search": ("max_uses",), "code_execution": (), "web_fetch": ("max_uses",)},
    "openai": {},
}


def _where(field: str, i: int, j: int) -> str:
    return f"{field}[{i}].content[{j}]"


def _parts(req: ChatRequest) -> Iterator[tuple[str, Part]]:
    for i, msg in enumerate(req.messages):
        for j, part in enumerate(msg.parts):
            yield _where("messages", i, j), part


def refuse(what: str, model: str, why: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(f"{what} cannot be sent to model '{model}': {why}", param=param)


def check_model(req: ChatRequest, card: Any) -> None:
    """Refuse a document the model cannot read, whatever protocol carries it."""
    caps = tuple(getattr(card, "capabilities", ()) or ())
    if "demo" in caps:
        return
    for where, part in _parts(req):
        if isinstance(part, DocumentPart) and part.media_type == "application/pdf" and "pdf" not in caps:
            raise refuse(f"{where}: a PDF document", card.id, "the model takes no PDF input", where)


def adapt(req: ChatRequest, *, upstream: str, card: Any) -> ChatRequest:
    """The request an upstream of ``upstream`` protocol can carry in full, or ``InvalidRequest``."""
    check_model(req, card)
    for where, part in _parts(req):
        if isinstance(part, DocumentPart):
            _check_document(part, where, upstream, card.id)
    for i, tool in enumerate(req.server_tools):
        if tool.origin != upstream:
            _check_server_tool(tool, f"tools[{i}]", upstream, card)
    if req.source == "openai" and req.extras.get("web_search_options") is not None and upstream != "openai":
        raise refuse("web_search_options", card.id, f"the {upstream} upstream has no Chat Completions search",
                     "web_search_options")
    messages = tuple(_adapt_message(m, i, upstream, card.id) for i, m in enumerate(req.messages))
    return replace(req, messages=messages)


def _check_document(part: DocumentPart, where: str, upstream: str, model: str) -> None:
    if part.file_id is not None and part.file_origin != upstream:
        raise refuse(f"{where}: file '{part.file_id}'", model,
                     f"it lives in the {part.file_origin} file store; send the document inline", where)
    if part.citations and part.citations.get("enabled") and upstream != "anthropic":
        raise refuse(f"{where}: document citations", model, "only Anthropic returns document citations", where)
    if part.url is not None and upstream == "openai":
        raise refuse(f"{where}: a document given by URL", model,
                     "Chat Completions takes documents inline only; send it as base64", where)


def _check_server_tool(tool: ServerTool, where: str, upstream: str, card: Any) -> None:
    knobs = RUNS.get(upstream, {}).get(tool.kind)
    if knobs is None:
        raise refuse(f"{where}: server tool '{tool.label}'", card.id,
                     f"the {upstream} upstream cannot run it", where)
    caps = tuple(getattr(card, "capabilities", ()) or ())
    if tool.kind not in caps and "demo" not in caps:
        raise refuse(f"{where}: server tool '{tool.label}'", card.id, f"the model has no {tool.kind}", where)
    extra = sorted(k for k in tool.config if k not in knobs)
    if extra:
        raise refuse(f"{where}: server tool '{tool.label}' option '{extra[0]}'", card.id,
                     f"{upstream}'s {tool.kind} has no such option", where)


def _adapt_message(msg: Message, i: int, upstream: str, model: str) -> Message:
    if not any(isinstance(p, RawPart) and p.origin != upstream or _lone_context(p, upstream)
               or isinstance(p, TextPart) and p.citations for p in msg.parts):
        return msg
    parts: list[Part] = []
    for j, part in enumerate(_sources_folded(msg.parts)):
        if isinstance(part, DocumentPart) and _lone_context(part, upstream):
            # Gemini has no place for a document's context: it goes as text just before the document.
            parts += [TextPart(part.context or ""), replace(part, context=None)]
            continue
        if not isinstance(part, RawPart) or part.origin == upstream:
            parts.append(part)
            continue
        kind = str(part.data.get("type") or next(iter(part.data), "part"))
        if kind not in RAN:
            raise refuse(f"{_where('messages', i, j)}: a '{kind}' part", model,
                         f"the {upstream} upstream cannot carry it", _where("messages", i, j))
        # A blank line after a record that is not the turn's end: texts of a turn are joined as they are
        # where the target takes one text per turn (Chat Completions).
        parts.append(TextPart(ran_as_text(part.data) + ("\n\n" if j < len(msg.parts) - 1 else "")))
    return Message(msg.role, tuple(parts))


def _sources_folded(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """A turn's citations as one source list after its last text (``history.with_sources``)."""
    cited = [c for p in parts if isinstance(p, TextPart) for c in p.citations]
    if not cited:
        return parts
    last = max(j for j, p in enumerate(parts) if isinstance(p, TextPart))
    out: list[Part] = []
    for j, part in enumerate(parts):
        if isinstance(part, TextPart):
            part = replace(part, text=with_sources(part.text, cited) if j == last else part.text, citations=())
        out.append(part)
    return tuple(out)


def custom_names(tools: Iterable[Tool]) -> frozenset[str]:
    """The names of the Responses ``custom`` tools among ``tools`` (sent upstream as functions)."""
    return frozenset(t.name for t in tools if t.custom_format is not None)


def mark_custom(resp: ChatResponse, tools: Iterable[Tool]) -> ChatResponse:
    """Mark an answer's calls of ``custom`` tools (sent as functions), so a Responses caller gets them back as such."""
    names = custom_names(tools)
    if not names or not any(isinstance(p, ToolCallPart) and p.name in names for p in resp.parts):
        return resp
    parts = tuple(replace(p, custom=True) if isinstance(p, ToolCallPart) and p.name in names else p
                  for p in resp.parts)
    return replace(resp, parts=parts)


def mark_custom_event(event: StreamEvent, names: frozenset[str]) -> StreamEvent:
    """Mark a streamed call of a ``custom`` tool, as ``mark_custom`` does for a whole answer."""
    if isinstance(event, BlockStart) and event.kind == "tool_call" and event.name in names:
        return replace(event, custom=True)
    return event


def _lone_context(part: Part, upstream: str) -> bool:
    return isinstance(part, DocumentPart) and bool(part.context) and upstream == "gemini"
