"""Provider callbacks and the top-up API (API key, or the console's own session)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user

from core import db as core_db
from core import roles
from core.errors import AuthError, GatewayError, InvalidRequest, NotFound
from core.keys import authenticate
from core.models import Membership, Order
from website.console.auth import check_csrf_header, current_actor

from . import service
from .base import ProviderError

bp = Blueprint("payments", __name__)


@bp.post("/payments/alipay/notify")
def alipay_notify() -> Response:
    return _answer(*service.handle_notification("alipay", request.headers, request.get_data()))


@bp.post("/payments/wechatpay/notify")
def wechatpay_notify() -> Response:
    return _answer(*service.handle_notification("wechatpay", request.headers, request.get_data()))


def _answer(status: int, headers: dict[str, str], body: bytes) -> Response:
    return Response(body, status=status, headers=headers)


# --- the top-up API ---------------------------------------------------------------------


def order_json(order: Order) -> dict[str, Any]:
    """The public shape of an order (API.md §4)."""
    out: dict[str, Any] = {
        "order_id": order.id, "out_trade_no": order.out_trade_no, "method": order.method,
        "amount_cny": f"{order.amount_cny:.2f}", "credits": order.credits,
        "bonus_credits": order.bonus_credits, "status": order.status,
    }
    if order.code_url:
        out["qr_code" if order.provider == "alipay" else "code_url"] = order.code_url
    if order.pay_url and not order.sandbox:
        out["pay_url"] = order.pay_url
    out["plan"] = order.plan
    out["sandbox"] = order.sandbox
    return out


def _caller() -> tuple[int, int | None]:
    """(org id, user id) of the API key, or of the signed-in console user, once the role table allows the route."""
    raw = request.headers.get("x-api-key")
    if not raw:
        auth = request.headers.get("Authorization", "")
        raw = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    action = roles.route_action(request.endpoint)
    if raw:
        principal = authenticate(raw, request.remote_addr or "")
        if action is not None:
            roles.check(roles.from_principal(principal), action)
        user_id = None
        if principal.member_id is not None:
            member = core_db.session().get(Membership, principal.member_id)
            user_id = member.user_id if member else None
        return principal.org_id, user_id
    if current_user.is_authenticated:
        if request.method == "POST":
            check_csrf_header()
        actor = current_actor()
        if action is not None:
            roles.check(actor, action)
        return actor.org_id, int(current_user.id)
    raise AuthError("missing API key: send it as x-api-key or Authorization: Bearer")


@bp.post("/api/v1/me/billing/topup")
def create_topup():  # type: ignore[no-untyped-def]
    org_id, user_id = _caller()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    amount = body.get("amount_cny")
    try:
        amount_cny = Decimal(str(amount)) if amount is not None and not isinstance(amount, float | bool) else None
    except InvalidOperation:
        amount_cny = None
    if amount is not None and amount_cny is None:
        raise InvalidRequest("amount_cny must be a decimal string such as \"35.00\"", param="amount_cny")
    method, plan = body.get("method"), body.get("plan")
    if not isinstance(method, str):
        raise InvalidRequest("method must be one of alipay, wechatpay, sandbox", param="method")
    if plan is not None and not isinstance(plan, str):
        raise InvalidRequest("plan must be 'pro' or 'max'", param="plan")
    try:
        order = service.create_order(org_id, user_id, amount_cny, method, plan)
    except service.OrderInvalid as exc:
        raise InvalidRequest(str(exc), param=exc.param, code=exc.code) from exc
    except ProviderError as exc:
        raise GatewayError(f"the payment provider did not open the order: {exc}", status=502,
                           code="payment_provider_error") from exc
    return jsonify(order_json(order)), 201


@bp.get("/api/v1/me/billing/topup/<order_id>")
def get_topup(order_id: str):  # type: ignore[no-untyped-def]
    org_id, _ = _caller()
    order = core_db.session().get(Order, order_id)
    if order is None or order.org_id != org_id:
        raise NotFound(f"no order {order_id!r}", code="order_not_found")
    return jsonify(order_json(order))


@bp.errorhandler(GatewayError)
def _api_error(err: GatewayError):  # type: ignore[no-untyped-def]
    kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(
        err.status, "invalid_request_error" if err.status < 500 else "api_error")
    body = {"error": {"message": err.message, "type": kind, "param": err.param, "code": err.code}}
    return jsonify(body), err.status
