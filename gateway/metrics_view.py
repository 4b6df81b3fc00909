"""``GET /metrics``: Prometheus text format for operators, behind ``BYTESPIKE_METRICS_TOKEN``.

With no token configured the route answers 404, as if it did not exist: a
default install opens no door. With one, a scrape sends it as
``Authorization: Bearer <token>``; anything else is a 401.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, request

from core import metrics as core_metrics
from gateway.routing import get_router

bp = Blueprint("metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/metrics")
def metrics():  # type: ignore[no-untyped-def]
    token = current_app.config.get("BYTESPIKE_METRICS_TOKEN") or ""
    if not token:
        abort(404)
    sent = request.headers.get("Authorization", "")
    scheme, _, value = sent.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        return Response("metrics token required\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = core_metrics.exposition(current_app, get_router(current_app).circuit_states)
    return Response(body, status=200, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
