#!/usr/bin/env python3
"""Reproduce the README's gateway figures: added latency, req/s and CPU per request, and a stream hold test.

    make bench                      # or: .venv/bin/python bench/run.py [--quick] [--skip-hold]

1. makes /tmp/venv-bench (aiohttp) for the load tools, outside the project's requirements;
2. sets up a throwaway ByteSpike instance per backend (``--backends``: a SQLite file, and a
   PostgreSQL database made on BENCH_PG_ADMIN_URL and dropped after) whose channels point at
   the fake vendor on 127.0.0.1, with an account and key;
3. runs compare.py: DIRECT (the fake), the bare Flask+requests floor, and ByteSpike on each
   backend with auth, reservation, settlement and usage logging on, all interleaved; one
   gevent worker pinned to CPU 1, tools on CPU 0; concurrency 1 and 32, non-stream and stream;
4. holds 1,000 concurrent streams open through one 2-worker server and counts errors.

Everything binds 127.0.0.1; every load run is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = Path("/tmp/venv-bench")
PORT_UP, PORT_GW, PORT_BARE, PORT_HOLD = 9300, 8100, 8101, 8102
PORT_GW_PG = 8103
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BIN = ROOT / ".venv" / "bin"


def tools_python() -> str:
    """A separate venv with aiohttp for the load generator and fake vendor."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([str(py), "-c", "import aiohttp"], capture_output=True).returncode:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "aiohttp"], check=True)
    return str(py)


def channels(port: int) -> str:
    return f"""
[[channels]]
name = "bench-openai"
protocol = "openai"
base_url = "http://127.0.0.1:{port}/v1"
api_keys = ["sk-direct"]
models = ["gpt-5-4"]
[channels.model_map]
"gpt-5-4" = "gpt-fake"

[[channels]]
name = "bench-anthropic"
protocol = "anthropic"
base_url = "http://127.0.0.1:{port}"
api_keys = ["sk-direct"]
models = ["claude-sonnet-4-6"]
[channels.model_map]
"claude-sonnet-4-6" = "claude-fake-sonnet"
"""


