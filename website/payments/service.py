"""Orders: create, trust a notification, apply a payment exactly once, reconcile, refund.

A notification is trusted only when (1) its signature checks, (2) its order
exists and belongs to that provider, (3) amount, currency, app/merchant id
and payment method match the order, and (4) for the first credit the
provider's own order query agrees. The order then moves pending -> paid
through one conditional UPDATE (the transition table's sources) plus a
unique ``paid:<order>`` event, and the ledger entries are keyed by the
provider's trade number: five concurrent deliveries credit once.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from decimal import Decimal
from typing import Mapping

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core import audit, ledger
from core import db as core_db
from core.models import Order, Org, PaymentEvent, new_id, utcnow

from . import providers, subscriptions, webhooks
from .base import (
    MAX_TOPUP_CNY,
    MIN_TOPUP_CNY,
    PLANS,
    DoublePayment,
    InvalidTransition,
    NotifyRejected,
    OrderRef,
    PaymentError,
    Provider,
    ProviderError,
    TradeState,
    check_transition,
    quote,
    sources_of,
    to_fen,
)

log = logging.getLogger("bytespike.payments")


class OrderInvalid(PaymentError):
    """The top-up request is not acceptable (amount, method or plan)."""

    code = "invalid_param"

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class MethodUnavailable(OrderInvalid):
    """The payment method is not configured here (or is the sandbox, which is off)."""

    code = "payment_method_unavailable"


def record(order_id: str | None, provider: str, kind: str, accepted: bool, reason: str, dedupe: str | None = None) -> None:
    """Append one audit row to payment_events (and the log), in its own transaction."""
    s = core_db.session()
    s.rollback()
    s.add(PaymentEvent(order_id=order_id, provider=provider, kind=kind, accepted=accepted,
                       reason=reason[:300], dedupe_key=dedupe))
    s.commit()
    (log.info if accepted else log.warning)("payment %s %s order=%s accepted=%s: %s",
                                            provider, kind, order_id, accepted, reason)


# --- create ---------------------------------------------------------------------------


def _resolve_method(method: str) -> tuple[str, Provider]:
    found = providers.for_method(method)
    if found is None:
        offered = ", ".join(providers.methods()) or "none"
        raise MethodUnavailable(f"payment method {method!r} is not available here (offered: {offered})", "method")
    return found


def _validate_amount(amount_cny: Decimal | None, plan: str | None) -> Decimal:
    if plan is not None:
        if plan not in ("pro", "max"):
            raise OrderInvalid("plan must be 'pro' or 'max'", "plan")
        price = PLANS[plan].price_cny
        assert price is not None
        if amount_cny is not None and amount_cny != price:
            raise OrderInvalid(f"the {plan} plan costs {price} CNY", "amount_cny")
        return price
    if amount_cny is None:
        raise OrderInvalid("amount_cny is required", "amount_cny")
    if amount_cny != amount_cny.quantize(Decimal("0.01")):
        raise OrderInvalid("amount_cny has at most two decimals", "amount_cny")
    if not MIN_TOPUP_CNY <= amount_cny <= MAX_TOPUP_CNY:
        raise OrderInvalid(f"amount_cny must be between {MIN_TOPUP_CNY} and {MAX_TOPUP_CNY}", "amount_cny")
    return amount_cny


def new_out_trade_no() -> str:
    """28 characters of digits and capitals: valid for both providers, unique per order."""
    return "BS" + dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(6).upper()


def create_order(org_id: int, user_id: int | None, amount_cny: Decimal | None, method: str,
                 plan: str | None = None) -> Order:
    """Price the top-up, store the order, and open it at the provider."""
    amount = _validate_amount(amount_cny, plan)
    name, provider = _resolve_method(method)
    s = core_db.session()
    org = s.get(Org, org_id)
    if org is None:
        raise OrderInvalid("unknown organisation", "org")
    q = quote(amount, current_app.config["CNY_PER_USD"], tier=org.tier, plan=plan)
    order = Order(id=new_id("ord"), org_id=org_id, user_id=user_id, out_trade_no=new_out_trade_no(),
                  method=method, provider=name, sandbox=provider.sandbox, amount_cny=amount,
                  cny_per_usd=q.cny_per_usd, credits=q.credits, bonus_credits=q.bonus_credits,
                  plan=plan, status="pending")
    s.add(order)
    s.commit()
    description = f"ByteSpike {plan.title()} plan, 1 month" if plan else f"ByteSpike top-up {amount} CNY"
    try:
        created = provider.create(OrderRef(order.out_trade_no, to_fen(amount), description))
    except ProviderError as exc:
        order.status, order.closed_at = "closed", utcnow()
        s.commit()
        record(order.id, name, "create", False, str(exc))
        raise
    order.code_url, order.pay_url = created.code_url, created.pay_url
    s.commit()
    audit.record("order.created", org_id=org_id, target=order.id,
                 details={"method": method, "amount_cny": f"{amount:.2f}", "credits": q.credits, "plan": plan})
    record(order.id, name, "create", True, "opened at the provider" + (" (sandbox)" if provider.sandbox else ""))
    return order


# --- notifications ----------------------------------------------------------------------


def _mismatch(order: Order, state: TradeState, provider: Provider) -> str | None:
    """Name the first field of a verified notification that disagrees with the order."""
    app_id, merchant_id = provider.expected_ids()
    if state.app_id != app_id:
        return "app id mismatch"
    if merchant_id is not None and state.merchant_id != merchant_id:
        return "merchant id mismatch"
    if state.amount_fen != to_fen(order.amount_cny):
        return f"amount mismatch: {state.amount_fen} fen, order {to_fen(order.amount_cny)} fen"
    if state.currency != "CNY":
        return "currency mismatch"
    if provider.name == "wechatpay" and state.trade_type not in (None, "NATIVE"):
        return f"payment method mismatch: {state.trade_type}"
    return None


def handle_notification(name: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Verify a provider callback and apply it; return the provider's expected answer."""
    provider = providers.get_provider(name)
    if provider is None:
        return 404, {"Content-Type": "text/plain"}, b"not configured"
    try:
        state = provider.verify_notification(headers, body, int(time.time()))
    except NotifyRejected as exc:
        record(None, name, "notify", False, f"rejected: {exc}")
        return provider.nack()
    s = core_db.session()
    order = s.scalar(select(Order).where(Order.out_trade_no == state.out_trade_no))
    if order is None or order.provider != name:
        record(None, name, "notify", False, f"unknown order {state.out_trade_no[:64]!r}")
        return provider.nack()
    if order.sandbox != provider.sandbox:  # the simulator never pays a real order, nor a real provider a sandbox one
        record(order.id, name, "notify", False, "sandbox and real provider mixed up; refused")
        return provider.nack()
    problem = _mismatch(order, state, provider)
    if problem:
        record(order.id, name, "notify", False, problem)
        return provider.nack()
    if not state.paid:
        record(order.id, name, "notify", False, f"trade state {state.state}: nothing to credit")
        return provider.ack()
    if order.status in ("paid", "refunded"):
        record(order.id, name, "notify", False, f"replay: order already {order.status}, nothing credited")
        return provider.ack()
    try:
        confirmed = provider.query(order.out_trade_no)
    except ProviderError as exc:
        record(order.id, name, "notify", False, f"order query failed, will retry: {exc}")
        return provider.nack()
    if not (confirmed.paid and confirmed.amount_fen == state.amount_fen and confirmed.trade_no == state.trade_no):
        record(order.id, name, "notify", False, f"order query disagrees: {confirmed.state}")
        return provider.nack()
    apply_payment(order.id, state.trade_no or "", source="notify")
    return provider.ack()


