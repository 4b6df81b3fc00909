"""The ledger's hot writes, run per dialect: reservations and closes, alone or in a group.

``core.ledger`` decides what a reserve or a close means (the hold, the
refusal, the principal's live figures); this module runs the statements of
``core.ledger_sql`` for it and hands back what they found: a reservation's
verdict, and the key's (spent, reserved, quota) and the wallet's (balance,
reserved) after the write. PostgreSQL: one statement in autocommit (a group
of reservations: one call of ``core.ledger_fn``'s function). SQLite: a short
``BEGIN IMMEDIATE`` transaction of conditional UPDATEs.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa

from . import ledger_fn
from . import ledger_sql as sql
from .live import KeyFigures, WalletFigures

if TYPE_CHECKING:
    from .ledger import Close, UsageRecord


def month(now: dt.datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"


Verdict = tuple[str, KeyFigures | None, WalletFigures | None]  # "ok" or why not, and the rows' figures
Reserve = tuple[dict[str, Any], tuple[str, ...]]  # one reservation's parameters and the spend windows it judges


def reserve_pg_group(engine: sa.Engine, items: Sequence[Reserve]) -> list[Verdict]:
    """One reservation or several, in ONE statement (``core.ledger_fn``): each judged in turn as if alone."""
    docs = []
    for p, windows in items:
        doc = {n: p[n] for n in ("rid", "key", "member", "wallet", "amt", "ver", "month")}
        doc.update(now=p["now"].isoformat(), exp=p["exp"].isoformat(),
                   windows=[[n, p[f"wl_{n}"], p[f"ws_{n}"].isoformat()] for n in windows])
        docs.append(doc)
    with sql.autocommit(engine) as conn:
        rows = conn.exec_driver_sql(ledger_fn.RESERVE_MANY, {"items": json.dumps(docs)}).fetchall()
    rows.sort(key=lambda row: row[0])
    return [_pg_verdict(row[1:], p) for row, (p, _w) in zip(rows, items, strict=True)]


def _pg_verdict(row: Sequence[Any], params: dict[str, Any]) -> Verdict:
    verdict, ks, kr, kq, wb, wr = row
    if ks is None or wb is None:  # the key (or its wallet) is gone
        return "auth", None, None
    add = params["amt"] if verdict == "ok" else 0
    return verdict, key_of((ks, kr + add, kq)), wallet_of((wb, wr + add))


def reserve_lite_group(engine: sa.Engine, items: Sequence[Reserve]) -> list[Verdict]:
    """Several reservations in ONE ``BEGIN IMMEDIATE``, in turn; a refused one's writes roll back to its savepoint."""
    out: list[Verdict] = []
    with sql.lite_transaction(engine) as cur:
        alone = len(items) == 1
        for params, windows in items:
            if not alone:
                cur.execute("SAVEPOINT rsv", {})
            verdict = _reserve_lite(cur, params, windows)
            if not alone:
                if verdict[0] != "ok":
                    cur.execute("ROLLBACK TO rsv", {})  # keeps the savepoint: released below either way
                cur.execute("RELEASE rsv", {})
            out.append(verdict)
        cur.commit = any(v[0] == "ok" for v in out)
    return out


def _reserve_lite(cur: sql.LiteCursor, params: dict[str, Any], windows: tuple[str, ...]) -> Verdict:
    """One reservation's conditional UPDATEs in the open transaction; a refusal leaves writes to undo."""
    p = {**params, "now": sql.lite_time(params["now"]), "exp": sql.lite_time(params["exp"])}
    p.update({f"ws_{n}": sql.lite_time(params[f"ws_{n}"]) for n in windows})
    row = cur.execute(sql.LITE_KEY_RESERVE, p).fetchone()
    if row is None:
        state = cur.execute(sql.LITE_KEY_STATE, p).fetchone()
        wallet = wallet_of(cur.execute(sql.LITE_WALLET_STATE, p).fetchone())
        if state is None:
            return "auth", None, None
        if not state[4]:
            return "stale", None, None
        if not state[3]:
            return "auth", None, None
        return "key_quota", key_of(state), wallet
    key = key_figures(row)
    held_before = key._replace(reserved=key.reserved - p["amt"])  # as it stands when refused (rolled back)
    if windows:
        sums = cur.execute(sql.lite_window_sums(windows), p).fetchone()
        over = next((n for n, used in zip(windows, sums, strict=True) if used + key.reserved > p[f"wl_{n}"]), None)
        if over is not None:
            return over, held_before, _lite_wallet(cur, p)
    if p["member"] is not None and cur.execute(sql.LITE_MEMBER_RESERVE, p).rowcount != 1:
        return "member_quota", held_before, _lite_wallet(cur, p)
    wallet = wallet_of(cur.execute(sql.LITE_WALLET_RESERVE, p).fetchone())
    if wallet is None:
        return "balance", held_before, _lite_wallet(cur, p)
    cur.execute(sql.LITE_RES_INSERT, p)
    cur.execute(sql.LITE_ENTRY_INSERT, {**p, "kind": "reserve", "delta": 0, "rdelta": p["amt"], "memo": ""})
    return "ok", key, wallet


