"""firm code systems: activity codes as given in NACE Rev.2, NAICS 2017 or NIC 2008

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 04:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("firms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code_system", sa.String(length=12), server_default="isic4", nullable=False))
        batch_op.add_column(sa.Column("source_codes", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("firms", schema=None) as batch_op:
        batch_op.drop_column("source_codes")
        batch_op.drop_column("code_system")
