"""OpenAI Chat Completions streams: canonical events <-> ``data:`` chunks ending in ``[DONE]``.

An upstream's chunks become canonical blocks through a small state machine:
reasoning, text and each tool call (by its ``index``) get a block in the
order they first appear; the finish chunk closes them; the usage chunk (or
``[DONE]`` when none comes) gives the message delta.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Iterable

from gateway import sse
from gateway.canonical import Protocol, Tool, Usage
from gateway.canonical_events import (
    BlockKind,
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from gateway.protocols import common as c
from gateway.protocols import upstream_error
from gateway.protocols.openai_chat.errors import error_body
from gateway.protocols.passthrough import PassthroughRules, PassthroughStream, with_member

DONE = "[DONE]"


def _data(payload: Mapping[str, Any]) -> bytes:
    return sse.encode(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


class StreamRenderer:
    """Render canonical events as ``chat.completion.chunk`` frames for an OpenAI SDK."""

    def __init__(self, *, model: str, message_id: str, created: int, include_usage: bool = True) -> None:
        self.model = model
        self.message_id = message_id
        self.created = created
        self.include_usage = include_usage
        self._started = False
        self._ended = False
        self._tool_k: dict[int, int] = {}  # block index -> tool call index (counts calls, not blocks)
        self._finished = False
        self._usage = Usage()
        self._cost: int | None = None

    def _chunk(self, delta: Mapping[str, Any], finish: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.message_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return _data(chunk)

    def render(self, event: StreamEvent) -> bytes:
        """Return the bytes for one event (b"" when it has no Chat Completions form)."""
        if self._ended:
            return b""
        if isinstance(event, StreamError):
            self._ended = True
            return _data(error_body(event))
        out = b""
        if not self._started:
            self._started = True
            out = self._chunk({"role": "assistant", "content": ""})
        return out + self._render(event)

    def _render(self, event: StreamEvent) -> bytes:
        if isinstance(event, BlockStart) and event.kind == "tool_call":
            k = self._tool_k[event.index] = len(self._tool_k)
            call = {
                "index": k,
                "id": event.id or "",
                "type": "function",
                "function": {"name": event.name or "", "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if isinstance(event, TextDelta) and event.text:
            return self._chunk({"content": event.text})
        if isinstance(event, ThinkingDelta) and event.text:
            return self._chunk({"reasoning_content": event.text})
        if isinstance(event, ToolArgsDelta) and event.index in self._tool_k and event.partial_json:
            call = {"index": self._tool_k[event.index], "function": {"arguments": event.partial_json}}
            return self._chunk({"tool_calls": [call]})
        if isinstance(event, MessageDelta):
            self._usage = event.usage or self._usage
            self._cost = event.cost_credits if event.cost_credits is not None else self._cost
            return self._finish(event.stop_reason or "end_turn")
        if isinstance(event, MessageStop):
            out = self._finish("end_turn")
            if self.include_usage:
                usage = c.usage_to_openai(self._usage, cost_credits=self._cost)
                chunk = {"id": self.message_id, "object": "chat.completion.chunk", "created": self.created,
                         "model": self.model, "choices": [], "usage": usage}  # fmt: skip
                out += _data(chunk)
            self._ended = True
            return out + sse.encode(DONE)
        return b""

    def _finish(self, stop_reason: str) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        return self._chunk({}, c.finish_reason(stop_reason))


class StreamParser:
    """Read an OpenAI-compatible upstream's chunks as canonical events (``tools`` maps truncated names back)."""

    def __init__(self, *, tools: Iterable[Tool] = (), secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(secrets)
        self._names = c.tool_name_map(t.name for t in tools)
        self._id = ""
        self._started = False
        self._next = 0
        self._current: tuple[int, BlockKind] | None = None  # the open block
        self._tools: dict[int, int] = {}  # upstream tool index -> block index
        self._finish: str | None = None
        self.usage: Usage | None = None
        self._delta_sent = False
        self._over = False

    def feed(self, event: sse.SSEEvent) -> list[StreamEvent]:
        """Translate one upstream event; after an error or the end, nothing more."""
        if self._over:
            return []
        if event.data.strip() == DONE:
            return self._end()
        try:
            chunk = json.loads(event.data)
        except ValueError:
            return self._fail(StreamError(message="upstream sent a malformed stream chunk"))
        if not isinstance(chunk, dict):
            return self._fail(StreamError(message="upstream sent a malformed stream chunk"))
        if chunk.get("error") is not None:
            return self._fail(upstream_error.from_event(chunk, secrets=self._secrets))
        try:
            return self._chunk(chunk)
        except (KeyError, TypeError, ValueError, AttributeError):
            return self._fail(StreamError(message="upstream sent a malformed stream chunk"))

    def finish(self) -> list[StreamEvent]:
        """Upstream closed: a finished message ends cleanly without ``[DONE]``; else the stream broke."""
        if self._over:
            return []
        if self._finish is None:
            return self._fail(StreamError(message="upstream closed the stream before finish_reason"))
        return self._end()

    def _fail(self, err: StreamError) -> list[StreamEvent]:
        self._over = True
        return [err]

    def _end(self) -> list[StreamEvent]:
        events = self._start({}) + self._close()
        if not self._delta_sent:
            events.append(self._message_delta())
        self._over = True
        return events + [MessageStop()]

    def _start(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        self._id = str(chunk.get("id") or "")
        return [MessageStart(id=self._id, model=str(chunk.get("model") or ""))]

    def _message_delta(self) -> MessageDelta:
        self._delta_sent = True
        stop = c.stop_reason(self._finish or "stop", had_tool_calls=bool(self._tools))
        return MessageDelta(stop_reason=stop, usage=self.usage)

    def _chunk(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        events = self._start(chunk)
        usage = chunk.get("usage")
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) == 0:
                events += self._choice(choice)
                usage = usage or choice.get("usage")  # Moonshot puts it on the finishing choice
        if isinstance(usage, Mapping):
            self.usage = c.usage_from_openai(usage)
            if self._finish is not None:
                events.append(self._message_delta())  # cumulative: a later one supersedes
        return events

    def _choice(self, choice: Mapping[str, Any]) -> list[StreamEvent]:
        delta = choice.get("delta") or {}
        events: list[StreamEvent] = []
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            events += self._open("thinking") + [ThinkingDelta(self._index(), reasoning)]
        for key in ("content", "refusal"):
            if isinstance(delta.get(key), str) and delta[key]:
                events += self._open("text") + [TextDelta(self._index(), delta[key])]
        for position, call in enumerate(delta.get("tool_calls") or []):
            events += self._tool_fragment(position, call)
        if choice.get("finish_reason"):
            self._finish = str(choice["finish_reason"])
            events += self._close()
        return events

    def _index(self) -> int:
        assert self._current is not None
        return self._current[0]

    def _open(self, kind: BlockKind, id: str | None = None, name: str | None = None) -> list[StreamEvent]:
        if self._current is not None and self._current[1] == kind and kind != "tool_call":
            return []
        events = self._close()
        self._current = (self._next, kind)
        self._next += 1
        origin: Protocol | None = "openai" if kind == "thinking" else None
        return events + [BlockStart(index=self._current[0], kind=kind, id=id, name=name, origin=origin)]

    def _close(self) -> list[StreamEvent]:
        if self._current is None:
            return []
        index, self._current = self._current[0], None
        return [BlockStop(index=index)]

    def _tool_fragment(self, position: int, call: Mapping[str, Any]) -> list[StreamEvent]:
        tool_index = int(call.get("index", position))
        fn = call.get("function") or {}
        events: list[StreamEvent] = []
        if tool_index not in self._tools:
            name = str(fn.get("name") or "")
            call_id = str(call.get("id") or f"call_{self._id}_{tool_index}")
            events += self._open("tool_call", id=call_id, name=self._names.get(name, name))
            self._tools[tool_index] = self._index()
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            # A fragment for an earlier call (interleaved calls) still names its own block.
            events.append(ToolArgsDelta(self._tools[tool_index], args))
        return events


def _passthrough_error(event: sse.SSEEvent, payload: dict[str, Any] | None) -> bool:
    return payload is not None and payload.get("error") is not None


def _passthrough_error_chunk(err: StreamError) -> bytes:
    return _data(error_body(err))


def _passthrough_step(stream: PassthroughStream, event: sse.SSEEvent, chunk: dict[str, Any]) -> bytes | None:
    """Keep the usage; cost the usage chunk, or hide it from a caller that did not ask for it."""
    choices = chunk["choices"] if isinstance(chunk.get("choices"), list) else []
    if any(isinstance(ch, Mapping) and ch.get("finish_reason") for ch in choices):
        stream.finished = True
    if not isinstance(chunk.get("usage"), Mapping):
        return None
    stream.usage = c.usage_from_openai(chunk["usage"])
    if not choices and stream.finished:
        stream.done = True  # the usage chunk after the finish is the real end; [DONE] is a formality
    if not stream.include_usage:
        return b"" if not choices else None
    cost = stream.cost()
    spliced = with_member(event.data, "usage", "cost_credits", cost, chunk["usage"])
    if spliced is not None:
        return sse.encode(spliced)
    return _data({**chunk, "usage": {**chunk["usage"], "cost_credits": cost}})


# An OpenAI-compatible upstream's chunks to an OpenAI caller.
PASSTHROUGH = PassthroughRules(is_error=_passthrough_error, render_error=_passthrough_error_chunk,
                               step=_passthrough_step, end_marker=DONE,
                               sniff=(re.compile(rb'"usage"\s*:\s*\{'), re.compile(rb'"finish_reason"\s*:\s*"'),
                                      re.compile(rb'"error"'), re.compile(rb'\[DONE\]')))
