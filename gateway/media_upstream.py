"""A media call's exchange with one target: a JSON or multipart body out, raw bytes back.

Embeddings, rerank, images, audio and video tasks go to OpenAI-protocol
channels in bodies the chat codecs do not model. The targets, the retries and
the Router's score are ``gateway.upstream``'s (``first_answer``, ``attempt``),
and so is the reading of an error answer (``upstream.refusal``); no ledger here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from core.errors import UpstreamError
from core.ratecard import ModelCard
from gateway import upstream
from gateway.providers.base import USER_AGENT, http_session
from gateway.routing import Target
from gateway.upstream import READ_ERRORS, Timeout

SPEAKS = "openai"  # the one upstream protocol the media endpoints talk


@dataclass
class Outbound:
    """What to send, before the model name is set for a target: a JSON body or a multipart form."""

    method: str = "POST"
    path: str = ""
    json: Mapping[str, Any] | None = None
    form: list[tuple[str, str]] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    set_model: bool = True
    stream: bool = False  # hand back the body as it arrives (large files) instead of reading it whole

    def for_model(self, upstream_model: str) -> dict[str, Any]:
        """The keyword arguments of ``requests`` for this target's model name."""
        kw: dict[str, Any] = {}
        if self.json is not None:
            body = dict(self.json)
            if self.set_model:
                body["model"] = upstream_model
            kw["data"] = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            kw["headers"] = {"content-type": "application/json"}
        elif self.form is not None or self.files:
            form = [(k, v) for k, v in (self.form or []) if not (self.set_model and k == "model")]
            if self.set_model:
                form.insert(0, ("model", upstream_model))
            kw["data"] = form
            kw["files"] = list(self.files or [])
        return kw


@dataclass
class Reply:
    """A 2xx answer from the upstream."""

    target: Target
    status: int
    headers: Mapping[str, str]
    body: bytes
    chunks: Iterator[bytes] | None = None  # a streamed body (``Outbound.stream``); close() when done
    close: Callable[[], None] | None = None

    def json(self) -> dict[str, Any]:
        """Parse the body as a JSON object (502 when the upstream sent something else)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            raise UpstreamError("upstream sent an unreadable answer") from None
        if not isinstance(data, dict):
            raise UpstreamError("upstream sent an unexpected answer")
        return data


def speaks(protocol: str) -> bool:
    """Whether a channel of ``protocol`` can take a media call."""
    return protocol == SPEAKS


def exchange(out: Outbound) -> Callable[[ModelCard, Target], Callable[[Timeout], Reply]]:
    """The exchange ``gateway.upstream`` runs per target: ``out`` with that target's model name."""
    return lambda card, target: lambda timeout: send(out, target, timeout)


def send(out: Outbound, target: Target, timeout: Timeout) -> Reply:
    """One round trip; a failure raises the mapped ``UpstreamError`` (``upstream.refusal``)."""
    url = f"{target.channel.base_url}/{out.path.lstrip('/')}"
    kw = out.for_model(target.upstream_model)
    headers = {"user-agent": USER_AGENT, "authorization": f"Bearer {target.api_key}", **kw.pop("headers", {})}
    try:
        resp = http_session().request(out.method, url, headers=headers, timeout=timeout, stream=out.stream, **kw)
        if out.stream and resp.status_code < 300:
            return Reply(target, resp.status_code, resp.headers, b"", resp.iter_content(65536), resp.close)
        body = resp.content
    except READ_ERRORS as exc:
        raise upstream.transport_error(exc) from None
    if resp.status_code >= 300:
        raise upstream.refusal(target, resp.status_code, body, upstream.retry_after_s(resp.headers.get("retry-after")))
    return Reply(target, resp.status_code, resp.headers, body)
