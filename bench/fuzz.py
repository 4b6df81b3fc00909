#!/usr/bin/env python3
"""Send hostile bodies to every JSON surface of a served ByteSpike on PostgreSQL and count the answers.

    make fuzz                         # or: .venv/bin/python bench/fuzz.py [--cases 10000] [--seed 1]

Starts a throwaway PostgreSQL database (BENCH_PG_ADMIN, default the local `test` database's server),
a 2-worker gunicorn on 127.0.0.1, and sends --cases bodies per surface from 8 threads: deep nesting,
huge and non-finite numbers, lone surrogates, NUL, every field with every wrong type. Prints the
status counts per surface and fails (exit 1) on any answer >= 500, any non-JSON error on an API path,
or any worker restart.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SURFACES = [
    "/v1/messages", "/v1/messages/count_tokens", "/v1/chat/completions", "/v1/responses", "/v1/embeddings",
    "/v1beta/models/bytespike-echo:generateContent", "/v1beta/models/bytespike-echo:streamGenerateContent?alt=sse",
    "/api/v1/keys", "/api/v1/me/billing/topup",
]
FIELDS = ["model", "max_tokens", "max_output_tokens", "messages", "input", "contents", "system", "tools",
          "tool_choice", "stream", "temperature", "top_p", "top_k", "n", "stop", "metadata", "user", "thinking",
          "stream_options", "generationConfig", "response_format", "instructions", "name", "quota_credits",
          "amount_cny", "method", "rpm", "expires_in_days", "candidateCount", "encoding_format", "dimensions"]
TEXTS = ["\\ud800", "a\\u0000b", "\\udfff", "\\ud83d\\ude00", "", " ", "bytespike-echo", "no-such-model-1",
         "x" * 300, "user", "assistant", "system", "tool", "text", "image", "auto", "none", "function"]
NUMBERS = ["0", "-1", "1", "16", "1e999", "-1e999", "NaN", "Infinity", "10000000000000000000", "1.5", "2147483648",
           "9" * 400, "-0", "1e-400", "4.9e-324"]


def value(rng: random.Random, depth: int = 0) -> str:
    """One JSON value as text (so that invalid numbers and escapes can be sent as such)."""
    pick = rng.random()
    if depth > 3 or pick < 0.35:
        return rng.choice(NUMBERS) if rng.random() < 0.5 else json.dumps(rng.choice(TEXTS)).replace("\\\\", "\\")
    if pick < 0.45:
        return rng.choice(["true", "false", "null"])
    if pick < 0.7:
        return "[" + ",".join(value(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    keys = rng.sample(["role", "content", "type", "text", "name", "input", "parts", "source", "data",
                       "arguments", "id", "user_id", "budget_tokens", "include_usage", "url"], rng.randint(0, 3))
    return "{" + ",".join(f'"{k}":{value(rng, depth + 1)}' for k in keys) + "}"


BASES = {
    "/v1/responses": {"model": '"bytespike-echo"', "input": '"hi"', "max_output_tokens": "16"},
    "/v1/embeddings": {"model": '"bytespike-echo"', "input": '"hi"'},
    "/v1beta": {"contents": '[{"role":"user","parts":[{"text":"hi"}]}]'},
    "/api/v1/keys": {"name": '"k"'},
    "/api/v1/me/billing/topup": {"amount_cny": '"35.00"', "method": '"alipay"'},
}
DEFAULT_BASE = {"model": '"bytespike-echo"', "max_tokens": "16", "messages": '[{"role":"user","content":"hi"}]'}


def body(rng: random.Random, path: str) -> bytes:
    roll = rng.random()
    if roll < 0.03:
        n = rng.choice([200, 1500, 20000])
        return (b"[" * n + b"]" * n) if rng.random() < 0.5 else (b'{"a":' * n + b"1" + b"}" * n)
    if roll < 0.06:
        return rng.choice([b"[1]", b"null", b"1e999", b"\xff\xfe", b"", b"{", b'"x"', b"[]"])
    base = dict(next((b for prefix, b in BASES.items() if path.startswith(prefix)), DEFAULT_BASE))
    for _ in range(rng.randint(1, 6)):
        base[rng.choice(FIELDS)] = value(rng)
    return ("{" + ",".join(f'"{k}":{v}' for k, v in base.items()) + "}").encode("utf-8", "surrogatepass")


def serve(db_url: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "BYTESPIKE_DATABASE_URL": db_url, "BYTESPIKE_SECRET_KEY": "fuzz",
           "BYTESPIKE_CHANNELS_FILE": ""}
    subprocess.run([str(BIN / "flask"), "--app", "app", "init-db"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    out = subprocess.run([str(BIN / "flask"), "--app", "app", "create-account", "--email", "fuzz@example.com",
                          "--credits", "1000000000"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    env["FUZZ_KEY"] = out.stdout.strip().splitlines()[-1].strip()
    proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-w", "2",
                             "-b", f"127.0.0.1:{port}", "app:create_app()"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    proc.key = env["FUZZ_KEY"]  # type: ignore[attr-defined]
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up:\n" + log.read_text()[-2000:])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000, help="bodies per surface")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port", type=int, default=8190)
    ap.add_argument("--surfaces", default="", help="comma-separated path prefixes to fuzz (default: all)")
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    name = f"bs_fuzz_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    log = Path(tempfile.mkdtemp()) / "gunicorn.log"
    proc = serve(db_url, args.port, log)
    base, key = f"http://127.0.0.1:{args.port}", proc.key  # type: ignore[attr-defined]
    surfaces = [s for s in SURFACES if not args.surfaces or s.startswith(tuple(args.surfaces.split(",")))]
    counts: dict[str, collections.Counter] = {s: collections.Counter() for s in surfaces}
    bad: list[str] = []
    local = __import__("threading").local()

    def one(job: tuple[str, bytes]) -> None:
        path, data = job
        s = getattr(local, "s", None) or requests.Session()
        local.s = s
        try:
            r = s.post(base + path, data=data, timeout=60, headers={
                "x-api-key": key, "x-goog-api-key": key, "content-type": "application/json"})
            status, text = r.status_code, r.content
        except requests.RequestException as exc:
            counts[path]["conn-error"] += 1
            bad.append(f"{path}: {exc!r} for {data[:120]!r}")
            return
        counts[path][status] += 1
        if status >= 500 or (status >= 400 and not text.lstrip().startswith(b"{")):
            bad.append(f"{path}: {status} {text[:160]!r} for {data[:160]!r}")

    rng = random.Random(args.seed)
    jobs = [(p, body(rng, p)) for p in surfaces for _ in range(args.cases)]
    rng.shuffle(jobs)
    started = time.time()
    try:
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(one, jobs))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    boots = log.read_text(errors="replace").count("Booting worker")
    print(f"{len(jobs)} requests in {time.time() - started:.0f} s, PostgreSQL, 2 workers, seed {args.seed}")
    for path, c in counts.items():
        print(f"  {path:60s} " + ", ".join(f"{k}: {v}" for k, v in sorted(c.items(), key=lambda kv: str(kv[0]))))
    print(f"answers >= 500 or non-JSON errors: {len(bad)}; worker restarts: {max(0, boots - 2)}")
    for line in bad[:20]:
        print("  " + line)
    return 1 if bad or boots > 2 else 0


if __name__ == "__main__":
    sys.exit(main())
