"""Forward an upstream's stream to a caller of the same protocol: one class, each protocol's rules.

The events go out as the upstream sent them, but for two things. The event
that ends the message carries the call's cost (the protocol says where), and
an upstream's error event is read by ``upstream_error`` (redacted, keys of
the channel included) and written again in the protocol's own error shape:
no upstream error reaches a caller as the upstream wrote it.

A protocol gives its ``PassthroughRules``: how an error event looks, how to
write one, and ``step``, which reads one JSON event's usage and end into the
stream's score and returns the bytes to send (None: the event as it came).

Most events are text deltas that need nothing: ``sniff`` (bytes patterns) says
which events may carry usage, an end or an error, and only those are parsed;
the rest are forwarded as their raw bytes. When the channel names the model
differently upstream (``model_map``), the answer's model members (``model_key``)
are rewritten to the id the caller asked for, in place in the bytes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
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
    # Events any of these match are parsed (usage, an end, an error); a false match only costs a parse.
    # Each starts with a literal: the relay searches a whole read with each, and a literal start
    # makes that a fast scan (one alternation starting with a quote tries every quote in the JSON).
    sniff: tuple[re.Pattern[bytes], ...] = (re.compile(rb"."),)
    model_key: str = "model"  # the answer's field that names the model


class ModelRename:
    """Replace the value of every ``"key": "..."`` member in JSON bytes with ``model``.

    A quote that follows ``{``, ``,`` or whitespace is never inside a JSON string (there
    every quote is escaped), so a match is always a real member, never text.
    """

    def __init__(self, key: str, model: str) -> None:
        self._pattern = re.compile(rb'([{,]\s*"' + re.escape(key.encode()) + rb'"\s*:\s*)"(?:[^"\\]|\\.)*"')
        self._value = json.dumps(model).encode()
        name = self._name = b'"' + key.encode() + b'"'
        # The compact form real vendors write: ``{"model":"…"`` or ``,"model":"…"``, the value one line
        # with no escapes. The pattern starts with the name (a literal: a fast scan); the counts check
        # that every mention of the name is such a member.
        self._compact = re.compile(re.escape(name) + rb':"[^"\\\n]*"')
        self._template = (name + b":" + self._value).replace(b"\\", b"\\\\")  # a template: \\ doubled
        self._members = (b"{" + name + b":", b"," + name + b":")
        # The member as this upstream last wrote it and its renamed form (``,"model":"gpt-x"``): a guess
        # that one ``replace`` can check by the length it adds, tried first.
        self._seen: tuple[bytes, bytes] | None = None

    def __call__(self, data: bytes) -> bytes:
        out = self.compact(data)
        return out if out is not None else self._pattern.sub(lambda m: m.group(1) + self._value, data)

    def compact(self, data: bytes) -> bytes | None:
        """The rename when every mention of the key is a compact member (what ``__call__`` gives), else None.

        Matches never cross a line, so on several events at once this is each event's rename.
        """
        mentions = data.count(self._name)
        if not mentions:
            return data
        seen = self._seen
        if seen is not None:  # every mention that member, as written before: one pass
            out = data.replace(seen[0], seen[1])
            if (len(out) - len(data)) == mentions * (len(seen[1]) - len(seen[0])):
                return out
        members = data.count(self._members[1])  # after a comma: where vendors put it
        if members != mentions and members + data.count(self._members[0]) != mentions:
            return None
        out, n = self._compact.subn(self._template, data)
        if n != mentions:
            return None
        if members == mentions:
            self._learn(data)
        return out

    def _learn(self, data: bytes) -> None:
        """Keep the first member's exact bytes (after a comma) for the one-pass guess."""
        head = self._members[1] + b'"'
        at = data.find(head)
        end = data.find(b'"', at + len(head))
        member = data[at:end + 1]
        renamed = self._members[1] + self._value
        # One mention in it, and a length change: a replace then counts its own replacements.
        if at >= 0 and end >= 0 and member.count(self._name) == 1 and len(member) != len(renamed):
            self._seen = (member, renamed)


@functools.lru_cache(maxsize=1024)
def model_rewriter(key: str, model: str) -> ModelRename:
    """The rename of every ``key`` member to ``model`` (``ModelRename``), built once per pair."""
    return ModelRename(key, model)


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


_DECODER = json.JSONDecoder()
_WS = " \t\n\r"


def with_member(data: str, key: str, name: str, value: int, current: Mapping[str, Any]) -> str | None:
    """``data``, a JSON object's text, with ``"name": value`` added to the object its top-level ``key`` holds.

    The rest of the text stays as the upstream wrote it. Only where the place is certain:
    ``key`` written once (so that mention is the top-level member, which ``current`` holds
    parsed), no ``\\u`` escape anywhere (a key could hide behind one), ``name`` not there yet.
    Otherwise None, and the caller writes the whole object again.
    """
    mention = f'"{key}"'
    if name in current or data.count(mention) != 1 or "\\u" in data:
        return None
    at = data.index(mention) + len(mention)
    while at < len(data) and data[at] in _WS:
        at += 1
    if not data.startswith(":", at):
        return None
    at += 1
    while at < len(data) and data[at] in _WS:
        at += 1
    if not data.startswith("{", at):
        return None
    try:
        obj, end = _DECODER.raw_decode(data, at)
    except ValueError:
        return None
    if obj != current:
        return None
    close = end - 1  # the object's closing brace
    return f'{data[:close]}{"," if obj else ""}"{name}":{value}{data[close:]}'


def _load(data: str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
