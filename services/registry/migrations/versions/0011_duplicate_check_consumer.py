"""duplicate check as a change-feed consumer: candidates' feed_seq, jobs' last_change_seq

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Before this revision an import job checked its rows for duplicates itself, after
    # writing them; from it on the check follows the feed from its head. A job still
    # unfinished would leave the rows it wrote unchecked, so upgrading waits for it.
    unfinished = op.get_bind().execute(
        sa.text("SELECT id FROM import_jobs WHERE status IN ('queued', 'running') ORDER BY id")
    )
    jobs = [row[0] for row in unfinished]
    if jobs:
        raise RuntimeError(
            f"{len(jobs)} import job(s) unfinished ({', '.join(jobs[:5])}): let them finish with the "
            "registry's previous version, then upgrade (docs/imports.md, the duplicate check)"
        )
    with op.batch_alter_table("duplicate_candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feed_seq", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_change_seq", sa.BigInteger(), nullable=True))
    # Every firm written so far was checked in its own transaction: the consumer starts at
    # the feed's head instead of checking the whole registry again.
    op.execute(
        "INSERT INTO feed_cursors (feed, position, updated_at) "
        "SELECT 'duplicates', COALESCE(MAX(seq), 0), CURRENT_TIMESTAMP FROM outbox"
    )


def downgrade() -> None:
    op.execute("DELETE FROM feed_cursors WHERE feed LIKE 'duplicates%'")
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.drop_column("last_change_seq")
    with op.batch_alter_table("duplicate_candidates", schema=None) as batch_op:
        batch_op.drop_column("feed_seq")
