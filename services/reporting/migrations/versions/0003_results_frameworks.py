"""results frameworks; women among activity participants

Adds the programmes' results frameworks (``result_indicators`` and their
``result_targets``), the reporting service's own records, and the activities'
``women_participants`` column of the read model. The registry feed's cursor is reset
so the follower replays it from the start and fills the new column on every activity
(applying a change twice leaves the same rows: see ``tables.py``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 06:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

feed_cursors = sa.table("feed_cursors", sa.column("feed", sa.String))


def upgrade() -> None:
    op.create_table(
        "result_indicators",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("indicator", sa.String(length=60), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("statement", sa.String(length=500), nullable=False),
        sa.Column("baseline_value", sa.Float(), nullable=False),
        sa.Column("baseline_date", sa.Date(), nullable=False),
        sa.Column("means_of_verification", sa.String(length=1000), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_indicators")),
        sa.UniqueConstraint("programme_id", "indicator", name=op.f("uq_result_indicators_programme_id")),
    )
    with op.batch_alter_table("result_indicators", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_result_indicators_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_result_indicators_programme_id"), ["programme_id"], unique=False)
    op.create_table(
        "result_targets",
        sa.Column("result_indicator_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("start", sa.Date(), nullable=True),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("result_indicator_id", "position", name=op.f("pk_result_targets")),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("women_participants", sa.Integer(), nullable=True))
    op.execute(feed_cursors.delete().where(feed_cursors.c.feed == "registry"))


def downgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_column("women_participants")
    op.drop_table("result_targets")
    with op.batch_alter_table("result_indicators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_result_indicators_programme_id"))
        batch_op.drop_index(batch_op.f("ix_result_indicators_agency_id"))
    op.drop_table("result_indicators")
