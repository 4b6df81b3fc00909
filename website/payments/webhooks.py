"""Signed outgoing webhooks (``payment.received``, ``balance.low``) and the low-balance check.

The endpoint they go to (URL, events, secret) and its rules are ``core.webhooks``.

Signature: ``X-ByteSpike-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 with the org's webhook secret over ``"<t>." + raw body``; the
timestamp is signed too, so a receiver can refuse old deliveries.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import urllib3
from flask import current_app
from sqlalchemy import select

from core import db as core_db
from core import jobs as core_jobs
from core import outbound
from core.models import Order, Org, Wallet, WebhookDelivery, utcnow
from core.money import usd_str
from core.signing import SIGNATURE_HEADER, WEBHOOK_EVENTS, sign, verify

log = logging.getLogger("bytespike.webhooks")
EVENTS = WEBHOOK_EVENTS  # the events an org may subscribe to (``core.signing``); "webhook.test" always goes out
__all__ = ["EVENTS", "SIGNATURE_HEADER", "sign", "verify", "send", "deliver", "flush", "check_low_balance"]


def send(org_id: int, event: str, data: dict[str, Any], *, background: bool = True) -> int | None:
    """Queue one delivery for the org's webhook URL; returns the delivery id (None: no URL set)."""
    s = core_db.session()
    org = s.get(Org, org_id)
    if org is None or not org.webhook_url or not org.webhook_secret:
        return None
    if org.webhook_events is not None and event not in org.webhook_events and event != "webhook.test":
        return None  # the org chose not to receive this event
    payload = {"type": event, "created": int(time.time()), "org_id": org_id, "data": data}
    delivery = WebhookDelivery(org_id=org_id, event=event, payload=payload, url=org.webhook_url)
    s.add(delivery)
    s.commit()
    if background:  # on the job queue: retried with exponential backoff until it answers 2xx
        core_jobs.try_enqueue("deliver_webhook", delivery.id)
    else:
        deliver(delivery.id)
    return delivery.id


def flush(timeout: float = 10.0) -> None:
    """Wait for deliveries queued in this process (tests, and the CLI before it exits); RQ's run in the worker."""
    core_jobs.drain_local(timeout)


def deliver(delivery_id: int) -> bool:
    """POST one delivery, signed; record the status or the error on its row."""
    s = core_db.session()
    delivery = s.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return False
    if delivery.delivered_at is not None:  # the retry sweep and the queued job may both reach it: send once
        return True
    org = s.get(Org, delivery.org_id)
    secret = (org.webhook_secret if org else None) or ""
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "ByteSpike-Webhooks/1.0",
               SIGNATURE_HEADER: sign(secret, body, int(time.time())),
               "X-ByteSpike-Event": delivery.event, "X-ByteSpike-Delivery": str(delivery.id)}
    delivery.attempts += 1
    try:
        resp = outbound.post(delivery.url, body, headers, allow=outbound_allow())
        delivery.status_code, delivery.error = resp.status, None
        if 200 <= resp.status < 300:
            delivery.delivered_at = utcnow()
    except outbound.BlockedTarget as exc:
        delivery.error = f"refused: {exc}"[:300]
    except (urllib3.exceptions.HTTPError, OSError):
        delivery.error = "could not deliver (connection failed or timed out)"
    s.commit()
    return delivery.delivered_at is not None


def outbound_allow() -> tuple[outbound.Network, ...]:
    """The operator's private targets that webhooks and callbacks may reach (none by default)."""
    return outbound.allow_list(current_app.config.get("BYTESPIKE_OUTBOUND_ALLOW"))


def payment_received(order: Order) -> None:
    """Tell the org's webhook that an order was paid; clear a low-balance flag the top-up lifted."""
    send(order.org_id, "payment.received", {
        "order_id": order.id, "out_trade_no": order.out_trade_no, "method": order.method,
        "amount_cny": str(order.amount_cny), "credits": order.credits, "bonus_credits": order.bonus_credits,
        "plan": order.plan,
    })
    check_low_balance(order.org_id)


def spendable(org_id: int) -> int:
    """Balance minus reservations in flight."""
    s = core_db.session()
    row = s.execute(select(Wallet.balance_credits, Wallet.reserved_credits).where(Wallet.org_id == org_id)).first()
    return int(row[0] - row[1]) if row else 0


def check_low_balance(org_id: int) -> bool:
    """Notify once when spendable credits fall below the org's threshold; re-arm when above it."""
    s = core_db.session()
    org = s.get(Org, org_id)
    if org is None or org.low_balance_credits is None:
        return False
    available = spendable(org_id)
    if available >= org.low_balance_credits:
        if org.low_balance_notified_at is not None:
            org.low_balance_notified_at = None
            s.commit()
        return False
    if org.low_balance_notified_at is not None:
        return True
    org.low_balance_notified_at = utcnow()
    s.commit()
    send(org_id, "balance.low", {"balance_credits": available, "balance_usd": usd_str(available),
                                 "threshold_credits": org.low_balance_credits})
    return True


def check_all_low_balances() -> int:
    """Run the low-balance check for every org with a threshold (the CLI sweeper)."""
    s = core_db.session()
    ids = s.scalars(select(Org.id).where(Org.low_balance_credits.is_not(None))).all()
    return sum(1 for org_id in ids if check_low_balance(org_id))


def retry_failed(max_attempts: int = 5) -> int:
    """Deliver again what failed in the last day (the sweeper); returns how many now went through."""
    import datetime as dt

    s = core_db.session()
    since = utcnow() - dt.timedelta(days=1)
    ids = s.scalars(select(WebhookDelivery.id).where(WebhookDelivery.delivered_at.is_(None),
                                                     WebhookDelivery.attempts < max_attempts,
                                                     WebhookDelivery.created_at >= since)).all()
    return sum(1 for delivery_id in ids if deliver(delivery_id))

