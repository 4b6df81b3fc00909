"""The streaming half of a call: headers first, then events as they arrive, then settle or release.

A stream's money is decided when it ends: a proper terminal event settles at
the upstream's usage, committed before that final event is sent on; a client
that hangs up (``GeneratorExit``) is billed for what was delivered; an
upstream that breaks, sends an error event or outlives the deadline ends the
caller's stream with its protocol's error event, free.
"""

from __future__ import annotations

import time
from typing import Iterator

from flask import Response, stream_with_context

from core import metrics
from core.errors import GatewayError, UpstreamError
from gateway import relay, responses_store
from gateway.call import Call
from gateway.canonical import Usage
from gateway.canonical_events import StreamError
from gateway.chat_upstream import Opened
from gateway.pipeline import billable, headers, log, message_id, release, settle
from gateway.protocols.openai_responses import StreamRenderer as ResponsesRenderer
from gateway.relay import Relay
from gateway.upstream import READ_ERRORS


def stream_response(call: Call, opened: Opened, deadline: float) -> Response:
    """Stream: headers now (envelope included), events as they arrive, settle when it ends."""
    hdrs = headers(call, cost=None)
    hdrs["Cache-Control"] = "no-cache"
    hdrs["X-Accel-Buffering"] = "no"
    gen = relay_stream(call, opened, deadline)
    return Response(stream_with_context(gen), status=200, headers=hdrs, mimetype="text/event-stream")


def make_relay(call: Call, opened: Opened, *, include_usage: bool | None = None, choices: int | None = None) -> Relay:
    """The relay for ``opened``'s stream.

    ``include_usage`` overrides the caller's choice of a usage event; ``choices``: how many
    answers the stream gives (the caller's ``n`` unless said).
    """
    secrets = opened.target.channel.api_keys  # never shown to the caller in an upstream's error message
    with_usage = call.include_usage if include_usage is None else include_usage
    if opened.passthrough:
        asked = choices if choices is not None else call.req.n if call.req is not None else 1
        return relay.PassthroughRelay(opened.codec, include_usage=with_usage, cost_fn=call.cost_of,
                                      secrets=secrets, model=renamed(opened), choices=asked)
    rel = relay.TranslateRelay(
        opened.codec,
        call.codec,
        model=opened.card.id,
        message_id=message_id(call),
        created=int(time.time()),
        include_usage=with_usage,
        cost_fn=call.cost_of,
        tools=call.req.tools if call.req is not None else (),
        secrets=secrets,
    )
    if call.state is not None and isinstance(rel.renderer, ResponsesRenderer):
        rel.renderer.meta.update(responses_store.meta(call.state))
    return rel


def _responses_renderer(rel: Relay) -> ResponsesRenderer | None:
    """The Responses renderer of a stream translated to that protocol (it keeps the response object)."""
    if isinstance(rel, relay.TranslateRelay) and isinstance(rel.renderer, ResponsesRenderer):
        return rel.renderer
    return None


def renamed(opened: Opened) -> str | None:
    """The id the caller asked for, when the channel's ``model_map`` names the model otherwise upstream."""
    return opened.card.id if opened.target.upstream_model != opened.card.id else None


def relay_stream(call: Call, opened: Opened, deadline: float) -> Iterator[bytes]:
    """Forward chunk by chunk; hold the final event(s) back until the settlement has committed.

    Everything from the event that ends the upstream's answer on (Anthropic
    ``message_stop``, the OpenAI usage chunk and ``[DONE]``, Responses
    ``response.completed``, Gemini's last chunk) waits for EOF and the
    in-line settle; if the settle cannot be written the caller gets its
    protocol's error event instead, free. A stream that breaks is released
    and one the client abandons is billed for what was delivered, in ``finally``.
    """
    rel = make_relay(call, opened)
    outcome, reason = "broken", "upstream stream ended early"
    held: list[bytes] = []
    chunks = opened.chunks()
    metrics.stream_opened()
    try:
        while True:
            t0 = time.perf_counter()
            try:
                chunk = next(chunks, None)
            except READ_ERRORS:
                chunk, reason = None, "upstream stream broke"
            finally:
                call.upstream_s += time.perf_counter() - t0
            if chunk is None:
                break
            out = rel.feed(chunk)
            if out and rel.done:
                held.append(out)
            elif out:
                yield out
            if rel.error is not None or time.perf_counter() > deadline:
                reason = "upstream error event" if rel.error is not None else "request deadline exceeded"
                break
        tail = rel.finish() if rel.error is None and time.perf_counter() <= deadline else b""
        held.append(tail)
        if rel.done and rel.error is None:
            outcome = "closed"
            yield b"".join(held) if _settle_done(call, rel) else _settle_failed(call)
        else:
            if rel.error is None:
                held.append(_stream_error(call, rel, StreamError(kind="api_error", message=reason, status=502)))
            yield b"".join(held)
    except GeneratorExit:
        if outcome != "closed":
            outcome = "abandoned"
        raise
    except Exception:  # noqa: BLE001 - a codec fault ends this stream cleanly, free, never a hung socket
        log.exception("stream relay failed in %s", call.request_id)
        reason = "gateway error while relaying the stream"
        if outcome != "closed":
            yield _stream_error(call, rel, StreamError(kind="api_error", message=reason, status=500))
    finally:
        metrics.stream_closed()
        opened.reply.close()
        if outcome != "closed":
            _close_stream(call, rel, outcome, reason)


def _settle_done(call: Call, rel: Relay) -> bool:
    """Settle a finished stream at the upstream's usage, committed now; False if it could not be written."""
    usage = billable(call, rel.usage or Usage(), rel.delivered_tokens)
    try:
        renderer = _responses_renderer(rel)
        final = renderer.final if renderer is not None else None  # the completed response object
        if call.state is not None and final is not None:
            responses_store.save(call.state, call.principal, final)  # before the final event: chain at once
        settle(call, usage, call.cost_of(usage))
        return True
    except Exception:  # noqa: BLE001 - answered as an error below, and released
        log.exception("settling stream %s failed; answered as an error, not charged", call.request_id)
        return False


def _settle_failed(call: Call) -> bytes:
    """The stream's final event is replaced by an error event; the hold is released (free)."""
    release_quietly(call, "the settlement could not be written")
    return call.codec.render_stream_error(GatewayError("internal error; the call was not charged"))


def _stream_error(call: Call, rel: Relay, err: StreamError) -> bytes:
    if isinstance(rel, relay.TranslateRelay):
        return rel.fail(err)
    return call.codec.render_stream_error(UpstreamError(err.message, status=err.status))


def release_quietly(call: Call, reason: str) -> None:
    try:
        release(call, error=reason, status=500)
    except Exception:  # noqa: BLE001 - the hold stays open; the sweep releases it (free)
        log.exception("releasing stream %s failed", call.request_id)


def _close_stream(call: Call, rel: Relay, outcome: str, reason: str) -> None:
    try:
        usage = rel.usage or Usage()
        if outcome == "abandoned":
            # The work was done up to here: bill what was delivered, within the hold.
            delivered = Usage(
                input_tokens=usage.input_tokens or call.input_tokens,
                output_tokens=max(usage.output_tokens, rel.delivered_tokens),
                cache_write_tokens=usage.cache_write_tokens,
                cache_read_tokens=usage.cache_read_tokens,
            )
            settle(call, delivered, call.cost_of(delivered))
        else:
            release(call, error=reason, usage=usage)
    except Exception:  # noqa: BLE001 - the stream is over; a stuck hold is released by expiry
        log.exception("closing stream %s failed", call.request_id)
