"""Gateway routes: thin wrappers that hand each call to ``gateway.chat`` in the caller's protocol."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from core import catalog, keys, ratecard
from core.errors import GatewayError, InvalidRequest, ModelNotFound, NotFound
from gateway import chat, pipeline, responses_store
from gateway.call import Call

bp = Blueprint("gateway", __name__)
BLUEPRINTS = [bp]


@bp.post("/v1/messages")
def messages() -> Response:
    return chat.handle("anthropic")


@bp.post("/v1/chat/completions")
def chat_completions() -> Response:
    return chat.handle("openai")


@bp.post("/v1/responses")
def responses() -> Response:
    return chat.handle("responses")


@bp.post("/v1beta/models/<path:target>")
# google-genai 3.x calls {base_url}/v1/models/... unless told api_version="v1beta": serve both.
@bp.post("/v1/models/<path:target>")
def gemini(target: str) -> Response:
    model, _, action = target.rpartition(":")
    if action not in ("generateContent", "streamGenerateContent") or not model:
        call = Call("gemini")
        return pipeline.error_response(call, NotFound(f"unknown method '{target}'"))
    return chat.handle("gemini", path_model=model, path_stream=action == "streamGenerateContent")


@bp.post("/v1/messages/count_tokens")
def count_tokens() -> Response:
    """Estimate input tokens locally (Anthropic shape); nothing is sent upstream or charged."""
    call = Call("anthropic")
    try:
        pipeline.authenticate(call)
        body, raw = pipeline.read_body()
        name = raw.get("model")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("model: field required", param="model")
        if not isinstance(raw.get("messages"), list):
            raise InvalidRequest("messages: field required (a list)", param="messages")
        card = catalog.get_card().resolve(name)
        if card is None:
            raise ModelNotFound(f"model '{name}' not found", param="model")
        keys.check_model(call.principal, card.id)
    except GatewayError as err:
        return pipeline.error_response(call, err)
    tokens = ratecard.estimate_input_tokens(body)
    return pipeline.json_response({"input_tokens": tokens}, 200, pipeline.headers(call, cost=0))


def _stored(action: str, response_id: str) -> Response:
    """GET / DELETE a stored response, or list its input items, for the caller's own account."""
    call = Call("responses")
    try:
        pipeline.authenticate(call)
        org = call.principal.org_id
        if action == "delete":
            body: dict[str, Any] = responses_store.delete(org, response_id)
        elif action == "get":
            body = responses_store.load(org, response_id).response
        else:
            order = request.args.get("order", "desc")
            if order not in ("asc", "desc"):
                raise InvalidRequest("order: expected asc or desc", param="order")
            try:
                limit = int(request.args.get("limit", "20"))
            except ValueError:
                raise InvalidRequest("limit: expected an integer from 1 to 100", param="limit") from None
            if not 1 <= limit <= 100:
                raise InvalidRequest("limit: expected an integer from 1 to 100", param="limit")
            row = responses_store.load(org, response_id)
            body = responses_store.input_items_page(row, order=order, limit=limit, after=request.args.get("after"))
    except GatewayError as err:
        return pipeline.error_response(call, err)
    return pipeline.json_response(body, 200, pipeline.headers(call, cost=0))


@bp.get("/v1/responses/<response_id>")
def get_response(response_id: str) -> Response:
    return _stored("get", response_id)


@bp.delete("/v1/responses/<response_id>")
def delete_response(response_id: str) -> Response:
    return _stored("delete", response_id)


@bp.get("/v1/responses/<response_id>/input_items")
def response_input_items(response_id: str) -> Response:
    return _stored("input_items", response_id)
