#!/usr/bin/env python3
"""Reproduce the README's gateway figures: added latency, req/s and CPU per call, and two stream hold tests.

    make bench                                  # = .venv/bin/python bench/run.py
    make bench PEERS=litellm                    # = ... bench/run.py --peers litellm
    .venv/bin/python bench/run.py --repeats 1 --max-seconds 3 --hold short --streams 200

1. makes /tmp/venv-bench (aiohttp, uvloop) for the load tools, outside the project's requirements;
   with ``--peers litellm``, and only then, /tmp/venv-litellm with the LiteLLM proxy pinned to
   ``LITELLM_VERSION``, and its config (generated here) pointing at the fake vendor;
2. sets up a throwaway ByteSpike instance per backend (``--backends``: a SQLite file, and a
   PostgreSQL database made on BENCH_PG_ADMIN_URL and dropped after) whose channels point at
   the fake vendor on 127.0.0.1, with an account and key;
3. runs compare.py: DIRECT (the fake), the bare Flask+requests forward (the floor), ByteSpike on
   each backend with auth, reservation, settlement and usage logging on, and each peer, all
   interleaved; every gateway on one worker pinned to CPU 1, the tools on CPU 0; prints a
   Markdown summary with each gateway's CPU per call over the bare forward's of the same repeat;
4. the hold tests, on PostgreSQL + Redis through one server with 2 gevent workers (``--hold``):
   short: ``--streams`` new 10-second, 20-chunk streams every 10 s (about that many open at once);
   long: ``--long-streams`` streams of ``--long-seconds`` at one event a second, opened over
   ``--ramp-seconds``, then all open at once until the first one ends. Both sample the whole
   server's RSS (gunicorn master and workers, from /proc) and the PostgreSQL connections of the
   bench database (pg_stat_activity) every 0.5 s.

Everything binds 127.0.0.1; every load run is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

from compare import loadavg, machine, tree_usage, wait_http

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = Path("/tmp/venv-bench")
VENV_LITELLM = Path("/tmp/venv-litellm")
LITELLM_VERSION = "1.106.12"  # the newest whose proxy extra resolves from PyPI here


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports free right now, below the ephemeral range (which the load's own
    connections draw from): several bench runs on one machine never share a port."""
    import random

    ports: list[int] = []
    while len(ports) < n:
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


PORT_UP, PORT_GW, PORT_BARE, PORT_HOLD, PORT_GW_PG, PORT_LITELLM = free_ports(6)
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BIN = ROOT / ".venv" / "bin"
LOGS = Path("/tmp/bench-logs")


def tools_python() -> str:
    """A separate venv with aiohttp (and uvloop) for the load generator and fake vendor."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([str(py), "-c", "import aiohttp, uvloop"], capture_output=True).returncode:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "aiohttp", "uvloop"], check=True)
    return str(py)


def litellm_bin() -> str:
    """/tmp/venv-litellm with the LiteLLM proxy at the pinned version (installed on first use)."""
    py = VENV_LITELLM / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV_LITELLM)], check=True)
    probe = "import importlib.metadata as m, litellm.proxy.proxy_server; print(m.version('litellm'))"
    have = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
    if have.returncode or have.stdout.strip() != LITELLM_VERSION:
        print(f"==> Installing the LiteLLM proxy {LITELLM_VERSION} into {VENV_LITELLM} (a few minutes, once)",
              flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
    return str(VENV_LITELLM / "bin" / "litellm")


def litellm_config(port: int) -> str:
    """The proxy's config: two models on the fake vendor, a master key, no database, no callbacks."""
    return f"""model_list:
  - model_name: bench-gpt
    litellm_params:
      model: openai/gpt-fake
      api_base: http://127.0.0.1:{port}/v1
      api_key: sk-fake-upstream
  - model_name: bench-claude
    litellm_params:
      model: anthropic/claude-fake-sonnet
      api_base: http://127.0.0.1:{port}
      api_key: sk-ant-fake-upstream
litellm_settings:
  set_verbose: False
  drop_params: True
  request_timeout: 600
  telemetry: False
general_settings:
  master_key: sk-bench-master-1234
  disable_spend_logs: True
  disable_error_logs: True
"""


