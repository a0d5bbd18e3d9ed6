"""firm search: folded search columns, the typo vocabulary, trigram indexes on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 04:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_COLUMNS = ("search_name", "search_place", "search_text")
BATCH = 2000


def _trigram_extension(bind: sa.Connection) -> bool:
    """Whether pg_trgm is (or can be made) available: only then do the search columns get
    trigram indexes. Without it searches give the same results, by a sequential scan."""
    savepoint = bind.begin_nested()
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def _backfill(bind: sa.Connection) -> None:
    # The same functions the registry writes with, so old and new firms fold alike.
    from services.registry.firms.search import document_words, index_words_rows, search_columns

    firms = sa.table(
        "firms",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("locality", sa.String),
        sa.column("subdivision", sa.String),
        sa.column("capabilities", sa.Text),
        *(sa.column(name, sa.Text) for name in SEARCH_COLUMNS),
    )
    words_table = sa.table("search_words", sa.column("key", sa.String), sa.column("word", sa.String))
    update = (
        firms.update()
        .where(firms.c.id == sa.bindparam("firm_id"))
        .values({name: sa.bindparam(f"new_{name}") for name in SEARCH_COLUMNS})
    )
    words: set[str] = set()
    after = ""
    while True:
        rows = bind.execute(
            sa.select(firms.c.id, firms.c.name, firms.c.locality, firms.c.subdivision, firms.c.capabilities)
            .where(firms.c.id > after)
            .order_by(firms.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        updates = []
        for row in rows:
            values = dict(row._mapping)
            words |= document_words(values)
            updates.append({"firm_id": row.id} | {f"new_{k}": v for k, v in search_columns(values).items()})
        bind.execute(update, updates)
        after = rows[-1].id
    rows = index_words_rows(words)
    for start in range(0, len(rows), BATCH):
        bind.execute(words_table.insert(), rows[start : start + BATCH])


def upgrade() -> None:
    with op.batch_alter_table("firms", schema=None) as batch_op:
        for name in SEARCH_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Text(), server_default="", nullable=False))
    op.create_table(
        "search_words",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("word", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("key", "word", name=op.f("pk_search_words")),
    )
    bind = op.get_bind()
    _backfill(bind)
    if bind.dialect.name == "postgresql" and _trigram_extension(bind):
        for name in SEARCH_COLUMNS:
            op.execute(f"CREATE INDEX ix_firms_{name}_trgm ON firms USING gin ({name} gin_trgm_ops)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in SEARCH_COLUMNS:
            op.execute(f"DROP INDEX IF EXISTS ix_firms_{name}_trgm")
    op.drop_table("search_words")
    with op.batch_alter_table("firms", schema=None) as batch_op:
        for name in reversed(SEARCH_COLUMNS):
            batch_op.drop_column(name)
