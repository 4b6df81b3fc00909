#!/usr/bin/env python3
"""PostgreSQL: which shape of group commit is cheaper for a group of closes?

    .venv/bin/python bench/pg_group_shapes.py [--sizes 1,8,32] [--rounds 30]

A. one transaction that locks the group's rows in the global order, then
   one close statement per call (written here only to be measured);
B. what ``core.ledger.close_many`` does: one multi-row statement (arrays
   unnested, the totals summed per key, member and wallet).

Both do the same work (gate, key/member/wallet totals, entries, spend hours,
usage rows) on a throwaway database; rounds alternate A and B. Prints the
median wall time per group and per close: what each caller in it waits.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import run  # noqa: E402 - the bench's own set-up, after the path is known

# Shape A's first statement: lock the group's rows in the global order, then one close statement each.
LOCK_GROUP = """
WITH r AS MATERIALIZED (
  SELECT request_id FROM reservations WHERE request_id = ANY(%(rids)s::varchar[]) ORDER BY request_id
  FOR NO KEY UPDATE
), k AS MATERIALIZED (
  SELECT id FROM api_keys WHERE id = ANY(%(keys)s::varchar[]) AND (SELECT count(*) FROM r) >= 0 ORDER BY id
  FOR NO KEY UPDATE
), m AS MATERIALIZED (
  SELECT id FROM memberships WHERE id = ANY(%(members)s::integer[]) AND (SELECT count(*) FROM k) >= 0 ORDER BY id
  FOR NO KEY UPDATE
), w AS MATERIALIZED (
  SELECT id FROM wallets WHERE id = ANY(%(wallets)s::integer[]) AND (SELECT count(*) FROM m) >= 0 ORDER BY id
  FOR NO KEY UPDATE
)
SELECT count(*) FROM w
"""


def one_transaction(engine, closes) -> None:
    """Shape A: one transaction, the locks first, then each close's own statement."""
    from core import ledger_writes
    from core.models import utcnow

    now = utcnow()
    prepared = [ledger_writes.close_params(c, now) for c in closes]

    def ids(name: str) -> list:
        return sorted({p[name] for p, _h, _u in prepared if p[name] is not None})

    with engine.begin() as conn:
        conn.exec_driver_sql(LOCK_GROUP, {"rids": ids("rid"), "keys": ids("key"), "members": ids("member"),
                                          "wallets": ids("wallet")})
        for item in prepared:
            assert ledger_writes.close_pg(conn, *item)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,8,32")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bytespike-shapes-") as tmp:
        url = run.pg_database(True, name)
        try:
            env, key = run.instance(Path(tmp), url)
            measure(env, key, [int(s) for s in args.sizes.split(",")], args.rounds)
        finally:
            run.pg_database(False, name)


def measure(env: dict[str, str], key: str, sizes: list[int], rounds: int) -> None:
    from app import create_app
    from core import db as core_db
    from core import keys, ledger

    app = create_app({k: v for k, v in env.items() if k.startswith("BYTESPIKE_")})
    with app.app_context():
        engine = core_db.get_db().engine
        p = keys.authenticate(key, "127.0.0.1")

        def group(n: int) -> list:
            out = []
            for _ in range(n):
                rid = f"req_{uuid.uuid4().hex[:16]}"
                out.append((ledger.reserve(p, rid, 20_000), "settle", 250, ledger.UsageRecord(
                    rid, p.org_id, p.key_id, p.member_id, "gpt-5-4", "openai", "bench", "openai", False, 200,
                    input_tokens=40, output_tokens=20, estimated_credits=20_000)))
            return out

        for n in sizes:
            times: dict[str, list[float]] = {"A one transaction": [], "B one statement": []}
            for r in range(rounds):
                for shape in (["A", "B"] if r % 2 == 0 else ["B", "A"]):
                    closes = group(n)
                    t0 = time.perf_counter()
                    if shape == "A":
                        one_transaction(engine, closes)
                        times["A one transaction"].append(time.perf_counter() - t0)
                    else:
                        assert all(ledger.close_many(engine, closes))
                        times["B one statement"].append(time.perf_counter() - t0)
            for label, ts in times.items():
                med = statistics.median(ts) * 1000
                print(f"group of {n:>3}: {label}: {med:.2f} ms per group, {med / n:.3f} ms per close")
        problems = ledger.verify_ledger()
        print("verify-ledger:", "clean" if not problems else problems[:3])
    app.extensions["bytespike_db"].dispose()


if __name__ == "__main__":
    main()
