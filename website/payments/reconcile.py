"""The query-based sweeper (notifications are not guaranteed) and refunds."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update

from core import db as core_db
from core import ledger
from core.models import Order, PaymentEvent, utcnow

from . import providers
from .base import InvalidTransition, ProviderError, check_transition, sources_of, to_fen
from .service import apply_payment, credit_order, record

log = logging.getLogger("bytespike.payments")
CLOSE_AFTER = dt.timedelta(hours=2)  # the QR codes of both providers stop working after 2 h
LOOKBACK = dt.timedelta(days=2)


def reconcile(now: dt.datetime | None = None) -> dict[str, int]:
    """Query every open order at its provider; credit the paid, close the expired, repair missed credits."""
    now = now or utcnow()
    s = core_db.session()
    open_orders = s.scalars(
        select(Order).where(Order.status == "pending", Order.created_at >= now - LOOKBACK).order_by(Order.created_at)
    ).all()
    counts = {"checked": 0, "paid": 0, "closed": 0, "errors": 0, "repaired": 0}
    for order in open_orders:
        counts["checked"] += 1
        try:
            outcome = _reconcile_one(order, now)
        except ProviderError as exc:
            record(order.id, order.provider or "?", "query", False, f"reconcile query failed: {exc}")
            counts["errors"] += 1
            continue
        if outcome:
            counts[outcome] += 1
    counts["repaired"] = _repair_credits(now)
    return counts


def _reconcile_one(order: Order, now: dt.datetime) -> str | None:
    provider = providers.get_provider(order.provider or "")
    if provider is None or provider.sandbox != order.sandbox:
        return None
    state = provider.query(order.out_trade_no)
    if state.paid:
        if state.amount_fen != to_fen(order.amount_cny):
            record(order.id, provider.name, "query", False, "paid amount disagrees with the order; not credited")
            return None
        record(order.id, provider.name, "query", True, f"provider says {state.state}")
        return "paid" if apply_payment(order.id, state.trade_no or "", source="query") else None
    if state.closed or now - order.created_at > CLOSE_AFTER:
        if not state.closed:
            provider.close(order.out_trade_no)
        return "closed" if close_order(order.id, f"provider state {state.state}") else None
    return None


def close_order(order_id: str, reason: str) -> bool:
    """pending -> closed, through the transition table."""
    s = core_db.session()
    s.rollback()
    result = s.execute(update(Order).where(Order.id == order_id, Order.status.in_(sources_of("closed")))
                       .values(status="closed", closed_at=utcnow()))
    s.commit()
    if result.rowcount == 1:  # type: ignore[attr-defined]
        provider = s.scalar(select(Order.provider).where(Order.id == order_id)) or "?"
        record(order_id, provider, "query", True, f"closed: {reason}")
        return True
    return False


def _repair_credits(now: dt.datetime) -> int:
    """Re-assert the ledger lines of recently paid orders (idempotent): heals a crash after the commit."""
    s = core_db.session()
    paid = s.scalars(select(Order).where(Order.status == "paid", Order.paid_at >= now - LOOKBACK)).all()
    return sum(1 for order in paid if credit_order(order))


def refund_order(order_id: str, reason: str = "") -> Order:
    """Refund a paid order in full: reverse its credit in the ledger, refund at the provider, mark refunded."""
    s = core_db.session()
    order = s.get(Order, order_id)
    if order is None:
        raise InvalidTransition("unknown order")
    check_transition(order.status, "refunded")
    provider = providers.get_provider(order.provider or "")
    if provider is None or provider.sandbox != order.sandbox:
        kind = "the sandbox" if order.sandbox else f"provider {order.provider}"
        raise ProviderError(f"{kind} is not configured for this order")
    total = order.credits + order.bonus_credits
    ref = f"refund:{order.id}"
    # Take the credits back first: if the wallet no longer holds them, no money leaves.
    ledger.credit(order.org_id, "refund", -total, ref, f"refund of order {order.id} {reason}".strip())
    try:
        provider.refund(order.out_trade_no, f"R{order.out_trade_no}"[:64], to_fen(order.amount_cny))
    except ProviderError:
        ledger.credit(order.org_id, "admin_credit", total, f"refund-failed:{order.id}", "provider refused the refund")
        record(order.id, provider.name, "refund", False, "provider refused the refund; credit restored")
        raise
    s.rollback()
    s.execute(update(Order).where(Order.id == order_id, Order.status.in_(sources_of("refunded")))
              .values(status="refunded", refunded_at=utcnow()))
    s.add(PaymentEvent(order_id=order_id, provider=provider.name, kind="refund", accepted=True,
                       reason=f"refunded {total} credits {reason}".strip()[:300], dedupe_key=f"refund:{order_id}"))
    s.commit()
    refreshed = s.get(Order, order_id)
    assert refreshed is not None
    return refreshed
