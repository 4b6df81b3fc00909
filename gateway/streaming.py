"""The streaming half of a call: headers first, then events as they arrive, then settle or release.

A stream's money is decided when it ends: a proper terminal event settles at
the upstream's usage; a client that hangs up (``GeneratorExit``) is billed for
what was delivered, within the hold; an upstream that breaks, sends an error
event or outlives the deadline ends the caller's stream with its protocol's
error event, free.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Response, stream_with_context

from core import metrics
from gateway.canonical import StreamError, Usage
from gateway.pipeline import Call, billable, headers, log, release, settle


def stream_response(call: Call, opened: Any, deadline: float) -> Response:
    """Stream: headers now (envelope included), events as they arrive, settle when it ends."""
    hdrs = headers(call, cost=None)
    hdrs["Cache-Control"] = "no-cache"
    hdrs["X-Accel-Buffering"] = "no"
    gen = relay_stream(call, opened, deadline)
    return Response(stream_with_context(gen), status=200, headers=hdrs, mimetype="text/event-stream")


def make_relay(call: Call, opened: Any) -> Any:
    from gateway import relay

    if opened.passthrough:
        return relay.PassthroughRelay(opened.codec, include_usage=call.include_usage, cost_fn=call.cost_of)
    return relay.TranslateRelay(
        opened.codec,
        call.codec,
        model=opened.card.id,
        message_id=_message_id(call),
        created=int(time.time()),
        include_usage=call.include_usage,
        cost_fn=call.cost_of,
        tools=call.req.tools if call.req is not None else (),
    )


def _message_id(call: Call) -> str:
    prefix = {"anthropic": "msg_", "openai": "chatcmpl-", "responses": "resp_", "gemini": ""}[call.caller]
    return prefix + call.request_id.removeprefix("req_")


def relay_stream(call: Call, opened: Any, deadline: float) -> Any:
    """Forward chunk by chunk; settle (done or abandoned) or release (broken) in ``finally``."""
    from gateway.upstream import READ_ERRORS

    rel = make_relay(call, opened)
    outcome, reason = "broken", "upstream stream ended early"
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
            if out:
                yield out
            if rel.error is not None or time.perf_counter() > deadline:
                reason = "upstream error event" if rel.error is not None else "request deadline exceeded"
                break
        tail = rel.finish() if rel.error is None and time.perf_counter() <= deadline else b""
        if tail:
            yield tail
        if rel.done and rel.error is None:
            outcome = "done"
        elif rel.error is None:
            err = StreamError(kind="api_error", message=reason, status=502)
            yield _stream_error(call, rel, err)
    except GeneratorExit:
        outcome = "abandoned"
        raise
    except Exception:  # noqa: BLE001 - a codec fault ends this stream cleanly, free, never a hung socket
        log.exception("stream relay failed in %s", call.request_id)
        reason = "gateway error while relaying the stream"
        yield _stream_error(call, rel, StreamError(kind="api_error", message=reason, status=500))
    finally:
        metrics.stream_closed()
        opened.reply.close()
        _close_stream(call, rel, outcome, reason)


def _stream_error(call: Call, rel: Any, err: Any) -> bytes:
    if hasattr(rel, "fail"):
        return rel.fail(err)
    from core.errors import UpstreamError

    return call.codec.render_stream_error(UpstreamError(err.message, status=err.status))


def _close_stream(call: Call, rel: Any, outcome: str, reason: str) -> None:
    try:
        usage = rel.usage or Usage()
        if outcome == "done":
            usage = billable(call, usage, rel.delivered_tokens)
            settle(call, usage, call.cost_of(usage))
        elif outcome == "abandoned":
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
