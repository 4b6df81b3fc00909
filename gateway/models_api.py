"""The model endpoints SDKs call: list and retrieve in OpenAI's, Anthropic's or Gemini's shape.

``GET /v1/models`` and ``GET /v1/models/{id}`` answer OpenAI's shape with
Anthropic's fields added (both SDKs read the same object); a caller that
sends its key as ``x-goog-api-key`` or ``?key=`` (google-genai) gets Gemini's
shape there, as ``GET /v1beta/models[/{model}]`` always does. Every entry
comes from the one catalog (``core.catalog``) and lists what this key may
call: a model a channel serves and the key's list allows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, request

from core import catalog
from core.errors import GatewayError, ModelNotFound
from core.ratecard import ModelCard
from gateway import pipeline
from gateway.call import Call
from gateway.routing import get_router

bp = Blueprint("models_api", __name__)

EPOCH = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp())
GEMINI_METHODS = ["generateContent", "streamGenerateContent"]


def caller_of_models() -> str:
    """Which SDK asks: Gemini on /v1beta or with a Google-style key, Anthropic with its headers, else OpenAI."""
    h = request.headers
    if request.path.startswith("/v1beta/"):
        return "gemini"
    if (h.get("x-goog-api-key") or request.args.get("key")) and not (h.get("authorization") or h.get("x-api-key")):
        return "gemini"
    if h.get("anthropic-version") or h.get("x-api-key"):
        return "anthropic"
    return "openai"


def _callable(call: Call) -> list[ModelCard]:
    """The catalog's models this key may call, in card order."""
    served = get_router(current_app).models()
    allowed = call.principal.models
    return [m for m in catalog.get_card().models
            if m.id in served and (allowed is None or m.id in allowed)]


def _start() -> Call:
    caller = caller_of_models()
    return Call(caller)


@bp.get("/v1/models")
@bp.get("/v1beta/models")
def list_models() -> Response:
    """The models this key may call (``?capability=``, ``?family=`` filter the OpenAI list)."""
    call = _start()
    try:
        pipeline.authenticate(call)
    except GatewayError as err:
        return pipeline.error_response(call, err)
    models = _callable(call)
    if call.protocol == "gemini":
        body: dict[str, Any] = {"models": [gemini_entry(m) for m in models if m.kind == "chat"]}
        return pipeline.json_response(body, 200, pipeline.headers(call, cost=0))
    capability, family = request.args.get("capability"), request.args.get("family")
    data = [model_entry(m) for m in models
            if (not capability or capability in m.capabilities) and (not family or family == m.family)]
    body = {"object": "list", "data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}
    return pipeline.json_response(body, 200, pipeline.headers(call, cost=0))


@bp.get("/v1/models/<path:name>")
@bp.get("/v1beta/models/<path:name>")
def get_model(name: str) -> Response:
    """One model this key may call; 404 in the caller's shape names an unknown one."""
    call = _start()
    try:
        pipeline.authenticate(call)
        name = name.removeprefix("models/")
        card = catalog.get_card().resolve(name)
        if card is None or card.id not in {m.id for m in _callable(call)} or (call.protocol == "gemini" and card.kind != "chat"):
            raise ModelNotFound(f"model '{name}' not found", param="model")
    except GatewayError as err:
        return pipeline.error_response(call, err)
    body = gemini_entry(card) if call.protocol == "gemini" else model_entry(card)
    return pipeline.json_response(body, 200, pipeline.headers(call, cost=0))


def model_entry(card: ModelCard) -> dict[str, Any]:
    """One model in OpenAI's shape (``id``, ``object``, ``created``, ``owned_by``) plus Anthropic's fields."""
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
        "status": card.status,
        "context_window": card.context_window,
        "max_output_tokens": card.max_output_tokens,
        "capabilities": list(card.capabilities or ()),
        "pricing_url": f"/en/models/{card.id}/",
    }


def gemini_entry(card: ModelCard) -> dict[str, Any]:
    """One model as Gemini's ``models.get`` answers it."""
    return {
        "name": f"models/{card.id}",
        "baseModelId": card.id,
        "version": "001",
        "displayName": card.display_name,
        "description": f"{card.display_name}, served by ByteSpike ({card.vendor})",
        "inputTokenLimit": card.context_window or 0,
        "outputTokenLimit": card.max_output_tokens or 0,
        "supportedGenerationMethods": GEMINI_METHODS,
        "thinking": "thinking" in card.capabilities,
    }
