"""firm profiles: the duplicate detector's normalised profile of each firm

Firms registered before this revision have none; the detector profiles them from
``firms`` when it meets them, as it did before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:51:33.058274
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "firm_profiles",
        sa.Column("firm_id", sa.String(length=40), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("firm_id", name=op.f("pk_firm_profiles")),
    )


def downgrade() -> None:
    op.drop_table("firm_profiles")
