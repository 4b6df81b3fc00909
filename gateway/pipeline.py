"""What every call shares, whatever its kind: the call's record, the key, the body, the answers and the money.

``gateway.lifecycle`` runs one call through these steps in a fixed order
(key -> body -> models and estimate -> limits -> dry run -> reservation ->
the targets -> the answer -> settle or release); the kinds of work (chat,
media, a video task's submit) and the stream and choice relays
(``gateway.streaming``, ``gateway.choices``) answer through the helpers here.
Every exit renders in the caller's protocol and carries the quota and cost
headers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from flask import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from core import alerts, keys, ledger, limits, metrics, ratecard, safejson
from core.errors import AuthError, GatewayError, InvalidRequest, TooLarge
from core.keys import Principal
from core.ledger import Hold, UsageRecord
from core.money import usd_str
from core.safejson import JSONObject
from gateway import auth
from gateway.call import Call
from gateway.canonical import ChatResponse, Usage

log = logging.getLogger("bytespike.gateway")

MAX_BODY = 32 * 1024 * 1024
TOO_LARGE = "request body exceeds the 32 MB limit"
JSON = "application/json"

Body = Mapping[str, object] | bytes  # an answer's body: a JSON object to encode, or bytes sent as they are


# --- admission: everything before the first upstream byte ------------------------------


def read_body() -> tuple[bytes, JSONObject]:
    """The body and the JSON object it holds (400 on anything else, 413 past 32 MB)."""
    body = _declared_body(request.environ)
    if body is None:
        if (request.content_length or 0) > MAX_BODY:
            raise TooLarge(TOO_LARGE)
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            raise TooLarge(TOO_LARGE) from None
    if len(body) > MAX_BODY:
        raise TooLarge(TOO_LARGE)
    try:
        raw = safejson.loads(body)
    except safejson.BadJSON as exc:
        raise InvalidRequest(f"request body: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body, raw


def _declared_body(environ: dict[str, Any]) -> bytes | None:
    """A body of a plain decimal Content-Length within the limit, read straight from the server's input.

    What ``request.get_data`` reads too, without building the request's stream wrappers; any
    other body (chunked, no or odd length) is left to it (None); one past the limit is refused.
    """
    length = environ.get("CONTENT_LENGTH")
    if (not length or not length.isascii() or not length.isdigit() or len(length) > 9
            or environ.get("HTTP_TRANSFER_ENCODING")):
        return None
    size = int(length)
    if size > MAX_BODY:
        raise TooLarge(TOO_LARGE)
    stream = environ.get("wsgi.input")
    if stream is None:
        return None
    chunks, left = [], size
    while left:
        piece = stream.read(left)
        if not piece:  # the client hung up early (werkzeug answers 400 too)
            raise InvalidRequest("request body ended before its Content-Length")
        chunks.append(piece)
        left -= len(piece)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def authenticate(call: Call, *, cached: bool = False) -> Principal:
    """Read the caller's key (this process's copy when ``cached``); 401 / 403 refuse it."""
    key = auth.extract_key(request, gemini=call.protocol == "gemini")
    if not key:
        raise AuthError("missing API key: send x-api-key or Authorization: Bearer")
    check = keys.authenticate_cached if cached else keys.authenticate
    call.authenticated = check(key, auth.client_ip(request))
    return call.authenticated


# --- answers -------------------------------------------------------------------------------


def headers(call: Call, *, cost: int | None) -> dict[str, str]:
    """The quota envelope and the cost headers every /v1 response carries."""
    out: dict[str, str] = {}
    if call.authenticated is not None:
        try:
            out.update(limits.envelope_headers(call.authenticated))
        except Exception:  # noqa: BLE001 - a missing envelope must not fail the call itself
            log.warning("quota envelope unavailable for %s", call.request_id)
    out["x-bytespike-request-id"] = call.request_id
    out["x-bytespike-estimated-credits"] = str(call.estimate)
    if cost is not None:
        out["x-bytespike-cost-credits"] = str(cost)
        out["x-bytespike-cost-usd"] = usd_str(cost)
    out["x-bytespike-provider"] = call.provider
    out["x-bytespike-overhead-ms"] = f"{call.overhead_ms():.2f}"
    if call.fallback_from:
        out["x-bytespike-fallback-from"] = call.fallback_from
    return out


def json_response(body: Body, status: int, hdrs: dict[str, str]) -> Response:
    if isinstance(body, bytes):
        data = body
    else:
        try:
            data = json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate from upstream: escape it rather than fail the answer
            data = json.dumps(body).encode()
    return Response(data, status=status, headers=hdrs, mimetype="application/json")


def error_response(call: Call, err: GatewayError) -> Response:
    """Render ``err`` in the caller's shape; log the refusal when the key is known."""
    status, body = call.codec.render_error(err)
    hdrs = headers(call, cost=0)
    if err.retry_after is not None:
        hdrs["retry-after"] = str(err.retry_after)
    hdrs.update({k: v for k, v in err.headers.items() if k.lower() != "content-type"})
    return json_response(body, status, hdrs)


