"""firm results: a firm's sales, exports, jobs and more per year or quarter

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 10:50:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "firm_results",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("firm_id", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("sales", sa.Float(), nullable=True),
        sa.Column("exports", sa.Float(), nullable=True),
        sa.Column("investments", sa.Float(), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column("women_employees", sa.Integer(), nullable=True),
        sa.Column("new_products", sa.Integer(), nullable=True),
        sa.Column("entered_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firm_results")),
        sa.UniqueConstraint("firm_id", "period", name="uq_firm_results_firm_id_period"),
    )
    with op.batch_alter_table("firm_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_firm_results_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_firm_results_firm_id"), ["firm_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_firm_results_period"), ["period"], unique=False)
        batch_op.create_index(batch_op.f("ix_firm_results_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_table("firm_results")
