"""Account API for owners and admins: the audit log and the webhook endpoint (API.md §4).

``GET /api/v1/me/audit`` pages the org's audit log, newest first
(``limit``, and ``before`` = the last id seen). ``GET``/``PUT
/api/v1/me/webhooks`` read and change the webhook URL, the events it
receives and its signing secret, as the console's settings page does; the
secret is returned once, when it is created or rotated. The routes hang on
``account_api.bp``, whose ``before_request`` judges them by ``core.roles``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from core import audit
from core import db as core_db
from core.errors import InvalidRequest
from core.models import Org
from core.signing import WEBHOOK_EVENTS
from core.webhooks import KEEP, URL_MAX, endpoint_url_ok, save_endpoint

# ``bp`` is re-exported: the blueprints module checks that these routes hang on the account API's blueprint.
from .account_api import bp as bp
from .account_api import caller, int_arg, json_response


@bp.get("/api/v1/me/audit")
def me_audit() -> Response:
    _, actor = caller()
    limit = int_arg("limit", 50, 1, 200)
    before = int_arg("before", 0, 0, 2**62) or None
    rows = audit.page(actor.org_id, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    return json_response({"object": "list", "data": [audit.as_json(r) for r in rows], "has_more": more,
                  "next_before": rows[-1]["id"] if more and rows else None})


def _hook_json(org: Org, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": "webhook_endpoint", "url": org.webhook_url,
        "events": list(org.webhook_events) if org.webhook_events is not None else list(WEBHOOK_EVENTS),
        "available_events": list(WEBHOOK_EVENTS), "secret_set": bool(org.webhook_secret),
    }
    if secret is not None:
        out["secret"] = secret  # shown this once
    return out


@bp.get("/api/v1/me/webhooks")
def get_webhooks() -> Response:
    _, actor = caller()
    org = core_db.session().get(Org, actor.org_id)
    assert org is not None
    return json_response(_hook_json(org))


def _read_hook_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    unknown = sorted(set(body) - {"url", "events", "rotate_secret"})
    if unknown:
        raise InvalidRequest(f"Unknown field '{unknown[0]}'.", param=unknown[0])
    url = body.get("url")
    if url is not None and (not isinstance(url, str) or len(url) > URL_MAX
                            or (url.strip() and not endpoint_url_ok(url.strip()))):
        raise InvalidRequest("url must start with https:// (at most 500 characters, no spaces or control characters), or be null.", param="url")
    events = body.get("events")
    if events is not None:
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise InvalidRequest("events must be a list of event names, or null for every event.", param="events")
        bad = sorted(set(events) - set(WEBHOOK_EVENTS))
        if bad:
            raise InvalidRequest(f"Unknown event '{bad[0]}'; known: {', '.join(WEBHOOK_EVENTS)}.", param="events")
    if not isinstance(body.get("rotate_secret", False), bool):
        raise InvalidRequest("rotate_secret must be true or false.", param="rotate_secret")
    return body


@bp.put("/api/v1/me/webhooks")
def put_webhooks() -> Response:
    _, actor = caller()
    body = _read_hook_body()
    url = ((body["url"] or "").strip() or None) if "url" in body else KEEP
    events = body["events"] if "events" in body else KEEP
    org, fresh = save_endpoint(actor.org_id, url=url,
                               events=sorted(set(events)) if isinstance(events, list) else events,
                               rotate_secret=bool(body.get("rotate_secret")))
    return json_response(_hook_json(org, fresh))
