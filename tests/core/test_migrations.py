"""The migration scripts build exactly the schema the models describe, on both backends."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core import migrate
from core.models import Base


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
        assert version == migrate.FIRST_REVISION
    finally:
        engine.dispose()
