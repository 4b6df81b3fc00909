"""Server-sent events: a split-safe decoder and an encoder.

The decoder follows the WHATWG event-stream rules that matter for LLM
streams: lines end in ``\\r\\n``, ``\\n`` or ``\\r``; ``data`` lines of one
event are joined with ``\\n``; lines starting with ``:`` are comments; a
blank line dispatches the event. Bytes may arrive split anywhere, even
between ``\\r`` and ``\\n`` or inside a multi-byte character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event; ``raw`` is its bytes as received, ending in a blank line."""

    event: str | None
    data: str
    raw: bytes


class SSEDecoder:
    """Turn a byte stream into events, one ``feed`` at a time."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._raw = bytearray()
        self._data: list[str] = []
        self._event: str | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return the events they completed."""
        self._buf += chunk
        events: list[SSEEvent] = []
        pos = 0
        while True:
            match = _LINE_END.search(self._buf, pos)
            if match is None:
                break
            # A lone \r at the end may be the first half of \r\n: wait for the next byte.
            if match.group() == b"\r" and match.end() == len(self._buf):
                break
            line = bytes(self._buf[pos : match.start()])
            self._raw += self._buf[pos : match.end()]
            pos = match.end()
            event = self._line(line)
            if event is not None:
                events.append(event)
        del self._buf[:pos]
        return events

    def skip_bom(self) -> None:
        """The stream's first bytes were read elsewhere and had no byte-order mark: never strip one later."""
        self._started = True

    def flush(self) -> list[SSEEvent]:
        """End of stream: dispatch a last event that had no trailing blank line."""
        events: list[SSEEvent] = []
        if self._buf:
            line = bytes(self._buf.rstrip(b"\r"))
            # A held-back final \r already ended its line; anything else gets its missing end.
            self._raw += self._buf if self._buf.endswith(b"\r") else self._buf + b"\n"
            self._buf.clear()
            event = self._line(line)
            if event is not None:
                return [event]
        if self._data:
            self._raw += b"\n"
            events.append(self._dispatch())
        self._reset()
        return events

    def _line(self, line: bytes) -> SSEEvent | None:
        if not self._started:
            self._started = True
            if line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
        if not line:
            if self._data:
                return self._dispatch()
            self._reset()  # a comment-only or empty block carries no event
            return None
        if line.startswith(b":"):
            return None
        text = line.decode("utf-8", "replace")
        name, sep, value = text.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value or None
        return None

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent(event=self._event, data="\n".join(self._data), raw=bytes(self._raw))
        self._reset()
        return event

    def _reset(self) -> None:
        self._raw = bytearray()
        self._data = []
        self._event = None


def encode(data: str, event: str | None = None) -> bytes:
    """Frame one event; a multi-line ``data`` becomes several ``data:`` lines."""
    head = f"event: {event}\n" if event is not None else ""
    if "\n" not in data and "\r" not in data:  # one line: serialised JSON always is
        return f"{head}data: {data}\n\n".encode()
    body = "".join(f"data: {line}\n" for line in re.split(r"\r\n|\r|\n", data))
    return f"{head}{body}\n".encode()
