"""firm results indexed by firm and period end: the outcome indicators' per-firm look-ups

A firm's baseline and latest result are each found with ORDER BY period_end ... LIMIT 1
among its results; with an index on firm_id alone PostgreSQL walked the period_end index
instead (every firm's results, for each firm). The composite index serves both, and the
firm_id look-ups the single-column index served.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 14:00:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_firm_results_firm_id_period_end", "firm_results", ["firm_id", "period_end"], unique=False)
    op.drop_index(op.f("ix_firm_results_firm_id"), table_name="firm_results")


def downgrade() -> None:
    op.create_index(op.f("ix_firm_results_firm_id"), "firm_results", ["firm_id"], unique=False)
    op.drop_index("ix_firm_results_firm_id_period_end", table_name="firm_results")
