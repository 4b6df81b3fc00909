"""The hot statements of the ledger, written per dialect and sent as driver SQL.

PostgreSQL: a settlement is ONE statement (one round trip, autocommit), built
from data-modifying CTEs, so row locks live for the length of one statement.
``close`` flips the reservation from ``open`` first and chains the key, member
and wallet updates behind it (``FOR NO KEY UPDATE``, which leaves foreign-key
checks of other writers unblocked) in the global order, so it never deadlocks
with a reservation (``core.ledger_fn``, which locks in the same order) or with
``credit``.

SQLite: the write lock serialises writers, so each operation is a short
``BEGIN IMMEDIATE`` transaction of conditional UPDATEs with RETURNING.

Both run on driver connections kept checked out of the engine's pool
(``core.ledger_conn``): these writes run twice a call, and a pool checkout and
return (the return's reset included) cost more than a SQLite statement.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import sqlalchemy as sa

from .ledger_conn import connection, held

USAGE_COLS = ("id", "created_at", "org_id", "api_key_id", "member_id", "model", "provider", "channel", "protocol",
               "stream", "status", "input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens",
               "estimated_credits", "cost_credits", "billed", "latency_ms", "overhead_ms", "fallback_from", "error")
_USAGE_PG_TYPES = {"created_at": "timestamp", "org_id": "integer", "member_id": "integer", "stream": "boolean",
                   "status": "integer", "billed": "boolean", "estimated_credits": "bigint", "cost_credits": "bigint",
                   "input_tokens": "integer", "output_tokens": "integer", "cache_write_tokens": "integer",
                   "cache_read_tokens": "integer", "latency_ms": "integer", "overhead_ms": "integer"}

# --- PostgreSQL ------------------------------------------------------------------------------

_PG_CLOSE_HEAD = """
WITH g AS (
  UPDATE reservations SET state = %(state)s::varchar WHERE request_id = %(rid)s::varchar AND state = 'open' RETURNING 1
), ku AS (
  UPDATE api_keys SET spent_credits = spent_credits + %(charged)s::bigint,
         reserved_credits = reserved_credits - %(amt)s::bigint, last_used_at = %(now)s::timestamp
  WHERE id = %(key)s::varchar AND EXISTS (SELECT 1 FROM g)
  RETURNING spent_credits, reserved_credits, quota_credits
), mu AS (
  UPDATE memberships SET spent_credits = spent_credits + %(charged)s::bigint,
         reserved_credits = reserved_credits - %(amt)s::bigint,
         month_spent_credits = CASE WHEN month = %(month)s::varchar THEN month_spent_credits + %(charged)s::bigint
                                    ELSE %(charged)s::bigint END,
         month = %(month)s::varchar
  WHERE id = %(member)s::integer AND EXISTS (SELECT 1 FROM g) AND (SELECT count(*) FROM ku) >= 0
  RETURNING 1
), wu AS (
  UPDATE wallets SET balance_credits = balance_credits - %(charged)s::bigint,
         reserved_credits = reserved_credits - %(amt)s::bigint
  WHERE id = %(wallet)s::integer AND EXISTS (SELECT 1 FROM g) AND (SELECT count(*) FROM mu) >= 0
  RETURNING balance_credits, reserved_credits
), ei AS (
  INSERT INTO ledger_entries (wallet_id, kind, amount_credits, reserved_delta, ref, api_key_id, memo, created_at)
  SELECT %(wallet)s::integer, %(kind)s::varchar, -%(charged)s::bigint, -%(amt)s::bigint, %(rid)s::varchar,
         %(key)s::varchar, %(memo)s::varchar, %(now)s::timestamp
  WHERE EXISTS (SELECT 1 FROM g)
)"""

_PG_HOUR = """, hu AS (
  INSERT INTO key_spend_hours (api_key_id, hour, credits)
  SELECT %(key)s::varchar, %(hour)s::timestamp, %(charged)s::bigint WHERE EXISTS (SELECT 1 FROM g)
  ON CONFLICT (api_key_id, hour) DO UPDATE SET credits = key_spend_hours.credits + excluded.credits
)"""

# The usage row travels as one JSON document: one parameter to send instead of one per column.
_PG_USAGE = ", ui AS (\n  INSERT INTO usage_log ({cols})\n  SELECT {cols} FROM jsonb_populate_record(NULL::usage_log, " \
    "%(usage)s::jsonb)\n  WHERE EXISTS (SELECT 1 FROM g)\n  ON CONFLICT (id) DO NOTHING\n)".format(cols=", ".join(USAGE_COLS))

_PG_CLOSE_TAIL = """
SELECT (SELECT count(*) FROM g), w.balance_credits, w.reserved_credits, k.spent_credits, k.reserved_credits,
       k.quota_credits
