#!/usr/bin/env python3
"""Routing on a bad night: a flaky channel, and a noisy tenant beside a quiet one.

Runs the real gateway (gunicorn, gevent workers, SQLite, Redis-shared routing
state) against fake OpenAI-compatible upstreams, in two scenarios:

- ``flaky``: two channels serve one model; one fails a share of its calls
  (half fast-ish 503s after 100 ms, half hangs past the channel's 1 s
  timeout). Modes: health routing on (the default) and
  ``BYTESPIKE_ROUTING_HEALTH=0`` (plain priority/weight, every failure
  retried on the other channel).
- ``noisy``: two healthy channels serve one model to two accounts. The quiet
  tenant calls throughout; from 20% to 70% of its calls, the noisy tenant
  sends prompts that make every upstream answer 500. Reported: the quiet
  tenant's success rate before, during and after, and how many of the noisy
  tenant's calls reached an upstream.

``--baseline-root DIR`` adds a mode run from another checkout (e.g. an
export of main) with health routing on, interleaved with the others, so a
change is compared within one run on this shared machine.

    .venv/bin/python bench/routing_bench.py [--scenario flaky|noisy|both] [--requests 1000]
        [--concurrency 8] [--workers 2] [--repeats 2] [--fail 0.3] [--latency-ms 20] [--seed 7]
        [--baseline-root /tmp/bs-main] [--skip-off]

Prints a table per scenario and one JSON line. Loopback only; each run is
bounded by --requests, and each call by the gateway's own deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("BYTESPIKE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
MODEL = "gpt-5-4"
NOISY_MARK = b"[noisy]"


class Upstream:
    """A fake OpenAI-compatible upstream on 127.0.0.1 that fails a seeded share of its calls."""

    def __init__(self, name: str, *, fail: float, latency_ms: float, seed: int) -> None:
        self.name, self.fail, self.latency_s = name, fail, latency_ms / 1000
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.calls = self.errors = self.hangs = self.noisy = 0
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, wait = up.decide(NOISY_MARK in body)
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

    def decide(self, noisy: bool = False) -> tuple[int, float]:
        with self.lock:
            self.calls += 1
            if noisy:  # this prompt crashes the upstream, whoever serves it
                self.noisy += 1
                return 500, 0.005
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
            self.calls = self.errors = self.hangs = self.noisy = 0

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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(tmp: Path, channels: Path) -> tuple[dict[str, str], list[str]]:
    """Create the database and two funded accounts once; return the base environment and their API keys."""
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
    keys = [cli("create-account", "--email", f"bench-{uuid.uuid4().hex[:6]}@example.com",
                "--credits", "10000000000", "--tier", "enterprise").strip().splitlines()[-1].strip()
            for _ in range(2)]
    return env, keys


def start_gateway(base_env: dict[str, str], log_path: Path, *, health: bool, workers: int,
                  root: Path) -> tuple[subprocess.Popen, str, str]:
    """Start gunicorn from ``root`` with fresh routing state (its own Redis prefix); return (process, URL, prefix)."""
    prefix = f"bsbench:{uuid.uuid4().hex[:8]}:"
    env = dict(base_env, BYTESPIKE_REDIS_PREFIX=prefix, BYTESPIKE_ROUTING_HEALTH="1" if health else "0",
               PYTHONDONTWRITEBYTECODE="1")
    port = free_port()
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(root / "gunicorn.conf.py"), "-w", str(workers),
                             "-b", f"127.0.0.1:{port}", "app:create_app()"], cwd=root, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120  # a busy machine can take a while to import four workers
    while time.time() < deadline:
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
    r = redis.Redis.from_url(REDIS_URL)
    for k in r.scan_iter(prefix + "*"):
        r.delete(k)


Outcome = tuple[float, float, str]  # (finished at, latency s, HTTP status or exception name)


def load(base: str, key: str, concurrency: int, sink: list[Outcome], *, count: int | None = None,
         stop: threading.Event | None = None, prompt: str = "ping") -> None:
    """Send chat calls from `concurrency` threads (closed loop), `count` in all or until `stop` is set."""
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": prompt}]}
    per = ([count // concurrency + (1 if i < count % concurrency else 0) for i in range(concurrency)]
           if count is not None else [None] * concurrency)

    def worker(n: int | None) -> None:
        s = requests.Session()
        done = 0
        while (n is None or done < n) and not (stop is not None and stop.is_set()):
            t0 = time.perf_counter()
            try:
                code = str(s.post(base + "/v1/chat/completions", json=body, timeout=60,
                                  headers={"Authorization": f"Bearer {key}"}).status_code)
            except requests.RequestException as exc:
                code = type(exc).__name__
            sink.append((time.time(), time.perf_counter() - t0, code))  # list.append is atomic
            done += 1
        s.close()  # no idle keep-alive left to slow the gateway's shutdown

    threads = [threading.Thread(target=worker, args=(c,)) for c in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def pct(vals: list[float], p: float) -> float:
    s = sorted(vals)
    return round(s[max(0, int(round(p / 100 * len(s))) - 1)] * 1000, 1)


def noisy_load(base: str, keys: list[str], args: argparse.Namespace) -> tuple[list[Outcome], list[Outcome], float, float]:
    """The quiet tenant's calls throughout; the noisy tenant's from 20% to 70% of them."""
    quiet: list[Outcome] = []
    noisy: list[Outcome] = []
    stop = threading.Event()
    main = threading.Thread(target=load, args=(base, keys[0], args.concurrency, quiet), kwargs={"count": args.requests})
    main.start()
    while len(quiet) < 0.2 * args.requests and main.is_alive():
        time.sleep(0.01)
    started = time.time()
    side = threading.Thread(target=load, args=(base, keys[1], args.concurrency, noisy),
                            kwargs={"stop": stop, "prompt": "ping " + NOISY_MARK.decode()})
    side.start()
    while len(quiet) < 0.7 * args.requests and main.is_alive():
        time.sleep(0.01)
    stop.set()
    side.join()
    stopped = time.time()
    main.join()
    return quiet, noisy, started, stopped


def run(scenario: str, mode: tuple[str, bool, Path], ups: list[Upstream], base_env: dict[str, str],
        keys: list[str], tmp: Path, args: argparse.Namespace) -> dict:
    """One measured run from cold routing state; returns the outcomes and upstream counters."""
    _, health, root = mode
    proc, base, prefix = start_gateway(base_env, tmp / "gunicorn.log", health=health, workers=args.workers, root=root)
    try:
        for key in keys:  # warm the workers' imports on the free demo model, not the channels
            for _ in range(4):
                requests.post(base + "/v1/chat/completions", timeout=30, headers={"Authorization": f"Bearer {key}"},
                              json={"model": "bytespike-echo", "messages": [{"role": "user", "content": "hi"}]})
        for up in ups:
            up.reset()
        t0 = time.perf_counter()
        out: dict = {}
        if scenario == "flaky":
            out["quiet"] = []
            load(base, keys[0], args.concurrency, out["quiet"], count=args.requests)
        else:
            out["quiet"], out["noisy"], out["started"], out["stopped"] = noisy_load(base, keys, args)
        out["wall"] = time.perf_counter() - t0
    finally:
        stop_gateway(proc, prefix)
    out.update(calls=[u.calls for u in ups], errors=[u.errors for u in ups], noisy_reached=sum(u.noisy for u in ups))
    return out


def failures(outcomes: list[Outcome]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for _, _, code in outcomes:
        if code != "200":
            errors[code] = errors.get(code, 0) + 1
    return errors


def rate(outcomes: list[Outcome]) -> float | None:
    return round(sum(c == "200" for _, _, c in outcomes) / len(outcomes), 4) if outcomes else None


def summary(scenario: str, label: str, runs: list[dict]) -> dict:
    quiet = [o for r in runs for o in r["quiet"]]
    lat = [o[1] for o in quiet]
    calls = sum(sum(r["calls"]) for r in runs)
    out = {"scenario": scenario, "mode": label, "requests": len(quiet), "success_rate": rate(quiet),
           "errors": failures(quiet), "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99),
           "max_ms": round(max(lat) * 1000, 1), "rps": round(len(quiet) / sum(r["wall"] for r in runs), 1)}
    if scenario == "flaky":
        flaky = sum(r["calls"][1] for r in runs)
        out.update(attempts_per_request=round(calls / len(quiet), 3), flaky_share=round(flaky / max(calls, 1), 3),
                   flaky_failures=sum(r["errors"][1] for r in runs))
        return out
    during = [o for r in runs for o in r["quiet"] if r["started"] <= o[0] < r["stopped"]]
    after = [o for r in runs for o in r["quiet"] if o[0] >= r["stopped"]]
    noisy = [o for r in runs for o in r["noisy"]]
    reached = sum(r["noisy_reached"] for r in runs)
    out.update(success_during=rate(during), success_after=rate(after), noisy_calls=len(noisy),
               noisy_reached_upstream=reached, noisy_upstream_per_call=round(reached / max(len(noisy), 1), 3),
               noisy_errors=failures(noisy))
    return out


COLUMNS = {
    "flaky": ["mode", "requests", "success_rate", "p50_ms", "p90_ms", "p99_ms", "max_ms",
              "attempts_per_request", "flaky_share", "rps"],
    "noisy": ["mode", "requests", "success_rate", "success_during", "success_after", "p50_ms", "p99_ms",
              "noisy_calls", "noisy_upstream_per_call"],
}


def scenario_setup(scenario: str, args: argparse.Namespace) -> list[Upstream]:
    if scenario == "flaky":
        return [Upstream("steady", fail=0.0, latency_ms=args.latency_ms, seed=args.seed),
                Upstream("flaky", fail=args.fail, latency_ms=args.latency_ms, seed=args.seed + 1)]
    return [Upstream("steady-a", fail=0.0, latency_ms=args.latency_ms, seed=args.seed),
            Upstream("steady-b", fail=0.0, latency_ms=args.latency_ms, seed=args.seed + 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--scenario", choices=("flaky", "noisy", "both"), default="both")
    ap.add_argument("--requests", type=int, default=1000, help="per run (the quiet tenant's, in noisy)")
    ap.add_argument("--concurrency", type=int, default=8, help="per tenant")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fail", type=float, default=0.3, help="share of the flaky channel's calls that fail")
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=2, help="runs per mode, interleaved")
    ap.add_argument("--baseline-root", type=Path, default=None, help="another checkout to compare, health on")
    ap.add_argument("--skip-off", action="store_true", help="flaky: leave out the health-off mode")
    args = ap.parse_args()
    assert 0 < args.requests <= 20000 and 0 < args.concurrency <= 64 and 0 < args.repeats <= 5, "keep it bounded"
    results = []
    for scenario in (("flaky", "noisy") if args.scenario == "both" else (args.scenario,)):
        modes = [("on", True, ROOT)] + ([("off", False, ROOT)] if scenario == "flaky" and not args.skip_off else [])
        if args.baseline_root:
            modes.append(("baseline on", True, args.baseline_root.resolve()))
        ups = scenario_setup(scenario, args)
        by_mode: dict[str, list[dict]] = {m[0]: [] for m in modes}
        with tempfile.TemporaryDirectory(prefix="bsbench-") as d:
            tmp = Path(d)
            channels = tmp / "channels.toml"
            channels.write_text(channels_toml(ups))
            base_env, keys = prepare(tmp, channels)
            for _ in range(args.repeats):  # interleaved, so a noisy neighbour hurts every mode alike
                for mode in modes:
                    by_mode[mode[0]].append(run(scenario, mode, ups, base_env, keys, tmp, args))
        for up in ups:
            up.stop()
        rows = [summary(scenario, m[0], by_mode[m[0]]) for m in modes]
        results += rows
        print(f"\n{scenario}:")
        print("| " + " | ".join(COLUMNS[scenario]) + " |")
        print("|" + "---|" * len(COLUMNS[scenario]))
        for r in rows:
            print("| " + " | ".join(str(r[c]) for c in COLUMNS[scenario]) + " |")
    print(json.dumps({"fail": args.fail, "concurrency": args.concurrency, "workers": args.workers,
                      "requests": args.requests, "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
