"""blog pages."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("blog", __name__, url_prefix="/<lang>/blog")


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    """Render the blog index."""
    return render_template("stub.html", active_page="blog")
