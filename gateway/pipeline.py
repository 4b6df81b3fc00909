"""One call's admission and accounts: admit, reserve, answer, settle or release.

The order is fixed: key -> body -> model -> permission -> limits -> estimate ->
(dry run) -> reservation; then ``gateway.chat`` tries the targets in order
(retry while no byte reached the caller) and answers through ``settle`` or
``release`` here (streams: ``gateway.streaming``; fanned-out choices:
``gateway.choices``). Every exit renders in the caller's protocol and carries
the quota and cost headers.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from core import alerts, catalog, keys, ledger, limits, metrics, ratecard, safejson
from core.errors import (
    AuthError,
    GatewayError,
    InsufficientBalance,
    InvalidRequest,
    ModelNotFound,
    NoChannel,
    QuotaExceeded,
    StalePrincipal,
    TooLarge,
)
from core.keys import Principal
from core.ledger import Hold, UsageRecord
from core.limits import Admission
from core.models import new_id
from core.money import usd_str
from core.ratecard import ModelCard
from core.safejson import JSONObject
from gateway import auth, responses_store
from gateway import estimate as estimator
from gateway.canonical import ChatRequest, ChatResponse, Usage
from gateway.protocols import registry
from gateway.protocols.contract import Codec
from gateway.responses_store import State
from gateway.routing import Router, get_router

log = logging.getLogger("bytespike.gateway")

MAX_BODY = 32 * 1024 * 1024
ANTHROPIC_VERSIONS = ("2023-06-01", "2026-10-21")
MAX_TOKENS_LIMIT = 2**31 - 1  # far above any model's output; keeps every reservation within a bigint

Body = Mapping[str, object] | bytes  # an answer's body: a JSON object to encode, or bytes sent as they are


@dataclass(frozen=True)
class Asked:
    """What the caller asked, as ``parse`` read it: fixed from then on."""

    raw: JSONObject  # the body's object (a chained Responses call's with the earlier turns in front)
    body: bytes  # the bytes the estimate reads (a chained Responses call's: ``raw`` encoded again)
    req: ChatRequest
    version: str | None = None  # the Anthropic version served (the asked one when known, else the first)
    forward: Mapping[str, str] = field(default_factory=dict)  # caller headers a same-protocol upstream gets
    include_usage: bool = True  # whether an OpenAI stream ends with its usage chunk
    session: str | None = None  # the sticky-routing session (``x-bytespike-session``, else the caller's user)
    state: State | None = None  # a Responses call's stored state (``gateway.responses_store``)


@dataclass
class Call:
    """Everything one request learns on its way through.

    ``protocol``, ``request_id`` and ``started`` name the call from its start, and
    ``asked`` (the parsed request, frozen) is set once by ``parse``; ``raw``,
    ``body``, ``req``, ``version``, ``forward``, ``include_usage``, ``session`` and
    ``state`` read it. The rest is running state, moved as the call goes:
    ``authenticated`` (read again when the key changed meanwhile), the judged
    ``cards``, ``input_tokens``, ``max_output`` and ``estimate`` (judged again
    then too), the ``admission`` (None once released) and the ``hold`` (None
    until reserved), and what the upstream attempts leave: ``router``,
    ``provider``, ``channel``, ``upstream_protocol``, ``served``,
    ``fallback_from``, ``fallback_reason`` and ``upstream_s``.
    """

    protocol: str  # the caller's: anthropic | openai | responses | gemini (a media call names its kind)
    codec: Codec = field(init=False)  # the caller's protocol's codec
    request_id: str = field(default_factory=lambda: new_id("req"))
    started: float = field(default_factory=time.perf_counter)
    asked: Asked | None = None
    authenticated: Principal | None = None  # None until the key is read (or when it was refused)
    cards: list[ModelCard] = field(default_factory=list)  # the asked model, then fallbacks
    input_tokens: int = 0
    max_output: int = 0
    estimate: int = 0
    admission: Admission | None = None
    hold: Hold | None = None
    router: Router | None = None
    provider: str = ""
    channel: str | None = None
    upstream_protocol: str = ""  # the wire of the channel that answered (metrics' protocol pair)
    served: ModelCard | None = None  # the card of the model that answered
    fallback_from: str | None = None
    fallback_reason: str | None = None
    upstream_s: float = 0.0

    def __post_init__(self) -> None:
        self.codec = registry.codec(self.protocol)

    @property
    def principal(self) -> Principal:
        """The caller's key; read only once ``authenticate`` has admitted it."""
        if self.authenticated is None:
            raise RuntimeError(f"{self.request_id}: the caller's key is read before it was authenticated")
        return self.authenticated

    @property
    def raw(self) -> JSONObject | None:
        return self.asked.raw if self.asked is not None else None

    @property
    def body(self) -> bytes:
        return self.asked.body if self.asked is not None else b""

    @property
    def req(self) -> ChatRequest | None:
        return self.asked.req if self.asked is not None else None

    @property
    def version(self) -> str | None:
        return self.asked.version if self.asked is not None else None

    @property
    def forward(self) -> Mapping[str, str]:
        return self.asked.forward if self.asked is not None else {}

    @property
    def include_usage(self) -> bool:
        return self.asked.include_usage if self.asked is not None else True

    @property
    def session(self) -> str | None:
        return self.asked.session if self.asked is not None else None

    @property
    def state(self) -> State | None:
        return self.asked.state if self.asked is not None else None

    @property
    def stream(self) -> bool:
        return self.asked is not None and self.asked.req.stream

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started - self.upstream_s) * 1000)

    def cost_of(self, usage: Usage) -> int:
        """Cost of the reported usage at the served model's price (the reservation is no ceiling)."""
        return ratecard.chat_cost_credits(self.served or self.cards[0], usage)


