"""Anthropic Messages streams: canonical events <-> ``event:``/``data:`` SSE frames.

The canonical stream is Anthropic's own event model, so both directions are
close to one-to-one. The renderer keeps its own block numbering because
blocks Anthropic cannot show (another vendor's raw blocks) are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Iterable

from gateway import sse
from gateway.canonical import Tool, Usage
from gateway.canonical_events import (
    BlockStart,
    BlockStop,
    CitationDelta,
    MessageDelta,
    MessageStart,
    MessageStop,
    SearchDone,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from gateway.protocols import common as c
from gateway.protocols import upstream_error
from gateway.protocols.anthropic.blocks import citation_of, render_citation, render_search, search_record
from gateway.protocols.anthropic.errors import error_frame
from gateway.protocols.passthrough import PassthroughRules, PassthroughStream, with_member


def _frame(name: str, payload: Mapping[str, Any]) -> bytes:
    return sse.encode(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), event=name)


class StreamRenderer:
    """Render canonical events as the SSE frames an Anthropic SDK reads."""

    def __init__(self, *, model: str, message_id: str, created: int, include_usage: bool = True) -> None:
        self.model = model
        self.message_id = message_id
        self._started = False
        self._ended = False
        self._index: dict[int, int] = {}  # canonical block index -> our index
        self._open: set[int] = set()
        self._next = 0
        self._delta_sent = False
        self._own_searches = False  # the upstream's own search blocks pass through; no second copy

    def render(self, event: StreamEvent) -> bytes:
        """Return the bytes for one event (b"" when it has no Anthropic form)."""
        if self._ended:
            return b""
        if isinstance(event, StreamError):
            self._ended = True
            return error_frame(event)
        out = b"" if self._started or isinstance(event, MessageStart) else self._start(Usage())
        return out + self._render(event)

    def _start(self, usage: Usage) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": c.usage_to_anthropic(usage),
        }
        return _frame("message_start", {"type": "message_start", "message": message})

    def _render(self, event: StreamEvent) -> bytes:
        if isinstance(event, MessageStart):
            return b"" if self._started else self._start(event.usage)
        if isinstance(event, BlockStart):
            return self._block_start(event)
        if isinstance(event, (TextDelta, ThinkingDelta, ToolArgsDelta, SignatureDelta, CitationDelta)):
            return self._delta(event)
        if isinstance(event, BlockStop):
            return self._stop(event.index)
        if isinstance(event, MessageDelta):
            return self._message_delta(event)
        if isinstance(event, SearchDone):
            return b"" if self._own_searches else self._search(event)
        if isinstance(event, MessageStop):
            out = b"" if self._delta_sent else self._message_delta(MessageDelta(stop_reason="end_turn"))
            self._ended = True
            return out + _frame("message_stop", {"type": "message_stop"})
        return b""

    def _block_start(self, event: BlockStart) -> bytes:
        if event.kind == "text":
            block: dict[str, Any] = {"type": "text", "text": ""}
        elif event.kind == "thinking":
            block = {"type": "thinking", "thinking": "", "signature": ""}
        elif event.kind == "redacted_thinking" and event.origin in (None, "anthropic"):
            block = {"type": "redacted_thinking", "data": event.redacted or ""}
        elif event.kind == "tool_call":
            block = {
                "type": "tool_use",
                "id": c.sanitize_tool_id(event.id or ""),
                "name": event.name or "",
                "input": {},
            }
        elif event.kind == "raw" and event.origin == "anthropic" and event.raw is not None:
            block = dict(event.raw)
            self._own_searches = self._own_searches or block.get("type") in _SEARCH_BLOCKS
        else:
            return b""
        ours = self._next
        self._next += 1
        self._index[event.index] = ours
        self._open.add(event.index)
        return _frame(
            "content_block_start", {"type": "content_block_start", "index": ours, "content_block": block}
        )

    def _delta(self, event: TextDelta | ThinkingDelta | ToolArgsDelta | SignatureDelta | CitationDelta) -> bytes:
        ours = self._index.get(event.index)
        if ours is None:
            return b""
        if isinstance(event, CitationDelta):
            if event.index not in self._open:
                return b""  # a text block already closed cannot take it
            delta: dict[str, Any] = {"type": "citations_delta", "citation": render_citation(event.citation)}
        elif isinstance(event, TextDelta):
            delta = {"type": "text_delta", "text": event.text}
        elif isinstance(event, ThinkingDelta):
            delta = {"type": "thinking_delta", "thinking": event.text}
        elif isinstance(event, ToolArgsDelta):
            delta = {"type": "input_json_delta", "partial_json": event.partial_json}
        elif event.origin in (None, "anthropic"):
            delta = {"type": "signature_delta", "signature": event.signature}
        else:
            return b""  # another vendor's opaque reasoning state means nothing to Anthropic
        return _frame("content_block_delta", {"type": "content_block_delta", "index": ours, "delta": delta})

    def _stop(self, index: int) -> bytes:
        if index not in self._open:
            return b""
        self._open.discard(index)
        return _frame("content_block_stop", {"type": "content_block_stop", "index": self._index[index]})

    def _search(self, event: SearchDone) -> bytes:
        """Another vendor's search as a ``server_tool_use`` block (its query streamed) and its results block."""
        call, result = render_search(event.search)
        ours = self._next
        self._next += 2
        start = {**call, "input": {}}
        query = {"type": "input_json_delta", "partial_json": json.dumps(call["input"], ensure_ascii=False)}
        return b"".join([
            _frame("content_block_start", {"type": "content_block_start", "index": ours, "content_block": start}),
            _frame("content_block_delta", {"type": "content_block_delta", "index": ours, "delta": query}),
            _frame("content_block_stop", {"type": "content_block_stop", "index": ours}),
            _frame("content_block_start", {"type": "content_block_start", "index": ours + 1, "content_block": result}),
            _frame("content_block_stop", {"type": "content_block_stop", "index": ours + 1}),
        ])

    def _message_delta(self, event: MessageDelta) -> bytes:
        out = b"".join(self._stop(i) for i in sorted(self._open))
        self._delta_sent = True
        usage = c.usage_to_anthropic(event.usage or Usage(), cost_credits=event.cost_credits)
        delta = {"stop_reason": event.stop_reason, "stop_sequence": event.stop_sequence}
        return out + _frame("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})


class StreamParser:
    """Read an Anthropic upstream's SSE events as canonical events.

    Web searches are read on the way: a ``web_search`` ``server_tool_use`` block streams its query,
    the ``web_search_tool_result`` block arrives whole; with it comes a ``SearchDone``.
    """

    def __init__(self, *, tools: Iterable[Tool] = (), secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(secrets)
        self._search_calls: dict[int, tuple[str, str]] = {}  # block index -> (call id, input JSON so far)
        self._queries: dict[str, str] = {}
        self.usage = Usage()
        self._stop_reason: str | None = None
        self._done = False
        self._failed = False

    def feed(self, event: sse.SSEEvent) -> list[StreamEvent]:
        """Translate one upstream event; after an error or the end, nothing more."""
        if self._done or self._failed:
            return []
        try:
            payload = json.loads(event.data)
        except ValueError:
            return self._fail(StreamError(message="upstream sent a malformed stream event"))
        if not isinstance(payload, dict):
            return self._fail(StreamError(message="upstream sent a malformed stream event"))
        kind = payload.get("type") or event.event
        try:
            return self._event(str(kind), payload)
        except (KeyError, TypeError, ValueError, AttributeError):
            return self._fail(StreamError(message=f"upstream sent a malformed {kind} event"))

    def finish(self) -> list[StreamEvent]:
        """Upstream closed: end cleanly if the message was complete, else report a broken stream."""
        if self._done or self._failed:
            return []
        if self._stop_reason is not None:
            self._done = True
            return [MessageStop()]
        return self._fail(StreamError(message="upstream closed the stream before message_stop"))

    def _fail(self, err: StreamError) -> list[StreamEvent]:
        self._failed = True
        return [err]

    def _event(self, kind: str, p: dict[str, Any]) -> list[StreamEvent]:
        if kind == "message_start":
            message = p["message"]
            self.usage = c.usage_from_anthropic(message.get("usage"))
            return [
                MessageStart(
                    id=str(message.get("id") or ""), model=str(message.get("model") or ""), usage=self.usage
                )
            ]
        if kind == "content_block_start":
            index, block = int(p["index"]), p["content_block"]
            return block_start(index, block) + self._search_start(index, block)
        if kind == "content_block_delta":
            self._search_delta(int(p["index"]), p["delta"])
            return block_delta(int(p["index"]), p["delta"])
        if kind == "content_block_stop":
            self._search_stop(int(p["index"]))
            return [BlockStop(index=int(p["index"]))]
        if kind == "message_delta":
            delta = p.get("delta") or {}
            self.usage = self.usage.merged(c.usage_from_anthropic(p.get("usage")))
            self._stop_reason = delta.get("stop_reason") or self._stop_reason or "end_turn"
            return [
                MessageDelta(
                    stop_reason=delta.get("stop_reason"),
                    stop_sequence=delta.get("stop_sequence"),
                    usage=self.usage,
                )
            ]
        if kind == "message_stop":
            self._done = True
            return [MessageStop()]
        if kind == "error":
            return self._fail(upstream_error.from_event(p, secrets=self._secrets))
        return []  # ping and events added later

    def _search_start(self, index: int, block: Mapping[str, Any]) -> list[StreamEvent]:
        kind = block.get("type")
        if kind == "server_tool_use" and block.get("name") == "web_search":
            given = block.get("input")
            self._search_calls[index] = (str(block.get("id")), json.dumps(given) if given else "")
        elif kind == "web_search_tool_result":
            return [SearchDone(search_record(block, self._queries))]
        return []

    def _search_delta(self, index: int, delta: Mapping[str, Any]) -> None:
        call = self._search_calls.get(index)
        if call is not None and delta.get("type") == "input_json_delta":
            self._search_calls[index] = (call[0], call[1] + str(delta.get("partial_json") or ""))

    def _search_stop(self, index: int) -> None:
        call = self._search_calls.pop(index, None)
        if call is not None:
            query = (c.loads_object(call[1]) or {}).get("query")
            self._queries[call[0]] = query if isinstance(query, str) else ""


_SEARCH_BLOCKS = ("server_tool_use", "web_search_tool_result")


def block_start(index: int, block: Mapping[str, Any]) -> list[StreamEvent]:
    """Translate ``content_block_start`` (with any text it already carries)."""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text") or ""
        start: list[StreamEvent] = [BlockStart(index=index, kind="text")]
        return start + ([TextDelta(index, text)] if text else [])
    if kind == "thinking":
        text = block.get("thinking") or ""
        first: list[StreamEvent] = [BlockStart(index=index, kind="thinking", origin="anthropic")]
        return first + ([ThinkingDelta(index, text)] if text else [])
    if kind == "redacted_thinking":
        return [
            BlockStart(
                index=index,
                kind="redacted_thinking",
                redacted=str(block.get("data") or ""),
                origin="anthropic",
            )
        ]
    if kind == "tool_use":
        return [BlockStart(index=index, kind="tool_call", id=str(block["id"]), name=str(block["name"]))]
    return [BlockStart(index=index, kind="raw", raw=dict(block), origin="anthropic")]


def block_delta(index: int, delta: Mapping[str, Any]) -> list[StreamEvent]:
    """Translate ``content_block_delta``."""
    kind = delta.get("type")
    if kind == "text_delta":
        return [TextDelta(index, str(delta["text"]))]
    if kind == "thinking_delta":
        return [ThinkingDelta(index, str(delta["thinking"]))]
    if kind == "signature_delta":
        return [SignatureDelta(index, str(delta["signature"]), origin="anthropic")]
    if kind == "input_json_delta":
        return [ToolArgsDelta(index, str(delta["partial_json"]))]
    if kind == "citations_delta":
        citation = citation_of(delta.get("citation"))
        return [CitationDelta(index, citation)] if citation is not None else []
    return []  # document citations stay with Anthropic callers (passed through); later kinds too


def _passthrough_error(event: sse.SSEEvent, payload: dict[str, Any] | None) -> bool:
    return (payload.get("type") if payload is not None else event.event) == "error"


def _passthrough_step(stream: PassthroughStream, event: sse.SSEEvent, payload: dict[str, Any]) -> bytes | None:
    """Keep the usage; the cost goes on ``message_delta``; ``message_stop`` ends the stream."""
    kind = payload.get("type")
    if kind == "message_start" and isinstance(payload.get("message"), Mapping):
        stream.usage = c.usage_from_anthropic(payload["message"].get("usage"))
    elif kind == "message_delta":
        stream.usage = (stream.usage or Usage()).merged(c.usage_from_anthropic(payload.get("usage")))
        usage = dict(payload["usage"]) if isinstance(payload.get("usage"), Mapping) else {}
        cost = stream.cost()
        spliced = with_member(event.data, "usage", "cost_credits", cost, usage) if "usage" in payload else None
        if spliced is not None:
            return sse.encode(spliced, event="message_delta")
        usage["cost_credits"] = cost
        return _frame("message_delta", {**payload, "usage": usage})
    elif kind == "message_stop":
        stream.done = True
    return None


# An Anthropic upstream's frames to an Anthropic caller.
PASSTHROUGH = PassthroughRules(is_error=_passthrough_error, render_error=error_frame, step=_passthrough_step,
                               sniff=(re.compile(rb'"usage"'), re.compile(rb'"error"'),
                                      re.compile(rb'"type"\s*:\s*"(?:message_|error)'), re.compile(rb'event:\s*error')))
