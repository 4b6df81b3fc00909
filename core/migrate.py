"""Schema migrations with Alembic, driven from code (no alembic.ini): ``flask init-db`` calls ``upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

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
        columns = {c["name"] for c in insp.get_columns("api_keys")}
        command.stamp(cfg, "0002" if "auth_version" in columns else FIRST_REVISION)
    command.upgrade(cfg, revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision from the models (a developer's command)."""
    command.revision(alembic_config(engine), message=message, autogenerate=True)
