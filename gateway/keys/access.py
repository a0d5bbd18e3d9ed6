"""Who may manage which API keys.

A key with ``keys:admin`` (admins) manages every key. A key with ``keys:issue``
(agencies) manages the keys of its own agency: it creates, rotates and revokes keys
of the roles in ``ISSUED_BY_AGENCIES`` for its agency's firms, brokers and staff,
and lists and reads every key of its agency. Another agency's keys do not exist for
it (404), so their ids reveal nothing.
"""

from __future__ import annotations

from gateway.keys.schemas import ApiKeyCreate
from gateway.keys.scopes import ISSUED_BY_AGENCIES, KEYS_ADMIN, KEYS_ISSUE
from gateway.tables import ApiKey
from services.common.errors import Forbidden, NotFound
from services.common.principal import Principal

ISSUED_BY_AGENCIES_TEXT = ", ".join(sorted(ISSUED_BY_AGENCIES))


def is_key_admin(principal: Principal) -> bool:
    return KEYS_ADMIN in principal.scopes


def require_key_issuer(principal: Principal) -> None:
    """403 unless ``principal`` manages keys: all of them, or its agency's."""
    if is_key_admin(principal):
        return
    if KEYS_ISSUE not in principal.scopes:
        raise Forbidden(f"This API key lacks the scope '{KEYS_ADMIN}' or '{KEYS_ISSUE}'")
    if principal.agency_id is None:
        raise Forbidden(f"The scope '{KEYS_ISSUE}' issues keys for an agency, and this key has none")


def check_may_issue(issuer: Principal, data: ApiKeyCreate) -> None:
    """403 unless ``issuer`` may create a key of ``data``'s role for ``data``'s agency."""
    if is_key_admin(issuer):
        return
    if data.role not in ISSUED_BY_AGENCIES:
        raise Forbidden(f"An agency key issues {ISSUED_BY_AGENCIES_TEXT} keys, not {data.role} keys")
    if data.agency_id is not None and data.agency_id != issuer.agency_id:
        raise Forbidden("An agency key issues keys for its own agency only")


def check_may_list(issuer: Principal, agency_id: str | None) -> str | None:
    """The agency whose keys ``issuer`` lists when asking for ``agency_id``'s (None: all)."""
    if is_key_admin(issuer):
        return agency_id
    if agency_id is not None and agency_id != issuer.agency_id:
        raise Forbidden("An agency key lists its own agency's keys only")
    return issuer.agency_id


def visible(issuer: Principal, row: ApiKey) -> ApiKey:
    """``row`` if ``issuer`` may read it; 404, as for a key that does not exist, if not."""
    if not is_key_admin(issuer) and row.agency_id != issuer.agency_id:
        raise NotFound(f"No API key with id '{row.id}'")
    return row


def manageable(issuer: Principal, row: ApiKey) -> ApiKey:
    """``row`` if ``issuer`` may rotate or revoke it; 404 or 403 if not."""
    visible(issuer, row)
    if not is_key_admin(issuer) and row.role not in ISSUED_BY_AGENCIES:
        raise Forbidden(f"Only an admin rotates or revokes {row.role} keys")
    return row
