"""The gateway's one internal model of a chat call.

Every protocol codec parses its wire shape into these types and renders them
back out; providers and the pipeline only ever see these. The model follows
Anthropic Messages semantics where protocols differ, because it is the
richest of them:

- system text is separate from the turns;
- turns are ``user`` or ``assistant``; tool results are parts of a ``user``
  turn (OpenAI ``tool`` messages and Gemini ``functionResponse`` parts become
  ``ToolResultPart``);
- usage counts *uncached* input in ``input_tokens`` (OpenAI's
  ``prompt_tokens`` includes cached tokens: codecs subtract);
- stop reasons are Anthropic's strings (``end_turn``, ``max_tokens``,
  ``stop_sequence``, ``tool_use``, ``refusal``, ``pause_turn``, ...);
- the stream is Anthropic's event model: message start, indexed blocks with
  deltas, a message delta with the stop reason and cumulative usage, stop
  (``gateway.canonical_events``).

Raw dicts appear only in ``extras`` and ``RawPart``: fields one vendor
understands and another cannot carry. They travel only to an upstream of
the protocol they came from (``origin``); elsewhere ``extras`` are dropped by
rule and a ``RawPart`` is refused (``gateway.protocols.carry``). Documents and
server tools have their own types and are translated where the target has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

Protocol = Literal["anthropic", "openai", "responses", "gemini"]
Role = Literal["user", "assistant"]

MAX_CHOICES = 128  # OpenAI's own bound on n (and so on Gemini candidateCount here)

STOP_REASONS = (
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "refusal",
    "pause_turn",
    "model_context_window_exceeded",
)


# --- content parts ---------------------------------------------------------


@dataclass(frozen=True)
class Citation:
    """A web source a stretch of an answer's text rests on.

    ``quote`` is the source's own words (Anthropic ``cited_text``); ``span`` is the answer's words
    it supports (Gemini's segment text), empty when it supports its whole text block (Anthropic).
    In a caller's history a citation may name a document or a file instead (``url`` empty, ``title``
    its name): it only ever becomes text there (``gateway.protocols.history``).
    """

    url: str
    title: str = ""
    quote: str = ""
    span: str = ""


@dataclass(frozen=True)
class TextPart:
    text: str
    cache_control: Mapping[str, Any] | None = None
    type: Literal["text"] = "text"
    # An answer's sources; in a caller's history the citations its text came back with, sent on as text.
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class ImagePart:
    """An image given inline (``data`` base64 + ``media_type``) or by ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None  # OpenAI's auto/low/high; dropped elsewhere
    cache_control: Mapping[str, Any] | None = None
    type: Literal["image"] = "image"


@dataclass(frozen=True)
class ToolCallPart:
    """A call the assistant made; ``arguments`` is the JSON text, never re-serialised needlessly."""

    id: str
    name: str
    arguments: str = "{}"
    # Gemini's thoughtSignature travels with the call it belongs to.
    signature: str | None = None
    cache_control: Mapping[str, Any] | None = None
    type: Literal["tool_call"] = "tool_call"
    custom: bool = False  # a call of a Responses ``custom`` tool: arguments are {"input": "..."}


@dataclass(frozen=True)
class ToolResultPart:
    """The result of an earlier call; ``content`` holds text and image parts."""

    tool_call_id: str
    content: tuple["TextPart | ImagePart", ...] = ()
    is_error: bool = False
    name: str | None = None  # Gemini needs the function name; codecs recover it
    cache_control: Mapping[str, Any] | None = None
    type: Literal["tool_result"] = "tool_result"


@dataclass(frozen=True)
class ThinkingPart:
    """Reasoning the model showed.

    ``signature`` / ``encrypted`` are opaque state only ``origin`` can verify
    (Anthropic thinking signatures, OpenAI encrypted reasoning). A codec for
    another vendor keeps the readable text where it can and never sends the
    opaque state. ``redacted`` is Anthropic's redacted_thinking ``data``.
    """

    text: str = ""
    signature: str | None = None
    encrypted: str | None = None
    redacted: str | None = None
    origin: Protocol | None = None
    type: Literal["thinking"] = "thinking"


@dataclass(frozen=True)
class RawPart:
    """A block only the ``origin`` protocol understands (documents, server tools, ...)."""

    origin: Protocol
    data: Mapping[str, Any]
    type: Literal["raw"] = "raw"


