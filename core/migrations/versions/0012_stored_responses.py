"""stored_responses: Responses kept for previous_response_id and GET /v1/responses/{id}

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_responses",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=True),
        sa.Column("model", sa.String(length=120), nullable=False),
        sa.Column("previous_response_id", sa.String(length=64), nullable=True),
        sa.Column("input_items", sa.JSON(), nullable=False),
        sa.Column("conversation", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_stored_responses_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_responses")),
    )
    op.create_index(op.f("ix_stored_responses_org_id"), "stored_responses", ["org_id"])
    op.create_index(op.f("ix_stored_responses_expires_at"), "stored_responses", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_stored_responses_expires_at"), table_name="stored_responses")
    op.drop_index(op.f("ix_stored_responses_org_id"), table_name="stored_responses")
    op.drop_table("stored_responses")
