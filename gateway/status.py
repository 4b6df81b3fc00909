"""Public status: ``GET /api/status``: per-model availability and latency over the last hour.

No authentication, CORS open, and nothing secret: channel names and circuit
states only, never keys or upstream URLs. With Redis configured the figures
cover every worker (per-minute counters shared there). The document is
built by ``gateway.routing.stats``; this module only serves it.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from gateway.routing import get_router

bp = Blueprint("status", __name__)


@bp.get("/api/status")
def api_status() -> Response:
    resp = jsonify(get_router(current_app).status())
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = "public, max-age=5"
    return resp
