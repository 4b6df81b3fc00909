"""The wallet ledger: reserve before a call, settle or release after it, credit top-ups.

Every operation is one transaction on one connection, written with
SQLAlchemy Core. Reservations are atomic conditional UPDATEs (``... WHERE
balance - reserved >= :r``; the row count says whether it fitted), which
serialise correctly on PostgreSQL and SQLite alike without ``FOR UPDATE``.
Rows are always locked in one order (key, member, wallet) so that concurrent
reserves and settles on PostgreSQL never deadlock. Settle and release are gated by flipping the reservation from ``open``, so a
second settle or release of the same request is a no-op; the unique
(wallet, kind, ref) on ledger entries backs that up and makes credits
idempotent per payment reference.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError

from . import db as core_db
from .errors import AuthError, InsufficientBalance, QuotaExceeded
from .keys import Principal
from .models.accounts import ApiKey, Membership
from .models.base import utcnow
from .models.ledger import KeySpendHour, LedgerEntry, Reservation, Wallet
from .models.usage import UsageLog
from .money import usd_str

_w, _e, _r, _k, _m, _u, _h = (cast(sa.Table, t.__table__) for t in (
    Wallet, LedgerEntry, Reservation, ApiKey, Membership, UsageLog, KeySpendHour))

CREDIT_KINDS = ("topup", "bonus", "subscription_renew", "refund", "admin_credit", "admin_debit", "payment_refund")
EXPIRE_EVERY_S = 60.0


@dataclass(frozen=True)
class Hold:
    """An open reservation: what ``settle`` or ``release`` closes."""

    request_id: str
    wallet_id: int
    org_id: int
    api_key_id: str | None
    member_id: int | None
    amount: int
    track_spend: bool = True  # keep hourly spend for the key's rolling windows


@dataclass
class UsageRecord:
    request_id: str
    org_id: int
    api_key_id: str | None
    member_id: int | None
    model: str
    provider: str | None
    channel: str | None
    protocol: str
    stream: bool
    status: int
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    estimated_credits: int = 0
    latency_ms: int = 0
    overhead_ms: int = 0
    fallback_from: str | None = None
    error: str | None = None


def _engine() -> sa.Engine:
    return core_db.get_db().engine


def _month(now: dt.datetime) -> str:
    return now.strftime("%Y-%m")


# --- statements: built once, so a call pays only for execution ---------------------

_b = sa.bindparam
_MONTH_SPENT = sa.case((_m.c.month == _b("b_month"), _m.c.month_spent_credits), else_=0)
_KEY_RESERVE = (
    _k.update()
    .where(_k.c.id == _b("b_key"), _k.c.revoked_at.is_(None),
           sa.or_(_k.c.expires_at.is_(None), _k.c.expires_at > _b("b_now")),
           sa.or_(_k.c.quota_credits.is_(None),
                  _k.c.spent_credits + _k.c.reserved_credits + _b("b_amt") <= _k.c.quota_credits))
    .values(reserved_credits=_k.c.reserved_credits + _b("b_amt"))
)
_MEMBER_RESERVE = (
    _m.update()
    .where(_m.c.id == _b("b_member"),
           sa.or_(_m.c.quota_credits.is_(None),
                  _m.c.spent_credits + _m.c.reserved_credits + _b("b_amt") <= _m.c.quota_credits),
           sa.or_(_m.c.monthly_quota_credits.is_(None),
                  _MONTH_SPENT + _m.c.reserved_credits + _b("b_amt") <= _m.c.monthly_quota_credits))
    .values(reserved_credits=_m.c.reserved_credits + _b("b_amt"))
)
_WALLET_RESERVE = (
    _w.update()
    .where(_w.c.id == _b("b_wallet"), _w.c.balance_credits - _w.c.reserved_credits >= _b("b_amt"))
    .values(reserved_credits=_w.c.reserved_credits + _b("b_amt"))
)
_KEY_STATE = sa.select(_k.c.revoked_at, _k.c.expires_at, _k.c.quota_credits, _k.c.spent_credits,
                       _k.c.reserved_credits).where(_k.c.id == _b("b_key"))
_GATE = _r.update().where(_r.c.request_id == _b("b_rid"), _r.c.state == "open").values(state=_b("b_state"))
_KEY_CLOSE = _k.update().where(_k.c.id == _b("b_key")).values(
    spent_credits=_k.c.spent_credits + _b("b_charged"), reserved_credits=_k.c.reserved_credits - _b("b_amt"),
    last_used_at=_b("b_now"))
_MEMBER_CLOSE = _m.update().where(_m.c.id == _b("b_member")).values(
    spent_credits=_m.c.spent_credits + _b("b_charged"), reserved_credits=_m.c.reserved_credits - _b("b_amt"),
    month_spent_credits=sa.case((_m.c.month == _b("b_month"), _m.c.month_spent_credits + _b("b_charged")),
                                else_=_b("b_charged")),
    month=_b("b_month"))
_WALLET_CLOSE = _w.update().where(_w.c.id == _b("b_wallet")).values(
    balance_credits=_w.c.balance_credits - _b("b_charged"), reserved_credits=_w.c.reserved_credits - _b("b_amt"))
_R_INSERT, _E_INSERT = _r.insert(), _e.insert()
_UPSERTS: dict[str, tuple[Any, Any]] = {}


def _upserts(conn: sa.Connection) -> tuple[Any, Any]:
    """The dialect's (usage insert-or-ignore, hourly spend add) statements."""
    name = conn.dialect.name
    if name not in _UPSERTS:
        mod = pg_dialect if name == "postgresql" else sqlite_dialect
        usage = mod.insert(_u).on_conflict_do_nothing(index_elements=[_u.c.id])
        hour = mod.insert(_h)
        hour = hour.on_conflict_do_update(index_elements=[_h.c.api_key_id, _h.c.hour],
                                          set_={"credits": _h.c.credits + hour.excluded.credits})
        _UPSERTS[name] = (usage, hour)
    return _UPSERTS[name]


