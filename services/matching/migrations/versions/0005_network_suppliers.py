"""networks (consortia) as the supplier of linkages and invitations

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 07:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows are firms: the server default fills them, and stays for inserts that omit it.
    with op.batch_alter_table('linkages') as batch:
        batch.add_column(sa.Column('supplier_kind', sa.String(length=10), nullable=False, server_default='firm'))
        batch.add_column(sa.Column('members', sa.JSON(), nullable=True))
    with op.batch_alter_table('request_invitations') as batch:
        batch.add_column(sa.Column('supplier_kind', sa.String(length=10), nullable=False, server_default='firm'))
        batch.add_column(sa.Column('members', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('awarded_members', sa.JSON(), nullable=True))
    op.create_table('request_invitation_members',
    sa.Column('invitation_id', sa.String(length=40), nullable=False),
    sa.Column('firm_id', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('invitation_id', 'firm_id', name=op.f('pk_request_invitation_members'))
    )
    op.create_index(
        op.f('ix_request_invitation_members_firm_id'), 'request_invitation_members', ['firm_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_request_invitation_members_firm_id'), table_name='request_invitation_members')
    op.drop_table('request_invitation_members')
    with op.batch_alter_table('request_invitations') as batch:
        batch.drop_column('awarded_members')
        batch.drop_column('members')
        batch.drop_column('supplier_kind')
    with op.batch_alter_table('linkages') as batch:
        batch.drop_column('members')
        batch.drop_column('supplier_kind')
