"""Who may read reports, and what a request's filters mean: scope, period, freshness.

Tenancy: admins and viewers (M&E officers) read every figure and may filter by
``agency_id``; an agency reads the figures of its own records only (its
programmes, clusters, firms, ... and the shortlists and linkages of its suppliers):
its scope always carries its agency, and naming another agency is 403. Programme
and cluster filters must name records the caller can see (422 otherwise, so ids of
another tenant's records reveal nothing). Other roles get 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.changefeed import FeedFollower
from services.common.errors import Forbidden, invalid_field
from services.common.principal import Principal, Role, require_roles
from services.reporting.indicators.definitions import BY_KEY
from services.reporting.indicators.schemas import FeedFreshness, ScopeQuery, SeriesQuery
from services.reporting.indicators.scope import Scope
from services.reporting.indicators.service import (
    Bucket,
    Period,
    bucket_count,
    buckets,
    default_series_start,
    feed_states,
)
from services.reporting.tables import Agency, Cluster, Programme, table_of

READERS = (Role.admin, Role.viewer, Role.agency)
ReaderDep = Annotated[Principal, Depends(require_roles(*READERS))]
FEEDS = ("registry", "matching")


@dataclass(frozen=True)
class Report:
    """What one reporting request is about."""

    scope: Scope
    period: Period
    requested_start: date | None  # as asked, before series defaults


def today() -> date:
    return datetime.now(UTC).date()


async def _visible(
    session: AsyncSession, model: type[Programme] | type[Cluster], record_id: str, agency_id: str | None
) -> bool:
    table = table_of(model)
    statement = select(table.c.id).where(table.c.id == record_id)
    if agency_id is not None:
        statement = statement.where(table.c.agency_id == agency_id)
    return await session.scalar(statement) is not None


async def resolve(session: AsyncSession, principal: Principal, query: ScopeQuery) -> Report:
    """The scope and period of ``query`` for ``principal``; 403 or 422 when they cannot be."""
    agency_id = query.agency_id
    if principal.role is Role.agency or (principal.role is Role.viewer and principal.agency_id):
        if agency_id is not None and agency_id != principal.agency_id:
            raise Forbidden("An agency's key reads its own agency's figures only")
        agency_id = principal.agency_id
    elif agency_id is not None:
        agencies = table_of(Agency)
        if await session.scalar(select(agencies.c.id).where(agencies.c.id == agency_id)) is None:
            raise invalid_field("agency_id", f"no agency '{agency_id}'", "unknown", "query")
    if query.country and query.subdivision and not query.subdivision.startswith(query.country + "-"):
        raise invalid_field(
            "subdivision", f"{query.subdivision} is not in country {query.country}", "mismatch", "query"
        )
    for name, model in (("programme_id", Programme), ("cluster_id", Cluster)):
        record_id = getattr(query, name)
        if record_id is not None and not await _visible(session, model, record_id, agency_id):
            raise invalid_field(name, f"no {name.removesuffix('_id')} '{record_id}'", "unknown", "query")
    end = query.end or today()
    if query.start is not None and query.start > end:
        raise invalid_field("from", f"{query.start} is after the period's last day ({end})", "inverted_period", "query")
    scope = Scope(
        agency_id=agency_id,
        programme_id=query.programme_id,
        country=query.country,
        subdivision=query.subdivision,
        cluster_id=query.cluster_id,
        sector=query.sector,
    )
    return Report(scope=scope, period=Period(query.start, end), requested_start=query.start)


def series_buckets(report: Report, query: SeriesQuery, max_periods: int) -> list[Bucket]:
    """The months or quarters of a series: the period's, or the last twelve up to its end."""
    start = report.period.start or default_series_start(report.period.end, query.granularity)
    count = bucket_count(start, report.period.end, query.granularity)
    if count > max_periods:
        raise invalid_field(
            "from",
            f"{count} {query.granularity}s is more than the {max_periods} a series may have",
            "too_many_periods",
            "query",
        )
    return buckets(start, report.period.end, query.granularity)


def indicator_keys(query: SeriesQuery) -> list[str]:
    for i, key in enumerate(query.indicator):
        if key not in BY_KEY:
            raise invalid_field(
                f"indicator.{i}",
                f"'{key}' is not an indicator (see /v1/indicators/definitions)",
                "unknown_indicator",
                "query",
            )
    return list(dict.fromkeys(query.indicator)) or list(BY_KEY)


async def freshness(app: FastAPI, session: AsyncSession) -> tuple[dict[str, FeedFreshness], datetime | None]:
    """Each feed's state, and the time of the last change applied from any."""
    states = await feed_states(session)
    followers: dict[str, FeedFollower] = app.state.followers
    result: dict[str, FeedFreshness] = {}
    for feed in FEEDS:
        state = states.get(feed, {})
        follower = followers.get(feed)
        status = "starting"
        error = None
        if follower is not None and follower.last_error is not None:
            status, error = "unreachable", follower.last_error
        elif follower is not None and follower.last_contact is not None:
            status = "ok"
        result[feed] = FeedFreshness(
            status=status,
            position=state.get("position", 0),
            last_change_at=state.get("last_change_at"),
            applied_at=state.get("applied_at"),
            error=error,
        )
    times = [f.last_change_at for f in result.values() if f.last_change_at is not None]
    return result, max(times) if times else None


async def current_app(request: Request) -> FastAPI:
    app: FastAPI = request.app
    return app


AppDep = Annotated[FastAPI, Depends(current_app)]
