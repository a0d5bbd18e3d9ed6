"""Who reads a record owned by a principal (``owner_key``): one rule, as a predicate and as SQL.

Matching's records (standards, shortlists, linkages, requests, scorecards) and the
events made from them are read by their owner, by admins and viewers of no one agency
(every tenant's), and by a viewer key an agency issued (its agency's records).
``tests/events/test_visibility.py`` checks that the two forms agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_

from services.common.principal import Principal, Role, owner_key


def reads_all(principal: Principal) -> bool:
    """Admins, and viewers of no one agency, read every tenant's records."""
    return principal.is_admin or (principal.role is Role.viewer and principal.agency_id is None)


def reads_owned(principal: Principal, owner: str | None, agency_id: str | None) -> bool:
    """Whether ``principal`` reads a record of ``owner`` in ``agency_id``."""
    if reads_all(principal) or owner == owner_key(principal):
        return True
    return principal.role is Role.viewer and agency_id == principal.agency_id


def owned_rows(principal: Principal, owner: Any, agency_id: Any) -> ColumnElement[bool] | None:
    """The SQL form of ``reads_owned`` over the ``owner`` and ``agency_id`` columns; None: every row."""
    if reads_all(principal):
        return None
    mine = owner == owner_key(principal)
    if principal.role is Role.viewer:
        return or_(mine, agency_id == principal.agency_id)
    return mine  # type: ignore[no-any-return]