# --- reserve ------------------------------------------------------------------


def reserve(principal: Principal, request_id: str, credits: int) -> Hold:
    """Hold ``credits`` on the wallet, the key's quota and the member's quotas, or refuse (402)."""
    if credits < 0:
        raise ValueError("a reservation cannot be negative")
    now = utcnow()
    params = {"b_key": principal.key_id, "b_member": principal.member_id, "b_wallet": principal.wallet_id,
              "b_amt": credits, "b_now": now, "b_month": _month(now)}
    with _engine().begin() as conn:
        if conn.execute(_KEY_RESERVE, params).rowcount != 1:
            _refuse_key(conn, params, credits, now)
        if principal.member_id is not None and conn.execute(_MEMBER_RESERVE, params).rowcount != 1:
            raise QuotaExceeded(f"Member quota exceeded: this call needs up to {credits} credits (quota_exceeded).")
        if conn.execute(_WALLET_RESERVE, params).rowcount != 1:
            raise InsufficientBalance(
                f"Insufficient balance: this call needs up to {credits} credits (${usd_str(credits)}) "
                "beyond what is already reserved; top up to continue."
            )
        conn.execute(_R_INSERT, {
            "request_id": request_id, "wallet_id": principal.wallet_id, "api_key_id": principal.key_id,
            "member_id": principal.member_id, "amount_credits": credits, "state": "open", "created_at": now,
            "expires_at": now + dt.timedelta(seconds=_deadline_s() + 60),
        })
        conn.execute(_E_INSERT, {
            "wallet_id": principal.wallet_id, "kind": "reserve", "amount_credits": 0, "reserved_delta": credits,
            "ref": request_id, "api_key_id": principal.key_id, "memo": "", "created_at": now,
        })
    _maybe_expire()
    return Hold(request_id, principal.wallet_id, principal.org_id, principal.key_id, principal.member_id,
                credits, principal.has_windows)


def _refuse_key(conn: sa.Connection, params: dict[str, Any], credits: int, now: dt.datetime) -> None:
    row = conn.execute(_KEY_STATE, params).first()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise AuthError("This API key has been revoked or has expired.")
    left = max(0, row.quota_credits - row.spent_credits - row.reserved_credits)
    raise QuotaExceeded(
        f"Key quota exceeded: this call needs up to {credits} credits and the key has {left} of its "
        f"{row.quota_credits} lifetime credits left (quota_exceeded)."
    )


# --- settle / release ---------------------------------------------------------


def settle(hold: Hold, cost_credits: int, record: UsageRecord) -> int:
    """Charge ``min(cost, hold)`` and close the hold; return the credits charged (0 if already closed)."""
    charged = max(0, min(int(cost_credits), hold.amount))
    return charged if _close(hold, "settle", charged, record) else 0


def release(hold: Hold, record: UsageRecord) -> None:
    """Close the hold free of charge (the call failed or was refused)."""
    _close(hold, "release", 0, record)