# --- admission: everything before the first upstream byte ------------------------------


def read_body() -> tuple[bytes, JSONObject]:
    """The body and the JSON object it holds (400 on anything else, 413 past 32 MB)."""
    if (request.content_length or 0) > MAX_BODY:
        raise TooLarge("request body exceeds the 32 MB limit")
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise TooLarge("request body exceeds the 32 MB limit") from None
    if len(body) > MAX_BODY:
        raise TooLarge("request body exceeds the 32 MB limit")
    try:
        raw = safejson.loads(body)
    except safejson.BadJSON as exc:
        raise InvalidRequest(f"request body: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body, raw


def read_json(call: Call) -> JSONObject:
    """The body of ``call``'s request as a JSON object (``read_body``)."""
    return read_body()[1]


def authenticate(call: Call, *, cached: bool = False) -> Principal:
    """Read the caller's key (this process's copy when ``cached``); 401 / 403 refuse it."""
    key = auth.extract_key(request, gemini=call.protocol == "gemini")
    if not key:
        raise AuthError("missing API key: send x-api-key or Authorization: Bearer")
    check = keys.authenticate_cached if cached else keys.authenticate
    call.authenticated = check(key, auth.client_ip(request))
    return call.authenticated


def parse(call: Call, *, path_model: str | None, path_stream: bool | None) -> None:
    body, raw = read_body()
    state = None
    if call.protocol == "responses":
        raw, state = responses_store.prepare(raw, call.principal.org_id)
        if state.previous_id:  # the estimate counts the earlier turns too
            body = json.dumps(raw).encode()
    version = None
    forward = {}
    if call.protocol == "anthropic":
        asked_version = request.headers.get("anthropic-version", "").strip()
        version = asked_version if asked_version in ANTHROPIC_VERSIONS else ANTHROPIC_VERSIONS[0]
        beta = request.headers.get("anthropic-beta")
        if beta:
            forward["anthropic-beta"] = beta
    stream = None if path_model is None else bool(path_stream)
    req = call.codec.parse_request(raw, version=version, model=path_model, stream=stream)
    if path_model is not None:  # Gemini: the URL names the model and the method says stream or not
        req = replace(req, model=path_model, stream=bool(path_stream))
    if req.max_tokens is not None and req.max_tokens > MAX_TOKENS_LIMIT:
        raise InvalidRequest(f"max_tokens: {req.max_tokens} is above {MAX_TOKENS_LIMIT}", param="max_tokens")
    include_usage = True
    if call.protocol == "openai":
        opts = raw.get("stream_options")
        include_usage = bool(isinstance(opts, dict) and opts.get("include_usage"))
    session = request.headers.get("x-bytespike-session") or req.user
    call.asked = Asked(raw, body, req, version, forward, include_usage, session, state)


def resolve_models(call: Call, asked: Asked) -> None:
    """The asked model and any fallbacks, on the rate card; 404 names an unknown model."""
    card = catalog.get_card().resolve(asked.req.model)
    if card is None:
        raise ModelNotFound(f"model '{asked.req.model}' not found", param="model")
    if card.kind != "chat":
        raise InvalidRequest(f"model '{card.id}' is a {card.kind} model, not a chat model", param="model")
    keys.check_model(call.principal, card.id)
    call.cards = [card]
    for name in (request.headers.get("x-bytespike-fallback") or "").split(","):
        alt = catalog.get_card().resolve(name.strip()) if name.strip() else None
        if alt is None or alt.kind != "chat" or any(c.id == alt.id for c in call.cards):
            continue
        try:
            keys.check_model(call.principal, alt.id)
        except GatewayError:
            continue
        call.cards.append(alt)
    router = get_router(current_app)
    if not any(router.serves(c.id) for c in call.cards):
        raise NoChannel(f"no channel configured for model '{card.id}'")


def estimate(call: Call, asked: Asked) -> None:
    """Upper-bound cost (``gateway.estimate``): input and every answer, at the dearest candidate's price."""
    req = asked.req
    est = 0
    found = estimator.scan(req, len(asked.body))
    for card in call.cards:
        tokens = estimator.input_tokens(found, card)
        out = estimator.output_tokens(req, asked.raw, card)
        # Several choices fanned out (``gateway.choices``) read the input once per choice.
        reads = req.n if req.n > 1 and _fans_out(call, card) else 1
        est = max(est, ratecard.estimate_credits(card, tokens * reads, out))
        if card is call.cards[0]:
            call.input_tokens, call.max_output = tokens, estimator.max_output(req, card)
    call.estimate = est


def _fans_out(call: Call, card: ModelCard) -> bool:
    """True when some channel serving ``card`` speaks another protocol than the caller (no native choices)."""
    return any(card.id in ch.models and ch.protocol != call.protocol for ch in get_router(current_app).channels)


def admit(call: Call, *, path_model: str | None = None, path_stream: bool | None = None) -> Response | None:
    """Run every check before the upstream; returns a response for a dry run.

    The key comes from this process's cache (``keys.authenticate_cached``). If it changed
    meanwhile, the reservation says so (StalePrincipal); a refusal made on the cached copy
    stands only if the key's version is still the copy's. Otherwise the call is judged
    again on a fresh read of the key.
    """
    authenticate(call, cached=True)
    parse(call, path_model=path_model, path_stream=path_stream)
    assert call.asked is not None
    for attempt in range(3):
        try:
            return _judge(call, call.asked)
        except (InsufficientBalance, QuotaExceeded):
            raise  # judged under the row locks on the stored figures
        except GatewayError as err:
            release_admission(call)
            p = call.authenticated
            if p is None or p.version is None or attempt == 2:
                raise
            if not isinstance(err, StalePrincipal) and keys.is_current(p):
                raise  # the cached copy was right: the refusal stands
            keys.forget(auth.extract_key(request, gemini=call.protocol == "gemini") or "")
            # Read the key again (caching the new row); a third try reads it without a version at all.
            authenticate(call, cached=attempt == 0)
    raise AssertionError("unreachable")


def _judge(call: Call, asked: Asked) -> Response | None:
    """Models, limits, the estimate and the reservation for the current principal."""
    resolve_models(call, asked)
    estimate(call, asked)
    call.admission = limits.admit(call.principal, estimated_tokens=call.input_tokens)
    if request.headers.get("x-bytespike-dry-run", "").strip().lower() in ("1", "true", "yes"):
        body = {"estimated_credits": call.estimate, "model": call.cards[0].id, "input_tokens": call.input_tokens}
        return json_response(body, 200, headers(call, cost=0))
    call.hold = ledger.reserve(call.principal, call.request_id, call.estimate)
    return None


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
        return call.served.id
    if call.cards:
        return call.cards[0].id
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


def settle_and_answer(call: Call, render: Callable[[], Body], usage: Usage, cost: int) -> Response:
    """Render the answer, charge it (committed), then send it with its cost; any failure is answered free."""
    try:
        body = render()
        charged = settle(call, usage, cost)
    except GatewayError as err:
        return fail(call, err)
    except Exception:  # noqa: BLE001
        log.exception("render/settle failed in %s", call.request_id)
        return fail(call, GatewayError("internal error; the call was not charged"))
    return json_response(body, 200, headers(call, cost=charged))


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

