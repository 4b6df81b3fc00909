"""The marketing home, ``/`` language negotiation and the site's error page."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from . import i18n

bp = Blueprint("marketing", __name__)


@bp.get("/")
def root():  # type: ignore[no-untyped-def]
    """Send visitors to their language's home; a frozen build serves the English home here."""
    if current_app.config.get("BYTESPIKE_FREEZING"):
        return home_page("en")
    lang = i18n.negotiate(request.headers.get("Accept-Language", ""))
    response = redirect(url_for("marketing.home", lang=lang), code=302)
    response.vary.add("Accept-Language")
    return response


@bp.get("/<lang>/")
def home():  # type: ignore[no-untyped-def]
    """Render the marketing home in the URL's language."""
    return home_page(i18n.current_lang())


def home_page(lang: str) -> str:
    """Render the home page for ``lang``."""
    from flask import g

    g.lang = lang
    return render_template("home.html", active_page="home")
