"""Seed the certification vocabulary

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from services.registry.certifications.vocabulary import SEED_SCHEMES

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

schemes = sa.table(
    "certification_schemes",
    sa.column("code", sa.String),
    sa.column("name", sa.String),
    sa.column("category", sa.String),
    sa.column("issuer", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


outbox = sa.table(
    "outbox",
    sa.column("entity", sa.String),
    sa.column("entity_id", sa.String),
    sa.column("op", sa.String),
    sa.column("version", sa.Integer),
    sa.column("agency_id", sa.String),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("data", sa.JSON),
)


def upgrade() -> None:
    now = datetime.now(UTC)
    rows = [
        {"code": code, "name": name, "category": category, "issuer": issuer, "created_at": now}
        for code, name, category, issuer in SEED_SCHEMES
    ]
    op.bulk_insert(schemes, rows)
    # The vocabulary is part of the state a follower rebuilds from the change feed.
    op.bulk_insert(
        outbox,
        [
            {"entity": "certification_scheme", "entity_id": row["code"], "op": "created", "version": 1,
             "agency_id": None, "occurred_at": now,
             "data": {**row, "description": None, "created_at": now.isoformat()}}
            for row in rows
        ],
    )


def downgrade() -> None:
    codes = [code for code, *_ in SEED_SCHEMES]
    op.execute(outbox.delete().where(outbox.c.entity == "certification_scheme"))
    op.execute(schemes.delete().where(schemes.c.code.in_(codes)))
