"""events scopes: keys read events (and agencies, buyers and integrators keep webhooks)

Gives the new scopes of each role, ``events:read`` (``GET /v1/events``) and, for
the roles that may keep webhook endpoints, ``events:write``, to the keys that hold
every scope their role had before (those issued with the role's defaults), as keys
issued from now on get them. A key issued with fewer scopes was restricted on
purpose and stays as it is; an admin can issue a replacement.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENTS_SCOPES = ("events:read", "events:write")
# Per role: the scopes its keys had by default before, and the events scopes it gains.
ROLES: dict[str, tuple[set[str], list[str]]] = {
    "admin": (
        {"registry:read", "registry:write", "matching:read", "matching:write", "reporting:read", "keys:admin"},
        ["events:read", "events:write"],
    ),
    "agency": (
        {"registry:read", "registry:write", "matching:read", "matching:write", "reporting:read", "keys:issue"},
        ["events:read", "events:write"],
    ),
    "lead_firm": ({"registry:read", "matching:read", "matching:write"}, ["events:read", "events:write"]),
    "integrator": ({"registry:read", "matching:read", "matching:write"}, ["events:read", "events:write"]),
    "viewer": ({"registry:read", "matching:read", "reporting:read"}, ["events:read"]),
    "supplier": ({"registry:read", "matching:read", "matching:write"}, ["events:read"]),
    "broker": ({"registry:read", "matching:read", "matching:write"}, ["events:read"]),
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
    updates = []
    for key_id, role, scopes in keys:
        before, gained = ROLES.get(role, (None, []))
        if before is not None and before <= set(scopes) and not set(gained) <= set(scopes):
            updates.append((key_id, [*scopes, *(s for s in gained if s not in scopes)]))
    _set_scopes(updates)


def downgrade() -> None:
    holders = op.get_bind().execute(sa.select(api_keys.c.id, api_keys.c.scopes)).all()
    _set_scopes(
        [
            (key_id, [s for s in scopes if s not in EVENTS_SCOPES])
            for key_id, scopes in holders
            if set(EVENTS_SCOPES) & set(scopes)
        ]
    )
