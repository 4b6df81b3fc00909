"""The API gateway: /v1/*, /v1beta/*, /api/v1/*, /api/pricing and /api/status."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from . import account_api, api_paths, media, models_api, status, views

    for bp in (*views.BLUEPRINTS, models_api.bp, account_api.bp, status.bp, media.bp):
        app.register_blueprint(bp)
    api_paths.init_app(app)
