"""The playground."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("playground", __name__, url_prefix="/<lang>/playground")


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    """Render the playground."""
    return render_template("stub.html")
