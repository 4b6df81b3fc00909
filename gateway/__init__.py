"""The API gateway: /v1/*, /v1beta/*, /api/v1/*, /api/pricing and /api/status."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from . import account_api, media, status, views

    for bp in (*views.BLUEPRINTS, account_api.bp, status.bp, media.bp):
        app.register_blueprint(bp)
