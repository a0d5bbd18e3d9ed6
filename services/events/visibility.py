"""Who may read an event: exactly the principals that may read its source record.

One rule, in two forms that ``tests/events/test_visibility.py`` checks agree:
``readable_events`` (a SQL filter, for listing) and ``can_read`` (a predicate on one
event row, for deciding which webhook endpoints receive it: an endpoint stores its
owner's principal fields).

Each event has an ``audience``:

- ``public``: registry records (programmes, clusters, firms, ...) and firm merges
  (ids only). The registry is the shared catalogue: any key reads it, so any key
  reads their events.
- ``owner``: matching records (shortlists, linkages, requests, scorecards, standards
  matches, certificate alerts). The rule of ``services.common.ownership``: the
  owner (``firm:<id>``, ``agency:<id>``, ``key:<id>``), admins, viewers of no one
  agency, and a viewer an agency issued for records of that agency.

Suppliers and brokers read the public events only: what the API shows them of
requests (their invitations) is a view of the buyer's record, not the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, and_, or_, true

from services.common.ownership import owned_rows, reads_owned
from services.common.principal import Principal


class Audience(StrEnum):
    public = "public"
    owner = "owner"


def can_read(principal: Principal, event: Mapping[str, Any] | RowMapping) -> bool:
    """Whether ``principal`` may read ``event`` (a row mapping with ``audience``, ``owner``, ``agency_id``)."""
    if principal.is_admin or Audience(event["audience"]) is Audience.public:
        return True
    return reads_owned(principal, event["owner"], event["agency_id"])


def readable_events(principal: Principal, table: Any) -> ColumnElement[bool]:
    """The SQL condition on ``table`` (the events table, or one with its tenancy columns)
    that selects the events ``principal`` may read."""
    if principal.is_admin:
        return true()
    c = table.c
    owned = owned_rows(principal, c.owner, c.agency_id)
    if owned is None:
        return true()
    return or_(c.audience == Audience.public.value, and_(c.audience == Audience.owner.value, owned))
