#!/usr/bin/env python3
"""Direct-vs-gateway latency/throughput comparison in one interleaved run.

    /tmp/venv-bench/bin/python compare.py --gateways litellm,nginx --repeats 2
    /tmp/venv-bench/bin/python compare.py --gateways litellm --pin none --repeats 3
    /tmp/venv-bench/bin/python compare.py --gateway-json '{"name":"mine",
        "start":"cd ../../main && exec gunicorn -w {workers} -b 127.0.0.1:8000 app:app",
        "base_url":"http://127.0.0.1:8000","health":"http://127.0.0.1:8000/health",
        "key":"sk-...","openai_model":"gpt-fake","anthropic_model":"claude-fake-sonnet"}'

What it does
  1. starts fake_upstream.py (port --upstream-port, default 9000);
  2. starts every gateway under test (gateways.json entries named by --gateways, and/or
     --gateway-json specs), waits for its health URL, smoke-tests each protocol;
  3. for each repeat, for each scenario, runs loadgen.py against DIRECT (fake upstream)
     and each gateway, back to back, rotating the order every repeat (so drift,
     thermal or page-cache effects hit every target alike);
  4. prints, per scenario and target: req/s, p50/p99 latency, stream TTFB, added
     latency (gateway minus direct, computed per repeat, then median [min..max]),
     throughput ratio (gateway/direct), gateway CPU ms per request and peak RSS of
     the gateway's whole process tree; writes everything to results/compare-*.json;
  5. stops everything it started (by the PIDs / process groups it created).

The upstream behaviour (delay, chunks) travels in a `[fake ...]` directive inside the
user message, so it reaches the fake provider through any gateway.

Gateway spec (JSON; gateways.json holds the known ones). Placeholders in "start":
{bench} = this folder, {workers} = processes the gateway should run (= cores it is
given), {upstream_port}. Fields: start (shell, optional: omit to measure an already
running gateway), env, cwd, base_url, health, key, openai_model, anthropic_model
(null = skip the Anthropic scenarios), headers / openai_headers / anthropic_headers,
startup_timeout.

CPU placement (--pin): 'split' (default when >= 2 cores) puts the fake upstream and
the load generator on CPU 0 and the gateway on the other CPUs, with workers = number
of those CPUs; 'none' pins nothing and runs workers = all cores (the gateway then
competes with the generator and the upstream for the same cores).

Every load run is bounded by a request count and a time cap; traffic goes to 127.0.0.1
only.
"""
import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable

# name, protocol, stream, concurrency, max requests, fake directive[, open-loop rate req/s]
SCENARIOS = [
    ("chat-c1-d0", "openai", False, 1, 3000, "delay=0 chunks=20"),
    ("chat-c32-d0", "openai", False, 32, 6000, "delay=0 chunks=20"),
    ("stream-c1-d0", "openai", True, 1, 2000, "delay=0 chunks=20 gap=0"),
    ("stream-c32-d0", "openai", True, 32, 3000, "delay=0 chunks=20 gap=0"),
    ("chat-c1-d50", "openai", False, 1, 150, "delay=50 chunks=20"),
    ("chat-c32-d50", "openai", False, 32, 3000, "delay=50 chunks=20"),
    ("stream-c32-d50", "openai", True, 32, 2000, "delay=50 chunks=20 gap=2"),
    ("msgs-c32-d0", "anthropic", False, 32, 6000, "delay=0 chunks=20"),
    ("msgs-stream-c32-d0", "anthropic", True, 32, 3000, "delay=0 chunks=20 gap=0"),
    # open loop, below LiteLLM's saturation: 20 req/s scheduled (latency from the
    # scheduled send time), at most 32 in flight -> per-request overhead at light load
    ("chat-open20-d50", "openai", False, 32, 200, "delay=50 chunks=20", 20),
]


# ------------------------------------------------------------------ processes

def log(*a):
    print(*a, file=sys.stderr, flush=True)


def start(cmd, env=None, cwd=None, logfile=None, cpus=None):
    if cpus:
        cmd = "exec taskset -c %s sh -c %s" % (cpus, shlex.quote(cmd))
    e = dict(os.environ)
    e.update(env or {})
    out = open(logfile, "ab") if logfile else subprocess.DEVNULL
    return subprocess.Popen(cmd, shell=True, env=e, cwd=cwd or BENCH, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(p, name):
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)  # our own process group (start_new_session)
    except ProcessLookupError:
        return
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        log("  %s did not stop on SIGTERM; SIGKILL to its group %d" % (name, p.pid))
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(5)