def peer_specs(peers: list[str], workdir: Path) -> list[dict]:
    """compare.py gateway specs for the peers asked for (known: litellm)."""
    specs = []
    for name in peers:
        if name != "litellm":
            sys.exit(f"unknown peer {name!r} (known: litellm)")
        cfg = workdir / "litellm.yaml"
        cfg.write_text(litellm_config(PORT_UP))
        specs.append({
            "name": "litellm", "label": f"LiteLLM proxy {LITELLM_VERSION}", "cwd": str(workdir),
            "start": f"exec {litellm_bin()} --config {cfg} --host 127.0.0.1 --port {PORT_LITELLM} "
                     "--num_workers {workers}",
            "env": {"LITELLM_TELEMETRY": "False", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                    "LITELLM_MODE": "PRODUCTION", "DISABLE_SCHEMA_UPDATE": "True"},
            "base_url": f"http://127.0.0.1:{PORT_LITELLM}", "health": f"http://127.0.0.1:{PORT_LITELLM}/health/liveliness",
            "key": "sk-bench-master-1234", "openai_model": "bench-gpt", "anthropic_model": "bench-claude",
            "startup_timeout": 180,
        })
    return specs


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
    # The hold tests keep thousands of calls of one account in flight: lift that org's concurrency
    # cap (the operator's per-org override) so the tier's cap does not answer 429.
    import sqlalchemy as sa

    engine = sa.create_engine(env["BYTESPIKE_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE orgs SET concurrency_cap = 100000"))
    engine.dispose()
    return env, key


def compare(py: str, instances: dict[str, tuple[dict[str, str], str]], peers: list[dict],
            args: argparse.Namespace) -> None:
    gunicorn = str(BIN / "gunicorn")
    gateways = []
    for backend, (env, key) in instances.items():
        port = PORT_GW if backend == "sqlite" else PORT_GW_PG
        gateways.append({
            "name": f"bytespike-{backend}", "label": "ByteSpike on " + ("SQLite" if backend == "sqlite" else "PostgreSQL"),
            "cwd": str(ROOT),
            "env": {k: env[k] for k in env if k.startswith("BYTESPIKE_")},
            "start": f"exec {gunicorn} -c gunicorn.conf.py -w {{workers}} -b 127.0.0.1:{port} 'app:create_app()'",
            "base_url": f"http://127.0.0.1:{port}", "health": f"http://127.0.0.1:{port}/healthz",
            "key": key, "openai_model": "gpt-5-4", "anthropic_model": "claude-sonnet-4-6",
        })
    bare = {
        "name": "bare-flask", "label": "bare forward", "cwd": str(ROOT),
        "start": (f"exec {gunicorn} -k gevent -w {{workers}} -b 127.0.0.1:{PORT_BARE} "
                  f"'bench.bare_forward:make_app(\"http://127.0.0.1:{PORT_UP}\")'"),
        "base_url": f"http://127.0.0.1:{PORT_BARE}", "health": f"http://127.0.0.1:{PORT_BARE}/healthz",
        "key": "sk-direct", "openai_model": "gpt-fake", "anthropic_model": "claude-fake-sonnet",
    }
    scenarios = args.scenarios or "chat-c1-d0,stream-c1-d0,chat-c32-d0,stream-c32-d0,msgs-c32-d0"
    specs = [bare, *gateways, *peers]
    cmd = [py, str(BENCH / "compare.py"), "--gateways", "", "--upstream-port", str(PORT_UP),
           "--baseline", "bare-flask", *[a for g in specs for a in ("--gateway-json", json.dumps(g))],
           "--scenarios", scenarios, "--repeats", str(args.repeats), "--max-seconds", str(args.max_seconds)]
    with database_on_tools_core(enabled="postgresql" in instances and (os.cpu_count() or 1) >= 2):
        subprocess.run(cmd, cwd=BENCH, check=True)


