"""The migration scripts build exactly the schema the models describe, on both backends."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from core import migrate
from core.models import Base

HEAD = ScriptDirectory.from_config(migrate.alembic_config(sa.create_engine("sqlite://"))).get_current_head()




def test_migrations_upgrade_matches_models(db_url):
    engine = sa.create_engine(db_url)
    try:
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # idempotent
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_migrations_adopt_a_schema_created_from_models(db_url):
    engine = sa.create_engine(db_url)
    try:
        Base.metadata.create_all(engine)
        migrate.upgrade(engine)
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        assert version == HEAD  # stamped at the revision its tables match, then upgraded to head
    finally:
        engine.dispose()


def test_migrations_carry_a_first_revision_database_to_head(db_url):
    engine = sa.create_engine(db_url)
    try:
        migrate.upgrade(engine, migrate.FIRST_REVISION)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO orgs (name, tier, preset, created_at) "
                                 "VALUES ('o', 'free', 'global', '2026-01-01 00:00:00')"))
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            assert compare_metadata(ctx, Base.metadata) == []
    finally:
        engine.dispose()
