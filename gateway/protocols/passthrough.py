"""Forward an upstream's stream to a caller of the same protocol: one class, each protocol's rules.

The events go out as the upstream sent them, but for two things. The event
that ends the message carries the call's cost (the protocol says where), and
an upstream's error event is read by ``upstream_error`` (redacted, keys of
the channel included) and written again in the protocol's own error shape:
no upstream error reaches a caller as the upstream wrote it.

A protocol gives its ``PassthroughRules``: how an error event looks, how to
write one, and ``step``, which reads one JSON event's usage and end into the
stream's score and returns the bytes to send (None: the event as it came).

Most events are text deltas that need nothing: ``sniff`` (a bytes pattern) says
which events may carry usage, an end or an error, and only those are parsed;
the rest are forwarded as their raw bytes. When the channel names the model
differently upstream (``model_map``), the answer's model field (``model_key``)
is rewritten to the id the caller asked for, in place in the bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from gateway.canonical import Usage
from gateway.canonical_events import StreamError
from gateway.protocols import upstream_error
from gateway.sse import SSEEvent

CostFn = Callable[[Usage], int]


@dataclass(frozen=True)
class PassthroughRules:
    """What a passthrough needs to know of one protocol's events."""

    is_error: Callable[[SSEEvent, dict[str, Any] | None], bool]
    render_error: Callable[[StreamError], bytes]
    step: Callable[[PassthroughStream, SSEEvent, dict[str, Any]], bytes | None]
    end_marker: str | None = None  # a data line that ends the stream (OpenAI's ``[DONE]``)
    # Events this matches are parsed (usage, an end, an error); a false match only costs a parse.
    sniff: re.Pattern[bytes] = re.compile(rb".")
    model_key: str = "model"  # the answer's field that names the model


def model_rewriter(key: str, model: str) -> Callable[[bytes], bytes]:
    """Replace the value of the first ``"key": "..."`` member in JSON bytes with ``model``.

    A quote that follows ``{``, ``,`` or whitespace is never inside a JSON string (there
    every quote is escaped), so the match is always a real member, never text.
    """
    pattern = re.compile(rb'([{,]\s*"' + re.escape(key.encode()) + rb'"\s*:\s*)"(?:[^"\\]|\\.)*"')
    value = json.dumps(model).encode()
    name = b'"' + key.encode() + b'"'
    compact = name + b':"'

    def rewrite(data: bytes) -> bytes:
        # Fast path, same result as the pattern: the first mention of the key is a compact
        # member (``{"model":"…"`` or ``,"model":"…"``) whose value has no escapes.
        at = data.find(name)
        if at > 0 and data[at - 1] in b"{," and data.startswith(compact, at):
            start = at + len(compact)
            end = data.find(b'"', start)
            if end >= 0 and data.find(b"\\", start, end) < 0:
                return data[:at + len(name) + 1] + value + data[end + 1:]
        return pattern.sub(lambda m: m.group(1) + value, data, count=1)

    return rewrite


class PassthroughStream:
    """One upstream's events to a caller of its own protocol; keeps ``usage``, ``done`` and ``error``."""

    def __init__(self, rules: PassthroughRules, *, include_usage: bool, cost_fn: CostFn,
                 secrets: Iterable[str] = (), model: str | None = None, choices: int = 1) -> None:
        self.rules = rules
        # ``model``: the id the caller asked for, when the upstream names it otherwise.
        self.rename = model_rewriter(rules.model_key, model) if model is not None else None
        self.include_usage = include_usage
        self._cost_fn = cost_fn
        self._secrets = tuple(secrets)
        self.usage: Usage | None = None
        self.done = False
        self.finished = False  # the message said it is finishing (its usage may still follow)
        self.error: StreamError | None = None
        self.choices = choices  # answers the upstream gives (Gemini candidateCount): each one's end is seen
        self.ended: set[int] = set()  # the answers (by index) that have ended

    def feed(self, event: SSEEvent) -> bytes:
        """Return the bytes to forward for one upstream event."""
        if self.rules.end_marker is not None and event.data.strip() == self.rules.end_marker:
            self.done = True
            return event.raw
        payload = _load(event.data)
        if self.rules.is_error(event, payload):  # upstream wording is cleaned before a caller sees it
            self.error = upstream_error.from_event(payload if payload is not None else event.data,
                                                   secrets=self._secrets)
            return self.rules.render_error(self.error)
        if payload is None:
            return event.raw
        out = self.rules.step(self, event, payload)
        out = event.raw if out is None else out
        return self.rename(out) if self.rename is not None and out else out

    def cost(self) -> int:
        """The call's cost at the usage seen so far."""
        return self._cost_fn(self.usage or Usage())


def _load(data: str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
