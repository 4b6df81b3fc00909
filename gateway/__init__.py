"""The API gateway: /v1/*, /v1beta/*, /api/v1/*, /api/pricing and /api/status."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from . import account_api, account_ops, api_paths, media, metrics_view, models_api, status, views

    assert account_ops.bp is account_api.bp  # its routes hang on the account API's blueprint

    for bp in (*views.BLUEPRINTS, models_api.bp, account_api.bp, status.bp, media.bp, metrics_view.bp):
        app.register_blueprint(bp)
    api_paths.init_app(app)
