"""A chat call's exchange with one target: render it for the provider, send it, read or prime the answer.

The request passes through when the caller speaks the upstream's protocol,
else it is translated (``gateway.protocols.carry``). A whole answer is read
and parsed; a stream is primed with its first bytes, so a stream that dies at
once counts as a failed attempt and is retried. The targets, the retries and
the Router's score are ``gateway.upstream``'s; the ledger is not touched here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

from core.errors import UpstreamError
from core.ratecard import ModelCard
from gateway import providers, upstream
from gateway.call import Call
from gateway.canonical import ChatResponse
from gateway.protocols import carry
from gateway.protocols.contract import UpstreamCodec
from gateway.providers.base import Prepared, Provider
from gateway.routing import Router, Target
from gateway.upstream import READ_ERRORS, Timeout


@dataclass
class Opened:
    """A successful attempt: who answered and what (JSON parsed, or a stream primed)."""

    target: Target
    provider: Provider
    card: ModelCard
    passthrough: bool
    reply: Any  # the provider's reply: ``providers.base.UpstreamReply`` or a local one
    body: bytes = b""
    response: ChatResponse | None = None
    first: bytes = b""
    rest: Iterator[bytes] | None = None

    @property
    def codec(self) -> UpstreamCodec:
        return self.provider.codec

    def whole(self) -> ChatResponse:
        """The whole answer, parsed when the call was opened; a stream opens without one."""
        if self.response is None:
            raise UpstreamError("the upstream's answer was not read")
        return self.response

    def chunks(self) -> Iterator[bytes]:
        """The primed first bytes, then the rest as they arrive."""
        if self.first:
            yield self.first
        if self.rest is not None:
            yield from self.rest


def open_call(call: Call, router: Router, *, deadline: float) -> Opened:
    """The first of ``call``'s targets to answer 2xx (the one retry loop, ``gateway.upstream``)."""
    return upstream.first_answer(call, router, lambda card, target: exchange(call, card, target), deadline=deadline)


def exchange(call: Call, card: ModelCard, target: Target) -> Callable[[Timeout], Opened]:
    """Render ``call`` for ``target`` now; the returned step sends it and reads the answer."""
    provider = providers.get(target.channel.protocol)
    prepared, passthrough = build(call, provider, card, target)
    return lambda timeout: _send(call, provider, prepared, card, target, passthrough, timeout)


def build(call: Call, provider: Provider, card: ModelCard, target: Target) -> tuple[Prepared, bool]:
    """Render the upstream request: passthrough when the caller speaks the upstream's protocol."""
    codec = provider.codec
    stream = call.stream
    assert call.req is not None
    if call.protocol == provider.protocol:
        assert call.raw is not None
        carry.check_model(call.req, card)
        payload = codec.passthrough_request(call.raw, upstream_model=target.upstream_model, stream=stream)
        prepared = provider.prepare(target.channel, target.api_key, target.upstream_model, payload,
                                    stream=stream, version=call.version, forward=call.forward)
        return prepared, True
    req = carry.adapt(call.req, upstream=provider.protocol, card=card)  # every part carried, or 400
    if req.max_tokens is None:
        req = replace(req, max_tokens=card.max_output_tokens or call.max_output)
    payload = codec.render_request(req, upstream_model=target.upstream_model, stream=stream)
    prepared = provider.prepare(target.channel, target.api_key, target.upstream_model, payload, stream=stream)
    return prepared, False


def _send(call: Call, provider: Provider, prepared: Prepared, card: ModelCard, target: Target,
          passthrough: bool, timeout: Timeout) -> Opened:
    try:
        reply = provider.send(prepared, timeout=timeout)
    except READ_ERRORS as exc:
        raise upstream.transport_error(exc) from None
    if reply.status >= 300:
        try:
            body = reply.read()
        except READ_ERRORS:
            body = b""
        raise upstream.refusal(target, reply.status, body, reply.retry_after)
    opened = Opened(target, provider, card, passthrough, reply)
    try:
        if call.stream:
            opened.rest = iter(reply.chunks())
            opened.first = next(opened.rest, b"")
            if not opened.first:
                raise UpstreamError("upstream closed the stream before any event")
        else:
            assert call.req is not None
            opened.body = reply.read()
            opened.response = carry.mark_custom(
                provider.codec.parse_response(json.loads(opened.body), tools=call.req.tools), call.req.tools)
    except READ_ERRORS as exc:
        reply.close()
        raise upstream.transport_error(exc, "upstream connection broke before the answer") from None
    except ValueError:
        raise UpstreamError("upstream sent an unreadable answer") from None
    return opened
