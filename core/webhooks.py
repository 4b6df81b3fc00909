"""The org's webhook endpoint: its URL, the events it receives and its signing secret.

One set of rules and one write for the console's settings page and ``PUT
/api/v1/me/webhooks``: a URL is checked by ``endpoint_url_ok``; a URL without
a secret gets one; a changed URL or event list and a new secret are audited
(never the secret's value). Sending deliveries lives with the site
(``website.payments.webhooks``).
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

from . import audit
from . import db as core_db
from .models import Org

__all__ = ["KEEP", "URL_MAX", "Endpoint", "Keep", "audit_endpoint", "change_endpoint", "endpoint_url_ok",
           "save_endpoint"]


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
