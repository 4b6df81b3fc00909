"""The audit table is append-only in the database itself (migrated schema, SQLite and PostgreSQL),
and ``core.audit`` keeps secrets out of its details."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core import audit, migrate
from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path):
    """A database of its own: the shared test database is emptied with DELETE, which this table refuses."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def test_audit_rows_cannot_be_changed_or_deleted(fresh_url):
    engine = sa.create_engine(fresh_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO orgs (name, tier, preset, created_at) "
                                 "VALUES ('o', 'free', 'global', '2026-01-01 00:00:00')"))
            org = conn.execute(sa.text("SELECT id FROM orgs")).scalar_one()
            conn.execute(sa.text("INSERT INTO audit_log (org_id, action, created_at) "
                                 "VALUES (:o, 'key.revoked', '2026-01-01 00:00:00')"), {"o": org})
        for stmt in ("UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
                conn.execute(sa.text(stmt))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT action FROM audit_log")).scalars().all() == ["key.revoked"]
    finally:
        engine.dispose()


def test_details_drop_secrets():
    kept = audit._scrub({"role": "admin", "webhook_secret": "whsec_x", "raw_key": "sk-byts-1", "password": "p",
                         "key_id": "key_1"})
    assert kept == {"role": "admin", "key_id": "key_1"}