@dataclass(frozen=True)
class DocumentPart:
    """A PDF or plain-text document: inline base64 ``data``, a ``url``, plain ``text`` or a vendor ``file_id``.

    ``file_origin`` is the protocol whose file store ``file_id`` lives in (it
    cannot cross vendors). ``citations`` is Anthropic's ``{"enabled": true}``
    (kept only between Anthropic ends); ``title`` / ``context`` go where the
    target has a place for them.
    """

    media_type: str = "application/pdf"
    data: str | None = None
    url: str | None = None
    text: str | None = None
    file_id: str | None = None
    file_origin: Protocol | None = None
    filename: str | None = None
    title: str | None = None
    context: str | None = None
    citations: Mapping[str, Any] | None = None
    cache_control: Mapping[str, Any] | None = None
    type: Literal["document"] = "document"


@dataclass(frozen=True)
class SearchPart:
    """Web searches the vendor ran for an answer and the sources found, shown in each caller's shape.

    Anthropic ``server_tool_use`` + ``web_search_tool_result``, Responses ``web_search_call``,
    Gemini ``groundingMetadata``. ``sources`` are (url, title) pairs.
    """

    id: str
    queries: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    type: Literal["search"] = "search"


Part = Union[TextPart, ImagePart, ToolCallPart, ToolResultPart, ThinkingPart, RawPart, DocumentPart, SearchPart]


@dataclass(frozen=True)
class Message:
    role: Role
    parts: tuple[Part, ...]


# --- request ---------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    strict: bool | None = None
    cache_control: Mapping[str, Any] | None = None
    # A Responses ``custom`` tool: its ``format`` (grammar / text). Sent as a function tool taking
    # one string ``input``, the grammar in its description; the call goes back as ``custom_tool_call``.
    custom_format: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ServerTool:
    """A tool the vendor runs itself: ``kind`` is ``web_search``, ``code_execution``, ``web_fetch``, ...

    ``label`` is how the caller named it (``web_search_20250305``, ``code_interpreter``,
    ``google_search``) for error messages; ``config`` holds the portable knobs
    (``max_uses``, ``allowed_domains``, ``blocked_domains``, ``user_location``);
    ``raw`` is the caller's own declaration, sent as is to an upstream of ``origin``.
    """

    kind: str
    label: str
    origin: Protocol
    raw: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolChoice:
    mode: Literal["auto", "any", "none", "tool"] = "auto"
    name: str | None = None
    disable_parallel: bool | None = None


@dataclass(frozen=True)
class Thinking:
    """``enabled`` with a budget, ``adaptive``, or ``disabled``; ``effort`` is OpenAI's word for it."""

    mode: Literal["enabled", "adaptive", "disabled"] = "enabled"
    budget_tokens: int | None = None
    effort: str | None = None  # minimal / low / medium / high / xhigh
    summary: str | None = None  # Responses' reasoning.summary ("auto", ...)


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    system: tuple[TextPart, ...] = ()
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    user: str | None = None  # metadata.user_id / user: also the sticky-session key
    response_format: Mapping[str, Any] | None = None  # OpenAI shape
    server_tools: tuple[ServerTool, ...] = ()  # vendor-run tools: translated or refused, never dropped
    # Fields only the source protocol understands: passed to an upstream of
    # that protocol, dropped by rule for any other.
    extras: Mapping[str, Any] = field(default_factory=dict)
    source: Protocol = "anthropic"
    n: int = 1  # how many answers (OpenAI n, Gemini candidateCount): gateway.choices serves them


# --- response --------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0  # uncached input only
    output_tokens: int = 0  # includes reasoning tokens
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0  # informative: already inside output_tokens
    web_searches: int = 0  # searches the vendor ran and bills apiece (the card's per_search)

    @property
    def prompt_tokens(self) -> int:
        """OpenAI's prompt_tokens: every input token, cached or not."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    def merged(self, later: "Usage") -> "Usage":
        """Usage reported later in a stream wins field by field where it is non-zero."""
        return Usage(
            input_tokens=later.input_tokens or self.input_tokens,
            output_tokens=later.output_tokens or self.output_tokens,
            cache_write_tokens=later.cache_write_tokens or self.cache_write_tokens,
            cache_read_tokens=later.cache_read_tokens or self.cache_read_tokens,
            reasoning_tokens=later.reasoning_tokens or self.reasoning_tokens,
            web_searches=later.web_searches or self.web_searches,
        )


@dataclass(frozen=True)
class ChatResponse:
    id: str
    model: str
    parts: tuple[Part, ...]
    stop_reason: str | None = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
