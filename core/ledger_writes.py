"""The ledger's hot writes, run per dialect: one reservation, one close, a group of closes' rows.

``core.ledger`` decides what a reserve or a close means (the hold, the
refusal, the principal's live figures); this module runs the statements of
``core.ledger_sql`` for it and hands back what they found: a reservation's
verdict, and the key's (spent, reserved, quota) and the wallet's (balance,
reserved) after the write. PostgreSQL: one statement in autocommit. SQLite:
a short ``BEGIN IMMEDIATE`` transaction of conditional UPDATEs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import ledger_sql as sql

if TYPE_CHECKING:
    from .ledger import Close, UsageRecord


def month(now: dt.datetime) -> str:
    return now.strftime("%Y-%m")


def reserve_pg(engine: sa.Engine, params: dict[str, Any],
               windows: tuple[str, ...] = ()) -> tuple[str, tuple | None, tuple | None]:
    """One statement: lock key, member, wallet in order, judge, write only if every condition held."""
    with sql.autocommit(engine) as conn:
        row = conn.exec_driver_sql(sql.pg_reserve(windows), params).fetchone()
    if row is None:  # the key (or its wallet) is gone
        return "auth", None, None
    verdict, ks, kr, kq, wb, wr = row
    add = params["amt"] if verdict == "ok" else 0
    return verdict, (ks, kr + add, kq), (wb, wr + add)


def reserve_lite(engine: sa.Engine, params: dict[str, Any],
                 windows: tuple[str, ...] = ()) -> tuple[str, tuple | None, tuple | None]:
    """One short write transaction of conditional UPDATEs; a refusal reads the state it needs and rolls back."""
    p = {**params, "now": sql.lite_time(params["now"]), "exp": sql.lite_time(params["exp"])}
    p.update({f"ws_{n}": sql.lite_time(params[f"ws_{n}"]) for n in windows})
    with sql.lite_transaction(engine) as cur:
        key_row = cur.execute(sql.LITE_KEY_RESERVE, p).fetchone()
        if key_row is None:
            state = cur.execute(sql.LITE_KEY_STATE, p).fetchone()
            wallet_row = cur.execute(sql.LITE_WALLET_STATE, p).fetchone()
            if state is None:
                return "auth", None, None
            if not state[4]:
                return "stale", None, None
            if not state[3]:
                return "auth", None, None
            return "key_quota", tuple(state[:3]), wallet_row
        if windows:
            sums = cur.execute(sql.lite_window_sums(windows), p).fetchone()
            over = next((n for n, used in zip(windows, sums, strict=True) if used + key_row[1] > p[f"wl_{n}"]), None)
            if over is not None:
                return over, (key_row[0], key_row[1] - p["amt"], key_row[2]), cur.execute(
                    sql.LITE_WALLET_STATE, p).fetchone()
        if p["member"] is not None and cur.execute(sql.LITE_MEMBER_RESERVE, p).rowcount != 1:
            wallet_row = cur.execute(sql.LITE_WALLET_STATE, p).fetchone()
            return "member_quota", (key_row[0], key_row[1] - p["amt"], key_row[2]), wallet_row
        wallet_row = cur.execute(sql.LITE_WALLET_RESERVE, p).fetchone()
        if wallet_row is None:
            wallet_row = cur.execute(sql.LITE_WALLET_STATE, p).fetchone()
            return "balance", (key_row[0], key_row[1] - p["amt"], key_row[2]), wallet_row
        cur.execute(sql.LITE_RES_INSERT, p)
        cur.execute(sql.LITE_ENTRY_INSERT, {**p, "kind": "reserve", "delta": 0, "rdelta": p["amt"], "memo": ""})
        cur.commit = True
    return "ok", key_row, wallet_row


def close_params(close: Close, now: dt.datetime, sqlite: bool) -> tuple[dict[str, Any], bool, bool]:
    hold, kind, charged, record = close
    params: dict[str, Any] = {
        "rid": hold.request_id, "state": "settled" if kind == "settle" else "released", "kind": kind,
        "key": hold.api_key_id, "member": hold.member_id, "wallet": hold.wallet_id, "amt": hold.amount,
        "charged": charged, "now": now, "month": month(now), "memo": record.model if record else "",
        "hour": now.replace(minute=0, second=0, microsecond=0),
    }
    with_hour = bool(charged and hold.track_spend and hold.api_key_id is not None)
    if record is not None:
        params.update(sql.usage_params(usage_values(record, now, cost=charged, billed=kind == "settle"),
                                       sqlite=sqlite))
    if sqlite:
        params["now"], params["hour"] = sql.lite_time(params["now"]), sql.lite_time(params["hour"])
    return params, with_hour, record is not None


def groupable(prepared: list[tuple[dict[str, Any], bool, bool]]) -> bool:
    """One statement takes a group whose requests are distinct and all carry a usage row (every call's do)."""
    return all(usage for _p, _h, usage in prepared) and len({p["rid"] for p, _h, _u in prepared}) == len(prepared)


def group_rows(row: Any) -> tuple[tuple | None, tuple | None]:
    if row is None:
        return None, None
    _rid, ks, kr, kq, wb, wr = row
    return ((ks, kr, kq) if ks is not None else None), (wb, wr)


def close_pg(conn: sql.PgAutocommit, p: dict[str, Any], with_hour: bool,
             with_usage: bool) -> tuple[bool, tuple | None, tuple | None]:
    n, wb, wr, ks, kr, kq = conn.exec_driver_sql(sql.PG_CLOSE[(with_hour, with_usage)], p).fetchone()
    return bool(n), (ks, kr, kq) if ks is not None else None, (wb, wr)


def close_lite(cur: sql.LiteCursor, p: dict[str, Any], with_hour: bool,
               with_usage: bool) -> tuple[bool, tuple | None, tuple | None]:
    if cur.execute(sql.LITE_GATE, p).rowcount != 1:
        return False, None, None  # settled, released or expired already: nothing to do
    key_row = cur.execute(sql.LITE_KEY_CLOSE, p).fetchone() if p["key"] is not None else None
    if p["member"] is not None:
        cur.execute(sql.LITE_MEMBER_CLOSE, p)
    wallet_row = cur.execute(sql.LITE_WALLET_CLOSE, p).fetchone()
    cur.execute(sql.LITE_ENTRY_INSERT, {**p, "delta": -p["charged"], "rdelta": -p["amt"]})
    if with_hour:
        cur.execute(sql.LITE_HOUR, p)
    if with_usage:
        cur.execute(sql.LITE_USAGE, p)
    return True, key_row, wallet_row


def usage_values(rec: UsageRecord, now: dt.datetime, *, cost: int, billed: bool) -> dict[str, Any]:
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
