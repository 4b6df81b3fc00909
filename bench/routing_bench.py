#!/usr/bin/env python3
"""Routing on a bad night: two channels serve one model, one of them fails a share of its calls.

Runs the real gateway (gunicorn, gevent workers, SQLite, Redis-shared routing
state) twice against the same two fake OpenAI-compatible upstreams: once with
health routing on (the default) and once with ``BYTESPIKE_ROUTING_HEALTH=0``
(plain priority/weight, every failure retried on the other channel). Prints
the client-visible success rate, latency percentiles and upstream attempts per
request for both, as a table and one JSON line.

    .venv/bin/python bench/routing_bench.py [--requests 1000] [--concurrency 8] [--workers 2]
        [--repeats 2] [--fail 0.3] [--latency-ms 20] [--seed 7]

The flaky channel's failures are half fast-ish 503s (after 100 ms) and half
hangs past the channel's 1 s timeout. Loopback only; each run is bounded by
--requests, and each call by the gateway's own deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("BYTESPIKE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
MODEL = "gpt-5-4"


class Upstream:
    """A fake OpenAI-compatible upstream on 127.0.0.1 that fails a seeded share of its calls."""

    def __init__(self, name: str, *, fail: float, latency_ms: float, seed: int) -> None:
        self.name, self.fail, self.latency_s = name, fail, latency_ms / 1000
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.calls = self.errors = self.hangs = 0
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("content-length") or 0))
                status, wait = up.decide()
                time.sleep(wait)
                body = up.body(status)
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the gateway gave up on a hang and closed the connection

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def decide(self) -> tuple[int, float]:
        with self.lock:
            self.calls += 1
            roll = self.rng.random()
            if roll >= self.fail:
                return 200, self.latency_s
            self.errors += 1
            if roll < self.fail / 2:
                return 503, 0.1
            self.hangs += 1
            return 200, 1.6  # past the channel's 1 s timeout

    def body(self, status: int) -> bytes:
        if status != 200:
            return json.dumps({"error": {"message": "overloaded", "type": "server_error", "code": None}}).encode()
        return json.dumps({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()), "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
        }).encode()

    def reset(self) -> None:
        with self.lock:
            self.calls = self.errors = self.hangs = 0

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def channels_toml(ups: list[Upstream]) -> str:
    out = []
    for i, up in enumerate(ups):
        out.append(
            f'[[channels]]\nname = "{up.name}"\nprotocol = "openai"\nbase_url = "{up.base_url}"\n'
            f'api_keys = ["sk-bench-{i}"]\nmodels = ["{MODEL}"]\ntimeout_s = 1.0\nconnect_timeout_s = 1.0\n'
            f'[channels.prices."{MODEL}"]\ninput = "1.00"\noutput = "2.00"\n'
        )
    return "\n".join(out)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(tmp: Path, channels: Path) -> tuple[dict[str, str], str]:
    """Create the database and a funded account once; return the base environment and the API key."""
    env = dict(os.environ, BYTESPIKE_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
               BYTESPIKE_CHANNELS_FILE=str(channels), BYTESPIKE_REDIS_URL=REDIS_URL,
               BYTESPIKE_SECRET_KEY="bench-secret", BYTESPIKE_REQUEST_DEADLINE_S="30",
               BYTESPIKE_LOG_LEVEL="warning")
    env.pop("GUNICORN_CMD_ARGS", None)

    def cli(*args: str) -> str:
        res = subprocess.run([str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, check=True)
        return res.stdout

    cli("init-db")
    key = cli("create-account", "--email", f"bench-{uuid.uuid4().hex[:6]}@example.com",
              "--credits", "10000000000", "--tier", "enterprise").strip().splitlines()[-1].strip()
    return env, key


def start_gateway(base_env: dict[str, str], log_path: Path, *, health: bool, workers: int) -> tuple[subprocess.Popen, str, str]:
    """Start gunicorn with fresh routing state (its own Redis prefix); return (process, base URL, prefix)."""
    prefix = f"bsbench:{uuid.uuid4().hex[:8]}:"
    env = dict(base_env, BYTESPIKE_REDIS_PREFIX=prefix, BYTESPIKE_ROUTING_HEALTH="1" if health else "0")
    port = free_port()
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-w", str(workers),
                             "-b", f"127.0.0.1:{port}", "app:create_app()"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(base + "/healthz", timeout=1).ok:
                return proc, base, prefix
        except requests.RequestException:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"gateway did not start; see {log_path}")


def stop_gateway(proc: subprocess.Popen, prefix: str) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    for k in r.scan_iter(prefix + "*"):
        r.delete(k)


def load(base: str, key: str, n: int, concurrency: int) -> tuple[list[float], dict[str, int]]:
    """Send n chat calls from `concurrency` threads (closed loop); return latencies (s) and failures by kind."""
    lat: list[float] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "ping"}]}
    per = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]

    def worker(count: int) -> None:
        s = requests.Session()
        for _ in range(count):
            t0 = time.perf_counter()
            try:
                code = str(s.post(base + "/v1/chat/completions", json=body, timeout=60,
                                  headers={"Authorization": f"Bearer {key}"}).status_code)
            except requests.RequestException as exc:
                code = type(exc).__name__
            with lock:
                lat.append(time.perf_counter() - t0)
                if code != "200":
                    failures[code] = failures.get(code, 0) + 1
        s.close()  # no idle keep-alive left to slow the gateway's shutdown

    threads = [threading.Thread(target=worker, args=(c,)) for c in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, failures


def pct(vals: list[float], p: float) -> float:
    s = sorted(vals)
    return round(s[max(0, int(round(p / 100 * len(s))) - 1)] * 1000, 1)


def run(health: bool, ups: list[Upstream], base_env: dict[str, str], key: str, tmp: Path,
        args: argparse.Namespace) -> dict:
    """One measured run from cold routing state; returns latencies and upstream counters."""
    proc, base, prefix = start_gateway(base_env, tmp / "gunicorn.log", health=health, workers=args.workers)
    try:
        for _ in range(4):  # warm the workers' imports on the free demo model, not the channels
            requests.post(base + "/v1/chat/completions", timeout=30, headers={"Authorization": f"Bearer {key}"},
                          json={"model": "bytespike-echo", "messages": [{"role": "user", "content": "hi"}]})
        for up in ups:
            up.reset()
        t0 = time.perf_counter()
        lat, failures = load(base, key, args.requests, args.concurrency)
        wall = time.perf_counter() - t0
    finally:
        stop_gateway(proc, prefix)
    steady, flaky = ups
    return {"lat": lat, "failures": failures, "wall": wall, "steady": steady.calls, "flaky": flaky.calls,
            "flaky_errors": flaky.errors, "flaky_hangs": flaky.hangs}


def summary(health: bool, runs: list[dict]) -> dict:
    lat = [x for r in runs for x in r["lat"]]
    calls = sum(r["steady"] + r["flaky"] for r in runs)
    errors: dict[str, int] = {}
    for r in runs:
        for k, v in r["failures"].items():
            errors[k] = errors.get(k, 0) + v
    return {
        "routing_health": health, "requests": len(lat),
        "success_rate": round(1 - sum(errors.values()) / len(lat), 4), "errors": errors,
        "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99), "max_ms": round(max(lat) * 1000, 1),
        "attempts_per_request": round(calls / len(lat), 3),
        "flaky_share": round(sum(r["flaky"] for r in runs) / max(calls, 1), 3),
        "flaky_failures": sum(r["flaky_errors"] for r in runs), "flaky_hangs": sum(r["flaky_hangs"] for r in runs),
        "rps": round(len(lat) / sum(r["wall"] for r in runs), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="per run")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fail", type=float, default=0.3, help="share of the flaky channel's calls that fail")
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=2, help="runs per mode, interleaved")
    args = ap.parse_args()
    assert 0 < args.requests <= 20000 and 0 < args.concurrency <= 64 and 0 < args.repeats <= 5, "keep it bounded"
    ups = [Upstream("steady", fail=0.0, latency_ms=args.latency_ms, seed=args.seed),
           Upstream("flaky", fail=args.fail, latency_ms=args.latency_ms, seed=args.seed + 1)]
    by_mode: dict[bool, list[dict]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="bsbench-") as d:
        tmp = Path(d)
        channels = tmp / "channels.toml"
        channels.write_text(channels_toml(ups))
        base_env, key = prepare(tmp, channels)
        for _ in range(args.repeats):  # interleaved, so a noisy neighbour hurts both modes alike
            for health in (True, False):
                by_mode[health].append(run(health, ups, base_env, key, tmp, args))
    for up in ups:
        up.stop()
    results = [summary(h, by_mode[h]) for h in (True, False)]
    cols = ["routing_health", "requests", "success_rate", "p50_ms", "p90_ms", "p99_ms", "max_ms",
            "attempts_per_request", "flaky_share", "rps"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    print(json.dumps({"fail": args.fail, "concurrency": args.concurrency, "workers": args.workers,
                      "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
