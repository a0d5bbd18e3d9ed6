"""``/v1/indicators``: programme indicators as JSON, their series and definitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.common.deps import SessionDep
from services.common.errors import PROBLEM_RESPONSES
from services.common.jsontext import json_response
from services.common.pagination import Page, fetch_page, make_page_params
from services.reporting.deps import AppDep, ReaderDep, freshness, resolve
from services.reporting.indicators.reports import definitions, indicators_body, series_body
from services.reporting.indicators.schemas import (
    ClusterFiguresPublic,
    ClusterListQuery,
    DefinitionPublic,
    FreshnessPublic,
    IndicatorsPublic,
    ScopeQuery,
    SeriesPublic,
    SeriesQuery,
)
from services.reporting.indicators.service import CLUSTER_SORTS, CLUSTERS, clusters_supported, figures_of

router = APIRouter(prefix="/v1/indicators", tags=["indicators"], responses=PROBLEM_RESPONSES)


@router.get(
    "",
    response_model=IndicatorsPublic,
    operation_id="read_indicators",
    summary="Indicators for a scope and period",
    description="Every indicator of `/v1/indicators/definitions` for the records in scope and the period "
    "(`from`..`to`, days included; `to` is today when absent), with how fresh the figures are.",
)
async def read_indicators(
    app: AppDep, session: SessionDep, principal: ReaderDep, query: Annotated[ScopeQuery, Query()]
) -> Response:
    # A dashboard's hot read: rendered once (no re-validation against the response model).
    return json_response(await indicators_body(app, session, await resolve(session, principal, query)))


@router.get(
    "/series",
    response_model=SeriesPublic,
    operation_id="read_indicator_series",
    summary="Indicators month by month or quarter by quarter",
    description="Each month or quarter of the period is a period of its own (the last twelve up to `to` when "
    "`from` is absent). Stocks are taken at each period's last day.",
)
async def read_series(
    app: AppDep, session: SessionDep, principal: ReaderDep, query: Annotated[SeriesQuery, Query()]
) -> SeriesPublic:
    return await series_body(app, session, await resolve(session, principal, query), query)


@router.get(
    "/definitions",
    response_model=list[DefinitionPublic],
    operation_id="list_indicator_definitions",
    summary="What each indicator counts, from which records, on which date",
)
async def read_definitions(_principal: ReaderDep) -> list[DefinitionPublic]:
    return definitions()


@router.get(
    "/freshness",
    response_model=FreshnessPublic,
    operation_id="read_indicator_freshness",
    summary="How fresh the figures are",
    description="Per followed feed: the last change applied, when it happened at its source, and whether the "
    "feed answers. Every figure is as of `as_of`.",
)
async def read_freshness(app: AppDep, session: SessionDep, _principal: ReaderDep) -> FreshnessPublic:
    feeds, as_of = await freshness(app, session)
    return FreshnessPublic(as_of=as_of, feeds=feeds)


@router.get(
    "/clusters",
    response_model=Page[ClusterFiguresPublic],
    operation_id="list_cluster_figures",
    summary="Figures per cluster",
    description="The clusters supported during the period, in scope, each with its firms, active networks and "
    "linkages; paginated by cluster id.",
)
async def list_cluster_figures(
    app: AppDep, session: SessionDep, principal: ReaderDep, query: Annotated[ClusterListQuery, Query()]
) -> Page[ClusterFiguresPublic]:
    params = make_page_params(app.state.settings, query.limit, query.cursor, query.sort, query.count)
    report = await resolve(session, principal, query)
    statement = clusters_supported(report.scope, report.period)
    page = await fetch_page(session, statement, key=CLUSTERS.c.id, params=params, sorts=CLUSTER_SORTS, whole_rows=True)
    figures = await figures_of(session, report.scope, report.period, page.items)
    return Page(
        items=[ClusterFiguresPublic.model_validate(r, from_attributes=True) for r in figures],
        next_cursor=page.next_cursor,
        total=page.total,
    )
