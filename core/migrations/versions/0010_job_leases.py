"""job_leases: one row per scheduled job, so one process runs it per interval

Revision ID: 0010
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=False), nullable=False),
        sa.Column("holder", sa.String(120), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(timezone=False), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
