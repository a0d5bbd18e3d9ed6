"""firm results: firms' figures per year or quarter, for the firm outcome indicators

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 11:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "firm_results",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("firm_id", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("sales", sa.Float(), nullable=True),
        sa.Column("exports", sa.Float(), nullable=True),
        sa.Column("investments", sa.Float(), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column("women_employees", sa.Integer(), nullable=True),
        sa.Column("new_products", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firm_results")),
    )
    op.create_index(op.f("ix_firm_results_agency_id"), "firm_results", ["agency_id"], unique=False)
    op.create_index(op.f("ix_firm_results_firm_id"), "firm_results", ["firm_id"], unique=False)
    op.create_index(op.f("ix_firm_results_period_end"), "firm_results", ["period_end"], unique=False)


def downgrade() -> None:
    op.drop_table("firm_results")