def _close(hold: Hold, kind: str, charged: int, record: UsageRecord | None) -> bool:
    now = utcnow()
    params = {"b_rid": hold.request_id, "b_state": "settled" if kind == "settle" else "released",
              "b_key": hold.api_key_id, "b_member": hold.member_id, "b_wallet": hold.wallet_id,
              "b_amt": hold.amount, "b_charged": charged, "b_now": now, "b_month": _month(now)}
    with _engine().begin() as conn:
        if conn.execute(_GATE, params).rowcount != 1:
            return False  # settled, released or expired already: nothing to do
        if hold.api_key_id is not None:
            conn.execute(_KEY_CLOSE, params)
        if hold.member_id is not None:
            conn.execute(_MEMBER_CLOSE, params)
        conn.execute(_WALLET_CLOSE, params)
        conn.execute(_E_INSERT, {
            "wallet_id": hold.wallet_id, "kind": kind, "amount_credits": -charged, "reserved_delta": -hold.amount,
            "ref": hold.request_id, "api_key_id": hold.api_key_id, "memo": record.model if record else "",
            "created_at": now,
        })
        usage_stmt, hour_stmt = _upserts(conn)
        if charged and hold.track_spend and hold.api_key_id is not None:
            hour = now.replace(minute=0, second=0, microsecond=0)
            conn.execute(hour_stmt, {"api_key_id": hold.api_key_id, "hour": hour, "credits": charged})
        if record is not None:
            conn.execute(usage_stmt, _usage_values(record, now, cost=charged, billed=kind == "settle"))
    return True


def _usage_values(rec: UsageRecord, now: dt.datetime, *, cost: int, billed: bool) -> dict[str, Any]:
    return {
        "id": rec.request_id, "created_at": now, "org_id": rec.org_id, "api_key_id": rec.api_key_id,
        "member_id": rec.member_id, "model": rec.model[:120], "provider": rec.provider, "channel": rec.channel,
        "protocol": rec.protocol, "stream": bool(rec.stream), "status": int(rec.status),
        "input_tokens": rec.input_tokens, "output_tokens": rec.output_tokens,
        "cache_write_tokens": rec.cache_write_tokens, "cache_read_tokens": rec.cache_read_tokens,
        "estimated_credits": rec.estimated_credits, "cost_credits": cost, "billed": billed,
        "latency_ms": int(rec.latency_ms), "overhead_ms": int(rec.overhead_ms),
        "fallback_from": rec.fallback_from, "error": rec.error[:500] if rec.error else None,
    }


def log_call(record: UsageRecord) -> None:
    """Write the usage row of a call refused before any reservation (free, not billed)."""
    with _engine().begin() as conn:
        conn.execute(_upserts(conn)[0], _usage_values(record, utcnow(), cost=0, billed=False))


# --- expiry ---------------------------------------------------------------------


def expire_reservations(older_than_s: float | None = None) -> int:
    """Release open reservations older than ``older_than_s`` (a crashed worker's); return how many."""
    age = _deadline_s() + 60 if older_than_s is None else older_than_s
    cutoff = utcnow() - dt.timedelta(seconds=age)
    with _engine().connect() as conn:
        rows = conn.execute(
            sa.select(_r).where(_r.c.state == "open", _r.c.created_at <= cutoff).order_by(_r.c.created_at).limit(1000)
        ).all()
        orgs = dict(conn.execute(sa.select(_w.c.id, _w.c.org_id)).all()) if rows else {}
    done = 0
    for row in rows:
        hold = Hold(row.request_id, row.wallet_id, orgs.get(row.wallet_id, 0), row.api_key_id, row.member_id,
                    row.amount_credits)
        rec = UsageRecord(row.request_id, hold.org_id, row.api_key_id, row.member_id, "", None, None, "",
                          False, 500, estimated_credits=row.amount_credits,
                          error="reservation expired: the call never completed (not billed)")
        done += _close(hold, "release", 0, rec)
    return done


_expire_lock = threading.Lock()
_last_expire = [0.0]


def _maybe_expire() -> None:
    """Sweep stale reservations at most once a minute per process (cheap when there are none)."""
    now = time.monotonic()
    if now - _last_expire[0] < EXPIRE_EVERY_S or not _expire_lock.acquire(blocking=False):
        return
    try:
        _last_expire[0] = now
        expire_reservations()
    finally:
        _expire_lock.release()


def _deadline_s() -> float:
    from flask import current_app

    return float(current_app.config.get("REQUEST_DEADLINE_S", 600))


# --- credits ------------------------------------------------------------------


def wallet_id_of(conn: sa.Connection, org_id: int) -> int:
    wid = conn.execute(sa.select(_w.c.id).where(_w.c.org_id == org_id)).scalar()
    if wid is None:
        raise LookupError(f"org {org_id} has no wallet")
    return int(wid)


