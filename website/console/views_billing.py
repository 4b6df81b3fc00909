"""Billing: top-ups and plans (through the payments service), orders, transactions, settings, webhooks."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import segno
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from core import accounts, outbound
from core import db as core_db
from core.models import InviteCode, LedgerEntry, Order, Org, Wallet, WebhookDelivery
from core.money import credits_to_cny, usd_str, usd_to_credits
from core.webhooks import KEEP, Keep, endpoint_url_ok
from website.payments import providers, service
from website.payments.base import (
    BONUS_LADDER,
    MAX_TOPUP_CNY,
    MIN_TOPUP_CNY,
    PLANS,
    TIER_BONUS,
    ProviderError,
    quote,
)
from website.payments.sandbox import simulate_payment
from website.payments.webhooks import EVENTS, outbound_allow, send

from .auth import current_membership
from .blueprint import bp
from .services import org_settings
from .services.org_settings import PRESET_CHOICES

TX_PAGE = 50


def _org() -> Org:
    org = core_db.session().get(Org, current_membership().org_id)
    assert org is not None
    return org


def _order(order_id: str) -> Order:
    """An order of the current org, or 404."""
    order = core_db.session().get(Order, order_id)
    if order is None or order.org_id != current_membership().org_id:
        abort(404)
    return order


@bp.get("/billing")
@login_required
def billing():  # type: ignore[no-untyped-def]
    return _billing_page()


def _billing_page(status: int = 200):  # type: ignore[no-untyped-def]
    org = _org()
    rate = current_app.config["CNY_PER_USD"]
    examples = [quote(Decimal(a), rate, tier=org.tier) for a in ("35", "150", "720", "3600", "7200", "9000")]
    orders = core_db.session().scalars(select(Order).where(Order.org_id == org.id)
                                       .order_by(Order.created_at.desc()).limit(20)).all()
    return render_template("console/billing.html", org=org, methods=providers.methods(), rate=rate,
                           examples=examples, ladder=BONUS_LADDER, tier_bonus=TIER_BONUS, plans=PLANS,
                           min_cny=MIN_TOPUP_CNY, max_cny=MAX_TOPUP_CNY, orders=orders, active="billing",
                           usd_str=usd_str), status


@bp.post("/billing/topup")
@login_required
def topup():  # type: ignore[no-untyped-def]
    member = current_membership()
    plan = request.form.get("plan") or None
    try:
        amount = None if plan else Decimal((request.form.get("amount_cny") or "").strip())
    except InvalidOperation:
        flash(_("Enter an amount in CNY, such as 100."))
        return redirect(url_for("console.billing"))
    try:
        order = service.create_order(member.org_id, int(current_user.id), amount,
                                     request.form.get("method") or "", plan)
    except service.MethodUnavailable:
        # The same 400 as the API (payment_method_unavailable): the page again, without an order.
        flash(_("This payment method is not available on this server."))
        return _billing_page(400)
    except service.OrderInvalid as exc:
        flash(str(exc))
        return redirect(url_for("console.billing"))
    except ProviderError:
        flash(_("The payment provider did not answer. Try again in a minute."))
        return redirect(url_for("console.billing"))
    return redirect(url_for("console.order", order_id=order.id))


@bp.get("/billing/orders/<order_id>")
@login_required
def order(order_id: str):  # type: ignore[no-untyped-def]
    o = _order(order_id)
    qr = segno.make(o.code_url, error="m").svg_inline(scale=5, dark="#0d1424") if o.code_url and o.status == "pending" else None
    return render_template("console/order.html", order=o, qr=qr, active="billing", usd_str=usd_str)


@bp.post("/billing/orders/<order_id>/simulate")
@login_required
def simulate(order_id: str):  # type: ignore[no-untyped-def]
    """SANDBOX ONLY: play the payer; the simulated provider notifies the real notify route."""
    o = _order(order_id)
    if not o.sandbox or not providers.sandbox_allowed(current_app):
        abort(404)
    status = simulate_payment(current_app._get_current_object(), o.out_trade_no)  # type: ignore[attr-defined]
    if status >= 300:
        flash(_("The simulated notification was refused (HTTP %(status)d).", status=status))
    return redirect(url_for("console.order", order_id=o.id))


@bp.get("/billing/transactions")
@login_required
def transactions():  # type: ignore[no-untyped-def]
    org = _org()
    s = core_db.session()
    wallet_id = s.scalar(select(Wallet.id).where(Wallet.org_id == org.id))
    page = max(1, request.args.get("page", 1, type=int))
    rows = s.scalars(select(LedgerEntry).where(LedgerEntry.wallet_id == wallet_id, LedgerEntry.amount_credits != 0)
                     .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
                     .limit(TX_PAGE).offset((page - 1) * TX_PAGE)).all()
    return render_template("console/transactions.html", rows=rows, page=page, has_next=len(rows) == TX_PAGE,
                           active="transactions", usd_str=usd_str)


@bp.get("/settings")
@login_required
def settings():  # type: ignore[no-untyped-def]
    org = _org()
    s = core_db.session()
    codes = s.scalars(select(InviteCode).where(InviteCode.created_by == int(current_user.id))).all()
    return render_template("console/settings.html", org=org, me=current_membership(), codes=codes,
                           presets=PRESET_CHOICES, active="settings", usd_str=usd_str, webhook_events=EVENTS,
                           cny=lambda c: credits_to_cny(c, current_app.config["CNY_PER_USD"]))


@bp.post("/settings/preset")
@login_required
def set_preset():  # type: ignore[no-untyped-def]
    try:
        org_settings.set_preset(_org(), request.form.get("preset") or "")
    except ValueError:
        abort(400)
    flash(_("Preset switched."))
    return redirect(url_for("console.settings"))


@bp.post("/settings/notifications")
@login_required
def set_notifications():  # type: ignore[no-untyped-def]
    raw = (request.form.get("low_balance_usd") or "").strip()
    try:
        threshold = usd_to_credits(Decimal(raw)) if raw else None
        if threshold is not None and not 0 <= threshold <= accounts.CREDITS_MAX:
            raise InvalidOperation(raw)
    except (InvalidOperation, ValueError, OverflowError):  # not a number, NaN, infinite, out of range
        flash(_("Enter the threshold in USD, such as 5."))
        return redirect(url_for("console.settings"))
    url = (request.form.get("webhook_url") or "").strip()
    if url and not endpoint_url_ok(url):
        flash(_("The webhook URL must start with https://"))
        return redirect(url_for("console.settings"))
    try:
        if url:
            outbound.check_literal(url, outbound_allow())
    except outbound.BlockedTarget:
        flash(_("The webhook URL must point to a public internet address."))
        return redirect(url_for("console.settings"))
    events: list[str] | None | Keep = KEEP
    if request.form.get("events_shown"):  # the form lists every event; all ticked means "every event"
        chosen = [e for e in EVENTS if e in request.form.getlist("events")]
        events = None if len(chosen) == len(EVENTS) else chosen
    org_settings.save_notifications(_org(), threshold, url or None, events, bool(request.form.get("rotate_secret")))
    flash(_("Notification settings saved."))
    return redirect(url_for("console.settings"))


@bp.post("/settings/webhook-test")
@login_required
def webhook_test():  # type: ignore[no-untyped-def]
    if send(_org().id, "webhook.test", {"message": "hello from ByteSpike"}, background=False) is None:
        flash(_("Set a webhook URL first."))
    return redirect(url_for("console.deliveries"))


@bp.get("/webhooks")
@login_required
def deliveries():  # type: ignore[no-untyped-def]
    rows = core_db.session().scalars(select(WebhookDelivery).where(WebhookDelivery.org_id == _org().id)
                                     .order_by(WebhookDelivery.created_at.desc()).limit(100)).all()
    return render_template("console/deliveries.html", rows=rows, active="webhooks")


@bp.get("/webhooks/<int:delivery_id>")
@login_required
def delivery(delivery_id: int):  # type: ignore[no-untyped-def]
    row = core_db.session().get(WebhookDelivery, delivery_id)
    if row is None or row.org_id != _org().id:
        abort(404)
    return render_template("console/delivery.html", row=row, active="webhooks")