# --- applying a payment -------------------------------------------------------------------


def apply_payment(order_id: str, trade_no: str, *, source: str) -> bool:
    """Move the order to paid and credit it; False (and nothing credited) if it was paid already."""
    s = core_db.session()
    s.rollback()  # start the UPDATE in a fresh transaction (SQLite takes the write lock there)
    now = utcnow()
    result = s.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.in_(sources_of("paid")))
        .values(status="paid", provider_trade_no=trade_no, paid_at=now)
    )
    provider = s.scalar(select(Order.provider).where(Order.id == order_id)) or "?"
    if result.rowcount != 1:  # type: ignore[attr-defined]
        s.rollback()
        return _refused(order_id, provider, source)
    s.add(PaymentEvent(order_id=order_id, provider=provider, kind=source, accepted=True,
                       reason=f"paid, trade {trade_no}", dedupe_key=f"paid:{order_id}"))
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        return _refused(order_id, provider, source)
    order = s.get(Order, order_id)
    assert order is not None
    log.info("payment %s order=%s paid (trade %s) via %s", provider, order_id, trade_no, source)
    audit.record("payment.received", org_id=order.org_id, target=order_id, actor=audit.Who(),
                 details={"provider": provider, "source": source, "credits": order.credits + order.bonus_credits})
    credit_order(order)
    if order.plan:
        subscriptions.activate(order)
    webhooks.payment_received(order)
    return True


def _refused(order_id: str, provider: str, source: str) -> bool:
    s = core_db.session()
    status = s.scalar(select(Order.status).where(Order.id == order_id)) or "missing"
    s.rollback()
    try:
        check_transition(status, "paid")
    except DoublePayment as exc:
        record(order_id, provider, source, False, f"duplicate payment refused: {exc}")
    except InvalidTransition as exc:
        record(order_id, provider, source, False, str(exc))
    return False


def credit_order(order: Order) -> bool:
    """Put the order's principal and bonus in the wallet: two ledger lines keyed by the provider trade."""
    ref = f"{order.provider}:{order.provider_trade_no}"
    memo = f"order {order.id}: {order.amount_cny} CNY at {order.cny_per_usd} CNY/USD"
    applied = ledger.credit(order.org_id, "topup", order.credits, ref, memo)
    if order.bonus_credits:
        ledger.credit(order.org_id, "bonus", order.bonus_credits, ref, f"bonus on {memo}")
    return applied
