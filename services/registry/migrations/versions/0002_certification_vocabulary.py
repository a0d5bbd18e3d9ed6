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


def upgrade() -> None:
    now = datetime.now(UTC)
    op.bulk_insert(
        schemes,
        [
            {"code": code, "name": name, "category": category, "issuer": issuer, "created_at": now}
            for code, name, category, issuer in SEED_SCHEMES
        ],
    )


def downgrade() -> None:
    codes = [code for code, *_ in SEED_SCHEMES]
    op.execute(schemes.delete().where(schemes.c.code.in_(codes)))
