"""Pricing page and model library."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("pricing", __name__, url_prefix="/<lang>")


@bp.get("/pricing/")
def index():  # type: ignore[no-untyped-def]
    """Render the rate card."""
    return render_template("stub.html", active_page="pricing")


@bp.get("/models/")
def models():  # type: ignore[no-untyped-def]
    """Render the model library."""
    return render_template("stub.html", active_page="models")
