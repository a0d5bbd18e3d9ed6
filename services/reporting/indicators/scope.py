"""Which records a figure covers: the filters and the caller's tenancy, as SQL.

A ``Scope`` is the set of filters (programme, country, subdivision, cluster,
sector, owning agency). Each kind of record meets them in its own way, stated once
here and in docs/reporting.md:

- place (country, subdivision): the record's own place; networks take their
  cluster's place; brokers match a subdivision through the clusters they serve;
- programme, cluster and sector: through the clusters the record is attached to
  (a firm's, institution's or broker's ``cluster_ids``, a network's or activity's
  ``cluster_id``); an activity also by its own ``programme_id``; sector is the
  cluster's ISIC code, matched by prefix (a section letter by its divisions);
- owning agency: the record's ``agency_id``;
- shortlists, linkages and scorecards: through their suppliers (a shortlist is in
  scope when it lists at least one supplier in scope; a linkage or scorecard when
  its supplier is; a supplier may be a network, in scope as networks are);
- consortium shortlists: when they list at least one network in scope;
- requests for quotation: the owning agency is the buyer's (the request's
  ``agency_id``), the other filters go through the invited suppliers (an invitation
  when its supplier, a firm or a network, is in scope, a request when one of its
  invitations is).

With no filter at all, every record counts, including those attached to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, true

from services.common.codes import isic_section_divisions
from services.reporting.tables import Cluster, Firm, Network, table_of

CLUSTERS = table_of(Cluster)
FIRMS = table_of(Firm)
NETWORKS = table_of(Network)


def sector_prefixes(code: str) -> tuple[str, ...]:
    """An ISIC filter as prefixes of cluster sector codes: a section letter is itself and its divisions."""
    if code[:1].isalpha():
        return (code, *isic_section_divisions(code))
    return (code,)


@dataclass(frozen=True)
class Scope:
    agency_id: str | None = None
    programme_id: str | None = None
    country: str | None = None
    subdivision: str | None = None
    cluster_id: str | None = None
    sector: str | None = None

    @property
    def unrestricted(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    # --- building blocks ----------------------------------------------------------------

    def _cluster_terms(self, c: Any, *, place: bool) -> list[ColumnElement[bool]]:
        terms: list[ColumnElement[bool]] = []
        if self.programme_id is not None:
            terms.append(c.c.programme_id == self.programme_id)
        if self.cluster_id is not None:
            terms.append(c.c.id == self.cluster_id)
        if self.sector is not None:
            terms.append(or_(*(c.c.sector_isic.startswith(p, autoescape=True) for p in sector_prefixes(self.sector))))
        if place:
            if self.country is not None:
                terms.append(c.c.country == self.country)
            if self.subdivision is not None:
                terms.append(c.c.subdivision == self.subdivision)
        return terms

    def _own_place(self, table: Any, *, subdivision: bool = True) -> list[ColumnElement[bool]]:
        terms: list[ColumnElement[bool]] = []
        if self.country is not None:
            terms.append(table.c.country == self.country)
        if subdivision and self.subdivision is not None:
            terms.append(table.c.subdivision == self.subdivision)
        return terms

    def _agency(self, table: Any) -> list[ColumnElement[bool]]:
        return [table.c.agency_id == self.agency_id] if self.agency_id is not None else []

    def _through_links(self, link: Any, owner_key: str, owner_id: Any, *, place: bool) -> list[ColumnElement[bool]]:
        c, link = CLUSTERS.alias(), link.alias()  # aliases: never correlated with the outer query's tables
        terms = self._cluster_terms(c, place=place)
        if not terms:
            return []
        return [
            exists(
                select(1)
                .select_from(link.join(c, link.c.cluster_id == c.c.id))
                .where(link.c[owner_key] == owner_id, *terms)
            )
        ]

    # --- per kind of record ---------------------------------------------------------------

    def clusters(self, c: Any) -> ColumnElement[bool]:
        return and_(true(), *self._cluster_terms(c, place=True), *self._agency(c))

    def linked(self, table: Any, link: Any, owner_key: str) -> ColumnElement[bool]:
        """Firms and institutions: own place, clusters through their links."""
        return and_(
            true(),
            *self._own_place(table),
            *self._through_links(link, owner_key, table.c.id, place=False),
            *self._agency(table),
        )

    def brokers(self, b: Any, link: Any) -> ColumnElement[bool]:
        terms = self._own_place(b, subdivision=False)
        c, link = CLUSTERS.alias(), link.alias()
        cluster_terms = self._cluster_terms(c, place=False)
        if self.subdivision is not None:
            cluster_terms.append(c.c.subdivision == self.subdivision)
        if cluster_terms:
            terms.append(
                exists(
                    select(1)
                    .select_from(link.join(c, link.c.cluster_id == c.c.id))
                    .where(link.c.broker_id == b.c.id, *cluster_terms)
                )
            )
        return and_(true(), *terms, *self._agency(b))

    def networks(self, n: Any) -> ColumnElement[bool]:
        c = CLUSTERS.alias()
        terms = self._cluster_terms(c, place=True)
        through = [exists(select(1).where(c.c.id == n.c.cluster_id, *terms))] if terms else []
        return and_(true(), *through, *self._agency(n))

    def activities(self, a: Any) -> ColumnElement[bool]:
        terms = self._own_place(a)
        if self.cluster_id is not None:
            terms.append(a.c.cluster_id == self.cluster_id)
        c = CLUSTERS.alias()
        if self.programme_id is not None:
            in_cluster = exists(select(1).where(c.c.id == a.c.cluster_id, c.c.programme_id == self.programme_id))
            terms.append(or_(a.c.programme_id == self.programme_id, and_(a.c.programme_id.is_(None), in_cluster)))
        if self.sector is not None:
            s = CLUSTERS.alias()
            terms.append(
                exists(
                    select(1).where(s.c.id == a.c.cluster_id, *Scope(sector=self.sector)._cluster_terms(s, place=False))
                )
            )
        return and_(true(), *terms, *self._agency(a))

    def supplier(self, supplier_id: Any, firm_links: Any) -> ColumnElement[bool]:
        """Matching records, through the supplier they are about: a firm, or a network (a consortium)."""
        if self.unrestricted:
            return true()
        f = FIRMS.alias()
        firm = exists(select(1).where(f.c.id == supplier_id, self.linked(f, firm_links, "firm_id")))
        return or_(firm, self.network(supplier_id))

    def network(self, network_id: Any) -> ColumnElement[bool]:
        """Matching records about a network (a consortium), through that network."""
        if self.unrestricted:
            return true()
        n = NETWORKS.alias()
        return exists(select(1).where(n.c.id == network_id, self.networks(n)))

    def invitation(self, agency_id: Any, supplier_id: Any, firm_links: Any) -> ColumnElement[bool]:
        """An invitation to a request: the buyer's agency (``agency_id``), the rest through the supplier."""
        buyer = [agency_id == self.agency_id] if self.agency_id is not None else []
        return and_(true(), *buyer, replace(self, agency_id=None).supplier(supplier_id, firm_links))