def wait_http(url, timeout, proc=None):
    t_end = time.time() + timeout
    while time.time() < t_end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if 200 <= r.status < 300:
                    return True
        except Exception:
            pass
        time.sleep(0.5)
    return False


def tree_pids(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
                ppid = int(s[s.rfind(")") + 2:].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_usage(root):
    """(rss_bytes, cpu_seconds) summed over the process tree."""
    rss, cpu = 0, 0.0
    tck = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    for p in tree_pids(root):
        try:
            with open("/proc/%d/stat" % p) as f:
                s = f.read()
            fields = s[s.rfind(")") + 2:].split()
            cpu += (int(fields[11]) + int(fields[12])) / tck
            rss += int(fields[21]) * page
        except (OSError, ValueError, IndexError):
            pass
    return rss, cpu


class Sampler(threading.Thread):
    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.peak, self.halt = root, 0, threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.peak = max(self.peak, tree_usage(self.root)[0])
            self.halt.wait(0.25)


# ------------------------------------------------------------------ load

def loadgen(target, sc, args, cpus):
    name, proto, stream, conc, n, fake = sc[:6]
    rate = sc[6] if len(sc) > 6 else 0
    cmd = [PY, os.path.join(BENCH, "loadgen.py"), "--base-url", target["base_url"], "--protocol", proto,
           "-c", str(conc), "-n", str(n), "-d", str(args.max_seconds), "--fake", fake,
           "--key", target.get("key", "sk-bench"), "--label", "%s/%s" % (target["name"], name),
           "--prompt-chars", str(args.prompt_chars), "--timeout", "30"]
    model = target.get("openai_model" if proto == "openai" else "anthropic_model")
    if model:
        cmd += ["--model", model]
    if stream:
        cmd.append("--stream")
    if rate:
        cmd += ["--rate", str(rate), "--warmup", "10"]
    hdrs = dict(target.get("headers") or {})
    hdrs.update(target.get(proto + "_headers") or {})
    for k, v in hdrs.items():
        cmd += ["--header", "%s: %s" % (k, v)]
    if cpus:
        cmd = ["taskset", "-c", cpus] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.max_seconds + 120)
    if r.returncode != 0 or not r.stdout.strip():
        log("  loadgen failed:", r.stderr[-500:])
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def smoke(target, proto, stream, cpus):
    sc = ("smoke", proto, stream, 1, 3, "delay=0 chunks=5")
    ns = argparse.Namespace(max_seconds=10, prompt_chars=20)
    r = loadgen(target, sc, ns, cpus)
    return bool(r and r["ok"] == r["requests"] and r["ok"] > 0), (r or {}).get("error_kinds")


# ------------------------------------------------------------------ report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rng(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def fmt(v, nd=1):
    return "-" if v is None else ("%.*f" % (nd, v))


def fmt_r(xs, nd=1):
    m, (lo, hi) = med(xs), rng(xs)
    if m is None:
        return "-"
    if len([x for x in xs if x is not None]) < 2:
        return fmt(m, nd)
    return "%s [%s..%s]" % (fmt(m, nd), fmt(lo, nd), fmt(hi, nd))


def same_repeat(runs, r):
    """The run in ``runs`` made in the same repeat as ``r`` (None if that one failed)."""
    for x in runs:
        if x.get("repeat") == r.get("repeat"):
            return x
    return None


SCENARIO_TITLES = {
    "chat-c1-d0": "chat, concurrency 1",
    "chat-c32-d0": "chat, concurrency 32",
    "stream-c1-d0": "stream (20 chunks), concurrency 1",
    "stream-c32-d0": "stream (20 chunks), concurrency 32",
    "chat-c1-d50": "chat, 50 ms vendor, concurrency 1",
    "chat-c32-d50": "chat, 50 ms vendor, concurrency 32",
    "stream-c32-d50": "stream (20 chunks), 50 ms vendor, concurrency 32",
    "msgs-c32-d0": "Anthropic messages, concurrency 32",
    "msgs-stream-c32-d0": "Anthropic messages stream, concurrency 32",
    "chat-open20-d50": "chat, open loop 20/s, 50 ms vendor",
}


def label(t):
    return t.get("label") or t["name"]


def cpu_ratios(results, sc_name, target, baseline):
    """CPU per call of ``target`` over ``baseline``'s, each repeat against the same repeat's."""
    out = []
    for r in results.get((sc_name, target), []):
        b = same_repeat(results.get((sc_name, baseline), []), r)
        if b and r.get("gw_cpu_ms_per_req") and b.get("gw_cpu_ms_per_req"):
            out.append(r["gw_cpu_ms_per_req"] / b["gw_cpu_ms_per_req"])
    return out


def machine():
    """nproc, CPU model (from /proc/cpuinfo) and the 1-minute load average now."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count() or 1, "cpu_model": model}


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def summary(results, scenarios, targets, baseline, meta):
    """Ready-to-paste Markdown: the run's header, one row per scenario, then CPU per call against ``baseline``."""
    base = next((t for t in targets if t["name"] == baseline), None)
    gws = [t for t in targets if t["name"] not in ("direct", baseline)]
    la0, la1 = meta.get("loadavg_before"), meta.get("loadavg_after")
    lines = [
        "Run %s, machine: %d CPUs (%s), load average %s before, %s after (1/5/15 min); %s, "
        "gateways on CPU %s with %d worker(s) each, %d interleaved repeat(s) of at most %g s." % (
            meta["date"], meta["nproc"], meta["cpu_model"], "/".join("%.2f" % x for x in la0 or []) or "?",
            "/".join("%.2f" % x for x in la1 or []) or "?", "pin=" + meta["pin"], meta["gateway_cpus"] or "any",
            meta["gateway_workers"], meta["repeats"], meta["max_seconds"]),
        "",
    ]

    def cell(sc, t):
        runs = results.get((sc[0], t["name"]), [])
        if not runs:
            return "-"
        direct = results.get((sc[0], "direct"), [])
        add50, add99 = [], []
        for r in runs:
            d = same_repeat(direct, r)
            if d and r["lat_ms"]["p50"] is not None and d["lat_ms"]["p50"] is not None:
                add50.append(r["lat_ms"]["p50"] - d["lat_ms"]["p50"])
                add99.append(r["lat_ms"]["p99"] - d["lat_ms"]["p99"])
        errs = sum(r["errors"] for r in runs)
        text = "+%s / +%s ms, %s, %s" % (fmt(med(add50)), fmt(med(add99)), fmt(med([r["rps"] for r in runs]), 0),
                                         fmt(med([r.get("gw_cpu_ms_per_req") for r in runs]), 2))
        return text + (", %d errors" % errs if errs else "")

    cols = ([base] if base else []) + gws
    if not cols:
        return "\n".join(lines)
    head = ["scenario"] + ["%s: added p50 / p99, req/s, CPU ms per call" % label(cols[0])] + [label(t) for t in cols[1:]]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for sc in scenarios:
        lines.append("| " + " | ".join([SCENARIO_TITLES.get(sc[0], sc[0])] + [cell(sc, t) for t in cols]) + " |")
    if base and gws:
        lines += ["", "CPU per call against %s (median of the per-repeat ratios, each repeat against "
                      "the same repeat's %s; the repeats in brackets):" % (label(base), label(base)), ""]
        lines.append("| scenario | " + " | ".join(label(t) for t in gws) + " |")
        lines.append("|" + "---|" * (len(gws) + 1))
        for sc in scenarios:
            row = []
            for t in gws:
                rs = cpu_ratios(results, sc[0], t["name"], baseline)
                row.append("-" if not rs else "%.2fx [%s]" % (med(rs), ", ".join("%.2f" % x for x in rs)))
            lines.append("| %s | %s |" % (SCENARIO_TITLES.get(sc[0], sc[0]), " | ".join(row)))
    return "\n".join(lines)


def report(results, scenarios, targets):
    lines = []
    hdr = ("scenario", "target", "req/s", "p50 ms", "p99 ms", "+p50 ms", "+p99 ms", "ttfb p50", "ttfb p99",
           "rps ratio", "err", "gw cpu ms/req", "peak RSS MB")
    lines.append(" | ".join(hdr))
    lines.append(" | ".join("---" for _ in hdr))
    for sc in scenarios:
        name, proto, stream = sc[0], sc[1], sc[2]
        direct = results.get((name, "direct"), [])
        for t in targets:
            runs = results.get((name, t["name"]), [])
            if not runs:
                continue
            rps = [r["rps"] for r in runs]
            p50 = [r["lat_ms"]["p50"] for r in runs]
            p99 = [r["lat_ms"]["p99"] for r in runs]
            t50 = [r["ttfb_ms"]["p50"] for r in runs] if stream else []
            t99 = [r["ttfb_ms"]["p99"] for r in runs] if stream else []
            err = sum(r["errors"] for r in runs)
            add50, add99, ratio = [], [], []
            if t["name"] != "direct":
                for r in runs:  # pair with the direct run of the same repeat
                    d = same_repeat(direct, r)
                    if d and r["lat_ms"]["p50"] is not None and d["lat_ms"]["p50"] is not None:
                        add50.append(r["lat_ms"]["p50"] - d["lat_ms"]["p50"])
                        add99.append(r["lat_ms"]["p99"] - d["lat_ms"]["p99"])
                        ratio.append(r["rps"] / d["rps"] if d["rps"] else None)
            cpu = [r.get("gw_cpu_ms_per_req") for r in runs]
            rss = [r.get("gw_peak_rss_mb") for r in runs]
            lines.append(" | ".join([name, t["name"], fmt_r(rps, 0), fmt_r(p50, 2), fmt_r(p99, 2),
                                     fmt_r(add50, 2) if add50 else "", fmt_r(add99, 2) if add99 else "",
                                     fmt_r(t50, 2) if t50 else "", fmt_r(t99, 2) if t99 else "",
                                     fmt_r(ratio, 3) if ratio else "", str(err),
                                     fmt_r(cpu, 2) if any(cpu) else "", fmt_r(rss, 0) if any(rss) else ""]))
    return "\n".join(lines)


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description="direct vs gateway, interleaved")
    ap.add_argument("--gateways", default="litellm", help="comma list of names in gateways.json ('' for none)")
    ap.add_argument("--gateways-file", default=os.path.join(BENCH, "gateways.json"))
    ap.add_argument("--gateway-json", action="append", default=[], help="inline gateway spec (repeatable)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--scenarios", default="", help="comma list of scenario names (default all)")
    ap.add_argument("--pin", choices=("split", "none"), default="split" if (os.cpu_count() or 1) >= 2 else "none")
    ap.add_argument("--max-seconds", type=float, default=10.0, help="time cap of each load run")
    ap.add_argument("--prompt-chars", type=int, default=200)
    ap.add_argument("--upstream-port", type=int, default=9000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--baseline", default="",
                    help="gateway whose CPU per call the others are divided by, per repeat (e.g. the bare forward)")
    args = ap.parse_args()
    load_before = loadavg()

    ncpu = os.cpu_count() or 1
    if args.pin == "split":
        tools_cpus, gw_cpus = "0", ",".join(str(i) for i in range(1, ncpu))
        workers = ncpu - 1
    else:
        tools_cpus, gw_cpus, workers = None, None, ncpu

    specs = []
    if args.gateways:
        with open(args.gateways_file) as f:
            known = json.load(f)
        for n in args.gateways.split(","):
            n = n.strip()
            if n not in known:
                sys.exit("unknown gateway %r (known: %s)" % (n, ", ".join(k for k in known if not k.startswith("_"))))
            s = dict(known[n])
            s["name"] = n
            specs.append(s)
    for js in args.gateway_json:
        specs.append(json.loads(js))
    def fill(o):
        if isinstance(o, str):
            return (o.replace("{bench}", BENCH).replace("{workers}", str(workers))
                    .replace("{upstream_port}", str(args.upstream_port)))
        if isinstance(o, dict):
            return {k: fill(v) for k, v in o.items()}
        return o

    specs = [fill(s) for s in specs]
    scenarios = [s for s in SCENARIOS if not args.scenarios or s[0] in args.scenarios.split(",")]

    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = "/tmp/bench-logs"
    os.makedirs(logdir, exist_ok=True)
    procs = []

    def cleanup(*_):
        for name, p in reversed(procs):
            stop(p, name)

    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
    try:
        up = start("exec %s %s --port %d" % (PY, os.path.join(BENCH, "fake_upstream.py"), args.upstream_port),
                   logfile=os.path.join(logdir, "fake_upstream.log"), cpus=tools_cpus)
        procs.append(("fake_upstream", up))
        if not wait_http("http://127.0.0.1:%d/health" % args.upstream_port, 15, up):
            sys.exit("fake upstream did not start (port %d busy?)" % args.upstream_port)
        direct = {"name": "direct", "base_url": "http://127.0.0.1:%d" % args.upstream_port, "key": "sk-direct",
                  "openai_model": "gpt-fake", "anthropic_model": "claude-fake-sonnet"}
        targets = [direct]
        roots = {}
        for s in specs:
            if s.get("start"):
                cmd = s["start"]
                log("starting %s: %s" % (s["name"], cmd))
                p = start(cmd, env=s.get("env"), cwd=s.get("cwd"),
                          logfile=os.path.join(logdir, "gw-%s.log" % s["name"]), cpus=gw_cpus)
                procs.append((s["name"], p))
                roots[s["name"]] = p.pid
                t0 = time.time()
                if not wait_http(s["health"], s.get("startup_timeout", 120), p):
                    log("  %s did not become healthy; see %s/gw-%s.log -- skipped" % (s["name"], logdir, s["name"]))
                    continue
                log("  %s healthy after %.1f s; idle RSS %.0f MB" % (s["name"], time.time() - t0,
                                                                    tree_usage(p.pid)[0] / 2 ** 20))
            s["protocols"] = set()
            for proto in ("openai", "anthropic"):
                if not s.get(proto + "_model"):
                    continue
                for stream in (False, True):
                    ok, errs = smoke(s, proto, stream, tools_cpus)
                    log("  smoke %s %s %s: %s" % (s["name"], proto, "stream" if stream else "non-stream",
                                                  "ok" if ok else "FAILED %s -- skipped" % errs))
                    if ok:
                        s["protocols"].add((proto, stream))
            targets.append(s)
        direct["protocols"] = {(p, st) for p in ("openai", "anthropic") for st in (False, True)}

        results = {}
        for rep in range(args.repeats):
            for sc in scenarios:
                order = targets if rep % 2 == 0 else list(reversed(targets))
                for t in order:
                    if (sc[1], sc[2]) not in t["protocols"]:
                        continue
                    root = roots.get(t["name"])
                    sampler = None
                    others = {o: tree_usage(p)[1] for o, p in roots.items() if o != t["name"]}
                    if root:
                        rss0, cpu0 = tree_usage(root)
                        sampler = Sampler(root)
                        sampler.start()
                    r = loadgen(t, sc, args, tools_cpus)
                    if r:
                        r["others_cpu_s"] = {o: round(tree_usage(roots[o])[1] - c, 3) for o, c in others.items()}
                    if sampler:
                        sampler.halt.set()
                        sampler.join()
                        rss1, cpu1 = tree_usage(root)
                        if r:
                            warm = 10 if len(sc) > 6 else min(100, 2 * sc[3])
                            n = r["requests"] + warm if r["requests"] else 0
                            r["gw_cpu_ms_per_req"] = round((cpu1 - cpu0) * 1000.0 / n, 3) if n else None
                            r["gw_peak_rss_mb"] = round(sampler.peak / 2 ** 20, 1)
                            time.sleep(0.5)  # work the gateway left behind after its last answer
                            r["tail_cpu_s"] = round(tree_usage(root)[1] - cpu1, 3)
                    if r is None:
                        continue
                    r["repeat"] = rep
                    results.setdefault((sc[0], t["name"]), []).append(r)
                    log("  rep %d %-20s %-10s rps %8.1f p50 %8.2f p99 %8.2f err %d" % (
                        rep + 1, sc[0], t["name"], r["rps"], r["lat_ms"]["p50"] or -1,
                        r["lat_ms"]["p99"] or -1, r["errors"]))
        table = report(results, scenarios, targets)
        meta = {"when": stamp, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "pin": args.pin,
                "tools_cpus": tools_cpus, "gateway_cpus": gw_cpus,
                "gateway_workers": workers, "cpus": ncpu, "repeats": args.repeats,
                "max_seconds": args.max_seconds, "prompt_chars": args.prompt_chars,
                "loadavg_before": load_before, "loadavg_after": loadavg(), "baseline": args.baseline or None,
                "gateways": [{k: v for k, v in s.items() if k != "protocols"} for s in specs]}
        meta.update(machine())
        md = summary(results, scenarios, targets, args.baseline, meta)
        ratios = {sc[0]: {t["name"]: cpu_ratios(results, sc[0], t["name"], args.baseline)
                          for t in targets if t["name"] not in ("direct", args.baseline)}
                  for sc in scenarios} if args.baseline else {}
        print("\n# compare %s  pin=%s (tools on %s, gateway on %s, %d worker(s)), %d repeat(s)\n" % (
            stamp, args.pin, tools_cpus or "any", gw_cpus or "any", workers, args.repeats))
        print("median [min..max] over repeats; +p50/+p99 = gateway minus DIRECT of the same repeat;")
        print("rps ratio = gateway req/s / direct req/s; gw cpu = CPU of the gateway's process tree per request.\n")
        print(table)
        print("\n# summary (Markdown)\n")
        print(md)
        out = args.out or os.path.join(BENCH, "results", "compare-%s-%s.json" % (stamp, args.pin))
        with open(out, "w") as f:
            json.dump({"meta": meta, "table": table, "summary_md": md, "cpu_ratio_vs_baseline": ratios,
                       "runs": [dict(scenario=k[0], target=k[1], results=v) for k, v in results.items()]},
                      f, indent=1, default=list)
        print("\nwritten: %s" % out)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
