"""Org members: invite links, roles (owner, admin, member), per-member quotas; switching orgs."""

from __future__ import annotations

import datetime as dt
import secrets

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select, update

from core import audit, keys
from core import db as core_db
from core.models import ApiKey, Membership, Org, OrgInvite, User, utcnow
from core.money import usd_str

from .auth import current_membership, memberships, token_hash
from .blueprint import bp
from .views_keys import _credits

INVITE_TTL = dt.timedelta(days=7)
ROLES = ("owner", "admin", "member")


def _member_of_org(member_id: int) -> Membership:
    """A membership of the current org, or 404."""
    target = core_db.session().get(Membership, member_id)
    if target is None or target.org_id != current_membership().org_id:
        abort(404)
    return target


@bp.get("/members")
@login_required
def members():  # type: ignore[no-untyped-def]
    me = current_membership()
    s = core_db.session()
    rows = s.execute(select(Membership, User.email).join(User, User.id == Membership.user_id)
                     .where(Membership.org_id == me.org_id).order_by(Membership.id)).all()
    invites = s.scalars(select(OrgInvite).where(OrgInvite.org_id == me.org_id, OrgInvite.used_at.is_(None),
                                                OrgInvite.expires_at > utcnow())).all()
    return render_template("console/members.html", rows=rows, me=me, invites=invites, roles=ROLES,
                           invite_link=session.pop("invite_link", None), active="members", usd_str=usd_str)


@bp.post("/members/invite")
@login_required
def invite_member():  # type: ignore[no-untyped-def]
    me = current_membership()
    role = request.form.get("role") or "member"
    if role not in ("admin", "member"):
        abort(400)
    token = secrets.token_urlsafe(24)
    s = core_db.session()
    s.add(OrgInvite(token_hash=token_hash(token), org_id=me.org_id, role=role,
                    email=(request.form.get("email") or "").strip().lower() or None,
                    created_by=int(current_user.id), expires_at=utcnow() + INVITE_TTL))
    s.commit()
    audit.record("member.invited", org_id=me.org_id, target=(request.form.get("email") or "").strip().lower() or None,
                 details={"role": role})
    # Shown once, on the next page: only its hash is stored.
    session["invite_link"] = current_app.config["BYTESPIKE_PUBLIC_URL"].rstrip("/") + url_for("console.join", token=token)
    return redirect(url_for("console.members"))


@bp.route("/join/<token>", methods=["GET", "POST"])
@login_required
def join(token: str):  # type: ignore[no-untyped-def]
    s = core_db.session()
    invite = s.get(OrgInvite, token_hash(token))
    if invite is None or invite.used_at is not None or invite.expires_at < utcnow():
        abort(404)
    org = s.get(Org, invite.org_id)
    if invite.email and invite.email != current_user.email:
        abort(403)
    if request.method == "GET":
        return render_template("console/join.html", org=org, invite=invite, active=None)
    uid = int(current_user.id)
    if s.scalar(select(Membership.id).where(Membership.org_id == invite.org_id, Membership.user_id == uid)) is None:
        hit = s.execute(update(OrgInvite).where(OrgInvite.token_hash == invite.token_hash, OrgInvite.used_at.is_(None))
                        .values(used_at=utcnow()))
        if hit.rowcount != 1:  # type: ignore[attr-defined]
            s.rollback()
            abort(404)
        s.add(Membership(org_id=invite.org_id, user_id=uid, role=invite.role))
        s.commit()
        audit.record("member.joined", org_id=invite.org_id, target=current_user.email, details={"role": invite.role})
    session["org_id"] = invite.org_id
    return redirect(url_for("console.dashboard"))


@bp.post("/members/<int:member_id>")
@login_required
def update_member(member_id: int):  # type: ignore[no-untyped-def]
    me = current_membership()
    target = _member_of_org(member_id)
    role = request.form.get("role") or target.role
    if role not in ROLES or (me.role != "owner" and (role == "owner" or target.role == "owner")):
        abort(403)
    if target.role == "owner" and role != "owner" and _owner_count(me.org_id) <= 1:
        flash(_("An org keeps at least one owner."))
        return redirect(url_for("console.members"))
    before = {"role": target.role, "quota_credits": target.quota_credits,
              "monthly_quota_credits": target.monthly_quota_credits}
    try:
        target.quota_credits = _credits("quota_usd")
        target.monthly_quota_credits = _credits("monthly_quota_usd")
    except ValueError as exc:
        flash(str(exc))
        return redirect(url_for("console.members"))
    target.role = role
    core_db.session().commit()
    after = {"role": target.role, "quota_credits": target.quota_credits,
             "monthly_quota_credits": target.monthly_quota_credits}
    changed = {k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v}
    if changed:
        audit.record("member.updated", org_id=me.org_id, target=_email_of(target), details=changed)
    return redirect(url_for("console.members"))


@bp.post("/members/<int:member_id>/remove")
@login_required
def remove_member(member_id: int):  # type: ignore[no-untyped-def]
    me = current_membership()
    target = _member_of_org(member_id)
    if target.role == "owner" and (me.role != "owner" or _owner_count(me.org_id) <= 1):
        abort(403)
    s = core_db.session()
    # Their keys stop working with them; the key rows stay for the usage log.
    s.execute(update(ApiKey).where(ApiKey.member_id == target.id)
              .values(revoked_at=func.coalesce(ApiKey.revoked_at, utcnow()), member_id=None, **keys.version_bump()))
    who, role = _email_of(target), target.role
    s.delete(target)
    s.commit()
    audit.record("member.removed", org_id=me.org_id, target=who, details={"role": role})
    return redirect(url_for("console.members"))


def _email_of(member: Membership) -> str | None:
    return core_db.session().scalar(select(User.email).where(User.id == member.user_id))


def _owner_count(org_id: int) -> int:
    return len(core_db.session().scalars(select(Membership.id).where(Membership.org_id == org_id,
                                                                     Membership.role == "owner")).all())


@bp.post("/org/switch")
@login_required
def switch_org():  # type: ignore[no-untyped-def]
    wanted = request.form.get("org_id", type=int)
    if wanted not in {m.org_id for m in memberships()}:
        abort(404)
    session["org_id"] = wanted
    return redirect(url_for("console.dashboard"))
