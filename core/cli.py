"""Operator commands: ``flask --app app <command>`` (placeholder: init-db only)."""

from __future__ import annotations

import click
from flask import Flask

from . import db as core_db
from .models import Base


def init_app(app: Flask) -> None:
    app.cli.add_command(init_db_command)


@click.command("init-db")
def init_db_command() -> None:
    """Create or migrate the schema and load the rate card; safe to run again."""
    Base.metadata.create_all(core_db.get_db().engine)
    click.echo("database ready")