def record(call: Call, *, status: int, usage: Usage | None = None, error: str | None = None) -> UsageRecord:
    usage = usage or Usage()
    elapsed_ms = (time.perf_counter() - call.started) * 1000
    p = call.principal
    _observe(call, status, usage, error)
    return UsageRecord(
        request_id=call.request_id,
        org_id=p.org_id,
        api_key_id=p.key_id,
        member_id=p.member_id,
        model=_model_name(call),
        provider=call.provider or None,
        channel=call.channel,
        protocol=call.protocol,
        stream=call.stream,
        status=status,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        estimated_credits=call.estimate,
        latency_ms=int(elapsed_ms),
        overhead_ms=int(call.overhead_ms()),
        fallback_from=call.fallback_from,
        error=_error_note(call, error),
    )


def _observe(call: Call, status: int, usage: Usage, error: str | None, *, written: bool = True) -> None:
    kind = "" if not written else "log" if call.hold is None else "settle" if error is None else "release"
    rule = request.url_rule
    card = call.served or (call.cards[0] if call.cards else None)
    model = card.id if card is not None else "unknown"  # never the caller's raw text: a bounded label set
    metrics.call_done(rule.rule if rule is not None else call.protocol, call.protocol, call.upstream_protocol,
                      model, status, call.upstream_s, call.overhead_ms() / 1000, usage, kind)


def _model_name(call: Call) -> str:
    if call.served is not None:
        return str(call.served.id)
    if call.cards:
        return str(call.cards[0].id)
    return printable(str(call.req.model if call.req else ""), 120)


def _error_note(call: Call, error: str | None) -> str | None:
    if error:
        return printable(error, 500)
    if call.fallback_reason:
        return printable(f"fallback: {call.fallback_reason}", 500)
    return None


def printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` and safe for any database: no NUL, valid UTF-8."""
    text = text[:limit]
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def fail(call: Call, err: GatewayError) -> Response:
    """Free the hold (or log the refusal) and answer with the error."""
    try:
        if call.authenticated is not None:
            rec = record(call, status=err.status, error=f"{err.code}: {err.message}")
            if call.hold is not None:
                ledger.release(call.hold, rec)
            else:
                ledger.log_call(rec)
        else:
            _observe(call, err.status, Usage(), None, written=False)  # refused before the key was known
    except Exception:  # noqa: BLE001 - the caller still gets its error; a stuck hold expires
        log.exception("could not record the failure of %s", call.request_id)
    finally:
        release_admission(call)
    return error_response(call, err)


def release_admission(call: Call) -> None:
    if call.admission is not None:
        call.admission.release()
        call.admission = None


def settle(call: Call, usage: Usage, cost: int) -> int:
    """Charge the call its full cost with its usage row, committed before this returns; the credits charged.

    Called before the answer's last byte (or a stream's final event) leaves. If
    the commit fails (after the group committer's retry) this raises, and the
    caller answers an error instead and releases the hold: a call is never
    answered as a success without its charge.
    """
    limits.correct_tokens(call.admission, usage.prompt_tokens + usage.output_tokens)
    try:
        hold = _held(call)
        charged = ledger.settle(hold, cost, record(call, status=200, usage=usage))
        alerts.after_settle(hold, charged)  # enqueues a balance/budget check only when a line was crossed
        metrics.billed(_model_name(call), charged)
        return charged
    finally:
        release_admission(call)


def billable(call: Call, usage: Usage, delivered_tokens: int) -> Usage:
    """The upstream's usage, or an estimate when it reported none (some compatible vendors never do)."""
    if usage.input_tokens or usage.output_tokens or usage.cache_read_tokens or usage.cache_write_tokens:
        return usage
    return Usage(input_tokens=ratecard.estimate_input_tokens(call.body), output_tokens=max(delivered_tokens, 1))


def answer_usage(call: Call, resp: ChatResponse) -> Usage:
    """A complete answer's billable usage: the vendor's report, or an estimate from its text and arguments."""
    chars = sum(len(getattr(p, "text", "") or "") + len(getattr(p, "arguments", "") or "") for p in resp.parts)
    return billable(call, resp.usage, (chars + 3) // 4)


@dataclass
class Answer:
    """A whole answer: what the caller gets, in which content type, and what it costs."""

    body: Body | str  # a JSON object, or the bytes or text to send as they are
    usage: Usage
    cost: int
    content_type: str = JSON


def respond(answer: Answer, hdrs: dict[str, str]) -> Response:
    """Send a whole answer with ``hdrs``."""
    if answer.content_type == JSON and not isinstance(answer.body, str):
        return json_response(answer.body, 200, hdrs)
    data = answer.body.encode() if isinstance(answer.body, str) else answer.body
    return Response(data, status=200, headers=hdrs, content_type=answer.content_type)


def settle_and_answer(call: Call, produce: Callable[[], Answer]) -> Response:
    """Produce the answer, charge it (committed), then send it with its cost; any failure is answered free."""
    try:
        answer = produce()
        charged = settle(call, answer.usage, answer.cost)
    except GatewayError as err:
        return fail(call, err)
    except Exception:  # noqa: BLE001
        log.exception("render/settle failed in %s", call.request_id)
        return fail(call, GatewayError("internal error; the call was not charged"))
    return respond(answer, headers(call, cost=charged))


def hand_over(call: Call, produce: Callable[[], Answer]) -> Response:
    """Produce the answer and send it free, its hold left open for the work it started (a task settles it).

    The work runs upstream from here on: it holds money, not a concurrency slot. Any failure is answered free.
    """
    try:
        answer = produce()
    except GatewayError as err:
        return fail(call, err)
    except Exception:  # noqa: BLE001
        log.exception("internal error in %s", call.request_id)
        return fail(call, GatewayError("internal error; the call was not charged"))
    finally:
        release_admission(call)
    return respond(answer, headers(call, cost=0))


def is_dry_run() -> bool:
    """Whether the caller asked for the estimate only (``x-bytespike-dry-run``)."""
    return request.headers.get("x-bytespike-dry-run", "").strip().lower() in ("1", "true", "yes")


def message_id(call: Call) -> str:
    """The answer's id in the caller's protocol, from the request id (what a stream names its message)."""
    prefix = {"anthropic": "msg_", "openai": "chatcmpl-", "responses": "resp_", "gemini": ""}[call.protocol]
    return prefix + call.request_id.removeprefix("req_")


def release(call: Call, *, error: str, status: int = 200, usage: Usage | None = None) -> None:
    try:
        ledger.release(_held(call), record(call, status=status, usage=usage, error=error))
    finally:
        release_admission(call)


def _held(call: Call) -> Hold:
    """The call's reservation, for a settle or release (only a call that reserved comes this far)."""
    if call.hold is None:
        raise RuntimeError(f"{call.request_id} holds no reservation to close")
    return call.hold

