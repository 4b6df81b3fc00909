"""wallets: drop the balance floor; a charge above its hold is taken whole (API.md §3)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = "ck_wallets_balance_nonneg"


def upgrade() -> None:
    # A schema created from the current models (then stamped at 0002) never had the floor.
    checks = sa.inspect(op.get_bind()).get_check_constraints("wallets")
    if any(c.get("name") == NAME for c in checks):
        with op.batch_alter_table("wallets") as batch:
            batch.drop_constraint(op.f(NAME), type_="check")


def downgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.create_check_constraint("balance_nonneg", "balance_credits >= 0")
