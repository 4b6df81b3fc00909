"""Form fields the console reads in more than one place: USD amounts, whole numbers, lists, sub-key controls."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import request
from flask_babel import gettext as _

from core import accounts
from core.money import usd_to_credits


def credits_field(field: str) -> int | None:
    """The form field as credits, typed in USD; None when empty, ValueError (translated) when not an amount."""
    raw = (request.form.get(field) or "").strip()
    if not raw:
        return None
    try:
        usd = Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError(_("%(field)s must be an amount in USD", field=field)) from exc
    if not usd.is_finite() or len(raw) > 24:
        raise ValueError(_("%(field)s must be an amount in USD", field=field))
    if usd < 0:
        raise ValueError(_("%(field)s must not be negative", field=field))
    credits = usd_to_credits(usd)
    if credits > accounts.CREDITS_MAX:
        raise ValueError(_("%(field)s must be an amount in USD", field=field))
    return credits


def int_field(field: str) -> int | None:
    """The form field as a whole number that fits 32 bits; None when empty."""
    raw = (request.form.get(field) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 10 or int(raw) > accounts.INT32_MAX:
        raise ValueError(_("%(field)s must be a whole number", field=field))
    return int(raw)


def list_field(field: str) -> list[str] | None:
    """The form field split on commas and new lines; None when it lists nothing."""
    items = [p.strip() for p in (request.form.get(field) or "").replace("\n", ",").split(",") if p.strip()]
    return items or None


def sub_key_controls() -> dict[str, Any]:
    """Read the sub-key form into the controls ``create_sub_key`` takes (amounts typed in USD)."""
    return {
        "quota_credits": credits_field("quota_usd"),
        "models": list_field("models"),
        "rate_limit_5h": credits_field("rate_limit_5h_usd"),
        "rate_limit_1d": credits_field("rate_limit_1d_usd"),
        "rate_limit_7d": credits_field("rate_limit_7d_usd"),
        "rpm": int_field("rpm"),
        "tpm": int_field("tpm"),
        "expires_in_days": int_field("expires_in_days"),
        "ip_allow": list_field("ip_allow"),
        "ip_deny": list_field("ip_deny"),
    }
