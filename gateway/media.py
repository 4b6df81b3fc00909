"""Non-chat endpoints: embeddings, rerank, images and audio, in OpenAI's (and Cohere/Jina's) shapes.

Billing rules (the card's row decides; costs round up to a whole credit):

- embeddings: the upstream's ``usage.prompt_tokens`` x ``input`` (USD per 1M tokens);
  the reservation counts every UTF-8 byte of input as a token (a token never
  spans less than a byte), so it is a true upper bound.
- rerank: a row priced ``per_search`` bills search units (the upstream's
  ``meta.billed_units.search_units``, else one per 100 documents); a row priced
  ``input`` bills tokens (``usage.total_tokens`` or ``meta.billed_units.input_tokens``).
- images: ``per_image`` x images returned; the reservation is ``n`` images.
- speech: ``per_million_chars`` x characters of ``input``, known before the call.
- transcription: ``per_second`` x seconds of audio, see ``gateway.media_audio``.

When an upstream reports no usage, the bill is an estimate of about four
bytes a token; it never exceeds the reservation. The usage log keeps the
billed units in its token columns: tokens or characters in ``input_tokens``,
images in ``output_tokens``, audio seconds in ``input_tokens``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from flask import Blueprint, Response

from core import ratecard
from core.errors import InvalidRequest, UpstreamError
from core.ratecard import ModelCard
from gateway import media_audio, tasks
from gateway.call import Call
from gateway.canonical import Usage
from gateway.media_call import Form, Job, form_body, int_param, json_body, resolve, serve, with_model
from gateway.media_upstream import Outbound, Reply
from gateway.pipeline import Answer

bp = Blueprint("media", __name__, cli_group=None)
bp.register_blueprint(tasks.bp)  # /v1/tasks/* and `flask poll-tasks`
MAX_IMAGES = 10
MAX_DOCUMENTS = 10_000
DOCS_PER_SEARCH = 100
CHUNK_TOKENS = 500  # Cohere splits a longer document into chunks, each counted as a document


@bp.post("/v1/embeddings")
def embeddings() -> Response:
    return serve("embeddings", json_body, _embeddings)


@bp.post("/v1/rerank")
def rerank() -> Response:
    return serve("rerank", json_body, _rerank)


@bp.post("/v1/images/generations")
def image_generations() -> Response:
    return serve("images", json_body, _image_generations)


@bp.post("/v1/images/edits")
def image_edits() -> Response:
    return serve("images", form_body, _image_edits)


@bp.post("/v1/audio/speech")
def speech() -> Response:
    return serve("audio", json_body, media_audio.speech)


@bp.post("/v1/audio/transcriptions")
def transcriptions() -> Response:
    return serve("audio", form_body, media_audio.transcription)


# --- embeddings ------------------------------------------------------------------------------


def input_bytes(value: Any, name: str = "input") -> tuple[int, int]:
    """(upper-bound tokens, items) of an embeddings input: text, texts, token ids or lists of them."""
    if isinstance(value, str):
        return len(value.encode()) + 1, 1
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return len(value), 1
        total = 0
        for v in value:
            if isinstance(v, str):
                total += len(v.encode()) + 1
            elif isinstance(v, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in v):
                total += len(v)
            else:
                raise InvalidRequest(f"{name}: each item must be a string or a list of token ids", param=name)
        return total, len(value)
    raise InvalidRequest(f"{name}: a string or a non-empty list is required", param=name)


def _embeddings(call: Call, body: dict[str, Any]) -> Job:
    card = resolve(call, body.get("model"), kinds=("embedding",), what="embeddings")
    tokens, _ = input_bytes(body.get("input"))
    estimate = ratecard.chat_cost_credits(card, Usage(input_tokens=tokens))

    def finish(reply: Reply) -> Answer:
        data = reply.json()
        usage = _obj(data, "usage")
        used = _count(usage.get("prompt_tokens"), usage.get("total_tokens"), default=math.ceil(tokens / 4))
        billed = Usage(input_tokens=used)
        return Answer(with_model(data, card), billed, ratecard.chat_cost_credits(card, billed))

    return Job(card, estimate, Outbound(path="embeddings", json=body), finish, input_tokens=tokens)


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is an object, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _count(*values: Any, default: int) -> int:
    """The first non-negative integer the upstream reported, else ``default``."""
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            return v
    return default


# --- rerank ----------------------------------------------------------------------------------


def _doc_text(doc: Any) -> str:
    if isinstance(doc, str):
        return doc
    text = doc.get("text") if isinstance(doc, dict) else None
    if isinstance(text, str):
        return text
    raise InvalidRequest("documents: each item must be a string or an object with 'text'", param="documents")


def _rerank(call: Call, body: dict[str, Any]) -> Job:
    card = resolve(call, body.get("model"), kinds=("rerank",), what="rerank")
    query, docs = body.get("query"), body.get("documents")
    if not isinstance(query, str) or not query:
        raise InvalidRequest("query: a non-empty string is required", param="query")
    if not isinstance(docs, list) or not docs or len(docs) > MAX_DOCUMENTS:
        raise InvalidRequest(f"documents: a list of 1 to {MAX_DOCUMENTS} documents is required", param="documents")
    sizes = [len(_doc_text(d).encode()) for d in docs]
    int_param(body.get("top_n"), "top_n", default=len(docs), lo=1, hi=MAX_DOCUMENTS)
    qbytes = len(query.encode())
    # A cross-encoder reads the query beside every document.
    tokens = sum(sizes) + (qbytes + 2) * len(docs)
    by_search = card.per_search is not None
    chunks = sum(max(1, math.ceil((s + qbytes) / CHUNK_TOKENS)) for s in sizes)
    units_max = math.ceil(chunks / DOCS_PER_SEARCH)
    if by_search:
        estimate = ratecard.search_cost_credits(card, units_max)
    else:
        estimate = ratecard.chat_cost_credits(card, Usage(input_tokens=tokens))

    def finish(reply: Reply) -> Answer:
        data = reply.json()
        if not isinstance(data.get("results"), list):
            raise _bad_answer("results")
        units, usage = _obj(_obj(data, "meta"), "billed_units"), _obj(data, "usage")
        if by_search:
            n = _count(units.get("search_units"), usage.get("search_units"),
                       default=math.ceil(len(docs) / DOCS_PER_SEARCH))
            return Answer(with_model(data, card), Usage(input_tokens=n), ratecard.search_cost_credits(card, n))
        n = _count(usage.get("total_tokens"), usage.get("prompt_tokens"), units.get("input_tokens"),
                   default=math.ceil(tokens / 4))
        billed = Usage(input_tokens=n)
        return Answer(with_model(data, card), billed, ratecard.chat_cost_credits(card, billed))

    return Job(card, estimate, Outbound(path="rerank", json=body), finish, input_tokens=tokens)


def _bad_answer(what: str) -> UpstreamError:
    return UpstreamError(f"upstream answer has no {what}")


# --- images ----------------------------------------------------------------------------------


def _images_answer(card: ModelCard, n: int) -> Callable[[Reply], Answer]:
    def finish(reply: Reply) -> Answer:
        data = reply.json()
        images = data.get("data")
        if not isinstance(images, list):
            raise _bad_answer("data")
        count = min(len(images), n)
        return Answer(with_model(data, card), Usage(output_tokens=count), ratecard.image_cost_credits(card, count))

    return finish


def _image_generations(call: Call, body: dict[str, Any]) -> Job:
    card = resolve(call, body.get("model"), kinds=("image",), capability="image_generation",
                   what="image generation")
    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        raise InvalidRequest("prompt: a non-empty string is required", param="prompt")
    if body.get("stream"):
        raise InvalidRequest("stream: streamed partial images are not supported; omit stream", param="stream")
    n = int_param(body.get("n"), "n", default=1, lo=1, hi=MAX_IMAGES)
    estimate = ratecard.image_cost_credits(card, n)
    return Job(card, estimate, Outbound(path="images/generations", json=body), _images_answer(card, n))


def _image_edits(call: Call, form: Form) -> Job:
    card = resolve(call, form.field("model"), kinds=("image",), capability="image_edit", what="image edits")
    if not form.field("prompt"):
        raise InvalidRequest("prompt: a non-empty string is required", param="prompt")
    if not any(name.startswith("image") for name, _ in form.files):
        raise InvalidRequest("image: at least one image file is required", param="image")
    n = int_param(form.field("n"), "n", default=1, lo=1, hi=MAX_IMAGES)
    estimate = ratecard.image_cost_credits(card, n)
    out = Outbound(path="images/edits", form=form.fields, files=form.files)
    return Job(card, estimate, out, _images_answer(card, n))
