"""The audit log: one call per action taken, from the view or service that took it.

``record`` appends a row in its own short transaction, after the action has
been committed; it never updates or deletes one (there is no function that
could). The actor comes from the request: the signed-in person (console), the
API key (account API, ``g.principal``), or nobody for the system (a payment
notification). The IP is ``request.remote_addr``, which ``ProxyFix`` rewrites
only when ``BYTESPIKE_TRUSTED_PROXIES`` says proxies stand in front.

Details never hold a secret: any key whose name says secret, token, password
or key material is dropped before the row is written.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import db as core_db
from .models import AuditEvent

log = logging.getLogger("bytespike.audit")
_t = AuditEvent.__table__
SECRET_WORDS = ("secret", "token", "password", "raw", "private", "hash", "signature")
ACTIONS = (
    "key.created", "key.revoked", "key.renamed",
    "member.invited", "member.joined", "member.updated", "member.removed",
    "webhook.updated", "webhook.secret_rotated", "org.preset_changed", "org.notifications_changed",
    "order.created", "payment.received",
    "oauth.app_connected", "oauth.app_revoked",
)


@dataclass(frozen=True)
class Who:
    user_id: int | None = None
    email: str | None = None
    key_id: str | None = None


def _scrub(details: dict[str, Any] | None) -> dict[str, Any] | None:
    if not details:
        return None
    out: dict[str, Any] = {}
    for k, v in details.items():
        if any(w in k.lower() for w in SECRET_WORDS):
            continue
        out[k] = v.isoformat() if isinstance(v, dt.datetime) else v
    return out or None


def current_actor() -> Who:
    """Who acts in this request: the API key of the account API, else the signed-in person, else nobody."""
    from flask import g, has_request_context

    if not has_request_context():
        return Who()
    principal = g.get("principal")
    if principal is not None:
        return Who(key_id=getattr(principal, "key_id", None))
    try:
        from flask_login import current_user

        if current_user and current_user.is_authenticated:
            return Who(user_id=int(current_user.id), email=getattr(current_user, "email", None))
    except Exception:  # noqa: BLE001 - no login manager on this app: the actor is unknown
        pass
    return Who()


def _client_ip() -> str | None:
    from flask import has_request_context, request

    return (request.remote_addr or None) if has_request_context() else None


def record(action: str, *, org_id: int | None, target: str | None = None,
           details: dict[str, Any] | None = None, actor: Who | None = None) -> None:
    """Append one row. A failure is logged loudly, not raised: the action itself already happened."""
    who = actor or current_actor()
    row = {
        "org_id": org_id, "actor_user_id": who.user_id, "actor_email": who.email, "actor_key_id": who.key_id,
        "action": action[:64], "target": (target or None) and str(target)[:200], "details": _scrub(details),
        "ip": (_client_ip() or "")[:64] or None, "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }
    try:
        with core_db.get_db().engine.begin() as conn:
            conn.execute(sa.insert(_t).values(**row))
    except Exception:  # noqa: BLE001
        log.exception("audit row not written: %s on org %s", action, org_id)


def page(org_id: int, *, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
    """The org's rows, newest first; ``before`` is the id of the last row of the previous page."""
    q = sa.select(_t).where(_t.c.org_id == org_id)
    if before is not None:
        q = q.where(_t.c.id < before)
    with core_db.get_db().engine.connect() as conn:
        rows = conn.execute(q.order_by(_t.c.id.desc()).limit(limit)).mappings().all()
    return [dict(r) for r in rows]


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """One row for the API: the actor as one object, the time in ISO 8601 UTC."""
    created = row["created_at"]
    return {
        "id": row["id"], "object": "audit_event", "action": row["action"], "target": row["target"],
        "actor": {"user_id": row["actor_user_id"], "email": row["actor_email"], "key_id": row["actor_key_id"]},
        "ip": row["ip"], "details": row["details"] or {},
        "created_at": created.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z") if created else None,
    }
