"""reserve function: bytespike_reserve_many, a group of reservations in one statement (PostgreSQL only)

Revision ID: 0013
Revises: 0012
"""

from alembic import op

from core import ledger_fn

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        ledger_fn.install(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bytespike_reserve_many(jsonb)")
