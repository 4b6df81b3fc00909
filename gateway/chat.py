"""One chat call through the gateway: admit, open the upstream, answer whole, streamed or fanned out.

The only module that holds both ends of a chat call: the admission and the
ledger (``gateway.pipeline``) and the providers (``gateway.upstream``). Whole
answers are rendered and settled here; streams go to ``gateway.streaming``,
several choices the upstream cannot give itself to ``gateway.choices``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import sqlalchemy.exc
from flask import Response, current_app

from core.errors import GatewayError
from gateway import chat_upstream, choices, responses_store, streaming
from gateway.chat_upstream import Opened
from gateway.pipeline import (
    Call,
    admit,
    answer_usage,
    fail,
    log,
    message_id,
    release_admission,
    settle_and_answer,
)
from gateway.protocols.passthrough import model_rewriter
from gateway.routing import get_router


def handle(protocol: str, *, path_model: str | None = None, path_stream: bool | None = None) -> Response:
    """Serve one chat call in the caller's protocol."""
    call = Call(protocol)
    try:
        early = admit(call, path_model=path_model, path_stream=path_stream)
        if early is not None:
            release_admission(call)
            return early
        call.router = get_router(current_app)
        deadline = call.started + float(current_app.config.get("REQUEST_DEADLINE_S", 600))
        opened = chat_upstream.open_call(call, call.router, deadline=deadline)
        call.served = opened.card
    except GatewayError as err:
        return fail(call, err)
    except sqlalchemy.exc.TimeoutError:  # every pooled database connection busy: shed load, retryable
        log.warning("database pool exhausted in %s", call.request_id)
        return fail(call, GatewayError("the gateway is busy; retry shortly (not charged)", status=503,
                                       code="overloaded", retry_after=1))
    except Exception:  # noqa: BLE001 - the caller gets a clean 500 in its shape, the log the trace
        log.exception("internal error in %s", call.request_id)
        return fail(call, GatewayError("internal error; the call was not charged"))
    if call.req is not None and call.req.n > 1 and not opened.passthrough:
        return choices.serve(call, opened, deadline)  # several choices the upstream cannot give: fanned out
    if call.stream:
        return streaming.stream_response(call, opened, deadline)
    return complete_response(call, opened)


def complete_response(call: Call, opened: Opened) -> Response:
    """Non-stream: render (or pass through) the answer, settle, then send it with its cost."""
    usage = answer_usage(call, opened.response)

    def render() -> Any:
        if opened.passthrough:
            return _named(opened)
        resp = opened.response
        assert resp is not None
        if call.state is not None:  # one id for stream and non-stream: the stored one
            resp = replace(resp, id=message_id(call))
        body = call.codec.render_response(resp, model=opened.card.id, created=int(time.time()))
        if call.state is not None:
            body.update(responses_store.meta(call.state))
            responses_store.save(call.state, call.principal, body)  # committed: the caller may chain at once
        return body

    return settle_and_answer(call, render, usage, call.cost_of(usage))


def _named(opened: Opened) -> bytes:
    """A passthrough body naming the id the caller asked for when the channel maps it to another upstream."""
    if opened.target.upstream_model == opened.card.id:
        return opened.body
    return model_rewriter(opened.codec.PASSTHROUGH.model_key, opened.card.id)(opened.body)
