"""Dashboard (balance, reservations, spend chart) and the usage log with filters and CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from flask import Response, current_app, render_template, request
from flask_login import login_required
from sqlalchemy import func, select

from core import db as core_db
from core import roles
from core.models import ApiKey, Org, Reservation, UsageLog, Wallet, utcnow
from core.money import credits_to_cny, usd_str
from gateway.routing import get_router
from website.payments.webhooks import check_low_balance

from .auth import current_actor, current_membership
from .blueprint import bp
from .charts import spend_chart

USAGE_PAGE = 100
CSV_LIMIT = 50_000


def wallet_view(org_id: int) -> dict:
    """Balance and reservations in credits, USD and CNY."""
    s = core_db.session()
    wallet = s.scalar(select(Wallet).where(Wallet.org_id == org_id))
    balance = wallet.balance_credits if wallet else 0
    reserved = wallet.reserved_credits if wallet else 0
    rate: Decimal = current_app.config["CNY_PER_USD"]
    open_holds = s.scalar(select(func.count()).select_from(Reservation).where(
        Reservation.wallet_id == (wallet.id if wallet else -1), Reservation.state == "open")) or 0
    return {
        "balance": balance, "reserved": reserved, "spendable": balance - reserved, "open_holds": open_holds,
        "balance_usd": usd_str(balance), "balance_cny": credits_to_cny(balance, rate), "rate": rate,
        "reserved_usd": usd_str(reserved),
    }


def daily_spend(actor: roles.Actor, days: int = 30) -> list[tuple[dt.date, int]]:
    """Settled credits of the actor's keys per UTC day over the last ``days`` days, oldest first, zero days included."""
    since = (utcnow() - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = core_db.session().execute(
        select(UsageLog.created_at, UsageLog.cost_credits)
        .where(*roles.usage_scope(actor), UsageLog.created_at >= since, UsageLog.billed.is_(True))
    ).all()
    totals: dict[dt.date, int] = {}
    for created, cost in rows:
        totals[created.date()] = totals.get(created.date(), 0) + int(cost)
    return [(since.date() + dt.timedelta(days=i), totals.get(since.date() + dt.timedelta(days=i), 0))
            for i in range(days)]


@bp.get("/dashboard")
@login_required
def dashboard():  # type: ignore[no-untyped-def]
    member = current_membership()
    s = core_db.session()
    org = s.get(Org, member.org_id)
    assert org is not None
    check_low_balance(org.id)
    wallet = wallet_view(org.id)
    low = org.low_balance_credits is not None and wallet["spendable"] < org.low_balance_credits
    actor = current_actor()
    recent = _usage_query(actor, {}).limit(10)
    return render_template("console/dashboard.html", org=org, member=member, wallet=wallet, low_balance=low,
                           chart=spend_chart(daily_spend(actor)), recent=s.scalars(recent).all(),
                           key_names=key_names(actor), active="dashboard")


def key_names(actor: roles.Actor) -> dict[str, str]:
    """Key id -> name for the keys in the actor's scope, so the usage log reads by name."""
    rows = core_db.session().execute(select(ApiKey.id, ApiKey.name).where(*roles.key_scope(actor))).all()
    return {key_id: name for key_id, name in rows}


def _usage_query(actor: roles.Actor, filters: dict):  # type: ignore[no-untyped-def]
    q = select(UsageLog).where(*roles.usage_scope(actor))  # a member sees the calls of their own keys only
    if filters.get("model"):
        q = q.where(UsageLog.model == filters["model"])
    if filters.get("key"):
        q = q.where(UsageLog.api_key_id == filters["key"])
    if filters.get("since"):
        q = q.where(UsageLog.created_at >= filters["since"])
    if filters.get("until"):
        q = q.where(UsageLog.created_at < filters["until"] + dt.timedelta(days=1))
    return q.order_by(UsageLog.created_at.desc(), UsageLog.id.desc())


def _filters() -> dict:
    def day(name: str) -> dt.datetime | None:
        try:
            return dt.datetime.strptime(request.args.get(name, ""), "%Y-%m-%d")
        except ValueError:
            return None

    return {"model": request.args.get("model") or None, "key": request.args.get("key") or None,
            "since": day("since"), "until": day("until")}


@bp.get("/usage")
@login_required
def usage():  # type: ignore[no-untyped-def]
    actor = current_actor()
    s = core_db.session()
    filters = _filters()
    page = max(1, request.args.get("page", 1, type=int))
    rows = s.scalars(_usage_query(actor, filters).limit(USAGE_PAGE).offset((page - 1) * USAGE_PAGE)).all()
    models = s.scalars(select(UsageLog.model).where(*roles.usage_scope(actor)).distinct()).all()
    keys = s.scalars(select(ApiKey).where(*roles.key_scope(actor)).order_by(ApiKey.created_at)).all()
    return render_template("console/usage.html", rows=rows, models=sorted(models), keys=keys, page=page,
                           has_next=len(rows) == USAGE_PAGE, args=request.args, active="usage",
                           key_names={k.id: k.name for k in keys})


CSV_FIELDS = ("id", "created_at", "model", "provider", "protocol", "stream", "status", "api_key_id",
              "input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "cost_credits",
              "billed", "latency_ms", "overhead_ms", "fallback_from", "error")


@bp.get("/usage.csv")
@login_required
def usage_csv():  # type: ignore[no-untyped-def]
    rows = core_db.session().scalars(_usage_query(current_actor(), _filters()).limit(CSV_LIMIT)).all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow((*CSV_FIELDS, "cost_usd"))
    for r in rows:
        writer.writerow((*(_cell(getattr(r, f)) for f in CSV_FIELDS), usd_str(r.cost_credits)))
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=bytespike-usage.csv"})


def _cell(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value  # a spreadsheet must not run a cell as a formula
    return value


@bp.get("/status/")
@login_required
def status():  # type: ignore[no-untyped-def]
    # The very document /api/status serves (Router.status() folds it with gateway.routing.stats.build_status).
    return render_template("console/status.html", doc=get_router(current_app).status(), active="status")
