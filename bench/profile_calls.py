#!/usr/bin/env python3
"""Profile the gateway's own work per call, in one process, against the fake vendor.

    .venv/bin/python bench/profile_calls.py -n 2000 --protocol openai [--stream] [--top 40]

Sets up a throwaway instance as ``run.py`` does (SQLite, or BENCH_DATABASE_URL), starts
the fake vendor from /tmp/venv-bench, then sends ``n`` calls through the app's WSGI
test client (passthrough: an OpenAI caller to the openai channel, an Anthropic caller
to the anthropic channel) under cProfile, and prints the heaviest functions and the
CPU time per call. ``--out FILE`` keeps the raw profile for pstats or snakeviz.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import run  # noqa: E402 - the bench's own set-up, after the path is known


def body(protocol: str, stream: bool) -> bytes:
    text = "Benchmark request: reply briefly. [fake chunks=20]"
    if protocol == "openai":
        obj: dict = {"model": "gpt-5-4", "messages": [{"role": "user", "content": text}], "max_tokens": 64}
        if stream:
            obj["stream"] = True
            obj["stream_options"] = {"include_usage": True}
    else:
        obj = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
        if stream:
            obj["stream"] = True
    return json.dumps(obj).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--protocol", choices=("openai", "anthropic"), default="openai")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--out", default="")
    ap.add_argument("--no-profile", action="store_true", help="time only (CPU per call without cProfile)")
    ap.add_argument("--bare", action="store_true", help="the bare Flask+requests forward instead (the floor)")
    args = ap.parse_args()
    py = run.tools_python()
    up = subprocess.Popen([py, str(BENCH / "fake_upstream.py"), "--port", str(run.PORT_UP)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory(prefix="bytespike-prof-") as tmp:
            env, key = run.instance(Path(tmp), os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{Path(tmp) / 'bench.db'}"))
            os.environ.update({k: v for k, v in env.items() if k.startswith("BYTESPIKE_")})
            from app import create_app
            from bench.bare_forward import make_app

            app = make_app(f"http://127.0.0.1:{run.PORT_UP}") if args.bare else create_app()
            client = app.test_client()
            path = "/v1/chat/completions" if args.protocol == "openai" else "/v1/messages"
            hdrs = ({"Authorization": "Bearer " + key} if args.protocol == "openai"
                    else {"x-api-key": key, "anthropic-version": "2023-06-01"})
            data = body(args.protocol, args.stream)
            if args.bare:
                data = data.replace(b"gpt-5-4", b"gpt-fake").replace(b"claude-sonnet-4-6", b"claude-fake-sonnet")
            time.sleep(0.5)

            def one() -> None:
                resp = client.post(path, data=data, headers=hdrs, content_type="application/json")
                out = resp.get_data()
                if resp.status_code != 200 or (args.stream and b"[DONE]" not in out and b"message_stop" not in out):
                    raise SystemExit(f"bad answer {resp.status_code}: {out[:300]!r}")

            for _ in range(50):  # warm: imports, pools, caches
                one()
            prof = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
            c0, t0 = time.process_time(), time.perf_counter()
            if not args.no_profile:
                prof.enable()
            for _ in range(args.n):
                one()
            if not args.no_profile:
                prof.disable()
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            print(f"{args.n} calls ({args.protocol}, stream={args.stream}): {cpu / args.n * 1000:.2f} ms CPU/call "
                  f"in this process (client included{'' if args.no_profile else ', under cProfile'}), "
                  f"{wall / args.n * 1000:.2f} ms wall/call")
            if not args.no_profile:
                if args.out:
                    prof.dump_stats(args.out)
                pstats.Stats(prof).strip_dirs().sort_stats(args.sort).print_stats(args.top)
    finally:
        up.terminate()
        up.wait(10)


if __name__ == "__main__":
    main()