def pg_database(create: bool, name: str) -> str:
    """Create (or drop) the throwaway PostgreSQL database ``name``; return its URL."""
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def instance(workdir: Path, db_url: str) -> tuple[dict[str, str], str]:
    """Create the database, channels file and a funded account; return (env, key)."""
    (workdir / "channels.toml").write_text(channels(PORT_UP))
    env = dict(os.environ)
    env.update(
        BYTESPIKE_DATABASE_URL=db_url,
        BYTESPIKE_CHANNELS_FILE=str(workdir / "channels.toml"),
        BYTESPIKE_SECRET_KEY="bench",
        BYTESPIKE_LOG_LEVEL="warning",
        BYTESPIKE_REDIS_PREFIX=f"bench:{uuid.uuid4().hex[:8]}:",
    )
    flask = [str(BIN / "flask"), "--app", "app"]
    subprocess.run([*flask, "init-db"], cwd=ROOT, env=env, check=True, capture_output=True)
    out = subprocess.run([*flask, "create-account", "--email", f"bench-{uuid.uuid4().hex[:6]}@example.com",
                          "--credits", "1000000000000", "--tier", "enterprise"],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    key = out.strip().splitlines()[-1]
    # The hold test keeps 1,000 calls of one account in flight: lift that org's concurrency cap
    # (the operator's per-org override) so the tier's cap does not answer 429.
    import sqlalchemy as sa

    engine = sa.create_engine(env["BYTESPIKE_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE orgs SET concurrency_cap = 100000"))
    engine.dispose()
    return env, key


def compare(py: str, instances: dict[str, tuple[dict[str, str], str]], args: argparse.Namespace) -> None:
    gunicorn = str(BIN / "gunicorn")
    gateways = []
    for backend, (env, key) in instances.items():
        port = PORT_GW if backend == "sqlite" else PORT_GW_PG
        gateways.append({
            "name": f"bytespike-{backend}", "cwd": str(ROOT),
            "env": {k: env[k] for k in env if k.startswith("BYTESPIKE_")},
            "start": f"exec {gunicorn} -c gunicorn.conf.py -w {{workers}} -b 127.0.0.1:{port} 'app:create_app()'",
            "base_url": f"http://127.0.0.1:{port}", "health": f"http://127.0.0.1:{port}/healthz",
            "key": key, "openai_model": "gpt-5-4", "anthropic_model": "claude-sonnet-4-6",
        })
    bare = {
        "name": "bare-flask", "cwd": str(ROOT),
        "start": (f"exec {gunicorn} -k gevent -w {{workers}} -b 127.0.0.1:{PORT_BARE} "
                  f"'bench.bare_forward:make_app(\"http://127.0.0.1:{PORT_UP}\")'"),
        "base_url": f"http://127.0.0.1:{PORT_BARE}", "health": f"http://127.0.0.1:{PORT_BARE}/healthz",
        "key": "sk-direct", "openai_model": "gpt-fake", "anthropic_model": "claude-fake-sonnet",
    }
    scenarios = args.scenarios or "chat-c1-d0,stream-c1-d0,chat-c32-d0,stream-c32-d0,msgs-c32-d0"
    cmd = [py, str(BENCH / "compare.py"), "--gateways", "", "--upstream-port", str(PORT_UP),
           "--gateway-json", json.dumps(bare), *[a for g in gateways for a in ("--gateway-json", json.dumps(g))],
           "--scenarios", scenarios, "--repeats", str(args.repeats), "--max-seconds", str(args.max_seconds)]
    subprocess.run(cmd, cwd=BENCH, check=True)


def hold(py: str, env: dict[str, str], key: str, streams: int) -> None:
    os.makedirs("/tmp/bench-logs", exist_ok=True)
    """Keep ``streams`` streams open at once (20 chunks, 0.5 s apart) through one 2-worker server."""
    up = subprocess.Popen([py, str(BENCH / "fake_upstream.py"), "--port", str(PORT_UP)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open("/tmp/bench-logs/gw-hold.log", "wb")  # noqa: SIM115 - the server's lifetime
    gw = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-w", "2", "-b",
                           f"127.0.0.1:{PORT_HOLD}", "app:create_app()"], cwd=ROOT, env=env,
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(3)
        # Open loop: streams/10 new streams a second, each ~10 s long, so ``streams`` are open at
        # once after the first ten seconds and stay so for the next fifteen (a herd of
        # simultaneous starts would measure the start-up burst instead).
        rate = streams / 10
        cmd = [py, str(BENCH / "loadgen.py"), "--base-url", f"http://127.0.0.1:{PORT_HOLD}", "--protocol",
               "openai", "--stream", "-c", str(int(streams * 1.5)), "--rate", str(rate),
               "-n", str(int(rate * 25)), "--warmup", "0", "--duration", "40", "--timeout", "60",
               "--model", "gpt-5-4", "--key", key, "--fake", "chunks=20 gap=500", "--label", f"hold-{streams}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout.strip()
        res = json.loads(out.splitlines()[-1])
        print(f"\n# hold test: {rate:.0f} new streams/s of ~10 s each (~{streams} open at once) through 2 gevent workers")
        print(f"ok streams/s {res['rps']}, latency p50 {res['lat_ms']['p50']} ms, "
              f"ttfb p99 {res['ttfb_ms']['p99']} ms, errors {res['errors']} {res.get('error_kinds', {})}")
    finally:
        for p in (gw, up):
            p.terminate()
            p.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--scenarios", default="")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--skip-hold", action="store_true")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma list: sqlite, postgresql")
    args = ap.parse_args()
    py = tools_python()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    pg_name = f"bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bytespike-bench-") as tmp:
        instances = {}
        try:
            for backend in backends:
                work = Path(tmp) / backend
                work.mkdir()
                url = pg_database(True, pg_name) if backend == "postgresql" else f"sqlite:///{work / 'bench.db'}"
                instances[backend] = instance(work, url)
            if not args.skip_compare:
                compare(py, instances, args)
            if not args.skip_hold:
                hold(py, *instances[backends[0]], args.streams)
        finally:
            if "postgresql" in backends:
                pg_database(False, pg_name)


if __name__ == "__main__":
    main()
