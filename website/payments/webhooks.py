"""Signed outgoing webhooks (``payment.received``, ``balance.low``) and the low-balance check.

Signature: ``X-ByteSpike-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 with the org's webhook secret over ``"<t>." + raw body``; the
timestamp is signed too, so a receiver can refuse old deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any

import requests
from flask import Flask, current_app
from sqlalchemy import select

from core import db as core_db
from core.models import Order, Org, Wallet, WebhookDelivery, utcnow
from core.money import usd_str

log = logging.getLogger("bytespike.webhooks")
SIGNATURE_HEADER = "X-ByteSpike-Signature"
# The events an org may subscribe to (orgs.webhook_events; None: all). "webhook.test" always goes out.
EVENTS = ("payment.received", "balance.low")
_pending: list[threading.Thread] = []


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: int, tolerance_s: int = 300) -> bool:
    """Check a signature header as a receiver would (used by tests and documented for users)."""
    fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    ts = fields.get("t", "")
    if not ts.isdigit() or abs(now - int(ts)) > tolerance_s:
        return False
    expected = sign(secret, body, int(ts)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


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
    if background:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        worker = threading.Thread(target=_deliver_in_app, args=(app, delivery.id), daemon=True)
        _pending.append(worker)
        worker.start()
    else:
        deliver(delivery.id)
    return delivery.id


def flush(timeout: float = 10.0) -> None:
    """Wait for background deliveries (tests, and the CLI before it exits)."""
    while _pending:
        _pending.pop().join(timeout)


def _deliver_in_app(app: Flask, delivery_id: int) -> None:
    with app.app_context():
        deliver(delivery_id)


def deliver(delivery_id: int) -> bool:
    """POST one delivery, signed; record the status or the error on its row."""
    s = core_db.session()
    delivery = s.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return False
    org = s.get(Org, delivery.org_id)
    secret = (org.webhook_secret if org else None) or ""
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "ByteSpike-Webhooks/1.0",
               SIGNATURE_HEADER: sign(secret, body, int(time.time())),
               "X-ByteSpike-Event": delivery.event, "X-ByteSpike-Delivery": str(delivery.id)}
    delivery.attempts += 1
    try:
        resp = requests.post(delivery.url, data=body, headers=headers, timeout=(3, 5), allow_redirects=False)
        delivery.status_code, delivery.error = resp.status_code, None
        if 200 <= resp.status_code < 300:
            delivery.delivered_at = utcnow()
    except requests.RequestException as exc:
        delivery.error = f"{type(exc).__name__}"[:300]
    s.commit()
    return delivery.delivered_at is not None


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
