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
    from .ledger import Close, Hold, UsageRecord


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
                cur.execute("SAVEPOINT rsv", ())
            verdict = _reserve_lite(cur, params, windows)
            if not alone:
                if verdict[0] != "ok":
                    cur.execute("ROLLBACK TO rsv", ())  # keeps the savepoint: released below either way
                cur.execute("RELEASE rsv", ())
            out.append(verdict)
        cur.commit = any(v[0] == "ok" for v in out)
    return out


def _reserve_lite(cur: sql.LiteCursor, params: dict[str, Any], windows: tuple[str, ...]) -> Verdict:
    """One reservation's conditional UPDATEs in the open transaction; a refusal leaves writes to undo."""
    amt, key, member, wallet = params["amt"], params["key"], params["member"], params["wallet"]
    now = sql.lite_time(params["now"])
    judge = (amt, key, now, params["ver"])
    row = cur.execute(sql.LITE_KEY_RESERVE, judge).fetchone()
    if row is None:
        state = cur.execute(sql.LITE_KEY_STATE, judge).fetchone()
        wallet_row = _lite_wallet(cur, wallet)
        if state is None:
            return "auth", None, None
        if not state[4]:
            return "stale", None, None
        if not state[3]:
            return "auth", None, None
        return "key_quota", key_of(state), wallet_row
    key_row = key_figures(row)
    held_before = key_row._replace(reserved=key_row.reserved - amt)  # as it stands when refused (rolled back)
    if windows:
        starts = tuple(sql.lite_time(params[f"ws_{n}"]) for n in windows)
        sums = cur.execute(sql.lite_window_sums(windows), (key, *starts)).fetchone()
        over = next((n for n, used in zip(windows, sums, strict=True) if used + key_row.reserved > params[f"wl_{n}"]),
                    None)
        if over is not None:
            return over, held_before, _lite_wallet(cur, wallet)
    if member is not None and cur.execute(sql.LITE_MEMBER_RESERVE, (amt, member, params["month"])).rowcount != 1:
        return "member_quota", held_before, _lite_wallet(cur, wallet)
    wallet_row = wallet_of(cur.execute(sql.LITE_WALLET_RESERVE, (amt, wallet)).fetchone())
    if wallet_row is None:
        return "balance", held_before, _lite_wallet(cur, wallet)
    rid = params["rid"]
    cur.execute(sql.LITE_RES_INSERT, (rid, wallet, key, member, amt, now, sql.lite_time(params["exp"])))
    cur.execute(sql.LITE_ENTRY_INSERT, (wallet, "reserve", 0, amt, rid, key, "", now))
    return "ok", key_row, wallet_row


def _lite_wallet(cur: sql.LiteCursor, wallet: int) -> WalletFigures | None:
    return wallet_of(cur.execute(sql.LITE_WALLET_STATE, (wallet,)).fetchone())


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


def closed_state(kind: str) -> str:
    """The state a reservation's close leaves it in: ``settled`` for a settle, ``released`` otherwise."""
    return "settled" if kind == "settle" else "released"


def close_params(close: Close, now: dt.datetime) -> tuple[dict[str, Any], bool, bool]:
    """A close as PostgreSQL's statements take it: its parameters, whether it adds to the key's spend hour,
    and whether it carries a usage row."""
    hold, kind, charged, record = close
    params: dict[str, Any] = {
        "rid": hold.request_id, "state": closed_state(kind), "kind": kind,
        "key": hold.api_key_id, "member": hold.member_id, "wallet": hold.wallet_id, "amt": hold.amount,
        "charged": charged, "now": now, "month": month(now), "memo": record.model if record else "",
        "hour": now.replace(minute=0, second=0, microsecond=0),
    }
    if record is not None:
        params["usage_row"] = usage_values(record, now, cost=charged, billed=kind == "settle")
    return params, _with_hour(hold, charged), record is not None


def _with_hour(hold: Hold, charged: int) -> bool:
    """Whether a close adds to its key's spend hour (kept for keys with rolling windows)."""
    return bool(charged and hold.track_spend and hold.api_key_id is not None)


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
    if with_usage:
        p = {**p, "usage": sql.usage_json(p["usage_row"])}
    n, wb, wr, ks, kr, kq = conn.exec_driver_sql(sql.PG_CLOSE[(with_hour, with_usage)], p).fetchone()
    return bool(n), key_of((ks, kr, kq)), wallet_of((wb, wr))


