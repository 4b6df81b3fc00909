"""The gateway's blueprints and commands, registered on the app in one place."""

from __future__ import annotations

from flask import Flask

from . import (
    account_api,
    account_ops,
    api_paths,
    media,
    metrics_view,
    models_api,
    responses_store,
    status,
    views,
)


def register(app: Flask) -> None:
    assert account_ops.bp is account_api.bp  # its routes hang on the account API's blueprint

    for bp in (*views.BLUEPRINTS, models_api.bp, account_api.bp, status.bp, media.bp, metrics_view.bp):
        app.register_blueprint(bp)
    api_paths.init_app(app)
    app.cli.add_command(responses_store.expire_responses_command)
