"""The wallet ledger: reserve before a call, settle or release after it, credit top-ups.

Reserve, settle and release are one statement on PostgreSQL and one short
write transaction on SQLite (``core.ledger_sql``): conditional writes that
hold only when the key is live and within quota, the member within quotas
and the wallet's spendable balance covers the hold. Rows are always locked
in one order (reservation, key, member, wallet) so that concurrent reserves
and settles never deadlock. Settle and release are gated by flipping the
reservation from ``open``, so a second settle or release of the same request
is a no-op; the unique (wallet, kind, ref) on ledger entries backs that up
and makes credits idempotent per payment reference.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError

from . import db as core_db
from . import ledger_group, limits
from . import ledger_sql as sql
from . import ledger_writes as writes
from .errors import AuthError, InsufficientBalance, QuotaExceeded, StalePrincipal
from .keys import Principal
from .live import KeyFigures, Live
from .models.accounts import ApiKey, Membership
from .models.base import utcnow
from .models.ledger import KeySpendHour, LedgerEntry, Reservation, Wallet
from .models.usage import UsageLog
from .money import usd_str

_w, _e, _r, _k, _m, _u, _h = (t.__table__ for t in (
    Wallet, LedgerEntry, Reservation, ApiKey, Membership, UsageLog, KeySpendHour))

log = logging.getLogger("bytespike.ledger")

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
    # The principal's live figures (see keys.Principal.live): refreshed by settle/release for the envelope.
    live: Live | None = field(default=None, compare=False, repr=False)


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


# --- reserve ------------------------------------------------------------------


def reserve(principal: Principal, request_id: str, credits: int) -> Hold:
    """Hold ``credits`` on the wallet, the key's quota and the member's quotas, or refuse (402).

    A revoked or expired key is refused here too (AuthError, 401), so a
    reservation can never be made on a key that is no longer live.
    """
    if credits < 0:
        raise ValueError("a reservation cannot be negative")
    item = reservation(principal, request_id, credits)
    # In line through the group committer: reservations that meet share one transaction.
    alone = ledger_group.holds.reserving()
    try:
        verdict, key_row, wallet_row = ledger_group.commit(_engine(), item, reserve_many, kind="reserve",
                                                           alone=alone)
    except BaseException:
        ledger_group.holds.dropped()
        raise
    if verdict != "ok":
        ledger_group.holds.dropped()
    live = principal.live
    live.remember(key_row, wallet_row)
    if verdict in item[1]:
        raise limits.window_exceeded(principal, verdict, credits)
    if verdict != "ok":
        _refuse(verdict, credits, key_row)
    live.win_delta += credits
    _maybe_expire()
    return Hold(request_id, principal.wallet_id, principal.org_id, principal.key_id, principal.member_id,
                credits, principal.has_windows, live)


def reservation(principal: Principal, request_id: str, credits: int) -> writes.Reserve:
    """What the statements of a reservation take: its parameters and the key's spend windows."""
    now = utcnow()
    params = {"key": principal.key_id, "member": principal.member_id, "wallet": principal.wallet_id,
              "amt": credits, "now": now, "month": writes.month(now), "rid": request_id,
              "ver": principal.version,
              "exp": now + dt.timedelta(seconds=_deadline_s() + 60)}
    # Spend windows are judged here, under the key's lock, counting every open hold of the key.
    windows = limits.window_bounds(principal, now) if principal.has_windows else {}
    for name, (limit, start) in windows.items():
        params[f"wl_{name}"], params[f"ws_{name}"] = limit, start
    return params, tuple(windows)


def reserve_many(engine: sa.Engine, items: list[writes.Reserve]) -> list[writes.Verdict]:
    """Judge and write several reservations in ONE transaction, in turn; each one's verdict.

    Each is judged exactly as alone, on the rows as the ones before it left them. SQLite:
    one ``BEGIN IMMEDIATE``, a refused one rolled back to its savepoint. PostgreSQL: one
    autocommit statement, a function that locks all the group's rows first in the global
    order and judges the reservations in turn (``core.ledger_fn``).
    """
    if engine.dialect.name != "postgresql":
        return writes.reserve_lite_group(engine, items)
    return writes.reserve_pg_group(engine, items)


