"""The OAuth endpoints: ``/oauth/authorize`` (the consent page, in the console) and ``/oauth/token``.

Nothing here logs a request's query or body: the code travels only in the
redirect to the app and in the app's POST to ``/oauth/token``.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, current_app, redirect, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from core import accounts
from core import db as core_db
from core.models import Org
from website.console.auth import check_csrf, current_membership, memberships
from website.console.forms import sub_key_controls
from website.i18n import LANGS, negotiate, set_twins
from website.security import csp_allowing_form_target

from . import service
from .server import Consent, server

# /oauth/* is the protocol's address; the pages under /<lang>/console/oauth/ carry the console's CSRF and cookies.
api = Blueprint("oauth", __name__)
pages = Blueprint("oauth_console", __name__, url_prefix="/<lang>/console")


@pages.before_request
def _csrf() -> None:
    check_csrf()


@pages.after_request
def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers.setdefault("X-Frame-Options", "DENY")  # no consent page inside another site's frame
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    return resp


@pages.errorhandler(400)
@pages.errorhandler(403)
@pages.errorhandler(404)
def _error(err):  # type: ignore[no-untyped-def]
    return render_template("console/error.html", code=err.code, message=err.description), err.code


@api.get("/oauth/authorize")
def authorize_entry():  # type: ignore[no-untyped-def]
    """Send the browser to the consent page in the reader's language, query intact."""
    lang = negotiate(request.headers.get("Accept-Language", ""))
    query = request.query_string.decode("latin-1")
    return redirect(f"/{lang}/console/oauth/authorize" + (f"?{query}" if query else ""))


@api.post("/oauth/token")
def token():  # type: ignore[no-untyped-def]
    """Exchange a code (and its PKCE verifier, or the app's secret) for the app's ByteSpike key."""
    resp = server().create_token_response()
    resp.headers["Access-Control-Allow-Origin"] = "*"  # a browser app may exchange its own code (PKCE binds it)
    return resp


@api.get("/.well-known/oauth-authorization-server")
def metadata():  # type: ignore[no-untyped-def]
    """What a client needs to know, in RFC 8414's shape."""
    base = str(current_app.config.get("BYTESPIKE_PUBLIC_URL") or request.host_url).rstrip("/")
    return {
        "issuer": base, "authorization_endpoint": f"{base}/oauth/authorize", "token_endpoint": f"{base}/oauth/token",
        "response_types_supported": ["code"], "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"], "scopes_supported": list(service.SCOPES),
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
    }


def _oauth_error(err: OAuth2Error):  # type: ignore[no-untyped-def]
    """Back to the app with ``error`` and ``state`` when its redirect URI is known good; else a page here."""
    if err.redirect_uri:
        return server().handle_error_response(request, err)
    message = f"{err.error}: {err.get_error_description() or ''}".strip(": ")
    return render_template("console/error.html", code=400, message=message), 400


def _consent_from_form() -> Consent:
    """Read the org and the limits the person chose; ValueError names a bad field."""
    try:
        org_id = int(request.form.get("org_id") or "")
    except ValueError:
        raise ValueError(_("Choose an organisation.")) from None
    member = next((m for m in memberships() if m.org_id == org_id), None)
    if member is None:
        raise ValueError(_("Choose an organisation."))
    controls = sub_key_controls()
    limits: dict[str, Any] = {f: controls.get(f) for f in service.LIMIT_FIELDS}
    if limits["models"] is not None:
        limits["models"] = accounts.canonical_models(limits["models"])
    if limits["expires_in_days"] is not None and limits["expires_in_days"] < 1:
        raise ValueError(_("Expires in (days) must be at least 1."))
    return Consent(member_id=member.id, limits=limits)


@pages.route("/oauth/authorize", methods=["GET", "POST"])
@login_required
def authorize():  # type: ignore[no-untyped-def]
    """The consent page: which app, where it sends you back, what it may do, and the key's limits."""
    try:
        grant = server().get_consent_grant(end_user=current_user)
    except OAuth2Error as err:
        return _oauth_error(err)
    error = None
    if request.method == "POST":
        if request.form.get("decision") != "allow":
            return server().create_authorization_response(grant=grant, grant_user=None)  # access_denied
        try:
            return server().create_authorization_response(grant=grant, grant_user=_consent_from_form())
        except ValueError as exc:
            error = str(exc)
    app = grant.client.row
    query = request.query_string.decode("latin-1")
    set_twins({lang: f"/{lang}/console/oauth/authorize?{query}" for lang in LANGS})  # switching language keeps the request
    page = render_template(
        "console/oauth/consent.html", app=app, redirect_uri=grant.redirect_uri,
        scopes=grant.request.scope.split(), orgs=_org_options(), error=error, form=request.form,
        action=request.full_path, active=None,
    )
    # The answer to this form is a redirect to the app: the page's policy must let the form go there.
    return page, 400 if error else 200, {"Content-Security-Policy": csp_allowing_form_target(grant.redirect_uri)}


def _org_options() -> list[tuple[int, str, bool]]:
    """(org id, name, chosen) for each org the signed-in person belongs to; the console's current org first chosen."""
    s = core_db.session()
    chosen = int(request.form.get("org_id") or 0) if (request.form.get("org_id") or "").isdigit() else None
    chosen = chosen or current_membership().org_id
    return [(m.org_id, (s.get(Org, m.org_id) or Org(name="?")).name, m.org_id == chosen) for m in memberships()]
