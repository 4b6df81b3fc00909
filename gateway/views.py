"""Gateway routes: thin wrappers that hand each call to the pipeline in the caller's protocol."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, request

from core.errors import GatewayError, InvalidRequest, ModelNotFound, NotFound

bp = Blueprint("gateway", __name__)
BLUEPRINTS = [bp]


@bp.post("/v1/messages")
def messages() -> Response:
    from gateway import pipeline

    return pipeline.handle("anthropic")


@bp.post("/v1/chat/completions")
def chat_completions() -> Response:
    from gateway import pipeline

    return pipeline.handle("openai")


@bp.post("/v1/responses")
def responses() -> Response:
    from gateway import pipeline

    return pipeline.handle("responses")


@bp.post("/v1beta/models/<path:target>")
# google-genai 3.x calls {base_url}/v1/models/... unless told api_version="v1beta": serve both.
@bp.post("/v1/models/<path:target>")
def gemini(target: str) -> Response:
    from gateway import pipeline

    model, _, action = target.rpartition(":")
    if action not in ("generateContent", "streamGenerateContent") or not model:
        call = pipeline.Call("gemini")
        return pipeline.error_response(call, NotFound(f"unknown method '{target}'"))
    return pipeline.handle("gemini", path_model=model, path_stream=action == "streamGenerateContent")


@bp.post("/v1/messages/count_tokens")
def count_tokens() -> Response:
    """Estimate input tokens locally (Anthropic shape); nothing is sent upstream or charged."""
    from core import keys, ratecard
    from gateway import pipeline

    call = pipeline.Call("anthropic")
    try:
        pipeline.authenticate(call)
        raw = pipeline.read_json(call)
        name = raw.get("model")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("model: field required", param="model")
        if not isinstance(raw.get("messages"), list):
            raise InvalidRequest("messages: field required (a list)", param="messages")
        card = ratecard.get_card().resolve(name)
        if card is None:
            raise ModelNotFound(f"model '{name}' not found", param="model")
        keys.check_model(call.principal, card.id)
    except GatewayError as err:
        return pipeline.error_response(call, err)
    tokens = ratecard.estimate_input_tokens(call.body)
    return pipeline.json_response({"input_tokens": tokens}, 200, pipeline.headers(call, cost=0))


@bp.get("/v1/models")
def models() -> Response:
    """The models this key may call, in OpenAI's list shape with Anthropic's fields added."""
    from core import ratecard
    from gateway import pipeline

    call = pipeline.Call("openai")
    try:
        pipeline.authenticate(call)
    except GatewayError as err:
        return pipeline.error_response(call, err)
    from gateway.routing import get_router

    served = get_router(current_app).models()
    allowed = call.principal.models
    capability = request.args.get("capability")
    family = request.args.get("family")
    data = []
    for card in ratecard.get_card().models:
        if card.id not in served or (allowed is not None and card.id not in allowed):
            continue
        if capability and capability not in (card.capabilities or ()):
            continue
        if family and family != card.family:
            continue
        data.append(_model_entry(card))
    body = {"object": "list", "data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}
    return pipeline.json_response(body, 200, pipeline.headers(call, cost=0))


EPOCH = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp())


def _model_entry(card: Any) -> dict[str, Any]:
    return {
        "id": card.id,
        "object": "model",
        "type": "model",
        "display_name": card.display_name,
        "created": EPOCH,
        "created_at": "2025-01-01T00:00:00Z",
        "owned_by": card.vendor,
        "kind": card.kind,
        "family": card.family,
        "context_window": card.context_window,
        "max_output_tokens": card.max_output_tokens,
        "capabilities": list(card.capabilities or ()),
        "pricing_url": f"/en/models/{card.id}/",
    }