def _lite_wallet(cur: sql.LiteCursor, p: dict[str, Any]) -> WalletFigures | None:
    return wallet_of(cur.execute(sql.LITE_WALLET_STATE, p).fetchone())


def key_figures(row: Sequence[Any]) -> KeyFigures:
    """A driver row of (spent, reserved, quota) credits."""
    return KeyFigures(int(row[0]), int(row[1]), None if row[2] is None else int(row[2]))


def key_of(row: Sequence[Any] | None) -> KeyFigures | None:
    """``_key_figures``, or None when the statement returned no key."""
    return None if row is None or row[0] is None else key_figures(row)


def wallet_of(row: Sequence[Any] | None) -> WalletFigures | None:
    """A driver row of (balance, reserved) credits; None when the statement returned no wallet."""
    if row is None or row[0] is None:
        return None
    return WalletFigures(int(row[0]), int(row[1]))


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


def group_rows(row: Sequence[Any] | None) -> tuple[KeyFigures | None, WalletFigures | None]:
    if row is None:
        return None, None
    _rid, ks, kr, kq, wb, wr = row
    return key_of((ks, kr, kq)), wallet_of((wb, wr))


Closed = tuple[bool, KeyFigures | None, WalletFigures | None]  # flipped or not, and the rows' figures after


def close_pg(conn: sql.PgAutocommit, p: dict[str, Any], with_hour: bool, with_usage: bool) -> Closed:
    n, wb, wr, ks, kr, kq = conn.exec_driver_sql(sql.PG_CLOSE[(with_hour, with_usage)], p).fetchone()
    return bool(n), key_of((ks, kr, kq)), wallet_of((wb, wr))


def close_lite_group(cur: sql.LiteCursor, prepared: Sequence[tuple[dict[str, Any], bool, bool]]) -> list[Closed]:
    """Closes in the open transaction: each flips its own reservation, then each key, member and wallet moves
    once by the group's sums, and the entries, spend hours and usage rows are written together.

    Per flipped close, the key's and the wallet's totals after the group (as on PostgreSQL).
    """
    flipped = [cur.execute(sql.LITE_GATE, p).rowcount == 1 for p, _h, _u in prepared]
    done = [item for item, ok in zip(prepared, flipped, strict=True) if ok]
    if not done:
        return [(False, None, None)] * len(prepared)
    sums: dict[tuple[str, Any], list[int]] = {}
    hours: dict[str, int] = {}
    for p, with_hour, _u in done:
        for name in ("key", "member", "wallet"):
            if p[name] is not None:
                acc = sums.setdefault((name, p[name]), [0, 0])
                acc[0] += p["charged"]
                acc[1] += p["amt"]
        if with_hour:
            hours[p["key"]] = hours.get(p["key"], 0) + p["charged"]
    first = done[0][0]
    figures: dict[tuple[str, Any], Any] = {}
    for (name, ident), (charged, amt) in sums.items():
        q = {name: ident, "charged": charged, "amt": amt, "now": first["now"], "month": first["month"]}
        if name == "member":
            cur.execute(sql.LITE_MEMBER_CLOSE, q)
        else:
            row = cur.execute(sql.LITE_KEY_CLOSE if name == "key" else sql.LITE_WALLET_CLOSE, q).fetchone()
            figures[(name, ident)] = key_of(row) if name == "key" else wallet_of(row)
    cur.executemany(sql.LITE_ENTRY_INSERT, [{**p, "delta": -p["charged"], "rdelta": -p["amt"]} for p, _h, _u in done])
    for key, charged in hours.items():
        cur.execute(sql.LITE_HOUR, {"key": key, "hour": first["hour"], "charged": charged})
    cur.executemany(sql.LITE_USAGE, [p for p, _h, usage in done if usage])
    return [(True, figures.get(("key", p["key"])), figures[("wallet", p["wallet"])]) if ok else (False, None, None)
            for (p, _h, _u), ok in zip(prepared, flipped, strict=True)]


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
