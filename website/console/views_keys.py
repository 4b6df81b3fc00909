"""API keys: mint (shown once), name, revoke; sub-keys with every control of ``POST /api/v1/keys``."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from core import db as core_db
from core import roles
from core.models import ApiKey, Membership
from core.money import usd_str

from .auth import current_actor, current_membership
from .blueprint import bp
from .forms import sub_key_controls
from .services import keys as key_service


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
    try:
        key = key_service.create_master_key(member, name)
    except ValueError as exc:
        return _page(member, error=str(exc), status=400)
    return _page(member, new_key=key.raw)


@bp.post("/keys/sub")
@login_required
def mint_sub_key():  # type: ignore[no-untyped-def]
    member = current_membership()
    parent = _own_key(member, request.form.get("parent_id") or "")
    name = (request.form.get("name") or "").strip()
    try:
        key = key_service.create_sub_key(member, parent, name or _("Untitled sub-key"), sub_key_controls())
    except (ValueError, LookupError, PermissionError) as exc:
        return _page(member, error=str(exc), status=400)
    return _page(member, new_key=key.raw)


@bp.post("/keys/<key_id>/revoke")
@login_required
def revoke_key(key_id: str):  # type: ignore[no-untyped-def]
    member = current_membership()
    key = _own_key(member, key_id)
    key_service.revoke_key(member, key)
    flash(_("Key %(name)s revoked.", name=key.name))
    return redirect(url_for("console.keys"))


@bp.post("/keys/<key_id>/rename")
@login_required
def rename_key(key_id: str):  # type: ignore[no-untyped-def]
    member = current_membership()
    key = _own_key(member, key_id)
    try:
        key_service.rename_key(member, key, (request.form.get("name") or "").strip()[:200])
    except ValueError as exc:
        return _page(member, error=str(exc), status=400)
    return redirect(url_for("console.keys"))
