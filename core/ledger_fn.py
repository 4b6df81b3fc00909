"""The group reservation on PostgreSQL: one function that judges and writes several reservations in turn.

``bytespike_reserve_many(items jsonb)`` takes the reservations of a group (each
as ``core.ledger.reservation`` builds its parameters, plus its spend windows as
``[name, limit credits, first hour]``) and returns one row per item, in order:
``(ord, verdict, ks, kr, kq, wb, wr)``: the verdict (``ok``, ``stale``,
``auth``, ``key_quota``, ``member_quota``, a window's name, ``balance``, judged
in that order) and the key's and the wallet's figures before this item's hold.
It first locks every key, member and wallet of the group in the global order
(keys, members, wallets, each sorted), so a group cannot deadlock with another,
a close or a credit; each item is then judged on the rows as the items before
it left them, exactly as a reservation alone. One statement, one round trip,
one commit for the whole group. Created by migration 0013 and, for a schema
made from the models, by ``core.models.ledger``.
"""

from __future__ import annotations

from typing import Any

RESERVE_FUNCTION = r'''CREATE OR REPLACE FUNCTION bytespike_reserve_many(items jsonb)
RETURNS TABLE (ord integer, verdict varchar, ks bigint, kr bigint, kq bigint, wb bigint, wr bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  it jsonb;
  win jsonb;
  n integer := 0;
  v_key varchar; v_member integer; v_wallet integer; v_amt bigint; v_ver integer; v_now timestamp;
  k_spent bigint; k_res bigint; k_quota bigint; k_live boolean; k_fresh boolean; k_found boolean;
  w_bal bigint; w_res bigint; w_found boolean;
  m_ok boolean;
  v_used bigint;
BEGIN
  -- Every row the group will lock, locked first in the global order (keys, members, wallets).
  PERFORM 1 FROM api_keys WHERE id IN (SELECT e->>'key' FROM jsonb_array_elements(items) e)
    ORDER BY id FOR NO KEY UPDATE;
  PERFORM 1 FROM memberships WHERE id IN (SELECT (e->>'member')::integer FROM jsonb_array_elements(items) e)
    ORDER BY id FOR NO KEY UPDATE;
  PERFORM 1 FROM wallets WHERE id IN (SELECT (e->>'wallet')::integer FROM jsonb_array_elements(items) e)
    ORDER BY id FOR NO KEY UPDATE;
  FOR it IN SELECT value FROM jsonb_array_elements(items) WITH ORDINALITY AS t(value, i) ORDER BY i LOOP
    ord := n;
    n := n + 1;
    v_key := it->>'key'; v_member := (it->>'member')::integer; v_wallet := (it->>'wallet')::integer;
    v_amt := (it->>'amt')::bigint; v_ver := (it->>'ver')::integer; v_now := (it->>'now')::timestamp;
    SELECT spent_credits, reserved_credits, quota_credits,
           (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > v_now)),
           (v_ver IS NULL OR auth_version = v_ver)
      INTO k_spent, k_res, k_quota, k_live, k_fresh FROM api_keys WHERE id = v_key;
    k_found := FOUND;
    SELECT balance_credits, reserved_credits INTO w_bal, w_res FROM wallets WHERE id = v_wallet;
    w_found := FOUND;
    IF NOT k_found OR NOT w_found THEN  -- the key (or its wallet) is gone
      verdict := 'auth'; ks := NULL; kr := NULL; kq := NULL; wb := NULL; wr := NULL;
      RETURN NEXT;
      CONTINUE;
    END IF;
    ks := k_spent; kr := k_res; kq := k_quota; wb := w_bal; wr := w_res;
    verdict := NULL;
    IF NOT k_fresh THEN
      verdict := 'stale';
    ELSIF NOT k_live THEN
      verdict := 'auth';
    ELSIF k_quota IS NOT NULL AND k_spent + k_res + v_amt > k_quota THEN
      verdict := 'key_quota';
    ELSIF v_member IS NOT NULL THEN
      SELECT (quota_credits IS NULL OR spent_credits + reserved_credits + v_amt <= quota_credits)
         AND (monthly_quota_credits IS NULL
              OR (CASE WHEN month = it->>'month' THEN month_spent_credits ELSE 0 END)
                 + reserved_credits + v_amt <= monthly_quota_credits)
        INTO m_ok FROM memberships WHERE id = v_member;
      IF NOT coalesce(m_ok, false) THEN
        verdict := 'member_quota';
      END IF;
    END IF;
    IF verdict IS NULL THEN
      -- Each spend window: its settled hours plus the key's open holds plus this hold. The key is locked,
      -- so no settlement of it can commit between the read of its totals and of its hours.
      FOR win IN SELECT value FROM jsonb_array_elements(coalesce(it->'windows', '[]'::jsonb)) LOOP
        SELECT coalesce(sum(credits), 0) INTO v_used FROM key_spend_hours
          WHERE api_key_id = v_key AND hour >= (win->>2)::timestamp;
        IF v_used + k_res + v_amt > (win->>1)::bigint THEN
          verdict := win->>0;
          EXIT;
        END IF;
      END LOOP;
    END IF;
    IF verdict IS NULL AND w_bal - w_res < v_amt THEN
      verdict := 'balance';
    END IF;
    IF verdict IS NULL THEN
      verdict := 'ok';
      UPDATE api_keys SET reserved_credits = reserved_credits + v_amt WHERE id = v_key;
      IF v_member IS NOT NULL THEN
        UPDATE memberships SET reserved_credits = reserved_credits + v_amt WHERE id = v_member;
      END IF;
      UPDATE wallets SET reserved_credits = reserved_credits + v_amt WHERE id = v_wallet;
      INSERT INTO reservations (request_id, wallet_id, api_key_id, member_id, amount_credits, state, created_at,
                                expires_at)
        VALUES (it->>'rid', v_wallet, v_key, v_member, v_amt, 'open', v_now, (it->>'exp')::timestamp);
      INSERT INTO ledger_entries (wallet_id, kind, amount_credits, reserved_delta, ref, api_key_id, memo, created_at)
        VALUES (v_wallet, 'reserve', 0, v_amt, it->>'rid', v_key, '', v_now);
    END IF;
    RETURN NEXT;
  END LOOP;
END
$fn$
'''

# Two sessions replacing one function at once fail ("tuple concurrently updated"): every install
# (the migration, a schema made from the models in several processes) takes this lock first.
_INSTALL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('bytespike_reserve_many'))"


def install(conn: Any) -> None:
    """Create (or replace) the function on a PostgreSQL connection, inside its transaction."""
    conn.exec_driver_sql(_INSTALL_LOCK)
    conn.exec_driver_sql(RESERVE_FUNCTION)


RESERVE_MANY = "SELECT ord, verdict, ks, kr, kq, wb, wr FROM bytespike_reserve_many(%(items)s::jsonb)"
