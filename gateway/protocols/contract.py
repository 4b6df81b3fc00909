"""What a protocol codec provides: the contract every ``gateway.protocols.<name>`` package meets.

A codec is a package (``anthropic``, ``openai_chat``, ``openai_responses``,
``gemini``) whose ``__init__`` exports the names below; ``registry`` maps each
protocol a caller can speak to its codec. Codecs are pure: bodies and events
in, canonical types or bytes out, no I/O, no ledger.

- ``Codec``: the caller's side, which every protocol has. Parse the caller's
  body, render the answer, an error, and the stream of canonical events.
- ``UpstreamCodec``: the upstream's side too, for a protocol the gateway also
  speaks to vendors (the Responses API is only ever a caller's). Render the
  upstream request (translated, or the caller's own body passed through), read
  the answer, the error and the event stream, or pass that stream through
  (one ``passthrough.PassthroughStream`` with the protocol's ``PASSTHROUGH`` rules).

An upstream's error, in any vendor's shape, is read by ``upstream_error``
(redacted there) and rendered by the caller's codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable, Protocol

from core.errors import GatewayError, UpstreamError
from gateway.canonical import ChatRequest, ChatResponse, Tool
from gateway.canonical_events import StreamEvent
from gateway.protocols.passthrough import PassthroughRules
from gateway.sse import SSEEvent


class StreamRenderer(Protocol):
    """Canonical stream events -> the caller's SSE bytes (b"" when an event has no form there)."""

    def render(self, event: StreamEvent) -> bytes: ...


class StreamParser(Protocol):
    """An upstream's SSE events -> canonical stream events; ``finish`` at the upstream's EOF."""

    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


class MakeRenderer(Protocol):
    def __call__(self, *, model: str, message_id: str, created: int, include_usage: bool = ...) -> StreamRenderer: ...


class MakeParser(Protocol):
    def __call__(self, *, tools: Iterable[Tool] = ..., secrets: Iterable[str] = ...) -> StreamParser: ...


class Codec(Protocol):
    """The caller's side of a protocol."""

    def parse_request(
        self, body: Mapping[str, Any], *, version: str | None = ..., model: str | None = ..., stream: bool | None = ...
    ) -> ChatRequest: ...

    def render_response(self, resp: ChatResponse, *, model: str, created: int) -> dict[str, Any]: ...

    def render_error(self, err: GatewayError) -> tuple[int, dict[str, Any]]: ...

    def render_stream_error(self, err: GatewayError) -> bytes: ...

    @property
    def StreamRenderer(self) -> MakeRenderer: ...  # noqa: N802 - the class each codec exports


class UpstreamCodec(Codec, Protocol):
    """A protocol the gateway also speaks to upstreams."""

    def render_request(self, req: ChatRequest, *, upstream_model: str, stream: bool) -> dict[str, Any]: ...

    def passthrough_request(self, body: Mapping[str, Any], *, upstream_model: str, stream: bool) -> dict[str, Any]: ...

    def parse_response(self, body: Mapping[str, Any], *, tools: Iterable[Tool] = ...) -> ChatResponse: ...

    def parse_error(self, status: int, body: bytes, *, secrets: Iterable[str] = ...) -> UpstreamError: ...

    @property
    def StreamParser(self) -> MakeParser: ...  # noqa: N802

    @property
    def PASSTHROUGH(self) -> PassthroughRules: ...  # noqa: N802 - how its stream passes through (``passthrough``)
