"""Operator command: ``flask --app app oauth-register-app`` (an app any org's members may connect)."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from . import service


@click.command("oauth-register-app")
@click.option("--name", required=True, help="the app's name, shown on the consent page")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True,
              help="repeat for several; http://127.0.0.1/... matches any port (desktop apps)")
@click.option("--confidential", is_flag=True, help="a server-side app that keeps a client secret")
@click.option("--logo-url", default=None, help="an https URL")
@with_appcontext
def register_app_command(name: str, redirect_uris: tuple[str, ...], confidential: bool, logo_url: str | None) -> None:
    """Register an OAuth app; print its client id (and, for a confidential app, its secret, shown once)."""
    try:
        app = service.register_app(name, list(redirect_uris), confidential=confidential, logo_url=logo_url)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"app {name!r} registered ({'confidential' if confidential else 'public, PKCE'})")
    if app.secret:
        click.echo(f"client_id: {app.client_id}")
        click.echo("client secret (shown once, store it now):")
        click.echo(app.secret)
    else:
        click.echo(app.client_id)
