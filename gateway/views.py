"""Gateway routes: thin wrappers that hand each call to the pipeline in the caller's protocol."""

from __future__ import annotations

from flask import Blueprint, Response

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
        call = pipeline.Call(caller="gemini", codec=pipeline.codec_for("gemini"))
        return pipeline.error_response(call, NotFound(f"unknown method '{target}'"))
    return pipeline.handle("gemini", path_model=model, path_stream=action == "streamGenerateContent")


@bp.post("/v1/messages/count_tokens")
def count_tokens() -> Response:
    """Estimate input tokens locally (Anthropic shape); nothing is sent upstream or charged."""
    from core import catalog, keys, ratecard
    from gateway import pipeline

    call = pipeline.Call(caller="anthropic", codec=pipeline.codec_for("anthropic"))
    try:
        pipeline.authenticate(call)
        raw = pipeline.read_json(call)
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
    tokens = ratecard.estimate_input_tokens(call.body)
    return pipeline.json_response({"input_tokens": tokens}, 200, pipeline.headers(call, cost=0))
