"""firms' inclusion claims and women employees in the read model

Adds the columns and resets the registry feed's cursor, so the follower replays that
feed from the start and fills them on every firm (applying a change twice leaves the
same rows).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 11:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

feed_cursors = sa.table("feed_cursors", sa.column("feed", sa.String))


def upgrade() -> None:
    with op.batch_alter_table("firms") as batch:
        batch.add_column(sa.Column("women_owned", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("women_led", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("youth_led", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("women_employees", sa.Integer(), nullable=True))
    op.execute(feed_cursors.delete().where(feed_cursors.c.feed == "registry"))


def downgrade() -> None:
    with op.batch_alter_table("firms") as batch:
        batch.drop_column("women_employees")
        batch.drop_column("youth_led")
        batch.drop_column("women_led")
        batch.drop_column("women_owned")
