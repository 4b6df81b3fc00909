"""Org members: invite links, roles (owner, admin, member), per-member quotas; switching orgs."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from core import db as core_db
from core.models import Membership, Org
from core.money import usd_str

from .auth import current_membership, memberships
from .blueprint import bp
from .forms import credits_field
from .services import members as member_service


def _member_of_org(member_id: int) -> Membership:
    """A membership of the current org, or 404."""
    target = member_service.member_of_org(current_membership().org_id, member_id)
    if target is None:
        abort(404)
    return target


@bp.get("/members")
@login_required
def members():  # type: ignore[no-untyped-def]
    me = current_membership()
    rows, invites = member_service.roster(me.org_id)
    return render_template("console/members.html", rows=rows, me=me, invites=invites, roles=member_service.ROLES,
                           invite_link=session.pop("invite_link", None), active="members", usd_str=usd_str)


@bp.post("/members/invite")
@login_required
def invite_member():  # type: ignore[no-untyped-def]
    me = current_membership()
    email = (request.form.get("email") or "").strip().lower() or None
    try:
        token = member_service.invite(me.org_id, request.form.get("role") or "member", email, int(current_user.id))
    except ValueError:
        abort(400)
    # Shown once, on the next page: only its hash is stored.
    session["invite_link"] = current_app.config["BYTESPIKE_PUBLIC_URL"].rstrip("/") + url_for("console.join", token=token)
    return redirect(url_for("console.members"))


@bp.route("/join/<token>", methods=["GET", "POST"])
@login_required
def join(token: str):  # type: ignore[no-untyped-def]
    invite = member_service.open_invite(token)
    if invite is None:
        abort(404)
    if invite.email and invite.email != current_user.email:
        abort(403)
    if request.method == "GET":
        org = core_db.session().get(Org, invite.org_id)
        return render_template("console/join.html", org=org, invite=invite, active=None)
    if member_service.accept_invite(invite, int(current_user.id), current_user.email) is member_service.Joined.GONE:
        abort(404)
    session["org_id"] = invite.org_id
    return redirect(url_for("console.dashboard"))


@bp.post("/members/<int:member_id>")
@login_required
def update_member(member_id: int):  # type: ignore[no-untyped-def]
    me = current_membership()
    target = _member_of_org(member_id)
    role = request.form.get("role") or target.role
    if not member_service.may_set_role(me, target, role):
        abort(403)
    if not member_service.keeps_an_owner(target, role):
        flash(_("An org keeps at least one owner."))
        return redirect(url_for("console.members"))
    try:
        quota, monthly = credits_field("quota_usd"), credits_field("monthly_quota_usd")
    except ValueError as exc:
        flash(str(exc))
        return redirect(url_for("console.members"))
    member_service.update_member(me, target, role, quota, monthly)
    return redirect(url_for("console.members"))


@bp.post("/members/<int:member_id>/remove")
@login_required
def remove_member(member_id: int):  # type: ignore[no-untyped-def]
    me = current_membership()
    target = _member_of_org(member_id)
    try:
        member_service.remove_member(me, target)
    except PermissionError:
        abort(403)
    return redirect(url_for("console.members"))


@bp.post("/org/switch")
@login_required
def switch_org():  # type: ignore[no-untyped-def]
    wanted = request.form.get("org_id", type=int)
    if wanted not in {m.org_id for m in memberships()}:
        abort(404)
    session["org_id"] = wanted
    return redirect(url_for("console.dashboard"))
