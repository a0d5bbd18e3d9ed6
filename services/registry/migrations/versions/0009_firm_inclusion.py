"""firm inclusion: women-owned, women-led and youth-led claims, women employees

Firms registered before this revision record none (null: not recorded).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 11:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("firms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("women_employees", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("women_owned", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("women_led", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("youth_led", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("firms", schema=None) as batch_op:
        batch_op.drop_column("youth_led")
        batch_op.drop_column("women_led")
        batch_op.drop_column("women_owned")
        batch_op.drop_column("women_employees")
