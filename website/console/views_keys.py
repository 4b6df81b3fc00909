"""API keys: mint (shown once), name, revoke; sub-keys with every control of ``POST /api/v1/keys``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from core import accounts, audit, roles
from core import db as core_db
from core.models import ApiKey, Membership
from core.money import usd_str, usd_to_credits

from .auth import current_actor, current_membership
from .blueprint import bp


def visible_keys(member: Membership) -> list[ApiKey]:
    """The keys in the member's scope (core.roles): the org's for owners and admins, their own for a member."""
    q = select(ApiKey).where(*roles.key_scope(current_actor()))
    return list(core_db.session().scalars(q.order_by(ApiKey.created_at.desc())))


def _own_key(member: Membership, key_id: str) -> ApiKey:
    """The key if it is in the member's scope; 404 otherwise, exactly as for a key that does not exist."""
    key = core_db.session().get(ApiKey, key_id)
    if not roles.owns_key(current_actor(), key):
        abort(404)
    assert key is not None
    return key


def _page(member: Membership, *, new_key: str | None = None, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    keys = visible_keys(member)
    masters = [k for k in keys if k.kind == "master" and k.revoked_at is None]
    return render_template("console/keys.html", keys=keys, masters=masters, new_key=new_key, error=error,
                           form=request.form, active="keys", usd_str=usd_str), status


@bp.get("/keys")
@login_required
def keys():  # type: ignore[no-untyped-def]
    return _page(current_membership())


@bp.post("/keys")
@login_required
def mint_key():  # type: ignore[no-untyped-def]
    """Mint a master key for the signed-in member; the full key appears on this response only."""
    member = current_membership()
    name = (request.form.get("name") or "").strip()[:200] or _("Untitled key")
    with core_db.get_db().engine.begin() as conn:
        key = accounts.insert_key(conn, org_id=member.org_id, member_id=member.id, parent_id=None,
                                  kind="master", name=name)
    audit.record("key.created", org_id=member.org_id, target=key.id, details={"name": name, "kind": "master"})
    return _page(member, new_key=key.raw)


def _credits(field: str) -> int | None:
    raw = (request.form.get(field) or "").strip()
    if not raw:
        return None
    try:
        usd = Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError(_("%(field)s must be an amount in USD", field=field)) from exc
    if not usd.is_finite() or len(raw) > 24:
        raise ValueError(_("%(field)s must be an amount in USD", field=field))
    if usd < 0:
        raise ValueError(_("%(field)s must not be negative", field=field))
    credits = usd_to_credits(usd)
    if credits > accounts.CREDITS_MAX:
        raise ValueError(_("%(field)s must be an amount in USD", field=field))
    return credits


def _int(field: str) -> int | None:
    raw = (request.form.get(field) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 10 or int(raw) > accounts.INT32_MAX:
        raise ValueError(_("%(field)s must be a whole number", field=field))
    return int(raw)


def _list(field: str) -> list[str] | None:
    items = [p.strip() for p in (request.form.get(field) or "").replace("\n", ",").split(",") if p.strip()]
    return items or None


def sub_key_controls() -> dict[str, Any]:
    """Read the sub-key form into the controls ``create_sub_key`` takes (amounts typed in USD)."""
    return {
        "quota_credits": _credits("quota_usd"),
        "models": _list("models"),
        "rate_limit_5h": _credits("rate_limit_5h_usd"),
        "rate_limit_1d": _credits("rate_limit_1d_usd"),
        "rate_limit_7d": _credits("rate_limit_7d_usd"),
        "rpm": _int("rpm"),
        "tpm": _int("tpm"),
        "expires_in_days": _int("expires_in_days"),
        "ip_allow": _list("ip_allow"),
        "ip_deny": _list("ip_deny"),
    }


@bp.post("/keys/sub")
@login_required
def mint_sub_key():  # type: ignore[no-untyped-def]
    member = current_membership()
    parent = _own_key(member, request.form.get("parent_id") or "")
    name = (request.form.get("name") or "").strip()
    try:
        key = accounts.create_sub_key(parent.id, name or _("Untitled sub-key"), **sub_key_controls())
    except (ValueError, LookupError, PermissionError) as exc:
        return _page(member, error=str(exc), status=400)
    audit.record("key.created", org_id=member.org_id, target=key.id,
                 details={"name": key.row.get("name"), "kind": "sub", "parent_id": parent.id})
    return _page(member, new_key=key.raw)


@bp.post("/keys/<key_id>/revoke")
@login_required
def revoke_key(key_id: str):  # type: ignore[no-untyped-def]
    member = current_membership()
    key = _own_key(member, key_id)
    if accounts.revoke_key(member.org_id, key.id):
        audit.record("key.revoked", org_id=member.org_id, target=key.id, details={"name": key.name})
    flash(_("Key %(name)s revoked.", name=key.name))
    return redirect(url_for("console.keys"))


@bp.post("/keys/<key_id>/rename")
@login_required
def rename_key(key_id: str):  # type: ignore[no-untyped-def]
    member = current_membership()
    key = _own_key(member, key_id)
    name = (request.form.get("name") or "").strip()[:200]
    if name and name != key.name:
        before, key.name = key.name, name
        core_db.session().commit()
        audit.record("key.renamed", org_id=member.org_id, target=key.id, details={"from": before, "to": name})
    return redirect(url_for("console.keys"))
