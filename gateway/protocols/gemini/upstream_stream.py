"""Gemini upstream streams: into canonical events (``StreamParser``) or forwarded (``PASSTHROUGH``).

Each ``alt=sse`` chunk carries only new parts. Text and thought text may be
split across chunks and are merged into one block while they continue; a
thought signature closes its thinking block; function calls arrive whole and
become a block start, one argument delta and a stop. ``groundingMetadata`` (each chunk
that has it holds all of it so far) gives the searches the answer ran, and its citations
(``groundingSupports``) go on the last text block before it closes. A vendor that searches
shows the search before the text it grounds; Gemini mostly reports it with its last chunk,
after the text, and the text is never held back for it. So the search goes out at once when
its queries and sources come before any text (sources a later chunk adds follow at the end,
as one more record), else at the end, after the text. ``usageMetadata`` is the
running total: the last one counts, never the sum. The stream is over when a
candidate has a ``finishReason`` (or the prompt was blocked); an upstream that
closes before that broke the stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Iterable

from gateway.canonical import (
    Citation,
    ImagePart,
    SearchPart,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    Usage,
)
from gateway.canonical_events import (
    BlockKind,
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
from gateway.protocols import upstream_error
from gateway.protocols.common import dumps
from gateway.protocols.fields import pick
from gateway.protocols.gemini.errors import error_payload
from gateway.protocols.gemini.grounding import citations_of, search_of, with_searches
from gateway.protocols.gemini.partial_args import Arguments, continues, streams
from gateway.protocols.gemini.parts import (
    CallIds,
    MakeId,
    parse_upstream_part,
    render_image,
    stop_from_finish,
    usage_from_gemini,
)
from gateway.protocols.passthrough import PassthroughRules, PassthroughStream
from gateway.sse import SSEEvent, encode


def default_ids(response_id: str | None) -> MakeId:
    """Ids for id-less calls, stable for one response: ``call_<responseId>_<n>``."""
    base = "".join(c if c.isalnum() or c in "_-" else "_" for c in (response_id or "gemini"))
    return lambda n: f"call_{base}_{n}"


def _load(event: SSEEvent) -> Mapping[str, Any] | None:
    try:
        value = json.loads(event.data)
    except ValueError:
        return None
    return value if isinstance(value, Mapping) else None


def _candidate(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    candidates = body.get("candidates")
    first = candidates[0] if isinstance(candidates, list) and candidates else None
    return first if isinstance(first, Mapping) else None


def _blocked(body: Mapping[str, Any]) -> bool:
    feedback = body.get("promptFeedback")
    return isinstance(feedback, Mapping) and bool(feedback.get("blockReason"))


class StreamParser:
    """Turn a Gemini SSE stream into canonical stream events."""

    def __init__(self, *, make_id: MakeId | None = None, tools: Iterable[Tool] = (), secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(secrets)
        # ``tools`` for symmetry with the other parsers: Gemini gets tool names whole.
        self._make_id = make_id
        self._ids: CallIds | None = None
        self._started = False
        self._done = False
        self._next = 0
        self._open: tuple[int, str] | None = None
        self._usage = Usage()
        self._had_calls = False
        self._rid = "gemini"
        self._search: SearchPart | None = None  # the latest groundingMetadata
        self._shown: SearchPart | None = None  # what went out before the text, when it came first
        self._citations: list[Citation] = []  # its groundingSupports, put on the answer's text block
        self._last_text: int | None = None
        self._streamed: tuple[int, Arguments] | None = None  # a call arriving in pieces

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self._done or not event.data.strip() or event.data.strip() == "[DONE]":
            return []
        body = _load(event)
        if body is None:
            return self._fail(StreamError(message="upstream sent a malformed stream chunk"))
        if "error" in body:
            return self._fail(upstream_error.from_event(body, secrets=self._secrets))
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            rid = body.get("responseId") if isinstance(body.get("responseId"), str) else None
            self._rid = rid or self._rid
            self._ids = CallIds(self._make_id or default_ids(rid))
            model = str(body.get("modelVersion") or "")
            out.append(MessageStart(id=rid or "gemini", model=model))
        if isinstance(body.get("usageMetadata"), Mapping):
            self._usage = usage_from_gemini(body["usageMetadata"])
        candidate = _candidate(body)
        self._usage = self._usage.merged(with_searches(Usage(), candidate))
        self._search = search_of(candidate, self._rid) or self._search
        self._citations = citations_of(candidate) or self._citations
        found = self._search
        if found is not None and found.queries and found.sources and self._shown is None and self._next == 0:
            self._shown = found  # nothing shown yet: the search goes before the text, as vendors show it
            out.append(SearchDone(found))
        content = candidate.get("content") if candidate else None
        parts = content.get("parts") if isinstance(content, Mapping) else None
        for i, raw in enumerate(parts if isinstance(parts, list) else []):
            if isinstance(raw, Mapping):
                self._part(raw, i, out)
        finish = candidate.get("finishReason") if candidate else None
        if isinstance(finish, str) or (candidate is None and _blocked(body)):
            stop = "refusal" if candidate is None else stop_from_finish(finish, had_calls=self._had_calls)
            self._end_call(out)
            if self._last_text is not None:
                out += [CitationDelta(self._last_text, c) for c in self._citations]
            self._close(out)
            rest = self._unshown()
            if rest is not None:
                out.append(SearchDone(rest))
            out += [MessageDelta(stop_reason=stop, usage=self._usage), MessageStop()]
            self._done = True
        return out

    def _unshown(self) -> SearchPart | None:
        """The searches and sources the caller has not been shown yet (all of them unless shown early)."""
        if self._search is None or self._shown is None:
            return self._search
        shown = self._shown
        queries = tuple(q for q in self._search.queries if q not in shown.queries)
        sources = tuple(s for s in self._search.sources if s not in shown.sources)
        if not queries and not sources:
            return None
        # New sources of the same searches: one more record under their queries.
        return SearchPart(id=f"{self._search.id}_more", queries=queries or shown.queries, sources=sources)

    def finish(self) -> list[StreamEvent]:
        """The upstream closed: an error unless a finishReason was seen."""
        if self._done:
            return []
        return self._fail(StreamError(message="upstream stream ended before its finishReason"))

    def _fail(self, err: StreamError) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        self._streamed = None  # an unfinished call is not handed on
        self._close(out)
        self._done = True
        return [*out, err]

    def _close(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open[0]))
            self._open = None

    def _start(self, out: list[StreamEvent], kind: BlockKind, **kw: Any) -> int:
        self._close(out)
        index = self._next
        self._next += 1
        out.append(BlockStart(index=index, kind=kind, origin="gemini", **kw))
        return index

    def _continue(self, out: list[StreamEvent], kind: BlockKind) -> int:
        if self._open is not None and self._open[1] == kind:
            return self._open[0]
        index = self._start(out, kind)
        self._open = (index, kind)
        return index

    def _part(self, raw: Mapping[str, Any], i: int, out: list[StreamEvent]) -> None:
        assert self._ids is not None
        call = pick(raw, "functionCall", "function_call")
        if self._streamed is not None and isinstance(call, Mapping) and not call.get("name"):
            self._continue_call(call, out)
            return
        self._end_call(out)  # any other part ends a call that was arriving in pieces
        if isinstance(call, Mapping) and streams(raw):
            self._open_call(raw, call, out)
            return
        for part in parse_upstream_part(raw, f"parts[{i}]", self._ids):
            self._emit(part, out)

    def _open_call(self, raw: Mapping[str, Any], call: Mapping[str, Any], out: list[StreamEvent]) -> None:
        """The first piece of a call with ``partialArgs``: the block opens now, its arguments come at the end."""
        assert self._ids is not None
        name = str(call.get("name") or "")
        given = call.get("id")
        signature = pick(raw, "thoughtSignature", "thought_signature")
        self._had_calls = True
        index = self._start(out, "tool_call", id=self._ids.call(name, given if isinstance(given, str) else None),
                            name=name, signature=signature if isinstance(signature, str) else None)
        self._streamed = (index, Arguments())
        self._continue_call(call, out)

    def _continue_call(self, call: Mapping[str, Any], out: list[StreamEvent]) -> None:
        assert self._streamed is not None
        args = self._streamed[1]
        args.add(pick(call, "partialArgs", "partial_args"))
        if isinstance(call.get("args"), Mapping):
            args.value.update(call["args"])
        if not continues(call):
            self._end_call(out)

    def _end_call(self, out: list[StreamEvent]) -> None:
        if self._streamed is not None:
            index, args = self._streamed
            self._streamed = None
            out += [ToolArgsDelta(index, dumps(args.value)), BlockStop(index)]

    def _emit(self, part: Any, out: list[StreamEvent]) -> None:
        if isinstance(part, ThinkingPart):
            index = self._continue(out, "thinking")
            if part.text:
                out.append(ThinkingDelta(index, part.text))
            if part.signature:
                out.append(SignatureDelta(index, part.signature, origin="gemini"))
                self._close(out)
        elif isinstance(part, TextPart):
            self._last_text = self._continue(out, "text")
            out.append(TextDelta(self._last_text, part.text))
        elif isinstance(part, ToolCallPart):
            self._had_calls = True
            index = self._start(out, "tool_call", id=part.id, name=part.name, signature=part.signature)
            out += [ToolArgsDelta(index, part.arguments), BlockStop(index)]
        else:
            raw = render_image(part) if isinstance(part, ImagePart) else getattr(part, "data", None)
            index = self._start(out, "raw", raw=dict(raw or {}))
            out.append(BlockStop(index))


def _passthrough_error(event: SSEEvent, body: dict[str, Any] | None) -> bool:
    return body is not None and "error" in body


def _passthrough_error_chunk(err: StreamError) -> bytes:
    return encode(dumps(error_payload(err.status, err.message, err.kind)))


def _passthrough_step(stream: PassthroughStream, event: SSEEvent, body: dict[str, Any]) -> bytes | None:
    """Keep the running usage; the chunk that ends the last candidate carries the cost and ends the stream.

    With ``candidateCount`` the candidates may end in different chunks, the usage running on: the
    stream ends once every candidate asked for has its ``finishReason``.
    """
    if stream.done:
        return None
    meta = body.get("usageMetadata")
    if isinstance(meta, Mapping):
        stream.usage = usage_from_gemini(meta)
    candidate = _candidate(body)
    stream.usage = with_searches(stream.usage or Usage(), candidate)
    candidates = body.get("candidates")
    for cand in candidates if isinstance(candidates, list) else []:
        if isinstance(cand, Mapping) and isinstance(cand.get("finishReason"), str):
            stream.ended.add(cand["index"] if isinstance(cand.get("index"), int) else 0)
    finished = len(stream.ended) >= stream.choices if candidate else _blocked(body)
    if not finished:
        return None
    stream.done = True
    priced = dict(body)
    priced["usageMetadata"] = {**(meta if isinstance(meta, Mapping) else {}), "costCredits": stream.cost()}
    return encode(dumps(priced))


# A Gemini upstream's chunks to a Gemini caller.
PASSTHROUGH = PassthroughRules(is_error=_passthrough_error, render_error=_passthrough_error_chunk,
                               step=_passthrough_step, model_key="modelVersion",
                               sniff=tuple(re.compile(b'"' + name + b'"')
                                            for name in (b"usageMetadata", b"finishReason", b"promptFeedback", b"error")))
