"""saved-standards alerts and their exactly-once publications

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 01:45:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('standards_alerts',
    sa.Column('standards_id', sa.String(length=40), nullable=False),
    sa.Column('min_score', sa.Float(), nullable=True),
    sa.Column('top_n', sa.Integer(), nullable=True),
    sa.Column('enabled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('standards_id', name=op.f('pk_standards_alerts'))
    )
    op.create_table('alert_publications',
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('change_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'key', name=op.f('pk_alert_publications'))
    )


def downgrade() -> None:
    op.drop_table('alert_publications')
    op.drop_table('standards_alerts')