FROM (SELECT 1) AS one LEFT JOIN wu AS w ON true LEFT JOIN ku AS k ON true
"""

PG_CLOSE = {(hour, usage): _PG_CLOSE_HEAD + (_PG_HOUR if hour else "") + (_PG_USAGE if usage else "") + _PG_CLOSE_TAIL
            for hour in (False, True) for usage in (False, True)}

# A group of closes is ONE statement over one JSON document of its rows (one round trip, one plan, one
# commit; one parameter, which the driver sends without walking it value by value): it locks every
# row it will touch in the one global order (reservations, keys, members, wallets, each sorted, each
# class gated on the previous one), flips the reservations still open, moves each key, member and
# wallet once by its group's sums, and writes the entries, spend hours and usage rows. Per flipped
# reservation it returns the key's and the wallet's totals after the group.
_GROUP_COLS = {"rid": "varchar", "state": "varchar", "kind": "varchar", "key": "varchar", "member": "integer",
               "wallet": "integer", "amt": "bigint", "charged": "bigint", "memo": "varchar", "with_hour": "boolean"}

PG_CLOSE_GROUP = """
WITH v AS (
  SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS v({names})
), lr AS MATERIALIZED (
  SELECT request_id FROM reservations WHERE request_id IN (SELECT rid FROM v) ORDER BY request_id FOR NO KEY UPDATE
), lk AS MATERIALIZED (
  SELECT id FROM api_keys WHERE id IN (SELECT key FROM v) AND (SELECT count(*) FROM lr) >= 0 ORDER BY id
  FOR NO KEY UPDATE
), lm AS MATERIALIZED (
  SELECT id FROM memberships WHERE id IN (SELECT member FROM v) AND (SELECT count(*) FROM lk) >= 0 ORDER BY id
  FOR NO KEY UPDATE
), lw AS MATERIALIZED (
  SELECT id FROM wallets WHERE id IN (SELECT wallet FROM v) AND (SELECT count(*) FROM lm) >= 0 ORDER BY id
  FOR NO KEY UPDATE
), g AS (
  UPDATE reservations r SET state = v.state FROM v
  WHERE r.request_id = v.rid AND r.state = 'open' AND (SELECT count(*) FROM lw) >= 0
  RETURNING v.*
), ku AS (
  UPDATE api_keys k SET spent_credits = k.spent_credits + s.c, reserved_credits = k.reserved_credits - s.a,
         last_used_at = %(now)s::timestamp
  FROM (SELECT key, sum(charged) AS c, sum(amt) AS a FROM g WHERE key IS NOT NULL GROUP BY key) s WHERE k.id = s.key
  RETURNING k.id, k.spent_credits, k.reserved_credits, k.quota_credits
), mu AS (
  UPDATE memberships m SET spent_credits = m.spent_credits + s.c, reserved_credits = m.reserved_credits - s.a,
         month_spent_credits = CASE WHEN m.month = %(month)s::varchar THEN m.month_spent_credits + s.c ELSE s.c END,
         month = %(month)s::varchar
  FROM (SELECT member, sum(charged) AS c, sum(amt) AS a FROM g WHERE member IS NOT NULL GROUP BY member) s
  WHERE m.id = s.member
), wu AS (
  UPDATE wallets w SET balance_credits = w.balance_credits - s.c, reserved_credits = w.reserved_credits - s.a
  FROM (SELECT wallet, sum(charged) AS c, sum(amt) AS a FROM g GROUP BY wallet) s WHERE w.id = s.wallet
  RETURNING w.id, w.balance_credits, w.reserved_credits
), ei AS (
  INSERT INTO ledger_entries (wallet_id, kind, amount_credits, reserved_delta, ref, api_key_id, memo, created_at)
  SELECT wallet, kind, -charged, -amt, rid, key, memo, %(now)s::timestamp FROM g
), hu AS (
  INSERT INTO key_spend_hours (api_key_id, hour, credits)
  SELECT key, %(hour)s::timestamp, sum(charged) FROM g WHERE with_hour GROUP BY key
  ON CONFLICT (api_key_id, hour) DO UPDATE SET credits = key_spend_hours.credits + excluded.credits
), ui AS (
  INSERT INTO usage_log ({cols})
  SELECT u.* FROM jsonb_to_recordset(%(rows)s::jsonb) AS u({usage_types})
  WHERE u.id IN (SELECT rid FROM g)
  ON CONFLICT (id) DO NOTHING
)
SELECT g.rid, k.spent_credits, k.reserved_credits, k.quota_credits, w.balance_credits, w.reserved_credits
FROM g LEFT JOIN ku AS k ON k.id = g.key LEFT JOIN wu AS w ON w.id = g.wallet
""".format(
    names=", ".join(f"{n} {t}" for n, t in _GROUP_COLS.items()), cols=", ".join(USAGE_COLS),
    usage_types=", ".join(f"{c} {_USAGE_PG_TYPES.get(c, 'varchar')}" for c in USAGE_COLS))


def group_params(prepared: list[tuple[dict[str, Any], bool, bool]]) -> dict[str, Any]:
    """The closes as ``PG_CLOSE_GROUP``'s JSON rows: the close's columns and its usage row's (every close has one).

    The two sets of names do not meet, so one object per close carries both.
    """
    rows = []
    for p, hour, _usage in prepared:
        row = {n: p[n] for n in _GROUP_NAMES}
        row["with_hour"] = hour
        row.update(p["usage_row"])
        row["created_at"] = row["created_at"].isoformat()
        rows.append(row)
    first = prepared[0][0]
    return {"rows": json.dumps(rows), "now": first["now"], "month": first["month"], "hour": first["hour"]}


_GROUP_NAMES = tuple(n for n in _GROUP_COLS if n != "with_hour")
assert not set(_GROUP_COLS) & set(USAGE_COLS), "a close's JSON row carries both sets of columns by name"

# --- SQLite ------------------------------------------------------------------------------------

# Numbered parameters (``?1`` ...) bound from tuples: these run on every call, and a tuple binds
# without the name lookups a mapping costs. Each statement's numbers are listed beside it.
LITE_KEY_RESERVE = (  # amt, key, now, ver
    "UPDATE api_keys SET reserved_credits = reserved_credits + ?1 WHERE id = ?2 AND revoked_at IS NULL"
    " AND (expires_at IS NULL OR expires_at > ?3) AND (?4 IS NULL OR auth_version = ?4)"
    " AND (quota_credits IS NULL OR spent_credits + reserved_credits + ?1 <= quota_credits)"
    " RETURNING spent_credits, reserved_credits, quota_credits")
LITE_KEY_STATE = ("SELECT spent_credits, reserved_credits, quota_credits,"  # amt (unused), key, now, ver
                  " revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?3),"
                  " ?4 IS NULL OR auth_version = ?4 FROM api_keys WHERE id = ?2")
LITE_MEMBER_RESERVE = (  # amt, member, month
    "UPDATE memberships SET reserved_credits = reserved_credits + ?1 WHERE id = ?2"
    " AND (quota_credits IS NULL OR spent_credits + reserved_credits + ?1 <= quota_credits)"
    " AND (monthly_quota_credits IS NULL OR (CASE WHEN month = ?3 THEN month_spent_credits ELSE 0 END)"
    " + reserved_credits + ?1 <= monthly_quota_credits)")
LITE_WALLET_RESERVE = (  # amt, wallet
    "UPDATE wallets SET reserved_credits = reserved_credits + ?1"
    " WHERE id = ?2 AND balance_credits - reserved_credits >= ?1"
    " RETURNING balance_credits, reserved_credits")
LITE_WALLET_STATE = "SELECT balance_credits, reserved_credits FROM wallets WHERE id = ?1"  # wallet
LITE_RES_INSERT = (  # rid, wallet, key, member, amt, now, exp
    "INSERT INTO reservations (request_id, wallet_id, api_key_id, member_id, amount_credits, state, created_at,"
    " expires_at) VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7)")
LITE_ENTRY_INSERT = (  # wallet, kind, delta, rdelta, rid, key, memo, now
    "INSERT INTO ledger_entries (wallet_id, kind, amount_credits, reserved_delta, ref, api_key_id, memo, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
LITE_GATE = "UPDATE reservations SET state = ?1 WHERE request_id = ?2 AND state = 'open'"  # state, rid
LITE_KEY_CLOSE = (  # charged, amt, now, key
    "UPDATE api_keys SET spent_credits = spent_credits + ?1, reserved_credits = reserved_credits - ?2,"
    " last_used_at = ?3 WHERE id = ?4 RETURNING spent_credits, reserved_credits, quota_credits")
LITE_MEMBER_CLOSE = (  # charged, amt, month, member
    "UPDATE memberships SET spent_credits = spent_credits + ?1, reserved_credits = reserved_credits - ?2,"
    " month_spent_credits = CASE WHEN month = ?3 THEN month_spent_credits + ?1 ELSE ?1 END,"
    " month = ?3 WHERE id = ?4")
LITE_WALLET_CLOSE = (  # charged, amt, wallet
    "UPDATE wallets SET balance_credits = balance_credits - ?1, reserved_credits = reserved_credits - ?2"
    " WHERE id = ?3 RETURNING balance_credits, reserved_credits")
LITE_HOUR = (  # key, hour, charged
    "INSERT INTO key_spend_hours (api_key_id, hour, credits) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (api_key_id, hour) DO UPDATE SET credits = key_spend_hours.credits + excluded.credits")
LITE_USAGE = "INSERT INTO usage_log ({}) VALUES ({}) ON CONFLICT (id) DO NOTHING".format(  # usage_row
    ", ".join(USAGE_COLS), ", ".join(f"?{i}" for i in range(1, len(USAGE_COLS) + 1)))


def lite_window_sums(windows: tuple[str, ...]) -> str:
    """Each window's settled credits for the key, in one read: ``?1`` the key, then each window's start."""
    cols = ", ".join(f"coalesce(sum(CASE WHEN hour >= ?{i} THEN credits ELSE 0 END), 0)"
                     for i in range(2, len(windows) + 2))
    return f"SELECT {cols} FROM key_spend_hours WHERE api_key_id = ?1"


def lite_time(t: dt.datetime) -> str:
    """A naive UTC datetime as SQLAlchemy stores it in SQLite (always with microseconds)."""
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}"


def usage_json(values: dict[str, Any]) -> str:
    """The usage row's values as the JSON document ``PG_CLOSE`` takes (the time in ISO form)."""
    return json.dumps({**values, "created_at": values["created_at"].isoformat()})


