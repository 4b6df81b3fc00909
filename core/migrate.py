"""Schema migrations with Alembic, driven from code (no alembic.ini): ``flask init-db`` calls ``upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlalchemy.engine.reflection import Inspector

from .models import Base

SCRIPTS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a no-op when it is already there.

    A database whose tables were created straight from the models (no
    ``alembic_version`` yet) is stamped with the revision its tables match.
    """
    cfg = alembic_config(engine)
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    if "alembic_version" not in tables and "orgs" in tables:
        command.stamp(cfg, _matching_revision(engine, insp))
    command.upgrade(cfg, revision)


def _matching_revision(engine: Engine, insp: Inspector) -> str:
    """The revision a schema made from models matches: head when it equals today's models."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        if not compare_metadata(ctx, Base.metadata):
            return "head"
    columns = {c["name"] for c in insp.get_columns("api_keys")}
    return "0002" if "auth_version" in columns else FIRST_REVISION


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision from the models (a developer's command)."""
    command.revision(alembic_config(engine), message=message, autogenerate=True)
