"""consortia: networks listed by shortlists, network suppliers of linkages and their members

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 07:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('shortlist_consortia',
    sa.Column('shortlist_id', sa.String(length=40), nullable=False),
    sa.Column('listed_as', sa.String(length=12), nullable=False),
    sa.Column('network_id', sa.String(length=40), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('shortlist_id', 'listed_as', 'network_id', name=op.f('pk_shortlist_consortia'))
    )
    op.create_index(op.f('ix_shortlist_consortia_network_id'), 'shortlist_consortia', ['network_id'], unique=False)
    op.create_table('linkage_members',
    sa.Column('linkage_id', sa.String(length=40), nullable=False),
    sa.Column('firm_id', sa.String(length=40), nullable=False),
    sa.Column('share', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('linkage_id', 'firm_id', name=op.f('pk_linkage_members'))
    )
    op.create_index(op.f('ix_linkage_members_firm_id'), 'linkage_members', ['firm_id'], unique=False)
    # Linkages read before are firms' (the feed had no networks as suppliers).
    with op.batch_alter_table('linkages') as batch:
        batch.add_column(sa.Column('supplier_kind', sa.String(length=10), nullable=False, server_default='firm'))


def downgrade() -> None:
    with op.batch_alter_table('linkages') as batch:
        batch.drop_column('supplier_kind')
    op.drop_index(op.f('ix_linkage_members_firm_id'), table_name='linkage_members')
    op.drop_table('linkage_members')
    op.drop_index(op.f('ix_shortlist_consortia_network_id'), table_name='shortlist_consortia')
    op.drop_table('shortlist_consortia')