def _refuse(verdict: str, credits: int, key_row: KeyFigures | None) -> None:
    if verdict == "stale":
        raise StalePrincipal("This API key changed while the call was admitted; read it again.")
    if verdict == "auth" or key_row is None:
        raise AuthError("This API key has been revoked or has expired.")
    if verdict == "key_quota":
        spent, held, quota = key_row
        assert quota is not None  # only a key with a quota is refused for it
        left = max(0, quota - spent - held)
        raise QuotaExceeded(
            f"Key quota exceeded: this call needs up to {credits} credits and the key has {left} of its "
            f"{quota} lifetime credits left (quota_exceeded)."
        )
    if verdict == "member_quota":
        raise QuotaExceeded(f"Member quota exceeded: this call needs up to {credits} credits (quota_exceeded).")
    raise InsufficientBalance(
        f"Insufficient balance: this call needs up to {credits} credits (${usd_str(credits)}) "
        "beyond what is already reserved; top up to continue."
    )


# --- settle / release ---------------------------------------------------------


def settle(hold: Hold, cost_credits: int, record: UsageRecord) -> int:
    """Charge the reported cost in full and close the hold, committed before this returns.

    Returns the credits charged (0 if the hold was closed already). The hold is
    a guard, not a ceiling: a cost above it is charged whole (logged), and may
    take the wallet below zero and the key's or member's spending past its
    quota; the next reservation is then refused until the balance is positive.
    """
    charged = max(0, int(cost_credits))
    if charged > hold.amount:
        log.warning("request %s: the reported cost %d exceeds its hold %d; charged in full",
                    hold.request_id, charged, hold.amount)
    return charged if _close(hold, "settle", charged, record) else 0


def release(hold: Hold, record: UsageRecord) -> None:
    """Close the hold free of charge (the call failed or was refused)."""
    _close(hold, "release", 0, record)


def _close(hold: Hold, kind: str, charged: int, record: UsageRecord | None) -> bool:
    """Flip the reservation from open, then move key, member and wallet, the entry, the hour and the usage row.

    Written in line through the group committer (``core.ledger_group``): committed when this returns.
    """
    try:
        return ledger_group.commit(_engine(), (hold, kind, charged, record), close_many,
                                   alone=ledger_group.holds.closing())
    finally:
        ledger_group.holds.dropped()


Close = tuple[Hold, str, int, "UsageRecord | None"]


def close_many(engine: sa.Engine, closes: list[Close]) -> list[bool]:
    """Apply several closes in ONE transaction (a group commit); an error rolls back all of them.

    SQLite: one ``BEGIN IMMEDIATE``. PostgreSQL: a lone close is one autocommit
    statement, a group ONE multi-row statement (``ledger_sql.PG_CLOSE_GROUP``)
    that locks its rows in the global order first, so it cannot deadlock with
    another group, a reserve or a credit. Returns, per close, whether it
    flipped its reservation (False: settled, released or expired already).
    """
    now = utcnow()
    if engine.dialect.name != "postgresql":
        with sql.lite_transaction(engine) as cur:
            results = writes.close_lite_group(cur, closes, now)
            cur.commit = True
    else:
        prepared = [writes.close_params(c, now) for c in closes]
        if len(prepared) == 1 or not writes.groupable(prepared):
            with sql.autocommit(engine) as conn:
                results = [writes.close_pg(conn, *item) for item in prepared]
        else:
            with sql.autocommit(engine) as conn:
                rows = {r[0]: r for r in conn.exec_driver_sql(sql.PG_CLOSE_GROUP, sql.group_params(prepared))}
            results = [(p["rid"] in rows, *writes.group_rows(rows.get(p["rid"]))) for p, _h, _u in prepared]
    for (hold, _kind, charged, _rec), (done, key, wallet) in zip(closes, results, strict=True):
        live = hold.live
        if live is not None:
            live.remember(key if done else None, wallet if done else None)
            if done:
                live.win_delta += charged - hold.amount
    return [done for done, _k, _w in results]


def log_call(record: UsageRecord) -> None:
    """Write the usage row of a call refused before any reservation (free, not billed)."""
    with _engine().begin() as conn:
        mod = pg_dialect if conn.dialect.name == "postgresql" else sqlite_dialect
        stmt = mod.insert(_u).on_conflict_do_nothing(index_elements=[_u.c.id])
        conn.execute(stmt, writes.usage_values(record, utcnow(), cost=0, billed=False))


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
            if w.reserved_credits < 0:  # a balance may be negative: a charge above its hold is taken whole
                problems.append(f"wallet {w.id}: negative reservations")
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
