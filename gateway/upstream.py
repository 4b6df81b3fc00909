"""Try a call's targets in order until one answers: the retry and fallback policy.

A connect error, a timeout, a 429, 5xx or 529 moves on to the next key or
channel (``core.errors.is_retryable``), then to the caller's fallback models;
anything else is the answer. Nothing here has reached the caller yet: for a
stream the first bytes are read before the attempt counts as a success, so a
stream that dies at once is retried too. Each attempt is reported to the
Router. No ledger here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any, Iterator

import requests
import urllib3.exceptions

from core.errors import GatewayError, NoChannel, UpstreamError, UpstreamTimeout, is_retryable
from gateway import providers
from gateway.canonical import ChatResponse
from gateway.protocols.contract import UpstreamCodec
from gateway.routing import Router, Target

# Reading a body can fail below requests' own exception types (chat calls use urllib3 directly).
READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


def timed_out(exc: BaseException) -> bool:
    """Tell a timeout from other transport failures, as requests did: a refused connection is not one."""
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.ReadTimeoutError)):
        return True
    return isinstance(exc, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError)


@dataclass
class Opened:
    """A successful attempt: who answered and what (JSON parsed, or a stream primed)."""

    target: Target
    provider: providers.Provider
    card: Any
    passthrough: bool
    reply: Any
    body: bytes = b""
    response: ChatResponse | None = None
    first: bytes = b""
    rest: Iterator[bytes] | None = None

    @property
    def codec(self) -> UpstreamCodec:
        return self.provider.codec

    def chunks(self) -> Iterator[bytes]:
        """The primed first bytes, then the rest as they arrive."""
        if self.first:
            yield self.first
        if self.rest is not None:
            yield from self.rest


def open_call(call: Any, router: Router, *, deadline: float) -> Opened:
    """Return the first target that answers 2xx; raise the last error when none does."""
    last: GatewayError | None = None
    for card in call.cards:
        for target in router.targets(card.id, session=call.session, tenant=str(call.principal.org_id)):
            if time.perf_counter() >= deadline:
                raise last or UpstreamTimeout("request deadline exceeded before an upstream answered")
            try:
                opened = attempt(call, router, card, target, deadline=deadline)
            except GatewayError as err:
                if not is_retryable(err):
                    raise
                last = err
                continue
            if card is not call.cards[0]:
                call.fallback_from = call.cards[0].id
                call.fallback_reason = f"{call.cards[0].id} unavailable ({_describe(last)})"
            return opened
    if last is None:
        # Channels exist (admission checked) but every one is cooling down or has its circuit open.
        raise NoChannel(f"every channel serving model '{call.cards[0].id}' is unavailable right now; retry shortly",
                        retry_after=5)
    raise last


def _describe(err: GatewayError | None) -> str:
    if err is None:
        return "no channel"
    status = getattr(err, "upstream_status", None)
    return f"upstream {status}: {err.code}" if status else err.code


def build(call: Any, provider: providers.Provider, card: Any, target: Target) -> tuple[Any, bool]:
    """Render the upstream request: passthrough when the caller speaks the upstream's protocol."""
    codec = provider.codec
    stream = call.stream
    if call.protocol == provider.protocol:
        payload = codec.passthrough_request(call.raw, upstream_model=target.upstream_model, stream=stream)
        prepared = provider.prepare(target.channel, target.api_key, target.upstream_model, payload,
                                    stream=stream, version=call.version, forward=call.forward)
        return prepared, True
    req = call.req
    if req.max_tokens is None:
        req = replace(req, max_tokens=card.max_output_tokens or call.max_output)
    payload = codec.render_request(req, upstream_model=target.upstream_model, stream=stream)
    prepared = provider.prepare(target.channel, target.api_key, target.upstream_model, payload, stream=stream)
    return prepared, False


def attempt(call: Any, router: Router, card: Any, target: Target, *, deadline: float) -> Opened:
    """One try at one (channel, key): raises a mapped UpstreamError on failure."""
    provider = providers.get(target.channel.protocol)
    prepared, passthrough = build(call, provider, card, target)
    remaining = max(0.1, deadline - time.perf_counter())
    timeout = (min(target.channel.connect_timeout_s, remaining), min(target.channel.timeout_s, remaining))
    t0 = time.perf_counter()
    call.provider = provider.vendor(target.channel, default=card.vendor)
    call.channel = target.channel.name
    try:
        opened = _exchange(call, provider, prepared, card, target, passthrough, timeout)
    except GatewayError as err:
        status = getattr(err, "upstream_status", None)
        router.report(target, ok=False, latency_ms=(time.perf_counter() - t0) * 1000, status=status,
                      retry_after=getattr(err, "retry_after_s", None))
        raise
    finally:
        call.upstream_s += time.perf_counter() - t0
    router.report(target, ok=True, latency_ms=(time.perf_counter() - t0) * 1000, status=200)
    return opened



def _exchange(call: Any, provider: providers.Provider, prepared: Any, card: Any, target: Target,
              passthrough: bool, timeout: tuple[float, float]) -> Opened:
    try:
        reply = provider.send(prepared, timeout=timeout)
    except READ_ERRORS as exc:
        if timed_out(exc):
            raise UpstreamTimeout("upstream did not answer in time") from None
        raise UpstreamError("upstream unreachable") from None
    if reply.status >= 300:
        try:
            body = reply.read()
        except READ_ERRORS:
            body = b""
        err = provider.codec.parse_error(reply.status, body, secrets=target.channel.api_keys)
        if getattr(err, "upstream_status", None) is None:
            err.upstream_status = reply.status
        err.retry_after_s = reply.retry_after  # type: ignore[attr-defined]
        raise err
    opened = Opened(target, provider, card, passthrough, reply)
    try:
        if call.stream:
            opened.rest = iter(reply.chunks())
            opened.first = next(opened.rest, b"")
            if not opened.first:
                raise UpstreamError("upstream closed the stream before any event")
        else:
            opened.body = reply.read()
            opened.response = provider.codec.parse_response(json.loads(opened.body), tools=call.req.tools)
    except READ_ERRORS as exc:
        reply.close()
        if timed_out(exc):
            raise UpstreamTimeout("upstream did not answer in time") from None
        raise UpstreamError("upstream connection broke before the answer") from None
    except ValueError:
        raise UpstreamError("upstream sent an unreadable answer") from None
    return opened
