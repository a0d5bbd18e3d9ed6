"""reporting:write: agencies and admins keep their programmes' results frameworks

Gives the new scope ``reporting:write`` (``POST``/``PATCH``/``DELETE`` under
``/v1/results``) to the admin and agency keys that hold every scope their role had
before (those issued with the role's defaults), as keys issued from now on get it.
A key issued with fewer scopes was restricted on purpose and stays as it is.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORTING_WRITE = "reporting:write"
# Per role: the scopes its keys had by default before this revision.
ROLES: dict[str, set[str]] = {
    "admin": {
        "registry:read",
        "registry:write",
        "matching:read",
        "matching:write",
        "reporting:read",
        "events:read",
        "events:write",
        "keys:admin",
    },
    "agency": {
        "registry:read",
        "registry:write",
        "matching:read",
        "matching:write",
        "reporting:read",
        "keys:issue",
        "events:read",
        "events:write",
    },
}

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
    keys = op.get_bind().execute(sa.select(api_keys.c.id, api_keys.c.role, api_keys.c.scopes)).all()
    _set_scopes(
        [
            (key_id, [*scopes, REPORTING_WRITE])
            for key_id, role, scopes in keys
            if role in ROLES and ROLES[role] <= set(scopes) and REPORTING_WRITE not in scopes
        ]
    )


def downgrade() -> None:
    holders = op.get_bind().execute(sa.select(api_keys.c.id, api_keys.c.scopes)).all()
    _set_scopes(
        [
            (key_id, [s for s in scopes if s != REPORTING_WRITE])
            for key_id, scopes in holders
            if REPORTING_WRITE in scopes
        ]
    )