DEADLOCK_RETRIES = 5


class PgAutocommit:
    """A pooled psycopg connection in autocommit; ``exec_driver_sql`` returns the driver's cursor.

    One cursor per connection serves every write on it (``autocommit`` keeps the wrapper with the
    connection, ``ledger_conn.held``): the caller reads each result before the next statement.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.cursor = conn.cursor()

    def exec_driver_sql(self, statement: str, params: dict[str, Any]) -> Any:
        """Run one statement; one that PostgreSQL aborted to break a deadlock runs again.

        Each statement is its own transaction here, so an aborted one left nothing behind.
        Deadlocks happen rarely but really: a row this statement holds FOR NO KEY UPDATE may
        also carry another writer's foreign-key share lock, and updating it then queues behind
        a third statement waiting for this one.
        """
        for attempt in range(DEADLOCK_RETRIES):
            try:
                return self.cursor.execute(statement, params)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == DEADLOCK_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
        raise AssertionError("unreachable")


@contextlib.contextmanager
def autocommit(engine: sa.Engine) -> Iterator[PgAutocommit]:
    """A PostgreSQL connection in autocommit: a single statement is its own transaction, no BEGIN/COMMIT trips.

    The driver is used directly, as for SQLite: the engine's execution layer (isolation
    switch, result metadata, connection wrapper) cost more than the statement itself.
    """
    with connection(engine) as raw:
        yield held(raw, "ledger_autocommit", PgAutocommit)


class LiteCursor:
    """A driver cursor in a write transaction; set ``commit`` to keep what it wrote."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.commit = False

    def execute(self, statement: str, params: Any) -> Any:
        return self.cursor.execute(statement, params)

    def executemany(self, statement: str, params: list[Any]) -> Any:
        if len(params) == 1:  # a lone call's close: execute is the cheaper of the two
            return self.cursor.execute(statement, params[0])
        return self.cursor.executemany(statement, params)


@contextlib.contextmanager
def lite_transaction(engine: sa.Engine) -> Iterator[LiteCursor]:
    """``BEGIN IMMEDIATE`` on a kept driver connection: commit if the body set ``commit``, else roll back.

    The driver is used directly: these few statements run on every call, and
    going through the engine's execution layer cost more than SQLite itself.
    """
    with connection(engine) as raw:
        conn = raw.driver_connection
        cur = LiteCursor(held(raw, "ledger_cursor", lambda c: c.cursor()))  # one per connection, as on PostgreSQL
        cur.execute("BEGIN IMMEDIATE", ())
        yield cur
        if cur.commit:
            conn.commit()
        else:
            conn.rollback()