def credit(org_id: int, kind: str, amount_credits: int, ref: str, memo: str = "") -> bool:
    """Move the balance by ``amount_credits`` once per (wallet, kind, ref); False if already applied.

    A negative amount (``admin_debit``, ``payment_refund``) must fit the
    spendable balance, else InsufficientBalance.
    """
    if kind not in CREDIT_KINDS:
        raise ValueError(f"unknown credit kind {kind!r}")
    try:
        with _engine().begin() as conn:
            wid = wallet_id_of(conn, org_id)
            conn.execute(_e.insert(), {
                "wallet_id": wid, "kind": kind, "amount_credits": amount_credits, "reserved_delta": 0,
                "ref": ref[:80], "api_key_id": None, "memo": memo[:300], "created_at": utcnow(),
            })
            cond = [_w.c.id == wid]
            if amount_credits < 0:
                cond.append(_w.c.balance_credits - _w.c.reserved_credits >= -amount_credits)
            hit = conn.execute(_w.update().where(*cond).values(balance_credits=_w.c.balance_credits + amount_credits))
            if hit.rowcount != 1:
                raise InsufficientBalance(f"Cannot debit {-amount_credits} credits: not enough spendable balance.")
    except IntegrityError:
        return False  # (wallet, kind, ref) already applied
    return True


def balance(org_id: int) -> tuple[int, int]:
    """Return (balance, reserved) credits of the org's wallet."""
    with _engine().connect() as conn:
        row = conn.execute(sa.select(_w.c.balance_credits, _w.c.reserved_credits).where(_w.c.org_id == org_id)).first()
    if row is None:
        raise LookupError(f"org {org_id} has no wallet")
    return int(row[0]), int(row[1])


# --- audit --------------------------------------------------------------------


def verify_ledger() -> list[str]:
    """Recompute every wallet and key from the entries; return a list of problems (empty: clean)."""
    problems: list[str] = []
    with _engine().connect() as conn:
        sums = {r.wallet_id: (int(r.bal or 0), int(r.res or 0)) for r in conn.execute(
            sa.select(_e.c.wallet_id, sa.func.sum(_e.c.amount_credits).label("bal"),
                      sa.func.sum(_e.c.reserved_delta).label("res")).group_by(_e.c.wallet_id))}
        open_by_wallet = dict(conn.execute(
            sa.select(_r.c.wallet_id, sa.func.sum(_r.c.amount_credits)).where(_r.c.state == "open").group_by(_r.c.wallet_id)
        ).all())
        for w in conn.execute(sa.select(_w)).all():
            bal, res = sums.get(w.id, (0, 0))
            if (bal, res) != (w.balance_credits, w.reserved_credits):
                problems.append(f"wallet {w.id} (org {w.org_id}): stored balance {w.balance_credits} reserved "
                                f"{w.reserved_credits}, entries say {bal} / {res}")
            if int(open_by_wallet.get(w.id) or 0) != w.reserved_credits:
                problems.append(f"wallet {w.id}: reserved {w.reserved_credits} but open reservations sum to "
                                f"{int(open_by_wallet.get(w.id) or 0)}")
            if w.balance_credits < 0 or w.reserved_credits < 0:
                problems.append(f"wallet {w.id}: negative total")
        spent = dict(conn.execute(
            sa.select(_e.c.api_key_id, -sa.func.sum(_e.c.amount_credits))
            .where(_e.c.kind == "settle", _e.c.api_key_id.is_not(None)).group_by(_e.c.api_key_id)
        ).all())
        held = dict(conn.execute(
            sa.select(_r.c.api_key_id, sa.func.sum(_r.c.amount_credits)).where(_r.c.state == "open").group_by(_r.c.api_key_id)
        ).all())
        for k in conn.execute(sa.select(_k.c.id, _k.c.spent_credits, _k.c.reserved_credits)).all():
            if int(spent.get(k.id) or 0) != k.spent_credits or int(held.get(k.id) or 0) != k.reserved_credits:
                problems.append(f"key {k.id}: stored spent {k.spent_credits} reserved {k.reserved_credits}, entries say "
                                f"{int(spent.get(k.id) or 0)} / {int(held.get(k.id) or 0)}")
        problems += _verify_members(conn)
    return problems


def _verify_members(conn: sa.Connection) -> list[str]:
    """Members' running totals against their settled entries and open reservations."""
    spent = dict(conn.execute(
        sa.select(_r.c.member_id, -sa.func.sum(_e.c.amount_credits))
        .select_from(_e.join(_r, sa.and_(_r.c.request_id == _e.c.ref, _r.c.wallet_id == _e.c.wallet_id)))
        .where(_e.c.kind == "settle", _r.c.member_id.is_not(None)).group_by(_r.c.member_id)
    ).all())
    held = dict(conn.execute(
        sa.select(_r.c.member_id, sa.func.sum(_r.c.amount_credits))
        .where(_r.c.state == "open", _r.c.member_id.is_not(None)).group_by(_r.c.member_id)
    ).all())
    out = []
    for m in conn.execute(sa.select(_m.c.id, _m.c.spent_credits, _m.c.reserved_credits)).all():
        want = (int(spent.get(m.id) or 0), int(held.get(m.id) or 0))
        if want != (m.spent_credits, m.reserved_credits):
            out.append(f"member {m.id}: stored spent {m.spent_credits} reserved {m.reserved_credits}, "
                       f"entries say {want[0]} / {want[1]}")
    return out
