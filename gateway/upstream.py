"""Try a call's targets in order until one answers: the one retry and fallback policy, chat and media alike.

A kind of work brings its exchange (``gateway.chat_upstream`` for chat,
``gateway.media_upstream`` for media): the request rendered for one target,
then one HTTP round trip that raises a mapped ``UpstreamError`` when it
fails. Here each round trip is timed,
named on the call and reported to the Router; a connect error, a timeout, a
429, 5xx or 529 moves on to the next key or channel (``core.errors.is_retryable``),
then to the caller's fallback models; anything else is the answer. Nothing
has reached the caller yet: an exchange that streams reads its first bytes
before the attempt counts as a success. An upstream's error answer is read in
one place (``refusal``): its status mapped and every key-like string redacted
(``gateway.protocols.upstream_error``). No ledger here.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import requests
import urllib3.exceptions

from core.errors import GatewayError, NoChannel, UpstreamError, UpstreamTimeout, is_retryable
from core.ratecard import ModelCard
from gateway import providers
from gateway.call import Call
from gateway.routing import Router, Target

# Reading a body can fail below requests' own exception types (chat calls use urllib3 directly).
READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)

R = TypeVar("R")
Timeout = tuple[float, float]  # (connect, read) seconds
# Render the request for one target (untimed, unreported: a request that cannot be rendered says
# nothing about the channel), then send it: the answer, or a mapped GatewayError.
Exchange = Callable[[ModelCard, Target], Callable[[Timeout], R]]


def timed_out(exc: BaseException) -> bool:
    """Tell a timeout from other transport failures, as requests did: a refused connection is not one."""
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.ReadTimeoutError)):
        return True
    return isinstance(exc, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError)


def transport_error(exc: BaseException, broke: str = "upstream unreachable") -> UpstreamError:
    """The error for a connection that failed or timed out (no answer: retryable)."""
    if timed_out(exc):
        return UpstreamTimeout("upstream did not answer in time")
    return UpstreamError(broke)


def refusal(target: Target, status: int, body: bytes, retry_after: float | None) -> UpstreamError:
    """An upstream's error answer, read by its provider's codec: status mapped, keys never shown."""
    err = providers.get(target.channel.protocol).codec.parse_error(status, body, secrets=target.channel.api_keys)
    if err.upstream_status is None:
        err.upstream_status = status
    err.retry_after_s = retry_after
    return err


def retry_after_s(value: str | None) -> float | None:
    """A ``retry-after`` header in seconds (None when absent or a date)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def first_answer(call: Call, router: Router, exchange: Exchange[R], *, deadline: float,
                 speaks: Callable[[str], bool] = lambda protocol: True) -> R:
    """The first answer from ``call.cards``' targets in order; raise the last error when none answers.

    ``speaks`` says which channel protocols the kind of work can talk to; the others are skipped.
    """
    last: GatewayError | None = None
    skipped = False
    principal = call.principal
    assert principal is not None
    for card in call.cards:
        for target in router.targets(card.id, session=call.session, tenant=str(principal.org_id)):
            if not speaks(target.channel.protocol):
                skipped = True
                continue
            if time.perf_counter() >= deadline:
                raise last or UpstreamTimeout("request deadline exceeded before an upstream answered")
            try:
                send = exchange(card, target)
                _serving(call, card, target)
                answer = attempt(router, target, send, deadline=deadline, call=call)
            except GatewayError as err:
                if not is_retryable(err):
                    raise
                last = err
                continue
            if card is not call.cards[0]:
                call.fallback_from = call.cards[0].id
                call.fallback_reason = f"{call.cards[0].id} unavailable ({_describe(last)})"
            return answer
    if last is not None:
        raise last
    if skipped:
        raise NoChannel(f"no channel configured for model '{call.cards[0].id}'")
    # Channels exist (admission checked) but every one is cooling down or has its circuit open.
    raise NoChannel(f"every channel serving model '{call.cards[0].id}' is unavailable right now; retry shortly",
                    retry_after=5)


def _describe(err: GatewayError | None) -> str:
    if err is None:
        return "no channel"
    status = getattr(err, "upstream_status", None)
    return f"upstream {status}: {err.code}" if status else err.code


def _serving(call: Call, card: ModelCard, target: Target) -> None:
    """Name on ``call`` who is answering it: the vendor, the channel and its protocol."""
    call.provider = providers.get(target.channel.protocol).vendor(target.channel, default=card.vendor)
    call.channel = target.channel.name
    call.upstream_protocol = target.channel.protocol


def attempt(router: Router, target: Target, send: Callable[[Timeout], R], *, deadline: float,
            call: Call | None = None) -> R:
    """One round trip with one (channel, key), timed and reported to the Router; ``call``'s upstream time counts it."""
    remaining = max(0.1, deadline - time.perf_counter())
    timeout = (min(target.channel.connect_timeout_s, remaining), min(target.channel.timeout_s, remaining))
    t0 = time.perf_counter()
    try:
        answer = send(timeout)
    except GatewayError as err:
        status = getattr(err, "upstream_status", None)
        router.report(target, ok=False, latency_ms=(time.perf_counter() - t0) * 1000, status=status,
                      retry_after=getattr(err, "retry_after_s", None))
        raise
    finally:
        if call is not None:
            call.upstream_s += time.perf_counter() - t0
    router.report(target, ok=True, latency_ms=(time.perf_counter() - t0) * 1000, status=200)
    return answer
