"""key owners: broker keys name their broker; agency keys may issue keys

Adds ``api_keys.broker_id`` (a broker key's registry broker), and gives the new
scopes of the agency role, ``keys:issue`` (issue keys for its firms, brokers and
staff) and ``matching:write`` (answer requests and appeal scorecards for its
suppliers), to the agency keys that hold every scope an agency key had before
(those issued with the role's defaults), as keys issued from now on get them. An
agency key issued with fewer scopes was restricted on purpose and stays as it is; an
admin can issue a replacement.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 23:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS_ISSUE = "keys:issue"
NEW_AGENCY_SCOPES = [KEYS_ISSUE, "matching:write"]
AGENCY_SCOPES_BEFORE = {"registry:read", "registry:write", "matching:read", "reporting:read"}

api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.String),
    sa.column("role", sa.String),
    sa.column("scopes", sa.JSON),
)


def _set_scopes(rows: Sequence[tuple[str, list[str]]]) -> None:
    for key_id, scopes in rows:
        op.execute(api_keys.update().where(api_keys.c.id == key_id).values(scopes=scopes))


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("broker_id", sa.String(length=40), nullable=True))
    agency = sa.select(api_keys.c.id, api_keys.c.scopes).where(api_keys.c.role == "agency")
    agency_keys = op.get_bind().execute(agency).all()
    _set_scopes(
        [
            (key_id, [*scopes, *(s for s in NEW_AGENCY_SCOPES if s not in scopes)])
            for key_id, scopes in agency_keys
            if AGENCY_SCOPES_BEFORE <= set(scopes) and not set(NEW_AGENCY_SCOPES) <= set(scopes)
        ]
    )


def downgrade() -> None:
    holders = op.get_bind().execute(sa.select(api_keys.c.id, api_keys.c.scopes)).all()
    _set_scopes(
        [(key_id, [s for s in scopes if s != KEYS_ISSUE]) for key_id, scopes in holders if KEYS_ISSUE in scopes]
    )  # matching:write stays: agency keys could be issued with it before
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("broker_id")
