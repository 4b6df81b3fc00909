"""Account, key and pricing API: /api/v1/me/*, /api/v1/keys, /api/pricing (API.md §4, §5).

Every /api/v1 route authenticates with the same API key as the gateway
(``x-api-key`` wins over ``Authorization: Bearer``) and answers errors in the
OpenAI shape. Who may call what is ``core.roles``' one table, checked before
every view (403 ``permission_denied``); keys and usage rows outside the
caller's scope (another member's, for a member; anything but itself, for a
sub-key) answer 404 as if they did not exist. The transactions listing shows
balance-moving entries only (``settle``, top-ups, bonuses, refunds, admin
moves); the zero-amount ``reserve``/``release`` holds stay internal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, g, request

from core import accounts, audit, catalog, keys, ledger, pricesync, ratecard, roles
from core import db as core_db
from core.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied
from core.keys import Principal
from core.models.accounts import ApiKey
from core.models.ledger import LedgerEntry
from core.models.usage import UsageLog
from core.money import CREDIT_USD, usd_str
from gateway.protocols import openai_chat

bp = Blueprint("account_api", __name__)

_k, _e, _u = ApiKey.__table__, LedgerEntry.__table__, UsageLog.__table__
USAGE_FIELDS = ("id", "created_at", "model", "provider", "protocol", "stream", "status", "input_tokens",
                "output_tokens", "cache_write_tokens", "cache_read_tokens", "cost_credits", "billed", "latency_ms",
                "overhead_ms", "fallback_from", "error")
HIDDEN_KINDS = ("reserve", "release")
KEY_FIELDS = ("quota_credits", "models", "rate_limit_5h", "rate_limit_1d", "rate_limit_7d", "rpm", "tpm",
              "expires_in_days", "ip_allow", "ip_deny")


@bp.errorhandler(GatewayError)
def _gateway_error(err: GatewayError) -> Response:
    status, body = openai_chat.render_error(err)
    resp = json_response(body, status)
    if err.retry_after is not None:
        resp.headers["retry-after"] = str(err.retry_after)
    return resp


def json_response(body: Any, status: int = 200) -> Response:
    """Answer ``body`` as JSON (non-ASCII kept as is)."""
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def _principal() -> Principal:
    raw = request.headers.get("x-api-key", "").strip()
    if not raw:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        raw = value.strip() if scheme.lower() == "bearer" else ""
    return keys.authenticate(raw, request.remote_addr or "")


@bp.before_request
def _authorize() -> None:
    """Authenticate, then judge the route's action by the role table, before any view runs."""
    action = roles.route_action(request.endpoint)
    if action is roles.PUBLIC:
        return
    g.principal = _principal()
    g.actor = roles.from_principal(g.principal)
    roles.check(g.actor, action)