def close_lite_group(cur: sql.LiteCursor, closes: Sequence[Close], now: dt.datetime) -> list[Closed]:
    """Closes in the open transaction: each flips its own reservation, then each key, member and wallet moves
    once by the group's sums, and the entries, spend hours and usage rows are written together.

    Per flipped close, the key's and the wallet's totals after the group (as on PostgreSQL).
    """
    flipped = [cur.execute(sql.LITE_GATE, (closed_state(kind), hold.request_id)).rowcount == 1
               for hold, kind, _c, _r in closes]
    done = [close for close, ok in zip(closes, flipped, strict=True) if ok]
    if not done:
        return [(False, None, None)] * len(closes)
    stamp = sql.lite_time(now)
    sums: dict[tuple[str, Any], list[int]] = {}  # ("key" | "member" | "wallet", id) -> [charged, held]
    hours: dict[str, int] = {}
    for hold, _kind, charged, _rec in done:
        for acc_key in (("key", hold.api_key_id), ("member", hold.member_id), ("wallet", hold.wallet_id)):
            if acc_key[1] is not None:
                acc = sums.setdefault(acc_key, [0, 0])
                acc[0] += charged
                acc[1] += hold.amount
        key = hold.api_key_id
        if key is not None and _with_hour(hold, charged):
            hours[key] = hours.get(key, 0) + charged
    figures: dict[tuple[str, Any], Any] = {}
    for (what, ident), (charged, amt) in sums.items():
        if what == "key":
            figures[(what, ident)] = key_of(cur.execute(sql.LITE_KEY_CLOSE, (charged, amt, stamp, ident)).fetchone())
        elif what == "member":
            cur.execute(sql.LITE_MEMBER_CLOSE, (charged, amt, month(now), ident))
        else:
            figures[(what, ident)] = wallet_of(cur.execute(sql.LITE_WALLET_CLOSE, (charged, amt, ident)).fetchone())
    cur.executemany(sql.LITE_ENTRY_INSERT, [
        (hold.wallet_id, kind, -charged, -hold.amount, hold.request_id, hold.api_key_id,
         record.model if record else "", stamp) for hold, kind, charged, record in done])
    if hours:
        hour = sql.lite_time(now.replace(minute=0, second=0, microsecond=0))
        for key, charged in hours.items():
            cur.execute(sql.LITE_HOUR, (key, hour, charged))
    usage = [usage_row(record, stamp, cost=charged, billed=kind == "settle") for _h, kind, charged, record in done
             if record is not None]
    if usage:
        cur.executemany(sql.LITE_USAGE, usage)
    return [(True, figures.get(("key", hold.api_key_id)), figures[("wallet", hold.wallet_id)]) if ok
            else (False, None, None)
            for (hold, _k, _c, _r), ok in zip(closes, flipped, strict=True)]


def usage_row(rec: UsageRecord, created_at: Any, *, cost: int, billed: bool) -> tuple[Any, ...]:
    """A call's usage row in ``ledger_sql.USAGE_COLS`` order, ``created_at`` as given (SQLite binds this tuple
    as it is, with the time as text; booleans bind as 0 or 1)."""
    return (rec.request_id, created_at, rec.org_id, rec.api_key_id, rec.member_id, rec.model[:120], rec.provider,
            rec.channel, rec.protocol, bool(rec.stream), int(rec.status), rec.input_tokens, rec.output_tokens,
            rec.cache_write_tokens, rec.cache_read_tokens, rec.estimated_credits, cost, billed,
            int(rec.latency_ms), int(rec.overhead_ms), rec.fallback_from, rec.error[:500] if rec.error else None)


def usage_values(rec: UsageRecord, now: dt.datetime, *, cost: int, billed: bool) -> dict[str, Any]:
    """The usage row by column name (PostgreSQL's statements and the ORM insert)."""
    return dict(zip(sql.USAGE_COLS, usage_row(rec, now, cost=cost, billed=billed), strict=True))
