"""The API gateway: /v1/*, /v1beta/*, /api/v1/* and /api/pricing."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from . import views  # noqa: F401 - routes attach themselves to the blueprints

    for bp in views.BLUEPRINTS:
        app.register_blueprint(bp)