def caller() -> tuple[Principal, roles.Actor]:
    """The calling key and its actor, as ``_authorize`` found them for this request."""
    return g.principal, g.actor


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    """The query argument ``name`` as an integer in [lo, hi]; ``default`` when absent (InvalidRequest otherwise)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer", param=name) from None
    if not lo <= v <= hi:
        raise InvalidRequest(f"{name} must be between {lo} and {hi}", param=name)
    return v


def _time_arg(name: str) -> dt.datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        if raw.isdigit():
            return dt.datetime.fromtimestamp(int(raw), dt.UTC).replace(tzinfo=None)
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 time or a Unix timestamp", param=name) from None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


# --- account -----------------------------------------------------------------------------


@bp.get("/api/v1/me/account")
def me_account() -> Response:
    p, _ = caller()
    with core_db.get_db().engine.connect() as conn:
        key = conn.execute(sa.select(_k).where(_k.c.id == p.key_id)).one()
    bal, reserved = ledger.balance(p.org_id)
    return json_response({
        "email": p.email,
        "org": {"id": p.org_id, "name": p.org_name, "role": p.role},
        "preset": p.preset, "tier": p.tier,
        "balance_credits": bal, "reserved_credits": reserved,
        "key": {
            "id": key.id, "name": key.name, "kind": key.kind, "quota_credits": key.quota_credits,
            "spent_credits": key.spent_credits, "models": key.models, "rate_limit_5h": key.rate_limit_5h,
            "rate_limit_1d": key.rate_limit_1d, "rate_limit_7d": key.rate_limit_7d, "rpm": key.rpm,
            "tpm": key.tpm, "expires_at": _iso(key.expires_at),
            # additive: what the key may actually call, and what it holds right now
            "allowed_models": list(p.models) if p.models is not None else None,
            "reserved_credits": key.reserved_credits, "parent_id": key.parent_id, "prefix": key.prefix,
        },
        "spendable_credits": bal - reserved, "balance_usd": usd_str(bal), "concurrency_cap": p.concurrency_cap,
    })


# --- usage -------------------------------------------------------------------------------


def _usage_row(r: Any) -> dict[str, Any]:
    row = {f: getattr(r, f) for f in USAGE_FIELDS}
    row["created_at"] = _iso(r.created_at)
    row["stream"], row["billed"] = bool(r.stream), bool(r.billed)
    row["api_key_id"], row["estimated_credits"] = r.api_key_id, r.estimated_credits
    row["cost_usd"] = usd_str(r.cost_credits)
    return row


def _group_expr(group_by: str, dialect: str) -> Any:
    if group_by == "model":
        return _u.c.model
    if group_by == "api_key":
        return _u.c.api_key_id
    if dialect == "postgresql":
        fmt = "YYYY-MM-DD" if group_by == "day" else 'YYYY-MM-DD"T"HH24:00'
        return sa.func.to_char(_u.c.created_at, fmt)
    return sa.func.strftime("%Y-%m-%d" if group_by == "day" else "%Y-%m-%dT%H:00", _u.c.created_at)


@bp.get("/api/v1/me/usage")
def me_usage() -> Response:
    _, actor = caller()
    cond = roles.usage_scope(actor)  # ?api_key= of a key out of scope finds no rows, like an unknown id
    since, until = _time_arg("since"), _time_arg("until")
    if since:
        cond.append(_u.c.created_at >= since)
    if until:
        cond.append(_u.c.created_at < until)
    if request.args.get("model"):
        card = catalog.get_card().resolve(request.args["model"])
        cond.append(_u.c.model == (card.id if card else request.args["model"]))
    if request.args.get("api_key"):
        cond.append(_u.c.api_key_id == request.args["api_key"])
    group_by = request.args.get("group_by", "").strip()
    limit = int_arg("limit", 50, 1, 1000)
    engine = core_db.get_db().engine
    if group_by:
        if group_by not in ("day", "hour", "model", "api_key"):
            raise InvalidRequest("group_by must be one of day, hour, model, api_key", param="group_by")
        g = _group_expr(group_by, engine.dialect.name).label("g")
        sums = [sa.func.coalesce(sa.func.sum(_u.c[c]), 0).label(c) for c in
                ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "cost_credits")]
        billed = sa.func.coalesce(sa.func.sum(sa.case((_u.c.billed.is_(True), 1), else_=0)), 0).label("billed")
        q = sa.select(g, sa.func.count().label("requests"), billed, *sums).where(*cond).group_by(g).order_by(g)
        with engine.connect() as conn:
            rows = conn.execute(q).all()
        data = [{group_by: r.g, "requests": r.requests, "billed_requests": int(r.billed),
                 **{c: int(getattr(r, c)) for c in ("input_tokens", "output_tokens", "cache_write_tokens",
                                                     "cache_read_tokens", "cost_credits")},
                 "cost_usd": usd_str(int(r.cost_credits))} for r in rows]
        return json_response({"object": "list", "group_by": group_by, "data": data})
    q = sa.select(_u).where(*cond).order_by(_u.c.created_at.desc(), _u.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return json_response({"object": "list", "data": [_usage_row(r) for r in rows[:limit]], "has_more": len(rows) > limit})


@bp.get("/api/v1/me/usage/<request_id>")
def me_usage_one(request_id: str) -> Response:
    _, actor = caller()
    with core_db.get_db().engine.connect() as conn:
        row = conn.execute(sa.select(_u).where(_u.c.id == request_id, *roles.usage_scope(actor))).first()
    if row is None:
        raise NotFound(f"No usage record '{request_id}' for this key.", param="request_id")
    return json_response(_usage_row(row))


# --- billing transactions ------------------------------------------------------------------


@bp.get("/api/v1/me/billing/transactions")
def me_transactions() -> Response:
    p, _ = caller()
    page = int_arg("page", 1, 1, 1_000_000)
    size = int_arg("page_size", 50, 1, 200)
    cond = [_e.c.wallet_id == p.wallet_id, _e.c.kind.not_in(HIDDEN_KINDS)]
    if request.args.get("kind"):
        cond.append(_e.c.kind == request.args["kind"])
    q = (sa.select(_e).where(*cond).order_by(_e.c.created_at.desc(), _e.c.id.desc())
         .offset((page - 1) * size).limit(size + 1))
    with core_db.get_db().engine.connect() as conn:
        rows = conn.execute(q).all()
    data = [{
        "id": r.id, "created_at": _iso(r.created_at), "kind": r.kind, "amount_credits": r.amount_credits,
        "amount_usd": format((Decimal(r.amount_credits) * CREDIT_USD).quantize(CREDIT_USD), "f"),
        "ref": r.ref, "api_key_id": r.api_key_id, "memo": r.memo,
    } for r in rows[:size]]
    return json_response({"object": "list", "data": data, "page": page, "page_size": size, "has_more": len(rows) > size})


# --- keys ----------------------------------------------------------------------------------


def _key_json(row: Any, raw: str | None = None) -> dict[str, Any]:
    out = {"id": row["id"], "object": "api_key"}
    if raw is not None:
        out["key"] = raw
    for f in ("name", "kind", "prefix", "parent_id", "quota_credits", "spent_credits", "models", "rate_limit_5h",
              "rate_limit_1d", "rate_limit_7d", "rpm", "tpm", "ip_allow", "ip_deny"):
        out[f] = row.get(f)
    for f in ("expires_at", "created_at", "revoked_at"):
        out[f] = _iso(row.get(f))
    return out


@bp.post("/api/v1/keys")
def create_key() -> Response:
    p, _ = caller()  # the table refuses a sub-key: only a master key mints, under itself
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    unknown = sorted(set(body) - {"name", *KEY_FIELDS})
    if unknown:
        raise InvalidRequest(f"Unknown field '{unknown[0]}'.", param=unknown[0])
    try:
        key = accounts.create_sub_key(p.key_id, body.get("name") or "", **{f: body.get(f) for f in KEY_FIELDS})
    except ValueError as exc:
        raise InvalidRequest(str(exc), param=str(exc).split(" ", 1)[0].rstrip(":")) from None
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from None
    audit.record("key.created", org_id=p.org_id, target=key.row["id"],
                 details={"name": key.row.get("name"), "kind": "sub", "parent_id": p.key_id})
    return json_response(_key_json(key.row, key.raw), 201)


@bp.get("/api/v1/keys")
def list_keys() -> Response:
    _, actor = caller()
    with core_db.get_db().engine.connect() as conn:
        rows = conn.execute(sa.select(_k).where(*roles.key_scope(actor)).order_by(_k.c.created_at)).mappings().all()
    return json_response({"object": "list", "data": [_key_json(r) for r in rows]})


@bp.delete("/api/v1/keys/<key_id>")
def revoke_key(key_id: str) -> Response:
    _, actor = caller()
    with core_db.get_db().engine.connect() as conn:
        row = conn.execute(sa.select(_k.c.id, _k.c.org_id, _k.c.member_id).where(_k.c.id == key_id)).first()
    # Another member's key answers like a key that does not exist.
    if not roles.owns_key(actor, row) or not accounts.revoke_key(actor.org_id, key_id):
        raise NotFound(f"No key '{key_id}' in this account.", param="id")
    audit.record("key.revoked", org_id=actor.org_id, target=key_id)
    with core_db.get_db().engine.connect() as conn:
        revoked_at = conn.execute(sa.select(_k.c.revoked_at).where(_k.c.id == key_id)).scalar()
    return json_response({"id": key_id, "object": "api_key", "revoked": True, "revoked_at": _iso(revoked_at)})


# --- public rate card ----------------------------------------------------------------------


def _pricing_body() -> tuple[bytes, str]:
    served = catalog.current()
    cached = current_app.extensions.get("bytespike_pricing")
    if cached is None or cached[0] != served.version:  # rebuilt when the channels file is reloaded
        card = served.card
        stamps = [ratecard.CARD_FILE.stat().st_mtime]
        chan = current_app.config.get("BYTESPIKE_CHANNELS_FILE")
        if chan:
            try:
                from pathlib import Path

                stamps.append(Path(chan).stat().st_mtime)
            except OSError:
                pass
        stamps.append(pricesync.refreshed_at(current_app.config.get("BYTESPIKE_PRICE_REFRESH_FILE")))
        updated = dt.datetime.fromtimestamp(int(max(stamps)), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "unit": "USD", "credit_usd": "0.000001",
            "cny_per_usd": ratecard.price_str(Decimal(str(current_app.config["BYTESPIKE_CNY_PER_USD"]))),
            "updated_at": updated, "models": [ratecard.public_row(m) for m in card.models],
        }
        data = json.dumps(body, ensure_ascii=False).encode()
        cached = (served.version, data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')
        current_app.extensions["bytespike_pricing"] = cached
    return cached[1], cached[2]


@bp.route("/api/pricing", methods=["GET", "HEAD", "OPTIONS"], provide_automatic_options=False)
def pricing() -> Response:
    cors = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "If-None-Match, Content-Type", "Vary": "Accept-Encoding"}
    if request.method == "OPTIONS":
        return Response(status=204, headers={**cors, "Access-Control-Max-Age": "86400"})
    data, etag = _pricing_body()
    headers = {**cors, "ETag": etag, "Cache-Control": "public, max-age=300"}
    inm = request.headers.get("If-None-Match", "")
    if inm and (inm.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in inm.split(",")]):
        return Response(status=304, headers=headers)
    return Response(data, status=200, headers=headers, mimetype="application/json")
