"""Signatures on what ByteSpike posts to its users (webhooks, task callbacks).

``X-ByteSpike-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is HMAC-SHA256
with the org's webhook secret over ``"<t>." + raw body``; the timestamp is
signed too, so a receiver can refuse old deliveries.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-ByteSpike-Signature"
# The webhook events an org may subscribe to (orgs.webhook_events; None: all). "webhook.test" always goes out.
WEBHOOK_EVENTS = ("payment.received", "balance.low", "key.budget")


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
