"""Carry an upstream's event stream to the caller, event by event, and keep score of it.

Two relays share one shape (``feed`` bytes in, bytes out; ``finish`` at EOF;
``usage``, ``done``, ``error``, ``delivered_tokens``):

- ``PassthroughRelay``: caller and upstream speak the same protocol; a
  ``PassthroughStream`` with the codec's rules forwards the raw events, adding
  the cost to the final usage event and redacting an error event.
- ``TranslateRelay``: the upstream's ``StreamParser`` gives canonical events,
  the caller's ``StreamRenderer`` writes them in the caller's protocol.

No ledger and no I/O here: the pipeline reads the upstream and settles.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterable

from gateway import sse
from gateway.canonical import Tool, Usage
from gateway.canonical_events import (
    MessageDelta,
    MessageStart,
    MessageStop,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from gateway.protocols import carry
from gateway.protocols.contract import Codec, UpstreamCodec
from gateway.protocols.passthrough import PassthroughStream

CostFn = Callable[[Usage], int]


class PassthroughRelay:
    """Same protocol in and out: raw bytes, plus the cost on the final usage event.

    Event boundaries are found by scanning the bytes for blank lines. Each read is
    searched whole with ``rules.sniff``: a run of events none of which matches (text
    deltas) goes out as it came, in one piece, unparsed (renamed in place when the
    channel maps the model); an event that matches is parsed. Blocks that are not
    plain ``data:``/``event:`` events (comments, stray blank lines) and any stream with a
    ``\\r`` or a byte-order mark take the full SSE decoder instead, so what the caller
    receives is the same either way.
    """

    def __init__(self, codec: UpstreamCodec, *, include_usage: bool, cost_fn: CostFn, secrets: Iterable[str] = (),
                 model: str | None = None, choices: int = 1) -> None:
        self._decoder = sse.SSEDecoder()
        self._rules = codec.PASSTHROUGH
        self._stream = PassthroughStream(self._rules, include_usage=include_usage, cost_fn=cost_fn,
                                         secrets=secrets, model=model, choices=choices)
        self._buf = b""
        self._slow = False  # set for good once the stream shows a \r or a BOM
        self._first = True
        self._events = 0

    def feed(self, chunk: bytes) -> bytes:
        if self._slow:
            return self._forward(self._decoder.feed(chunk))
        buf = self._buf + chunk if self._buf else chunk
        if self._first and buf:
            self._first = False
            if buf.startswith(b"\xef\xbb\xbf"):
                self._slow, self._buf = True, b""
                return self._forward(self._decoder.feed(buf))
            self._decoder.skip_bom()
        if b"\r" in buf:
            self._slow, self._buf = True, b""
            return self._forward(self._decoder.feed(buf))
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._buf = buf
            return b""
        self._buf = buf[end + 2:]
        body = buf[:end + 2]
        if b"\n\n\n" in body or body.startswith(b"\n"):  # stray blank lines: block by block, as split
            return b"".join([self._block(raw) for raw in body[:-2].split(b"\n\n")])
        return self._scan(body)

    def finish(self) -> bytes:
        if self._buf:
            self._slow, buf, self._buf = True, self._buf, b""
            head = self._forward(self._decoder.feed(buf))
            return head + self._forward(self._decoder.flush())
        return self._forward(self._decoder.flush())

    def _scan(self, body: bytes) -> bytes:
        """Whole events (no stray blank lines): runs that no sniff pattern matches in one piece, the rest alone."""
        sniff = self._rules.sniff
        size = len(body)
        nxt = [-1] * len(sniff)  # each pattern's next match at or after ``pos`` (``size``: none)
        out = []
        pos = 0
        while pos < size:
            hit = size
            for i, pattern in enumerate(sniff):
                at = nxt[i]
                if at < pos:
                    m = pattern.search(body, pos)
                    at = nxt[i] = m.start() if m is not None else size
                hit = min(hit, at)
            if hit == size:
                start = size
            else:  # where the hit's event starts
                start = body.rfind(b"\n\n", pos, hit)
                start = pos if start < 0 else start + 2
            if start > pos:
                out.append(self._run(body[pos:start]))
            if hit == size:
                break
            end = body.find(b"\n\n", hit) + 2
            out.append(self._block(body[start:end - 2]))
            pos = end
        return b"".join(out)

    def _run(self, run: bytes) -> bytes:
        """Events no sniff pattern matched (each ends in a blank line): at once if all plain, else one by one."""
        # No stray blank lines here (``feed``): blocks end exactly at each blank line.
        if run.startswith(b"data:"):  # one data line each: n blocks, 2n newlines, every block a data line
            n = run.count(b"\n\ndata:") + 1
            plain = run.count(b"\n") == 2 * n
        elif run.startswith(b"event:"):  # an event line then a data line each
            n = run.count(b"\n\nevent:") + 1
            plain = (run.count(b"\n") == 3 * n and run.count(b"\ndata:") == n
                     and all(block.count(b"\n") == 1 for block in run[:-2].split(b"\n\n")))
        else:
            n, plain = 0, False
        rename = self._stream.rename
        if plain:
            renamed = run if rename is None else rename.compact(run)
            if renamed is not None:
                self._events += n
                return renamed
        return b"".join([self._block(raw) for raw in run[:-2].split(b"\n\n")])

    def _block(self, raw: bytes) -> bytes:
        """One blank-line-terminated block (without its blank line) to the bytes to send."""
        plain = raw.startswith(b"data:") or (raw.startswith(b"event:") and b"\ndata:" in raw)
        if not plain or raw.endswith(b"\n"):
            return self._forward(self._decoder.feed(raw + b"\n\n"))  # comments, stray blank lines
        raw += b"\n\n"
        if any(pattern.search(raw) is not None for pattern in self._rules.sniff):
            return self._forward(self._parse(raw))
        self._events += 1
        rename = self._stream.rename
        return rename(raw) if rename is not None else raw

    def _parse(self, raw: bytes) -> list[sse.SSEEvent]:
        """A plain event's fields (as the decoder reads them), without the decoder for the common shapes."""
        lines = raw.count(b"\n")
        if lines == 2 and raw.startswith(b"data:"):
            return [sse.SSEEvent(None, _field(raw[5:-2]), raw)]
        if lines == 3 and raw.startswith(b"event:"):
            cut = raw.index(b"\n")
            if raw.startswith(b"data:", cut + 1):
                return [sse.SSEEvent(_field(raw[6:cut]) or None, _field(raw[cut + 6:-2]), raw)]
        return self._decoder.feed(raw)

    def _forward(self, events: list[sse.SSEEvent]) -> bytes:
        out = []
        for ev in events:
            data = self._stream.feed(ev)
            if data:
                self._events += 1
                out.append(data)
        return b"".join(out)

    @property
    def usage(self) -> Usage | None:
        return self._stream.usage

    @property
    def done(self) -> bool:
        return bool(self._stream.done)

    @property
    def error(self) -> StreamError | None:
        return self._stream.error

    @property
    def delivered_tokens(self) -> int:
        # Vendors send about one token per content event; a fair floor for an abandoned stream.
        return self._events


