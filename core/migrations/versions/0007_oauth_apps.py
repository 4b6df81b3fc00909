"""OAuth apps: registered clients, their authorization codes, and the keys connected apps hold

Revision ID: 0007
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made straight from the models is stamped at an older revision but has these tables.
    if "oauth_clients" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table('oauth_clients',
    sa.Column('id', sa.String(length=48), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('logo_url', sa.String(length=500), nullable=True),
    sa.Column('redirect_uris', sa.JSON(), nullable=False),
    sa.Column('confidential', sa.Boolean(), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_oauth_clients_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_oauth_clients_org_id_orgs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_clients'))
    )
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_clients_org_id'), ['org_id'], unique=False)

    op.create_table('oauth_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=48), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2000), nullable=False),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=True),
    sa.Column('code_challenge_method', sa.String(length=10), nullable=True),
    sa.Column('limits', sa.JSON(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('key_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.id'], name=op.f('fk_oauth_codes_client_id_oauth_clients')),
    sa.ForeignKeyConstraint(['member_id'], ['memberships.id'], name=op.f('fk_oauth_codes_member_id_memberships'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_oauth_codes'))
    )
    with op.batch_alter_table('oauth_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_codes_client_id'), ['client_id'], unique=False)

    op.create_table('oauth_connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=48), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.id'], name=op.f('fk_oauth_connections_client_id_oauth_clients')),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_oauth_connections_key_id_api_keys')),
    sa.ForeignKeyConstraint(['member_id'], ['memberships.id'], name=op.f('fk_oauth_connections_member_id_memberships'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_oauth_connections_org_id_orgs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_connections')),
    sa.UniqueConstraint('key_id', name=op.f('uq_oauth_connections_key_id'))
    )
    with op.batch_alter_table('oauth_connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_connections_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_connections_org_id'), ['org_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('oauth_connections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_connections_org_id'))
        batch_op.drop_index(batch_op.f('ix_oauth_connections_client_id'))

    op.drop_table('oauth_connections')
    with op.batch_alter_table('oauth_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_codes_client_id'))

    op.drop_table('oauth_codes')
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_clients_org_id'))

    op.drop_table('oauth_clients')