@contextlib.contextmanager
def database_on_tools_core(enabled: bool) -> Iterator[None]:
    """Keep the local PostgreSQL server's processes on CPU 0, with the load tools, while the compare runs.

    The gateway's core (CPU 1) then runs the gateway alone, as it does for the bare forward and
    SQLite; the server's own CPU was never counted, but sharing the core slowed the gateway it
    served. Their CPU affinity is put back afterwards. Skipped when the server is not local or
    the affinity cannot be set.
    """
    pids = []
    if enabled:
        out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()
        pids = [int(p) for p in out]
    before = {}
    for pid in pids:
        try:
            before[pid] = os.sched_getaffinity(pid)
            os.sched_setaffinity(pid, {0})
        except OSError:
            continue
    if before:
        print(f"PostgreSQL server: {len(before)} processes on CPU 0 with the load tools during the compare")
    try:
        yield
    finally:
        for pid, cpus in before.items():
            try:
                os.sched_setaffinity(pid, cpus)
            except OSError:
                pass


# --- hold tests ------------------------------------------------------------------------------


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    tck = os.sysconf("SC_CLK_TCK")
    total = sum(ticks) / tck
    return total - (ticks[3] + ticks[4]) / tck, total  # idle and iowait are not busy


class Sampler(threading.Thread):
    """Every 0.5 s: the server's whole process tree (RSS, CPU), the machine's CPU, the bench database's connections."""

    def __init__(self, root_pid: int, db_name: str) -> None:
        super().__init__(daemon=True)
        import sqlalchemy as sa

        self.root, self.db_name, self.halt = root_pid, db_name, threading.Event()
        self.engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_size=1)
        self.query = sa.text("SELECT count(*), count(*) FILTER (WHERE state IS DISTINCT FROM 'idle') "
                             "FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()")
        # (t s, server RSS MB, pg open, pg busy, server CPU cores, machine CPU cores busy) per interval
        self.samples: list[tuple[float, float, int, int, float, float]] = []
        self.t0 = time.monotonic()
        self.cpu0 = tree_usage(root_pid)[1]
        self.cpu_s = 0.0

    def connections(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            total, busy = conn.execute(self.query, {"db": self.db_name}).one()
        return int(total), int(busy)

    def run(self) -> None:
        last_t, last_cpu, last_m = time.monotonic(), self.cpu0, machine_cpu()
        while not self.halt.wait(0.5):
            now = time.monotonic()
            rss, cpu = tree_usage(self.root)
            m = machine_cpu()
            try:
                total, busy = self.connections()
            except Exception:  # noqa: BLE001 - a missed sample, not a failed run
                total = busy = -1
            dt_s = max(now - last_t, 1e-3)
            self.samples.append((round(now - self.t0, 2), round(rss / 2**20, 1), total, busy,
                                 round(max(0.0, cpu - last_cpu) / dt_s, 2),
                                 round((m[0] - last_m[0]) / max(m[1] - last_m[1], 1e-3) * (os.cpu_count() or 1), 2)))
            last_t, last_cpu, last_m = now, cpu, m
            self.cpu_s = cpu - self.cpu0

    def stop(self) -> dict:
        self.halt.set()
        self.join(5)
        self.engine.dispose()
        return {
            "samples": len(self.samples),
            "peak_rss_mb": max((s[1] for s in self.samples), default=0.0),
            "pg_open_peak": max((s[2] for s in self.samples), default=0),
            "pg_busy_peak": max((s[3] for s in self.samples), default=0),
            "server_cpu_s": round(self.cpu_s, 1),
            "series_fields": ["t_s", "server_rss_mb", "pg_open", "pg_busy", "server_cpu_cores", "machine_busy_cores"],
            "series": self.samples,
        }


def hold_shapes(args: argparse.Namespace) -> list[dict]:
    """The hold tests asked for: name, streams, chunks, gap, and the open-loop rate and count."""
    shapes = []
    if args.hold in ("short", "both"):
        # Open loop: streams/10 new streams a second, each ~10 s long, for 25 s: ``streams`` open at
        # once from the tenth second on (a herd of simultaneous starts would measure the start-up burst).
        rate = args.streams / 10
        shapes.append({"name": "short", "streams": args.streams, "seconds": 10, "chunks": 20, "gap_ms": 500,
                       "rate": rate, "n": int(rate * 25), "send_s": 25.0})
    if args.hold in ("long", "both"):
        # Opened over the ramp (by default half again the steady-state rate of 5,000 streams of
        # 60 s, 83 a second), then every stream open at once until the first one ends.
        ramp = min(args.ramp_seconds, args.long_seconds * 2 / 3)
        shapes.append({"name": "long", "streams": args.long_streams, "seconds": args.long_seconds,
                       "chunks": args.long_seconds, "gap_ms": 1000, "rate": args.long_streams / ramp,
                       "n": args.long_streams, "send_s": ramp})
    return shapes


def hold(py: str, env: dict[str, str], key: str, db_name: str, shape: dict, upstream_workers: int) -> dict:
    """Run one hold test through a fresh 2-worker server; return its figures."""
    LOGS.mkdir(exist_ok=True)
    load0 = loadavg()
    up = subprocess.Popen([py, str(BENCH / "fake_upstream.py"), "--port", str(PORT_UP), "--workers",
                           str(upstream_workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    logfile = LOGS / f"gw-hold-{shape['name']}.log"
    log = open(logfile, "wb")  # noqa: SIM115 - the server's lifetime
    gw = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-w", "2", "-b",
                           f"127.0.0.1:{PORT_HOLD}", "app:create_app()"], cwd=ROOT, env=env,
                          stdout=log, stderr=subprocess.STDOUT)
    sampler = None
    try:
        if not wait_http(f"http://127.0.0.1:{PORT_UP}/health", 30, up):
            sys.exit(f"fake vendor did not start on port {PORT_UP}")
        if not wait_http(f"http://127.0.0.1:{PORT_HOLD}/healthz", 60, gw):
            sys.exit(f"hold server did not start; see {logfile}")
        idle_rss = tree_usage(gw.pid)[0]
        sampler = Sampler(gw.pid, db_name)
        idle_pg = sampler.connections()
        sampler.start()
        launched = time.monotonic()
        conc = shape["streams"] * 3 // 2 + 100
        cmd = [py, str(BENCH / "loadgen.py"), "--base-url", f"http://127.0.0.1:{PORT_HOLD}", "--protocol",
               "openai", "--stream", "-c", str(conc), "--rate", f"{shape['rate']:.3f}", "-n", str(shape["n"]),
               "--warmup", "0", "--duration", str(shape["send_s"] + 5), "--timeout", str(shape["seconds"] + 60),
               "--model", "gpt-5-4", "--key", key, "--fake", f"chunks={shape['chunks']} gap={shape['gap_ms']}",
               "--label", f"hold-{shape['name']}-{shape['streams']}"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=shape["send_s"] + shape["seconds"] + 240)
        if done.returncode or not done.stdout.strip():
            sys.exit(f"load generator failed: {done.stderr[-800:]}")
        res = json.loads(done.stdout.strip().splitlines()[-1])
        seen = sampler.stop()
        # While every stream is open and only relaying (the last first byte to the first end, as
        # the load generator saw them, on the same monotonic clock): no reserve, no settle.
        lo, hi = (res.get("open") or {}).get("all_open_monotonic") or (0.0, 0.0)
        relaying = [x for x in seen["series"] if lo + 1 <= sampler.t0 + x[0] <= hi - 1]
        t0 = launched - sampler.t0
        t1 = (lo - sampler.t0) if lo else t0 + shape["send_s"]
        sampler = None
    finally:
        if sampler is not None:
            sampler.stop()
        for p in (gw, up):
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        log.close()
    server_errors = sum(1 for line in logfile.read_text(errors="replace").splitlines()
                        if "Traceback" in line or "[ERROR]" in line or " ERROR " in line)
    return {
        **{k: shape[k] for k in ("name", "streams", "seconds", "chunks", "gap_ms", "rate", "n")},
        "ok": res["ok"], "errors": res["errors"], "error_kinds": res.get("error_kinds", {}),
        "ttfb_ms": res["ttfb_ms"], "lat_ms": res["lat_ms"], "open": res.get("open"),
        "events_mean": res.get("events_mean"), "client_cpu_s": res.get("client_cpu_s"),
        "idle_rss_mb": round(idle_rss / 2**20, 1), "peak_rss_mb": seen["peak_rss_mb"],
        "server_cpu_s": seen["server_cpu_s"],
        "server_cpu_ms_per_stream": round(seen["server_cpu_s"] * 1000 / max(1, res["requests"]), 1),
        # Mean over the opening (until every stream answered; the ramp for the rolling short hold):
        # how busy the server and the whole machine were.
        "opening_cpu_cores": {
            "server": mean_of([x[4] for x in seen["series"] if t0 <= x[0] <= t1]),
            "machine": mean_of([x[5] for x in seen["series"] if t0 <= x[0] <= t1])},
        "pg_idle_open": idle_pg[0], "pg_open_peak": seen["pg_open_peak"], "pg_busy_peak": seen["pg_busy_peak"],
        # None for the short hold: its streams open and end throughout, there is no relay-only stretch.
        "pg_busy_relaying_peak": max((x[3] for x in relaying), default=None),
        "relaying_samples": len(relaying),
        "server_log_errors": server_errors, "server_log": str(logfile),
        "loadavg_before": load0, "loadavg_after": loadavg(),
        "series_fields": seen["series_fields"], "series": seen["series"],
    }


def mean_of(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 2) if xs else None


def hold_summary(results: list[dict], meta: dict) -> str:
    """Ready-to-paste Markdown for the hold tests."""
    la = ", ".join(f"{r['name']} {'/'.join(f'{x:.2f}' for x in r['loadavg_before'] or [])} before, "
                   f"{'/'.join(f'{x:.2f}' for x in r['loadavg_after'] or [])} after" for r in results)
    lines = [
        f"Hold tests {meta['date']}, machine: {meta['nproc']} CPUs ({meta['cpu_model']}); one server, 2 gevent "
        f"workers, PostgreSQL + Redis; load average (1/5/15 min): {la}.",
        "",
        "| hold | streams open at once (all answering together for; all going after) | ok / errors | time to first byte p50 / p99 "
        "| peak RSS, whole server | PostgreSQL connections: open / busy (peak); busy while only relaying "
        "| server CPU per stream; CPU cores busy while opening: server / machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        what = (f"{r['streams']:,} × {r['seconds']} s × {r['chunks']} chunks ({r['gap_ms']} ms apart), "
                f"{r['rate']:.0f} opened/s")
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["error_kinds"].items()))
        opened = r["open"] or {}
        together = (f"{opened.get('all_open_s', 0):.0f} s; {opened.get('opened_over_s', 0):.0f} s"
                    if r["n"] <= r["streams"] else "rolling")
        relaying = "-" if r["pg_busy_relaying_peak"] is None else str(r["pg_busy_relaying_peak"])
        lines.append(
            f"| {what} | {opened.get('peak', '?'):,} ({together}) "
            f"| {r['ok']:,} / {r['errors']}{' (' + kinds + ')' if kinds else ''} "
            f"| {fmt_ms(r['ttfb_ms']['p50'])} / {fmt_ms(r['ttfb_ms']['p99'])} "
            f"| {r['peak_rss_mb']:.0f} MB (idle {r['idle_rss_mb']:.0f} MB) "
            f"| {r['pg_open_peak']} / {r['pg_busy_peak']} (idle {r['pg_idle_open']}); {relaying} "
            f"| {r['server_cpu_ms_per_stream']} ms; {r['opening_cpu_cores']['server']} / "
            f"{r['opening_cpu_cores']['machine']} |")
    return "\n".join(lines)


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"


