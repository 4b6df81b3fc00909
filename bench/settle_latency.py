#!/usr/bin/env python3
"""What the in-line settlement adds to a call at concurrency 1: the wall time of ``ledger.settle``.

    .venv/bin/python bench/settle_latency.py [-n 500] [--backends sqlite,postgresql]

The settle (entry, key/member/wallet totals, spend hour, usage row) commits
before the answer's last byte leaves, so at concurrency 1 its whole wall time
is added to the call. Sets up a throwaway instance per backend as ``run.py``
does, then reserves and settles ``n`` calls one after another in one process
and prints p50 / p90 / p99 of the settle alone, in milliseconds.
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


def measure(env: dict[str, str], key: str, n: int) -> list[float]:
    from app import create_app
    from core import keys, ledger

    app = create_app({k: v for k, v in env.items() if k.startswith("BYTESPIKE_")})
    out = []
    with app.app_context():
        p = keys.authenticate(key, "127.0.0.1")
        for i in range(n):
            rid = f"req_settle_{uuid.uuid4().hex[:12]}"
            hold = ledger.reserve(p, rid, 20_000)
            rec = ledger.UsageRecord(rid, p.org_id, p.key_id, p.member_id, "gpt-5-4", "openai", "bench",
                                     "openai", bool(i % 2), 200, input_tokens=40, output_tokens=20,
                                     estimated_credits=20_000)
            t0 = time.perf_counter()
            ledger.settle(hold, 250, rec)
            out.append((time.perf_counter() - t0) * 1000)
    app.extensions["bytespike_db"].dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    pg_name = f"bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bytespike-settle-") as tmp:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            work = Path(tmp) / backend
            work.mkdir()
            url = run.pg_database(True, pg_name) if backend == "postgresql" else f"sqlite:///{work / 'bench.db'}"
            try:
                ms = sorted(measure(*run.instance(work, url), args.n))
            finally:
                if backend == "postgresql":
                    run.pg_database(False, pg_name)
            q = statistics.quantiles(ms, n=100)
            print(f"{backend}: settle in line, {args.n} calls at concurrency 1: "
                  f"p50 {q[49]:.2f} ms, p90 {q[89]:.2f} ms, p99 {q[98]:.2f} ms")


if __name__ == "__main__":
    main()
