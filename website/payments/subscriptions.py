"""Subscription plans: activate on a paid plan order, renew monthly from the wallet, lapse to free."""

from __future__ import annotations

import calendar
import datetime as dt
import logging

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import db as core_db
from core import ledger
from core.errors import GatewayError
from core.models import Order, Org, utcnow
from core.money import cny_to_credits

from .base import PLANS
from .webhooks import spendable

log = logging.getLogger("bytespike.payments")


def add_month(when: dt.datetime) -> dt.datetime:
    """The same day and time next month (the last day when the month is shorter)."""
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def activate(order: Order) -> None:
    """A paid plan order: charge the month from the credited principal and raise the tier."""
    s = core_db.session()
    org = s.get(Org, order.org_id)
    if org is None or order.plan is None:
        return
    ledger.credit(org.id, "subscription_renew", -order.credits, f"plan:{order.id}",
                  f"{order.plan} plan, first month (order {order.id})")
    now = utcnow()
    start = org.tier_renews_at if org.tier == order.plan and org.tier_renews_at and org.tier_renews_at > now else now
    org.tier, org.tier_renews_at = order.plan, add_month(start)
    s.commit()


def plan_price_credits(plan: str) -> int:
    price = PLANS[plan].price_cny
    assert price is not None
    return cny_to_credits(price, current_app.config["CNY_PER_USD"])


def renew_due(now: dt.datetime | None = None) -> dict[str, int]:
    """Renew every plan past its date: charge the wallet, or lapse to free when it is short."""
    now = now or utcnow()
    s = core_db.session()
    due = s.scalars(select(Org).where(Org.tier.in_(("pro", "max")), Org.tier_renews_at <= now)).all()
    counts = {"renewed": 0, "lapsed": 0}
    for org in due:
        price = plan_price_credits(org.tier)
        period = org.tier_renews_at
        assert period is not None
        ref = f"renew:{org.id}:{period:%Y-%m-%d}"
        ok = spendable(org.id) >= price
        if ok:
            try:
                ledger.credit(org.id, "subscription_renew", -price, ref, f"{org.tier} plan, month from {period:%Y-%m-%d}")
            except (GatewayError, IntegrityError) as exc:  # the wallet emptied meanwhile
                log.warning("renewal of org %s failed: %s", org.id, exc)
                s.rollback()
                ok = False
        org = s.get(Org, org.id)  # type: ignore[assignment]
        assert org is not None
        if ok:
            org.tier_renews_at = add_month(period)
            counts["renewed"] += 1
        else:
            log.info("org %s lapsed from %s to free", org.id, org.tier)
            org.tier, org.tier_renews_at = "free", None
            counts["lapsed"] += 1
        s.commit()
    return counts
