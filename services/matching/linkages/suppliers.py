"""The suppliers a stored shortlist lists: its firms and, when it asked for consortia, its networks.

Linkages and requests for quotation take any of them as the supplier side: a firm
(ranked or a development candidate) or a network listed in the shortlist's consortia
(ranked or a development candidate), with the members the shortlist counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.matching.linkages.schemas import SupplierKind


@dataclass(frozen=True)
class Listed:
    supplier_id: str
    kind: SupplierKind
    item: dict[str, Any]  # the shortlist's item as stored: a ShortlistItem or a ConsortiumItem
    development: bool

    @property
    def members(self) -> list[dict[str, Any]] | None:
        """A network's members as the shortlist listed them (firm_id, name, share); None for a firm."""
        if self.kind is SupplierKind.firm:
            return None
        return [{"firm_id": m["firm_id"], "name": m["name"], "share": m["share"]} for m in self.item["members"]]

    @property
    def ranking(self) -> dict[str, Any]:
        """The item as an invitation keeps it: with ``supplier_id`` for a network too."""
        return self.item | {"supplier_id": self.supplier_id, "development": self.development}


def listed_suppliers(result: dict[str, Any]) -> dict[str, Listed]:
    """A stored shortlist's result: every supplier it lists, by id."""
    listed: dict[str, Listed] = {}
    consortia = result.get("consortia") or {}
    for items, kind, key, development in (
        (result.get("items"), SupplierKind.firm, "supplier_id", False),
        (result.get("development"), SupplierKind.firm, "supplier_id", True),
        (consortia.get("items"), SupplierKind.network, "network_id", False),
        (consortia.get("development"), SupplierKind.network, "network_id", True),
    ):
        for item in items or ():
            listed[item[key]] = Listed(item[key], kind, item, development)
    return listed
