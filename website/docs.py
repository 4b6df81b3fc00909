"""docs pages."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("docs", __name__, url_prefix="/<lang>/docs")


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    """Render the docs index."""
    return render_template("stub.html", active_page="docs")
