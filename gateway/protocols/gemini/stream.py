"""Gemini caller side: render canonical stream events as ``streamGenerateContent?alt=sse`` chunks.

Data-only events, each a ``GenerateContentResponse`` holding only the new
parts. Text and thought text go out as they arrive; a function call goes out
whole once its arguments are complete (Gemini never streams partial calls by
default). The last chunk carries ``finishReason`` and ``usageMetadata`` (with
``costCredits`` when the pipeline set it), and ``groundingMetadata`` for the
searches another vendor ran. A failure becomes Google's
``{"error": {...}}`` chunk and ends the stream.
"""

from __future__ import annotations

from typing import Any

from gateway.canonical import Citation, SearchPart, TextPart, ToolCallPart, Usage
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
from gateway.protocols.common import dumps
from gateway.protocols.gemini.errors import error_payload
from gateway.protocols.gemini.grounding import grounding_of
from gateway.protocols.gemini.parts import STOP_TO_FINISH, render_parts, usage_to_gemini
from gateway.sse import encode


class StreamRenderer:
    """Turn canonical stream events into Gemini SSE chunks."""

    def __init__(self, *, model: str, message_id: str, created: int, include_usage: bool = True) -> None:
        # Gemini always reports usage on the last chunk, so include_usage changes nothing.
        self._model = model
        self._id = message_id
        self._start_usage = Usage()
        self._delta: MessageDelta | None = None
        self._calls: dict[int, ToolCallPart] = {}
        self._args: dict[int, str] = {}
        self._origins: dict[int, str | None] = {}
        self._searches: list[SearchPart] = []  # another vendor's searches: groundingMetadata on the last chunk
        # The answer's text blocks (pieces) and their citations, for groundingSupports.
        self._texts: dict[int, list[str]] = {}
        self._cites: dict[int, list[Citation]] = {}
        self._ended = False

    def render(self, event: StreamEvent) -> bytes:
        """Return the SSE bytes for ``event`` (b"" when it adds nothing a Gemini client sees)."""
        if self._ended:
            return b""
        if isinstance(event, MessageStart):
            self._start_usage = event.usage
        elif isinstance(event, BlockStart):
            self._block_start(event)
        elif isinstance(event, TextDelta) and event.text:
            self._texts.get(event.index, []).append(event.text)
            return self._chunk([{"text": event.text}])
        elif isinstance(event, CitationDelta) and event.index in self._cites:
            self._cites[event.index].append(event.citation)
        elif isinstance(event, ThinkingDelta) and event.text:
            return self._chunk([{"text": event.text, "thought": True}])
        elif isinstance(event, SignatureDelta):
            return self._signature(event)
        elif isinstance(event, ToolArgsDelta) and event.index in self._calls:
            self._args[event.index] = self._args.get(event.index, "") + event.partial_json
        elif isinstance(event, BlockStop):
            return self._block_stop(event.index)
        elif isinstance(event, MessageDelta):
            self._delta = event
        elif isinstance(event, SearchDone):
            self._searches.append(event.search)
        elif isinstance(event, MessageStop):
            return self._finish()
        elif isinstance(event, StreamError):
            self._ended = True
            return encode(dumps(error_payload(event.status, event.message, event.kind)))
        return b""

    def _chunk(self, parts: list[dict[str, Any]], **extra: Any) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if "finishReason" in extra:
            candidate["finishReason"] = extra.pop("finishReason")
        grounding = extra.pop("groundingMetadata", None)
        if grounding is not None:
            candidate["groundingMetadata"] = grounding
        body = {"candidates": [candidate], **extra, "modelVersion": self._model, "responseId": self._id}
        return encode(dumps(body))

    def _block_start(self, ev: BlockStart) -> None:
        self._origins[ev.index] = ev.origin
        if ev.kind == "text":
            self._texts[ev.index], self._cites[ev.index] = [], []
        if ev.kind == "tool_call":
            call_id = ev.id or f"call_{ev.index}"
            signature = ev.signature if ev.origin in (None, "gemini") else None
            self._calls[ev.index] = ToolCallPart(id=call_id, name=ev.name or "", signature=signature)

    def _signature(self, ev: SignatureDelta) -> bytes:
        if (ev.origin or self._origins.get(ev.index)) != "gemini":
            return b""  # another vendor's reasoning state means nothing to a Gemini client
        return self._chunk([{"text": "", "thought": True, "thoughtSignature": ev.signature}])

    def _block_stop(self, index: int) -> bytes:
        call = self._calls.pop(index, None)
        if call is None:
            return b""
        args = self._args.pop(index, "") or "{}"
        whole = ToolCallPart(id=call.id, name=call.name, arguments=args, signature=call.signature)
        return self._chunk(render_parts([whole], upstream=False))

    def _finish(self) -> bytes:
        out = b"".join(self._block_stop(i) for i in sorted(self._calls))
        delta = self._delta or MessageDelta()
        usage = self._start_usage.merged(delta.usage) if delta.usage else self._start_usage
        finish = STOP_TO_FINISH.get(delta.stop_reason or "end_turn", "STOP")
        meta = usage_to_gemini(usage, delta.cost_credits)
        self._ended = True
        texts = [TextPart("".join(self._texts[i]), citations=tuple(self._cites[i])) for i in sorted(self._texts)]
        grounding = grounding_of([*self._searches, *texts])
        return out + self._chunk([{"text": ""}], finishReason=finish, usageMetadata=meta, groundingMetadata=grounding)

