"""Org settings from the console: the model preset, the low-balance threshold and the webhook endpoint."""

from __future__ import annotations

from core import audit
from core import db as core_db
from core.accounts import preset_models
from core.models import Org
from core.webhooks import Endpoint, Keep, audit_endpoint, change_endpoint

PRESET_CHOICES = ("global", "china")


def set_preset(org: Org, preset: str) -> None:
    """Switch the org to a preset; it then follows the preset's model list (core.keys resolves it per call)."""
    if preset not in PRESET_CHOICES:
        raise ValueError(f"unknown preset {preset!r}")
    preset_models(preset)  # validates the name with the rate card
    before = org.preset
    org.preset, org.models = preset, None
    core_db.session().commit()
    audit.record("org.preset_changed", org_id=org.id, details={"from": before, "to": preset})


def save_notifications(org: Org, low_balance_credits: int | None, url: str | None,
                       events: list[str] | None | Keep, rotate_secret: bool) -> None:
    """Save the notifications form: the threshold (re-armed) and the webhook endpoint, in one transaction."""
    before = Endpoint.of(org)
    org.low_balance_credits = low_balance_credits
    org.low_balance_notified_at = None
    change_endpoint(org, url=url, events=events, rotate_secret=rotate_secret)
    core_db.session().commit()
    audit.record("org.notifications_changed", org_id=org.id, details={"low_balance_credits": org.low_balance_credits})
    audit_endpoint(org, before)
