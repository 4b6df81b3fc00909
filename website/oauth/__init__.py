"""Connect an app: OAuth 2.0 authorization code with PKCE, so an app gets a ByteSpike sub-key with limits."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Bind the authorization server, the OAuth endpoints, the console's app pages and the CLI command."""
    from . import cli, server, views, views_apps  # noqa: F401 - views_apps adds routes to views.pages

    server.init_app(app)
    app.register_blueprint(views.api)
    app.register_blueprint(views.pages)
    app.cli.add_command(cli.register_app_command)