def _field(value: bytes) -> str:
    """A field's value as the SSE decoder reads it: one leading space dropped, UTF-8 with replacement."""
    return (value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace")


class TranslateRelay:
    """Upstream protocol -> canonical events -> caller protocol."""

    def __init__(
        self,
        upstream: UpstreamCodec,
        caller: Codec,
        *,
        model: str,
        message_id: str,
        created: int,
        include_usage: bool,
        cost_fn: CostFn,
        tools: Iterable[Tool] = (),
        secrets: Iterable[str] = (),
    ) -> None:
        self._decoder = sse.SSEDecoder()
        tools = tuple(tools)
        self._custom = carry.custom_names(tools)
        # The declared tools let the parser map names the upstream was sent cut short back to the caller's;
        # ``secrets`` (the channel's keys) never reach the caller in an upstream's error message.
        self._parser = upstream.StreamParser(tools=tools, secrets=secrets)
        self._renderer = caller.StreamRenderer(
            model=model, message_id=message_id, created=created, include_usage=include_usage
        )
        self.renderer: Any = self._renderer  # the caller's renderer, for protocol-specific state (Responses)
        self._cost_fn = cost_fn
        self.usage: Usage | None = None
        self.done = False
        self.error: StreamError | None = None
        self._chars = 0

    def feed(self, chunk: bytes) -> bytes:
        out = []
        for ev in self._decoder.feed(chunk):
            for event in self._parser.feed(ev):
                out.append(self._emit(event))
        return b"".join(out)

    def finish(self) -> bytes:
        out = []
        for ev in self._decoder.flush():
            for event in self._parser.feed(ev):
                out.append(self._emit(event))
        if not self.done and self.error is None:
            for event in self._parser.finish():
                out.append(self._emit(event))
        return b"".join(out)

    def fail(self, err: StreamError) -> bytes:
        """End the caller's stream with the protocol's error event."""
        if self.done or self.error is not None:
            return b""
        return self._emit(err)

    def _emit(self, event: StreamEvent) -> bytes:
        if self._custom:
            event = carry.mark_custom_event(event, self._custom)
        if isinstance(event, (TextDelta, ThinkingDelta)):
            self._chars += len(event.text)
        elif isinstance(event, ToolArgsDelta):
            self._chars += len(event.partial_json)
        elif isinstance(event, MessageStart):
            self.usage = event.usage if self.usage is None else self.usage.merged(event.usage)
        elif isinstance(event, MessageDelta):
            if event.usage is not None:
                self.usage = event.usage if self.usage is None else self.usage.merged(event.usage)
                event = replace(event, cost_credits=self._cost_fn(self.usage))
        elif isinstance(event, MessageStop):
            self.done = True
        elif isinstance(event, StreamError):
            self.error = event
        return self._renderer.render(event) or b""

    @property
    def delivered_tokens(self) -> int:
        return (self._chars + 3) // 4


Relay = PassthroughRelay | TranslateRelay  # the one shape a stream's caller reads