def holds(py: str, args: argparse.Namespace, workdir: Path) -> None:
    """The hold tests on their own PostgreSQL database and Redis prefix; results printed and written."""
    shapes = hold_shapes(args)
    if not shapes:
        return
    name = f"bench_hold_{uuid.uuid4().hex[:8]}"
    env, key = instance(workdir, pg_database(True, name))
    prefix = env["BYTESPIKE_REDIS_PREFIX"]
    env["BYTESPIKE_REDIS_URL"] = REDIS_URL
    results = []
    try:
        for shape in shapes:
            print(f"\n==> hold {shape['name']}: {shape['streams']} streams of {shape['seconds']} s "
                  f"({shape['rate']:.0f} opened/s)", flush=True)
            r = hold(py, env, key, name, shape, args.upstream_workers)
            results.append(r)
            print(f"ok {r['ok']}, errors {r['errors']} {r['error_kinds']}, open at once {r['open']}, "
                  f"ttfb p50/p99 {r['ttfb_ms']['p50']}/{r['ttfb_ms']['p99']} ms, peak RSS {r['peak_rss_mb']} MB, "
                  f"PostgreSQL open/busy peak {r['pg_open_peak']}/{r['pg_busy_peak']} "
                  f"(busy while only relaying: {r['pg_busy_relaying_peak']}), "
                  f"server CPU {r['server_cpu_ms_per_stream']} ms per stream, cores while opening "
                  f"{r['opening_cpu_cores']}, server log errors {r['server_log_errors']}", flush=True)
    finally:
        pg_database(False, name)
        redis_cleanup(prefix)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **machine(),
            "upstream_workers": args.upstream_workers}
    md = hold_summary(results, meta)
    print("\n# hold tests (Markdown)\n")
    print(md)
    out = BENCH / "results" / f"hold-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "summary_md": md, "holds": results}, indent=1))
    print(f"\nwritten: {out}")


