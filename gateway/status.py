"""Public status: ``GET /api/status``: per-model availability and latency over the last hour.

No authentication, CORS open, and nothing secret: channel names and circuit
states only, never keys or upstream URLs. With Redis configured the figures
cover every worker (per-minute counters shared there).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, jsonify

from .health import N_LAT, percentile

bp = Blueprint("status", __name__)

DEGRADED_AVAILABILITY = 0.99
MIN_REQUESTS = 20  # fewer calls than this in the hour say too little to call a model degraded


@bp.get("/api/status")
def api_status():  # type: ignore[no-untyped-def]
    from .routing import get_router

    resp = jsonify(get_router(current_app).status())
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = "public, max-age=5"
    return resp


def build_status(
    rows: list[dict[str, int]],
    circuits: dict[str, str],
    by_model: dict[str, list[str]],
    *,
    now_wall: float,
) -> dict[str, Any]:
    """Fold per-minute counters and circuit states into the public status document."""
    totals: dict[str, dict[str, Any]] = {m: {"n": 0, "ok": 0, "hist": [0] * N_LAT} for m in by_model}
    for row in rows:
        for f, v in row.items():
            kind, _, rest = f.partition("|")
            name, _, metric = rest.rpartition("|")
            if kind != "m" or name not in totals:
                continue
            t = totals[name]
            if metric in ("n", "ok"):
                t[metric] += v
            elif metric.startswith("h") and metric[1:].isdigit() and int(metric[1:]) < N_LAT:
                t["hist"][int(metric[1:])] += v
    models = []
    for model in sorted(by_model):
        t = totals[model]
        states = [circuits.get(c, "closed") for c in by_model[model]]
        avail = round(t["ok"] / t["n"], 4) if t["n"] else None
        if states and all(s == "open" for s in states):
            state = "outage"
        elif any(s != "closed" for s in states) or (
            avail is not None and t["n"] >= MIN_REQUESTS and avail < DEGRADED_AVAILABILITY
        ):
            state = "degraded"
        else:
            state = "operational"
        models.append({
            "model": model,
            "status": state,
            "availability": avail,
            "requests": t["n"],
            "latency_ms": {"p50": percentile(t["hist"], 0.5), "p95": percentile(t["hist"], 0.95)},
        })
    return {
        "status": _overall([m["status"] for m in models]),
        "window_s": 3600,
        "generated_at": dt.datetime.fromtimestamp(now_wall, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "models": models,
        "channels": [{"name": name, "circuit": state} for name, state in sorted(circuits.items())],
    }


def _overall(states: list[str]) -> str:
    """Name the service's state: operational, degraded, partial_outage or major_outage."""
    if states and all(s == "outage" for s in states):
        return "major_outage"
    if "outage" in states:
        return "partial_outage"
    if "degraded" in states:
        return "degraded"
    return "operational"
