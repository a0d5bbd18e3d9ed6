"""Turning buyer standards into an engine query, running it, and keeping the result."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.changefeed import PendingChange, change_rows, record_changes
from services.common.directwrite import Inserts
from services.common.errors import ServiceUnavailable
from services.common.ids import new_id
from services.common.jsontext import JSONText, json_bytes, with_members
from services.common.principal import Principal
from services.matching.catalogue.catalogue import Catalogue, ShortlistResult
from services.matching.catalogue.consortia import ConsortiumGap, RankedConsortium
from services.matching.catalogue.query import Query
from services.matching.catalogue.ranking import Gap, Ranked
from services.matching.ownership import owner_key
from services.matching.publish import change_of
from services.matching.shortlists.schemas import ShortlistPublic, ShortlistRequest
from services.matching.standards.schemas import Standards
from services.matching.standards.service import check_schemes, load_version
from services.matching.tables import OUTBOX, Shortlist, metadata

SHORTLISTS = metadata.tables[Shortlist.__tablename__]
# Built once: a Core insert costs less than the ORM's unit of work, and one statement
# object is compiled once (composing it for every shortlist cost more than running it).
INSERT_SHORTLISTS = insert(SHORTLISTS)


async def standards_of(
    session: AsyncSession, principal: Principal, request: ShortlistRequest
) -> tuple[Standards, int | None]:
    """The standards a shortlist request names: a saved version (and its number), or inline ones."""
    if request.standards_id is not None:
        return await load_version(session, principal, request.standards_id, request.standards_version)
    inline = (("constraints", request.constraints), ("criteria", request.criteria))
    return Standards(**{k: v for k, v in inline if v is not None}), None


def to_query(standards: Standards, request: ShortlistRequest, on_date: date) -> Query:
    c, s = standards.constraints, standards.criteria
    return Query(
        on_date=on_date,
        isic_codes=tuple(c.isic_codes),
        hs_codes=tuple(c.hs_codes),
        required_certifications=tuple(dict.fromkeys(c.required_certifications)),
        min_monthly_capacity=c.min_monthly_capacity,
        capacity_unit=c.capacity_unit,
        countries=tuple(c.countries),
        subdivisions=tuple(c.subdivisions),
        cluster_ids=tuple(c.cluster_ids),
        size_classes=tuple(z.value for z in c.size_classes),
        latitude=c.near.latitude if c.near else None,
        longitude=c.near.longitude if c.near else None,
        max_distance_km=c.max_distance_km,
        exclude_ids=tuple(c.exclude_supplier_ids),
        require_women_owned=c.require_women_owned,
        require_women_led=c.require_women_led,
        require_youth_led=c.require_youth_led,
        description=s.description,
        preferred_certifications=tuple(dict.fromkeys(s.preferred_certifications)),
        desired_monthly_capacity=s.desired_monthly_capacity,
        weights=s.weights.model_dump(),
        limit=request.limit,
        include_development=request.include_development,
        development_limit=request.development_limit if request.include_development else 0,
        include_consortia=consortia_asked(standards, request),
        consortium_limit=request.consortium_limit,
    )


def consortia_asked(standards: Standards, request: ShortlistRequest) -> bool:
    """The request's include_consortia, else the standards'."""
    return standards.include_consortia if request.include_consortia is None else request.include_consortia


def performance_basis(ranked: Ranked) -> str:
    """'4 scorecards from 2 buyers', or 'declared' (the firm's own figures, or none)."""
    if ranked.performance_basis is None:
        return "declared"
    scorecards, buyers = ranked.performance_basis
    return f"{scorecards} scorecards from {buyers} buyer{'s' if buyers != 1 else ''}"


# A shortlist is rendered from plain JSON data, built in the field order of its documented
# models (ShortlistPublic and the models it holds): building ten items of a dozen models
# each, validated or not, cost more than the rest of the response. The tests check that
# every document is what ShortlistPublic renders, byte for byte.


def card_json(ranked: Ranked, words: Mapping[int, str]) -> dict[str, Any] | None:
    """A listed supplier's ``SupplierCard``."""
    card = ranked.card
    if card is None:
        return None
    held = set(card.matched_terms)
    return {
        "distance_km": card.distance_km,
        "certificates": [{"scheme": c.scheme, "valid_until": c.valid_until} for c in card.certificates],
        "matched_words": [word for term, word in words.items() if term in held],  # in the description's order
        "monthly_capacity": card.monthly_capacity,
        "capacity_unit": card.capacity_unit,
    }


def gap_json(gap: Gap | None, *, consortium: bool = False) -> dict[str, Any] | None:
    """``GapPublic``, or for a consortium ``ConsortiumGapPublic`` (the member concerned)."""
    if gap is None:
        return None
    rendered = {
        "kind": gap.kind,
        "scheme": gap.scheme,
        "required_monthly_capacity": gap.required,
        "available_monthly_capacity": gap.available,
    }
    if consortium:
        rendered["member_id"] = gap.member_id if isinstance(gap, ConsortiumGap) else None
    return rendered


def listed_item(
    rank: int, ranked: Ranked, weights: dict[str, float], words: Mapping[int, str] = MappingProxyType({})
) -> dict[str, Any]:
    """One listed supplier, explained (``ShortlistItem``); ``words``: the query's terms as
    written (``ShortlistResult.words``)."""
    return {
        "rank": rank,
        "supplier_id": ranked.id,
        "name": ranked.name,
        "score": ranked.score,
        "criteria": criterion_scores(weights, ranked.values, ranked.contributions, performance_basis(ranked)),
        "gap": gap_json(ranked.gap),
        "card": card_json(ranked, words),
    }


def criterion_scores(
    weights: dict[str, float], values: Mapping[str, float], contributions: Mapping[str, float], basis: str | None
) -> list[dict[str, Any]]:
    """Each criterion's ``CriterionScore``."""
    return [
        {
            "criterion": c,
            "value": round(values[c], 9),
            "weight": round(weights[c], 9),
            "contribution": contributions[c],
            "basis": basis if c == "performance" else None,
        }
        for c in weights
    ]


def consortium_item(rank: int, ranked: RankedConsortium, weights: dict[str, float]) -> dict[str, Any]:
    """One listed consortium, explained (``ConsortiumItem``)."""
    return {
        "rank": rank,
        "network_id": ranked.id,
        "name": ranked.name,
        "score": ranked.score,
        "criteria": criterion_scores(weights, ranked.values, ranked.contributions, None),
        "monthly_capacity": ranked.monthly_capacity,
        "members": [
            {
                "firm_id": m.id,
                "name": m.name,
                "share": m.share,
                "contribution": m.contribution,
                "monthly_capacity": m.monthly_capacity,
                "capacity_unit": m.capacity_unit,
                "values": {c: round(v, 9) for c, v in m.values.items()},
            }
            for m in ranked.members
        ],
        "gap": gap_json(ranked.gap, consortium=True),
    }


def consortia_public(result: ShortlistResult, include_development: bool) -> dict[str, Any] | None:
    """The shortlist's ``ConsortiaPublic``, when consortia were asked for."""
    consortia = result.consortia
    if consortia is None:
        return None
    return {
        "eligible_count": consortia.eligible_count,
        "items": [consortium_item(i + 1, r, result.weights) for i, r in enumerate(consortia.items)],
        "development_count": consortia.development_count if include_development else None,
        "development": [consortium_item(i + 1, r, result.weights) for i, r in enumerate(consortia.development)]
        if include_development
        else None,
    }


async def run_shortlist(catalogue: Catalogue, query: Query) -> ShortlistResult:
    """The engine's answer. A single-firm query (about a millisecond at 1M suppliers, tens
    at worst) runs on the event loop: under the GIL a worker thread runs it no sooner,
    and handing it over and back cost as much CPU as the query under load (docs/benchmarks.md).
    A query with consortia (up to a hundred milliseconds) leaves the loop free in a thread."""
    if not catalogue.loaded.is_set() or catalogue.view is None:
        raise ServiceUnavailable("The supplier catalogue is still loading", headers={"Retry-After": "5"})
    if query.include_consortia:
        return await asyncio.to_thread(catalogue.query, query)
    return catalogue.query(query)


@dataclass(frozen=True)
class BuiltShortlist:
    """A shortlist computed but not yet stored, its JSON rendered once.

    ``document`` is the response body (a ``ShortlistPublic``); the stored result, the
    stored request and the change-feed row are cut from the same bytes (``request`` is
    the model's last field), so each is rendered once and all agree byte for byte.
    """

    columns: dict[str, Any]  # its row of ``shortlists``: plain data, no ORM object to build
    document: bytes
    change: PendingChange  # its change-feed row

    @property
    def id(self) -> str:
        return str(self.columns["id"])


async def build_shortlist(
    catalogue: Catalogue,
    *,
    principal: Principal,
    request: ShortlistRequest,
    standards: Standards,
    standards_id: str | None,
    standards_version: int | None,
) -> BuiltShortlist:
    """Run the query: the shortlist, not yet stored."""
    check_schemes(standards, catalogue.schemes)
    on_date = request.on_date or datetime.now(UTC).date()
    result = await run_shortlist(catalogue, to_query(standards, request, on_date))
    shortlist_id = new_id("sl")
    now = datetime.now(UTC)
    asked = request.model_dump(mode="json", exclude_none=True) | {"standards": standards.model_dump(mode="json")}
    result_json = {  # ShortlistPublic's fields but its last, the request
        "id": shortlist_id,
        "created_at": now,
        "standards_id": standards_id,
        "standards_version": standards_version,
        "catalogue_version": result.catalogue_version,
        "on_date": on_date,
        "weights": {c: round(w, 9) for c, w in result.weights.items()},
        "eligible_count": result.eligible_count,
        "items": [listed_item(i + 1, r, result.weights, result.words) for i, r in enumerate(result.items)],
        "development_count": result.development_count if request.include_development else None,
        "development": [listed_item(i + 1, r, result.weights, result.words) for i, r in enumerate(result.development)]
        if request.include_development
        else None,
        "consortia": consortia_public(result, request.include_development),
        "took_ms": round(result.seconds * 1000, 3),
    }
    stored_result = json_bytes(result_json)
    stored_request = json_bytes(asked)
    columns = {
        "id": shortlist_id,
        "owner": owner_key(principal),
        "firm_id": principal.firm_id,
        "agency_id": principal.agency_id,
        "created_at": now,
        "standards_id": standards_id,
        "standards_version": standards_version,
        "catalogue_version": result.catalogue_version,
        # The JSON columns take the text rendered above, as it is (``JSONText``).
        "request": JSONText(stored_request.decode()),
        "result": JSONText(stored_result.decode()),
    }
    document = with_members(stored_result, {"request": stored_request})
    return BuiltShortlist(columns, document, change_of("shortlist", columns, document))


async def store_shortlists(session: AsyncSession, shortlists: Sequence[BuiltShortlist]) -> None:
    """Write shortlists and their change-feed rows in ``session``'s transaction (a request
    that stores its Idempotency-Key record with its shortlist)."""
    await session.execute(INSERT_SHORTLISTS, [shortlist.columns for shortlist in shortlists])
    await record_changes(session, OUTBOX, [shortlist.change for shortlist in shortlists])


def shortlist_inserts(shortlists: Sequence[BuiltShortlist]) -> Inserts:
    """The same rows as ``store_shortlists``, for the group commit: every shortlist waiting
    in one transaction, one statement a table."""
    changes = [shortlist.change for shortlist in shortlists]
    return Inserts(
        tables=[(SHORTLISTS, [shortlist.columns for shortlist in shortlists]), (OUTBOX, change_rows(changes))],
        log_entities={change.entity for change in changes},
    )


async def create_shortlist(
    session: AsyncSession,
    catalogue: Catalogue,
    *,
    principal: Principal,
    request: ShortlistRequest,
    standards: Standards,
    standards_id: str | None,
    standards_version: int | None,
) -> BuiltShortlist:
    """Run the query and store the shortlist in ``session``'s transaction."""
    shortlist = await build_shortlist(
        catalogue,
        principal=principal,
        request=request,
        standards=standards,
        standards_id=standards_id,
        standards_version=standards_version,
    )
    await store_shortlists(session, [shortlist])
    return shortlist


def public_of(row: Shortlist) -> ShortlistPublic:
    return ShortlistPublic.model_validate(row.result | {"request": row.request})
