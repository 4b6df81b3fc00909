"""Chat as a kind of work: parsed by the caller's codec, sent by a provider, answered whole, streamed or fanned out.

``gateway.lifecycle`` runs the call (admission, reservation, the targets,
settle or release); this module fills in chat's steps: the body through the
caller's codec, the model and its fallbacks, the estimate
(``gateway.estimate``), the exchange (``gateway.chat_upstream``), and the
answer: whole here, streamed by ``gateway.streaming``, several choices the
upstream cannot give itself by ``gateway.choices``.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Callable

from flask import Response, current_app, request

from core import catalog, keys, ratecard
from core.errors import GatewayError, InvalidRequest, ModelNotFound, NoChannel
from core.ratecard import ModelCard
from gateway import chat_upstream, choices, lifecycle, responses_store, streaming
from gateway import estimate as estimator
from gateway.call import Asked, Call
from gateway.chat_upstream import Opened
from gateway.pipeline import Answer, answer_usage, message_id, read_body, settle_and_answer
from gateway.protocols.passthrough import model_rewriter
from gateway.routing import Target, get_router
from gateway.upstream import Timeout

ANTHROPIC_VERSIONS = ("2023-06-01", "2026-10-21")
MAX_TOKENS_LIMIT = 2**31 - 1  # far above any model's output; keeps every reservation within a bigint


def handle(protocol: str, *, path_model: str | None = None, path_stream: bool | None = None) -> Response:
    """Serve one chat call in the caller's protocol."""
    return lifecycle.serve(Call(protocol), ChatWork(path_model, path_stream))


class ChatWork(lifecycle.Work[Opened]):
    """One chat call; Gemini's URL names the model (``path_model``) and says stream or not (``path_stream``)."""

    def __init__(self, path_model: str | None = None, path_stream: bool | None = None) -> None:
        self.path_model = path_model
        self.path_stream = path_stream

    def parse(self, call: Call) -> None:
        parse(call, path_model=self.path_model, path_stream=self.path_stream)

    def judge(self, call: Call) -> Response | None:
        resolve_models(call)
        estimate(call)
        return None

    def exchange(self, call: Call, card: ModelCard, target: Target) -> Callable[[Timeout], Opened]:
        return chat_upstream.exchange(call, card, target)

    def answer(self, call: Call, reply: Opened, deadline: float) -> Response:
        call.served = reply.card
        if call.req is not None and call.req.n > 1 and not reply.passthrough:
            return choices.serve(call, reply, deadline)  # several choices the upstream cannot give: fanned out
        if call.stream:
            return streaming.stream_response(call, reply, deadline)
        return complete_response(call, reply)


def parse(call: Call, *, path_model: str | None, path_stream: bool | None) -> None:
    """The body as a ``ChatRequest`` in the caller's protocol, with the headers that shape it (``call.asked``)."""
    body, raw = read_body()
    state = None
    if call.protocol == "responses":
        raw, state = responses_store.prepare(raw, call.principal.org_id)
        if state.previous_id:  # the estimate counts the earlier turns too
            body = json.dumps(raw).encode()
    version = None
    forward = {}
    if call.protocol == "anthropic":
        asked_version = request.headers.get("anthropic-version", "").strip()
        version = asked_version if asked_version in ANTHROPIC_VERSIONS else ANTHROPIC_VERSIONS[0]
        beta = request.headers.get("anthropic-beta")
        if beta:
            forward["anthropic-beta"] = beta
    stream = None if path_model is None else bool(path_stream)
    req = call.codec.parse_request(raw, version=version, model=path_model, stream=stream)
    if path_model is not None:  # Gemini: the URL names the model and the method says stream or not
        req = replace(req, model=path_model, stream=bool(path_stream))
    if req.max_tokens is not None and req.max_tokens > MAX_TOKENS_LIMIT:
        raise InvalidRequest(f"max_tokens: {req.max_tokens} is above {MAX_TOKENS_LIMIT}", param="max_tokens")
    include_usage = True
    if call.protocol == "openai":
        opts = raw.get("stream_options")
        include_usage = bool(isinstance(opts, dict) and opts.get("include_usage"))
    session = request.headers.get("x-bytespike-session") or req.user
    call.asked = Asked(raw, body, req, version, forward, include_usage, session, state)


def resolve_models(call: Call) -> None:
    """The asked model and any fallbacks, on the rate card; 404 names an unknown model."""
    assert call.req is not None
    card = catalog.get_card().resolve(call.req.model)
    if card is None:
        raise ModelNotFound(f"model '{call.req.model}' not found", param="model")
    if card.kind != "chat":
        raise InvalidRequest(f"model '{card.id}' is a {card.kind} model, not a chat model", param="model")
    keys.check_model(call.principal, card.id)
    call.cards = [card]
    for name in (request.headers.get("x-bytespike-fallback") or "").split(","):
        alt = catalog.get_card().resolve(name.strip()) if name.strip() else None
        if alt is None or alt.kind != "chat" or any(c.id == alt.id for c in call.cards):
            continue
        try:
            keys.check_model(call.principal, alt.id)
        except GatewayError:
            continue
        call.cards.append(alt)
    router = get_router(current_app)
    if not any(router.serves(c.id) for c in call.cards):
        raise NoChannel(f"no channel configured for model '{card.id}'")


def estimate(call: Call) -> None:
    """Upper-bound cost (``gateway.estimate``): input and every answer, at the dearest candidate's price."""
    assert call.req is not None
    est = 0
    found = estimator.scan(call.req, len(call.body))
    for card in call.cards:
        tokens = estimator.input_tokens(found, card)
        out = estimator.output_tokens(call.req, call.raw, card)
        # Several choices fanned out (``gateway.choices``) read the input once per choice.
        reads = call.req.n if call.req.n > 1 and _fans_out(call, card) else 1
        est = max(est, ratecard.estimate_credits(card, tokens * reads, out))
        if card is call.cards[0]:
            call.input_tokens, call.max_output = tokens, estimator.max_output(call.req, card)
    call.estimate = est


def _fans_out(call: Call, card: ModelCard) -> bool:
    """True when some channel serving ``card`` speaks another protocol than the caller (no native choices)."""
    return any(card.id in ch.models and ch.protocol != call.protocol for ch in get_router(current_app).channels)


def complete_response(call: Call, opened: Opened) -> Response:
    """Non-stream: render (or pass through) the answer, settle, then send it with its cost."""

    def produce() -> Answer:
        resp = opened.whole()
        usage = answer_usage(call, resp)
        if opened.passthrough:
            return Answer(_named(opened), usage, call.cost_of(usage))
        if call.state is not None:  # one id for stream and non-stream: the stored one
            resp = replace(resp, id=message_id(call))
        body: dict[str, Any] = call.codec.render_response(resp, model=opened.card.id, created=int(time.time()))
        if call.state is not None:
            body.update(responses_store.meta(call.state))
            responses_store.save(call.state, call.principal, body)  # committed: the caller may chain at once
        return Answer(body, usage, call.cost_of(usage))

    return settle_and_answer(call, produce)


def _named(opened: Opened) -> bytes:
    """A passthrough body naming the id the caller asked for when the channel maps it to another upstream."""
    if opened.target.upstream_model == opened.card.id:
        return opened.body
    return model_rewriter(opened.codec.PASSTHROUGH.model_key, opened.card.id)(opened.body)
