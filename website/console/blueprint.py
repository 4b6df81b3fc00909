"""The console blueprint: every page under ``/<lang>/console/``, CSRF-checked, never cached."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from .auth import authorize_route, check_csrf

bp = Blueprint("console", __name__, url_prefix="/<lang>/console", static_folder="static",
               static_url_path="/static")


@bp.before_request
def _csrf() -> None:
    check_csrf()
    authorize_route()


@bp.after_request
def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers.setdefault("X-Frame-Options", "DENY")
    return resp


@bp.errorhandler(400)
@bp.errorhandler(403)
@bp.errorhandler(404)
def _error(err):  # type: ignore[no-untyped-def]
    return render_template("console/error.html", code=err.code, message=err.description), err.code
