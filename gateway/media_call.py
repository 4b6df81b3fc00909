"""Media as a kind of work: embeddings, rerank, images and audio through the one call lifecycle.

An endpoint names how its body is read (``json_body`` or ``form_body``) and
how a body becomes a ``Job``: its model (``resolve``: card, kind, the key's
group, a channel), the upper-bound cost, what to send
(``media_upstream.Outbound``) and how to read the answer into a
``pipeline.Answer`` (body, usage, cost). ``gateway.lifecycle`` does the rest,
as for chat: limits, dry run, reservation, the targets (OpenAI-protocol
channels only), settle or release, the headers. Errors are OpenAI-shaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from core import catalog, keys
from core.errors import InvalidRequest, ModelNotFound, NoChannel, TooLarge
from core.ratecard import ModelCard
from gateway import lifecycle, media_upstream, pipeline
from gateway.call import Call
from gateway.media_upstream import Outbound, Reply
from gateway.pipeline import Answer
from gateway.routing import Target, get_router
from gateway.upstream import Timeout

B = TypeVar("B")
File = tuple[str, tuple[str, bytes, str]]  # (field name, (file name, data, content type))


@dataclass
class Job:
    """A parsed call: its model, the upper-bound cost, what to send, and how to read the answer."""

    card: ModelCard
    estimate: int
    out: Outbound
    finish: Callable[[Reply], Answer]
    input_tokens: int = 0


@dataclass
class Form:
    """A multipart body: its fields and files, in order."""

    fields: list[tuple[str, str]]
    files: list[File]

    def field(self, name: str) -> str | None:
        for k, v in self.fields:
            if k == name:
                return v
        return None


class MediaWork(lifecycle.Work[Reply], Generic[B]):
    """One media call: its body read by ``read``, made a ``Job`` by ``prepare``."""

    def __init__(self, read: Callable[[Call], B], prepare: Callable[[Call, B], Job]) -> None:
        self._read = read
        self._prepare = prepare
        self._body: B | None = None
        self._job: Job | None = None

    @property
    def job(self) -> Job:
        assert self._job is not None, "judged before it is sent"
        return self._job

    def parse(self, call: Call) -> None:
        self._body = self._read(call)

    def judge(self, call: Call) -> Response | None:
        assert self._body is not None
        self._job = self._prepare(call, self._body)
        call.estimate, call.input_tokens = self._job.estimate, self._job.input_tokens
        return None

    def speaks(self, protocol: str) -> bool:
        return media_upstream.speaks(protocol)

    def exchange(self, call: Call, card: ModelCard, target: Target) -> Callable[[Timeout], Reply]:
        return media_upstream.exchange(self.job.out)(card, target)

    def answer(self, call: Call, reply: Reply, deadline: float) -> Response:
        job = self.job
        return pipeline.settle_and_answer(call, lambda: job.finish(reply))


def serve(protocol: str, read: Callable[[Call], B], prepare: Callable[[Call, B], Job]) -> Response:
    """Serve one media call; ``protocol`` names its kind in the usage log (embeddings, rerank, images, audio)."""
    return lifecycle.serve(new_call(protocol), MediaWork(read, prepare))


def new_call(protocol: str) -> Call:
    """A ``Call`` that renders errors in OpenAI's shape and logs ``protocol`` in the usage row."""
    call = Call("openai")
    call.protocol = protocol  # only the usage row reads it from here on
    return call


def resolve(call: Call, name: Any, *, kinds: tuple[str, ...], capability: str | None = None,
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


def json_body(call: Call) -> dict[str, Any]:
    """A JSON object body (400 on anything else, 413 past 32 MB)."""
    return pipeline.read_body()[1]


def form_body(call: Call) -> Form:
    """A multipart body, in order; 413 past 32 MB, 400 when it is not multipart."""
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
    return Form(fields, files)


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