def redis_cleanup(prefix: str) -> None:
    """Drop the keys the hold server left under its own prefix (limits, routing state, its job queue)."""
    try:
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        stem = prefix.rstrip(":")
        for k in r.scan_iter(match=f"*{stem}*", count=1000):
            r.delete(k)
        r.close()
    except Exception as err:  # noqa: BLE001 - leftovers under a unique prefix harm nothing
        print(f"(could not clean Redis keys under {prefix}: {err})")


def raise_nofile() -> int:
    """Soft limit on open files up to the hard one; the servers and tools started here inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every scenario")
    ap.add_argument("--max-seconds", type=float, default=10.0, help="time cap of each load run")
    ap.add_argument("--scenarios", default="", help="comma list (compare.py's names); default: the README's five")
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma list: sqlite, postgresql")
    ap.add_argument("--peers", default="", help="comma list of peer gateways in the same run (known: litellm)")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--hold", choices=("short", "long", "both", "none"), default="both",
                    help="which hold tests to run (PostgreSQL + Redis, one 2-worker server)")
    ap.add_argument("--skip-hold", action="store_const", const="none", dest="hold", help="= --hold none")
    ap.add_argument("--streams", type=int, default=2000, help="short hold: streams open at once (10 s, 20 chunks)")
    ap.add_argument("--long-streams", type=int, default=5000, help="long hold: streams open at once")
    ap.add_argument("--long-seconds", type=int, default=60, help="long hold: stream length, one event a second")
    ap.add_argument("--ramp-seconds", type=float, default=40.0,
                    help="long hold: open the streams over this long (at most two thirds of --long-seconds)")
    ap.add_argument("--upstream-workers", type=int, default=2, help="fake vendor processes in the hold tests")
    args = ap.parse_args()
    nofile = raise_nofile()
    need = 3 * max(args.streams, args.long_streams) // 2 + 200
    if args.hold != "none" and nofile < need:
        sys.exit(f"the hold tests need about {need} open files per process; ulimit -n allows {nofile}")
    py = tools_python()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    pg_name = f"bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bytespike-bench-") as tmp:
        instances = {}
        try:
            if not args.skip_compare:
                for backend in backends:
                    work = Path(tmp) / backend
                    work.mkdir()
                    if backend == "postgresql":
                        url = pg_database(True, pg_name)
                    else:
                        url = f"sqlite:///{work / 'bench.db'}"
                    instances[backend] = instance(work, url)
                compare(py, instances, peer_specs(peers, Path(tmp)), args)
        finally:
            if "postgresql" in backends and not args.skip_compare:
                pg_database(False, pg_name)  # IF EXISTS: also when its set-up failed half-way
        hold_dir = Path(tmp) / "hold"
        hold_dir.mkdir()
        holds(py, args, hold_dir)


if __name__ == "__main__":
    main()
