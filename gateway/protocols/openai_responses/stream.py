"""OpenAI Responses API: render canonical stream events as ``response.*`` server-sent events.

Every event carries a ``sequence_number`` that starts at 0 and grows by one.
The sequence always opens with ``response.created`` and ``response.in_progress``
and ends with ``response.completed`` / ``response.incomplete`` (the full object,
usage included) or, when the upstream broke, ``error`` then ``response.failed``.
The item rules are those of ``response`` (see there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.canonical import Citation, ToolCallPart
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
from gateway.protocols.openai_responses.errors import failed_error
from gateway.protocols.openai_responses.response import (
    CustomInput,
    custom_call_item,
    event_usage,
    final_status,
    function_call_item,
    item_id,
    message_item,
    output_text,
    reasoning_item,
    redacted_state,
    response_id,
    response_object,
    signature_state,
    url_citations,
    usage_object,
    web_search_item,
)
from gateway.sse import encode


@dataclass
class _Message:
    """The open ``message`` item: consecutive text blocks add parts to it."""

    output_index: int
    id: str
    texts: list[str] = field(default_factory=list)
    notes: list[list[dict[str, Any]]] = field(default_factory=list)  # each part's annotations
    open_blocks: set[int] = field(default_factory=set)
    sealed: bool = False


@dataclass
class _Block:
    kind: str
    output_index: int | None = None
    id: str = ""
    text: str = ""
    state: str | None = None
    origin: str | None = None
    summary_open: bool = False
    content_index: int = 0
    message: _Message | None = None
    call: ToolCallPart | None = None
    custom: CustomInput | None = None  # a ``custom`` tool's call: its ``input`` decoded as it streams
    citations: list[Citation] = field(default_factory=list)  # a text's sources: annotations at its end


class StreamRenderer:
    """Turn canonical stream events into the Responses event sequence, one event at a time."""

    def __init__(
        self,
        *,
        model: str,
        message_id: str,
        created: int,
        include_usage: bool = True,
        namespaces: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        # include_usage is moot here: usage always travels in the terminal response object.
        self._model = model
        self._created = created
        self._rid = response_id(message_id)
        self._namespaces = namespaces
        self._seq = 0
        self._started = False
        self._ended = False
        self._start: MessageStart | None = None
        self._delta: MessageDelta | None = None
        self._next_index = 0
        self._done: dict[int, dict[str, Any]] = {}
        self._blocks: dict[int, _Block] = {}
        self._msg: _Message | None = None
        self._out: list[bytes] = []
        # Fields the gateway sets on every response object (``store``, ``previous_response_id``), and
        # the terminal object once sent (what a stored response keeps).
        self.meta: dict[str, Any] = {}
        self.final: dict[str, Any] | None = None

    def render(self, event: StreamEvent) -> bytes:
        """Return the SSE bytes for ``event`` (b"" once the stream has ended)."""
        if self._ended:
            return b""
        if not self._started:
            self._begin(event if isinstance(event, MessageStart) else None)
        if isinstance(event, BlockStart):
            self._block_start(event)
        elif isinstance(event, TextDelta):
            self._text_delta(event)
        elif isinstance(event, ThinkingDelta):
            self._thinking_delta(event)
        elif isinstance(event, SignatureDelta):
            self._signature(event)
        elif isinstance(event, ToolArgsDelta):
            self._args_delta(event)
        elif isinstance(event, BlockStop):
            self._block_stop(event.index)
        elif isinstance(event, MessageDelta):
            self._message_delta(event)
        elif isinstance(event, SearchDone):
            self._search(event)
        elif isinstance(event, CitationDelta):
            block = self._blocks.get(event.index)
            if block is not None and block.kind == "text":
                block.citations.append(event.citation)
        elif isinstance(event, MessageStop):
            self._finish()
        elif isinstance(event, StreamError):
            self._fail(event)
        out, self._out = self._out, []
        return b"".join(out)

    # --- framing -------------------------------------------------------------

    def _emit(self, kind: str, **fields: Any) -> None:
        data = {"type": kind, **fields, "sequence_number": self._seq}
        self._seq += 1
        self._out.append(encode(dumps(data), kind))

    def _response(self, status: str, **kw: Any) -> dict[str, Any]:
        output = [self._done[i] for i in sorted(self._done)]
        obj = response_object(self._rid, model=self._model, created=self._created, output=output, status=status, **kw)
        obj.update(self.meta)
        return obj

    def _begin(self, start: MessageStart | None) -> None:
        self._started = True
        self._start = start
        self._emit("response.created", response=self._response("in_progress"))
        self._emit("response.in_progress", response=self._response("in_progress"))

    def _alloc(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _item_done(self, index: int, item: dict[str, Any]) -> None:
        self._done[index] = item
        self._emit("response.output_item.done", output_index=index, item=item)

    # --- blocks ----------------------------------------------------------------

    def _block_start(self, ev: BlockStart) -> None:
        if ev.kind == "text":
            self._blocks[ev.index] = self._open_text(ev.index)
        elif ev.kind in ("thinking", "redacted_thinking"):
            # Opened lazily: a thinking block with nothing this protocol can carry leaves no item.
            state = redacted_state(ev.redacted) if ev.redacted else None
            self._blocks[ev.index] = _Block(kind="thinking", state=state, origin=ev.origin)
        elif ev.kind == "tool_call":
            self._seal_message()
            index = self._alloc()
            fc_id = item_id("ctc" if ev.custom else "fc", self._rid, index)
            call = ToolCallPart(id=ev.id or fc_id, name=ev.name or "", custom=ev.custom)
            self._blocks[ev.index] = _Block(kind="tool_call", output_index=index, id=fc_id, call=call,
                                            custom=CustomInput() if ev.custom else None)
            item = function_call_item(fc_id, call, self._namespaces, done=False)
            self._emit("response.output_item.added", output_index=index, item=item)
        else:
            self._blocks[ev.index] = _Block(kind="raw")

    def _open_text(self, block_index: int) -> _Block:
        msg = self._msg
        if msg is None or msg.sealed or msg.output_index != self._next_index - 1:
            self._seal_message()
            index = self._alloc()
            msg = self._msg = _Message(output_index=index, id=item_id("msg", self._rid, index))
            self._emit("response.output_item.added", output_index=index, item=message_item(msg.id, [], done=False))
        content_index = len(msg.texts)
        msg.texts.append("")
        msg.notes.append([])
        msg.open_blocks.add(block_index)
        self._emit(
            "response.content_part.added", item_id=msg.id, output_index=msg.output_index,
            content_index=content_index, part=output_text(""),
        )
        return _Block(kind="text", output_index=msg.output_index, id=msg.id, content_index=content_index, message=msg)

    def _seal_message(self) -> None:
        msg, self._msg = self._msg, None
        if msg is not None:
            msg.sealed = True
            if not msg.open_blocks:
                self._item_done(msg.output_index, message_item(msg.id, msg.texts, done=True, notes=msg.notes))

    def _open_reasoning(self, block: _Block) -> None:
        self._seal_message()
        block.output_index = self._alloc()
        block.id = item_id("rs", self._rid, block.output_index)
        self._emit(
            "response.output_item.added", output_index=block.output_index, item=reasoning_item(block.id, "", None)
        )

    def _text_delta(self, ev: TextDelta) -> None:
        block = self._blocks.get(ev.index)
        if block is None or block.kind != "text" or block.message is None or not ev.text:
            return
        block.message.texts[block.content_index] += ev.text
        self._emit(
            "response.output_text.delta", item_id=block.id, output_index=block.output_index,
            content_index=block.content_index, delta=ev.text, logprobs=[],
        )

    def _thinking_delta(self, ev: ThinkingDelta) -> None:
        block = self._blocks.get(ev.index)
        if block is None or block.kind != "thinking" or not ev.text:
            return
        if block.output_index is None:
            self._open_reasoning(block)
        where = {"item_id": block.id, "output_index": block.output_index, "summary_index": 0}
        if not block.summary_open:
            block.summary_open = True
            self._emit("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""})
        block.text += ev.text
        self._emit("response.reasoning_summary_text.delta", **where, delta=ev.text)

    def _signature(self, ev: SignatureDelta) -> None:
        block = self._blocks.get(ev.index)
        if block is not None and block.kind == "thinking":
            state = signature_state(ev.signature, ev.origin or block.origin)
            if state is not None:
                block.state = state

    def _args_delta(self, ev: ToolArgsDelta) -> None:
        block = self._blocks.get(ev.index)
        if block is None or block.kind != "tool_call" or not ev.partial_json:
            return
        block.text += ev.partial_json
        if block.custom is not None:
            text = block.custom.feed(ev.partial_json)
            if text:
                self._emit("response.custom_tool_call_input.delta", item_id=block.id,
                           output_index=block.output_index, delta=text)
            return
        self._emit(
            "response.function_call_arguments.delta", item_id=block.id, output_index=block.output_index,
            delta=ev.partial_json,
        )

    def _block_stop(self, index: int) -> None:
        block = self._blocks.pop(index, None)
        if block is None:
            return
        if block.kind == "text" and block.message is not None:
            self._stop_text(index, block, block.message)
        elif block.kind == "thinking":
            self._stop_thinking(block)
        elif block.custom is not None and block.call is not None and block.output_index is not None:
            self._stop_custom(block, block.custom, block.call, block.output_index)
        elif block.kind == "tool_call" and block.call is not None and block.output_index is not None:
            args = block.text or "{}"
            self._emit(
                "response.function_call_arguments.done", item_id=block.id, output_index=block.output_index,
                arguments=args,
            )
            call = ToolCallPart(id=block.call.id, name=block.call.name, arguments=args)
            self._item_done(block.output_index, function_call_item(block.id, call, self._namespaces, done=True))

    def _stop_custom(self, block: _Block, custom: CustomInput, call: ToolCallPart, index: int) -> None:
        item = custom_call_item(block.id, replace(call, arguments=block.text or "{}"))
        where = {"item_id": block.id, "output_index": index}
        text = item["input"]
        if text.startswith(custom.shown) and len(text) > len(custom.shown):
            self._emit("response.custom_tool_call_input.delta", **where, delta=text[len(custom.shown):])
        self._emit("response.custom_tool_call_input.done", **where, input=text)
        self._item_done(index, item)

    def _stop_text(self, index: int, block: _Block, msg: _Message) -> None:
        text = msg.texts[block.content_index]
        where = {"item_id": msg.id, "output_index": msg.output_index, "content_index": block.content_index}
        notes = msg.notes[block.content_index] = url_citations(text, block.citations)
        for i, note in enumerate(notes):
            self._emit("response.output_text.annotation.added", **where, annotation_index=i, annotation=note)
        self._emit("response.output_text.done", **where, text=text, logprobs=[])
        self._emit("response.content_part.done", **where, part=output_text(text, notes))
        msg.open_blocks.discard(index)
        if msg.sealed and not msg.open_blocks:
            self._item_done(msg.output_index, message_item(msg.id, msg.texts, done=True, notes=msg.notes))

    def _stop_thinking(self, block: _Block) -> None:
        if block.output_index is None:
            if not block.state:
                return
            self._open_reasoning(block)
        where = {"item_id": block.id, "output_index": block.output_index, "summary_index": 0}
        if block.summary_open:
            self._emit("response.reasoning_summary_text.done", **where, text=block.text)
            self._emit("response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": block.text})
        assert block.output_index is not None
        self._item_done(block.output_index, reasoning_item(block.id, block.text, block.state))

    def _search(self, ev: SearchDone) -> None:
        """A search the upstream ran, as a ``web_search_call`` item with its lifecycle events."""
        self._seal_message()
        index = self._alloc()
        ws_id = item_id("ws", self._rid, index)
        item = web_search_item(ws_id, ev.search)
        self._emit("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
        for step in ("in_progress", "searching", "completed"):
            self._emit(f"response.web_search_call.{step}", item_id=ws_id, output_index=index)
        self._item_done(index, item)

    # --- the end -----------------------------------------------------------------

    def _message_delta(self, ev: MessageDelta) -> None:
        prev = self._delta
        if prev is None:
            self._delta = ev
            return
        usage = prev.usage.merged(ev.usage) if prev.usage and ev.usage else (ev.usage or prev.usage)
        self._delta = MessageDelta(
            stop_reason=ev.stop_reason or prev.stop_reason,
            stop_sequence=ev.stop_sequence or prev.stop_sequence,
            usage=usage,
            cost_credits=ev.cost_credits if ev.cost_credits is not None else prev.cost_credits,
        )

    def _finish(self) -> None:
        for index in sorted(self._blocks):
            self._block_stop(index)
        self._seal_message()
        delta = self._delta
        stop = delta.stop_reason if delta else None
        status = final_status(stop)
        usage = usage_object(event_usage(self._start, delta), delta.cost_credits if delta else None)
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        self.final = self._response(status, stop_reason=stop, usage=usage)
        self._emit(kind, response=self.final)
        self._ended = True

    def _fail(self, err: StreamError) -> None:
        self._emit("error", code=err.kind, message=err.message, param=None)
        self._emit("response.failed", response=self._response("failed", error=failed_error(err)))
        self._ended = True
