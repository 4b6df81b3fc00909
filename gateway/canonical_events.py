"""The gateway's stream events: Anthropic's event model, which every stream is parsed into and rendered from.

Message start, indexed blocks with deltas, a message delta with the stop
reason and cumulative usage, stop; a citation and a finished web search
travel as their own events, and a broken upstream stream as ``StreamError``.
The parts, requests and answers they carry are ``gateway.canonical``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from gateway.canonical import Citation, Protocol, SearchPart, Usage

BlockKind = Literal["text", "thinking", "redacted_thinking", "tool_call", "raw"]


@dataclass(frozen=True)
class MessageStart:
    id: str
    model: str
    usage: Usage = field(default_factory=Usage)
    type: Literal["message_start"] = "message_start"


@dataclass(frozen=True)
class BlockStart:
    """Opens block ``index``; for tool calls ``id``/``name`` are known here."""

    index: int
    kind: BlockKind
    id: str | None = None
    name: str | None = None
    signature: str | None = None  # Gemini thoughtSignature of a tool call
    redacted: str | None = None  # redacted_thinking data
    raw: Mapping[str, Any] | None = None  # the origin's block, for kind "raw"
    origin: Protocol | None = None
    custom: bool = False  # a call of a Responses ``custom`` tool (``carry.mark_custom_event``)
    type: Literal["block_start"] = "block_start"


@dataclass(frozen=True)
class TextDelta:
    index: int
    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True)
class ThinkingDelta:
    index: int
    text: str
    type: Literal["thinking_delta"] = "thinking_delta"


@dataclass(frozen=True)
class SignatureDelta:
    """Opaque reasoning state for the open thinking block (signature or encrypted content)."""

    index: int
    signature: str
    origin: Protocol | None = None
    type: Literal["signature_delta"] = "signature_delta"


@dataclass(frozen=True)
class ToolArgsDelta:
    index: int
    partial_json: str
    type: Literal["tool_args_delta"] = "tool_args_delta"


@dataclass(frozen=True)
class BlockStop:
    index: int
    type: Literal["block_stop"] = "block_stop"


@dataclass(frozen=True)
class MessageDelta:
    """The stop reason and the usage so far (cumulative, not an increment)."""

    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None
    # Filled in by the pipeline from the usage above: renderers put it in the
    # protocol's final usage event (the contract's in-stream cost).
    cost_credits: int | None = None
    type: Literal["message_delta"] = "message_delta"


@dataclass(frozen=True)
class MessageStop:
    type: Literal["message_stop"] = "message_stop"


@dataclass(frozen=True)
class CitationDelta:
    """A source cited by text block ``index`` (Anthropic ``citations_delta``, Gemini ``groundingSupports``)."""

    index: int
    citation: Citation
    type: Literal["citation_delta"] = "citation_delta"


@dataclass(frozen=True)
class SearchDone:
    """A web search the vendor ran, with the sources found: the stream's form of a ``SearchPart``.

    Not a block: each renderer writes it in its caller's shape (Anthropic ``server_tool_use`` +
    ``web_search_tool_result`` blocks, a Responses ``web_search_call`` item, Gemini ``groundingMetadata``).
    """

    search: SearchPart
    type: Literal["search_done"] = "search_done"


@dataclass(frozen=True)
class StreamError:
    """The upstream broke the stream (error event, bad bytes, early end)."""

    kind: str = "api_error"  # an Anthropic error type
    message: str = "upstream stream failed"
    status: int = 502
    type: Literal["error"] = "error"


StreamEvent = Union[
    MessageStart,
    BlockStart,
    TextDelta,
    ThinkingDelta,
    SignatureDelta,
    ToolArgsDelta,
    BlockStop,
    MessageDelta,
    MessageStop,
    CitationDelta,
    SearchDone,
    StreamError,
]
