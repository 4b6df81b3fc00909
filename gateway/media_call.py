"""One synchronous non-chat call: the chat pipeline's checks and ledger steps around a media upstream.

The order matches the chat path: key -> body -> model (card, kind, key's
group, a channel) -> limits -> estimate -> (dry run) -> reservation -> the
upstream (retrying other keys and channels) -> settle, or release on any
failure. Every answer, error or not, carries the quota envelope and the cost
headers, through ``gateway.pipeline``'s own helpers; errors are OpenAI-shaped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from core import catalog, keys, ledger, limits
from core.errors import GatewayError, InvalidRequest, ModelNotFound, NoChannel, TooLarge
from core.ratecard import ModelCard
from gateway import media_upstream, pipeline, upstream
from gateway.canonical import Usage
from gateway.media_upstream import Outbound, Reply
from gateway.routing import get_router

log = logging.getLogger("bytespike.gateway.media")


@dataclass
class Answer:
    """What the caller gets back and what it costs."""

    body: Any  # a dict (JSON) or bytes
    cost: int
    usage: Usage
    content_type: str = "application/json"


@dataclass
class Job:
    """A parsed call: its model, the upper-bound cost, what to send, and how to read the answer."""

    card: ModelCard
    estimate: int
    out: Outbound
    finish: Callable[[Reply], Answer]
    input_tokens: int = 0


def new_call(protocol: str) -> pipeline.Call:
    """A pipeline ``Call`` that renders errors in OpenAI's shape and logs ``protocol`` in the usage row."""
    call = pipeline.Call("openai")
    call.protocol = protocol  # only the usage row reads it from here on
    return call


def serve(protocol: str, prepare: Callable[[pipeline.Call], Job]) -> Response:
    """Run one call end to end; every exit carries the quota and cost headers."""
    call = new_call(protocol)
    try:
        pipeline.authenticate(call)
        job = prepare(call)
        call.estimate, call.input_tokens = job.estimate, job.input_tokens
        call.admission = limits.admit(call.principal, estimated_tokens=job.input_tokens)
        if is_dry_run():
            pipeline.release_admission(call)
            body = {"estimated_credits": call.estimate, "model": job.card.id, "input_tokens": job.input_tokens}
            return pipeline.json_response(body, 200, pipeline.headers(call, cost=0))
        call.hold = ledger.reserve(call.principal, call.request_id, call.estimate)
        deadline = call.started + float(current_app.config.get("REQUEST_DEADLINE_S", 600))
        reply = upstream.first_answer(call, get_router(current_app), media_upstream.exchange(job.out),
                                      deadline=deadline, speaks=media_upstream.speaks)
        answer = job.finish(reply)
        charged = pipeline.settle(call, answer.usage, answer.cost)
    except GatewayError as err:
        return pipeline.fail(call, err)
    except Exception:  # noqa: BLE001 - the caller gets a clean 500, the log the trace
        log.exception("internal error in %s", call.request_id)
        return pipeline.fail(call, GatewayError("internal error; the call was not charged"))
    hdrs = pipeline.headers(call, cost=charged)
    if isinstance(answer.body, bytes | str):
        data = answer.body.encode() if isinstance(answer.body, str) else answer.body
        return Response(data, status=200, headers=hdrs, content_type=answer.content_type)
    return pipeline.json_response(answer.body, 200, hdrs)


def is_dry_run() -> bool:
    return request.headers.get("x-bytespike-dry-run", "").strip().lower() in ("1", "true", "yes")


def resolve(call: pipeline.Call, name: Any, *, kinds: tuple[str, ...], capability: str | None = None,
            what: str) -> ModelCard:
    """The card row for ``name``: 404 unknown, 400 wrong kind, 403 outside the key's group, 503 no channel."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("model: field required", param="model")
    card = catalog.get_card().resolve(name)
    if card is None:
        raise ModelNotFound(f"model '{name}' not found", param="model")
    if card.kind not in kinds or (capability and card.capabilities and capability not in card.capabilities):
        raise InvalidRequest(f"model '{card.id}' is a {card.kind} model and cannot serve {what}", param="model")
    keys.check_model(call.principal, card.id)
    if not get_router(current_app).serves(card.id):
        raise NoChannel(f"no channel configured for model '{card.id}'")
    call.cards, call.served = [card], card
    return card


def read_json(call: pipeline.Call) -> dict[str, Any]:
    return pipeline.read_json(call)


def read_form() -> tuple[list[tuple[str, str]], list[tuple[str, tuple[str, bytes, str]]]]:
    """A multipart body as (fields, files), in order; 413 past 32 MB, 400 when it is not multipart."""
    if (request.content_length or 0) > pipeline.MAX_BODY:
        raise TooLarge("request body exceeds the 32 MB limit")
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise InvalidRequest("this endpoint takes multipart/form-data")
    try:
        fields = [(k, v) for k, v in request.form.items(multi=True)]
        files = [(k, (f.filename or k, f.read(), f.mimetype or "application/octet-stream"))
                 for k, f in request.files.items(multi=True)]
    except RequestEntityTooLarge:
        raise TooLarge("request body exceeds the 32 MB limit") from None
    return fields, files


def field(fields: list[tuple[str, str]], name: str) -> str | None:
    for k, v in fields:
        if k == name:
            return v
    return None


def int_param(value: Any, name: str, *, default: int, lo: int, hi: int) -> int:
    """An integer request field within [lo, hi] (form fields arrive as strings)."""
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name}: must be an integer", param=name) from None
    if isinstance(value, bool) or not lo <= n <= hi:
        raise InvalidRequest(f"{name}: must be between {lo} and {hi}", param=name)
    return n


def with_model(body: dict[str, Any], card: ModelCard) -> dict[str, Any]:
    """The upstream's JSON answer, naming the model as the caller knows it."""
    if "model" in body:
        body = dict(body, model=card.id)
    return body


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()
