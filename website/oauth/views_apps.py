"""Console pages for apps: the org's registered apps, and the apps connected to it (each with its key)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from core.models import Membership
from core.money import usd_str
from website.console.auth import current_membership

from . import service
from .views import pages


def _manages_apps(member: Membership) -> bool:
    return member.role in ("owner", "admin")


def _page(member: Membership, *, new_app: service.NewApp | None = None, error: str | None = None,
          status: int = 200) -> tuple[str, int]:
    apps = service.org_apps(member.org_id) if _manages_apps(member) else []
    return render_template("console/oauth/apps.html", connections=service.connections(member), apps=apps,
                           manages=_manages_apps(member), new_app=new_app, error=error, form=request.form,
                           active="apps", usd_str=usd_str), status


@pages.get("/apps")
@login_required
def apps():  # type: ignore[no-untyped-def]
    return _page(current_membership())


@pages.post("/apps")
@login_required
def register_app():  # type: ignore[no-untyped-def]
    """An owner or admin registers an app; a confidential app's secret appears on this response only."""
    member = current_membership()
    if not _manages_apps(member):
        abort(403)
    uris = (request.form.get("redirect_uris") or "").replace(",", "\n").splitlines()
    try:
        new_app = service.register_app(
            request.form.get("name") or "", uris, confidential=request.form.get("client_type") == "confidential",
            logo_url=request.form.get("logo_url"), org_id=member.org_id, created_by=int(current_user.id))
    except ValueError as exc:
        return _page(member, error=str(exc), status=400)
    return _page(member, new_app=new_app)


@pages.post("/apps/<client_id>/retire")
@login_required
def retire_app(client_id: str):  # type: ignore[no-untyped-def]
    member = current_membership()
    if not _manages_apps(member) or not service.retire_app(member.org_id, client_id):
        abort(404)
    flash(_("The app can no longer ask for keys. Keys it already holds stay until you revoke them."))
    return redirect(url_for("oauth_console.apps"))


@pages.post("/apps/connections/<int:connection_id>/revoke")
@login_required
def revoke_connection(connection_id: int):  # type: ignore[no-untyped-def]
    """Revoke the app's key: every worker refuses it from the next call."""
    if not service.revoke_connection(current_membership(), connection_id):
        abort(404)
    flash(_("Access revoked. The app's key no longer works."))
    return redirect(url_for("oauth_console.apps"))
