"""Send a non-chat call (embeddings, rerank, images, audio, video tasks) to an OpenAI-protocol channel.

The chat path's retry policy, for bodies the chat codecs do not model: JSON
or multipart out, raw bytes back. A connect error, a timeout, a 429 or a 5xx
moves on to the next key or channel serving the model; anything else is the
answer. Each attempt is reported to the Router. No ledger here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import requests

from core.errors import GatewayError, NoChannel, UpstreamError, UpstreamTimeout, is_retryable
from gateway.protocols import openai_chat
from gateway.providers.base import http_session
from gateway.providers.openai import OpenAIProvider
from gateway.routing import Router, Target, get_router
from gateway.upstream import READ_ERRORS

USER_AGENT = "bytespike-gateway/1"
_VENDOR = OpenAIProvider()


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


def send(call: Any, card: Any, out: Outbound, *, deadline: float) -> Reply:
    """Try every OpenAI-protocol target of ``card`` in order; return the first 2xx answer."""
    from flask import current_app

    router = get_router(current_app)
    last: GatewayError | None = None
    for target in router.targets(card.id, session=None, tenant=str(call.principal.org_id)):
        if target.channel.protocol != "openai":
            continue
        if time.perf_counter() >= deadline:
            raise last or UpstreamTimeout("request deadline exceeded before an upstream answered")
        try:
            return attempt(call, router, card, target, out, deadline=deadline)
        except GatewayError as err:
            if not is_retryable(err):
                raise
            last = err
    if last is None:
        raise NoChannel(f"no channel configured for model '{card.id}'")
    raise last


def attempt(call: Any, router: Router | None, card: Any, target: Target, out: Outbound, *,
            deadline: float) -> Reply:
    """One try at one (channel, key); raises a mapped UpstreamError on failure."""
    channel = target.channel
    remaining = max(0.1, deadline - time.perf_counter())
    timeout = (min(channel.connect_timeout_s, remaining), min(channel.timeout_s, remaining))
    if call is not None:
        call.provider = _VENDOR.vendor(channel, default=card.vendor)
        call.channel = channel.name
    t0 = time.perf_counter()
    status: int | None = None
    try:
        reply = _exchange(target, out, timeout)
        status = reply.status
    except GatewayError as err:
        status = getattr(err, "upstream_status", None)
        if router is not None:
            router.report(target, ok=False, latency_ms=(time.perf_counter() - t0) * 1000, status=status,
                          retry_after=getattr(err, "retry_after_s", None))
        raise
    finally:
        if call is not None:
            call.upstream_s += time.perf_counter() - t0
    if router is not None:
        router.report(target, ok=True, latency_ms=(time.perf_counter() - t0) * 1000, status=status)
    return reply


def _exchange(target: Target, out: Outbound, timeout: tuple[float, float]) -> Reply:
    url = f"{target.channel.base_url}/{out.path.lstrip('/')}"
    kw = out.for_model(target.upstream_model)
    headers = {"user-agent": USER_AGENT, "authorization": f"Bearer {target.api_key}", **kw.pop("headers", {})}
    try:
        resp = http_session().request(out.method, url, headers=headers, timeout=timeout, stream=out.stream, **kw)
        if out.stream and resp.status_code < 300:
            return Reply(target, resp.status_code, resp.headers, b"", resp.iter_content(65536), resp.close)
        body = resp.content
    except requests.Timeout:
        raise UpstreamTimeout("upstream did not answer in time") from None
    except READ_ERRORS:
        raise UpstreamError("upstream unreachable") from None
    if resp.status_code >= 300:
        err = openai_chat.parse_error(resp.status_code, body, secrets=target.channel.api_keys)
        if getattr(err, "upstream_status", None) is None:
            err.upstream_status = resp.status_code
        err.retry_after_s = _retry_after(resp.headers.get("retry-after"))  # type: ignore[attr-defined]
        raise err
    return Reply(target, resp.status_code, resp.headers, body)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def target_for(channel_name: str, key_index: int, upstream_model: str) -> Target:
    """Rebuild the (channel, key) an async task was submitted to; NoChannel when it is gone."""
    from flask import current_app

    for ch in get_router(current_app).channels:
        if ch.name == channel_name and 0 <= key_index < len(ch.api_keys):
            return Target(ch, key_index, upstream_model)
    raise NoChannel(f"channel '{channel_name}' is no longer configured")
