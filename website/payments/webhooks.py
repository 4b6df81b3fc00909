"""Signed outgoing webhooks (``payment.received``, ``balance.low``) and the low-balance check.

Signature: ``X-ByteSpike-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 with the org's webhook secret over ``"<t>." + raw body``; the
timestamp is signed too, so a receiver can refuse old deliveries.
"""

from __future__ import annotations

import enum
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from flask import current_app
from sqlalchemy import select

from core import audit, outbound
from core import db as core_db
from core import jobs as core_jobs
from core.models import Order, Org, Wallet, WebhookDelivery, utcnow
from core.money import usd_str
from core.signing import SIGNATURE_HEADER, WEBHOOK_EVENTS, sign, verify

log = logging.getLogger("bytespike.webhooks")
EVENTS = WEBHOOK_EVENTS  # the events an org may subscribe to (``core.signing``); "webhook.test" always goes out
__all__ = ["EVENTS", "SIGNATURE_HEADER", "sign", "verify", "send", "deliver", "flush", "check_low_balance",
           "KEEP", "URL_MAX", "Endpoint", "endpoint_url_ok", "change_endpoint", "audit_endpoint", "save_endpoint"]


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


# --- the endpoint: URL, events, signing secret (the console's settings page and PUT /api/v1/me/webhooks) ---


class Keep(enum.Enum):
    KEEP = "keep"


KEEP = Keep.KEEP  # "leave this setting as it is"


@dataclass(frozen=True)
class Endpoint:
    """The endpoint's settings at one moment, to tell what a change changed."""

    url: str | None
    secret: str | None
    events: list[str] | None

    @classmethod
    def of(cls, org: Org) -> Endpoint:
        return cls(org.webhook_url, org.webhook_secret, org.webhook_events)


URL_MAX = 500  # orgs.webhook_url


def endpoint_url_ok(url: str) -> bool:
    """An endpoint URL the org may save: http(s), at most 500 characters, no spaces or control characters."""
    return (url.startswith(("https://", "http://")) and len(url) <= URL_MAX
            and not any(ord(c) <= 32 or ord(c) == 127 for c in url))


def change_endpoint(org: Org, *, url: str | None | Keep = KEEP, events: list[str] | None | Keep = KEEP,
                    rotate_secret: bool = False) -> str | None:
    """Apply a change to the org's endpoint (the caller commits); return a secret made now, to show once.

    A URL without a secret gets one; ``events`` None means every event.
    """
    if url is not KEEP:
        org.webhook_url = url or None
    if events is not KEEP:
        org.webhook_events = events
    if org.webhook_url and (not org.webhook_secret or rotate_secret):
        org.webhook_secret = "whsec_" + secrets.token_urlsafe(24)
        return org.webhook_secret
    return None


def audit_endpoint(org: Org, before: Endpoint) -> None:
    """Audit rows for a committed endpoint change: the URL and events, a new secret (never its value)."""
    if org.webhook_url != before.url or org.webhook_events != before.events:
        audit.record("webhook.updated", org_id=org.id, target=org.webhook_url,
                     details={"from": before.url, "events": org.webhook_events})
    if org.webhook_secret != before.secret:
        audit.record("webhook.secret_rotated", org_id=org.id, target=org.webhook_url)


def save_endpoint(org_id: int, *, url: str | None | Keep = KEEP, events: list[str] | None | Keep = KEEP,
                  rotate_secret: bool = False) -> tuple[Org, str | None]:
    """Change the org's endpoint in one transaction and audit it; return the org and a new secret, if any."""
    s = core_db.session()
    org = s.get(Org, org_id)
    if org is None:
        raise LookupError(f"no org {org_id}")
    before = Endpoint.of(org)
    fresh = change_endpoint(org, url=url, events=events, rotate_secret=rotate_secret)
    s.commit()
    audit_endpoint(org, before)
    return org, fresh
