"""``/v1/charts/{chart}.{format}``: the series, the linkage funnel and the cluster map as SVG or PNG."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.common.deps import SessionDep
from services.common.errors import PROBLEM_RESPONSES
from services.common.openapi import file_response
from services.reporting.charts.render import ClusterPoint, cluster_map, funnel_chart, series_chart
from services.reporting.deps import AppDep, ReaderDep, resolve
from services.reporting.indicators.definitions import BY_KEY, CONVERSIONS, FUNNEL_STAGES
from services.reporting.indicators.reports import series_body
from services.reporting.indicators.schemas import SeriesQuery
from services.reporting.indicators.service import cluster_figures, compute

router = APIRouter(prefix="/v1/charts", tags=["charts"], responses=PROBLEM_RESPONSES)
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
DEFAULT_SERIES = ("horizontal_networks_formed", "vertical_networks_formed", "activities_held")


class ChartName(StrEnum):
    series = "series"
    funnel = "funnel"
    clusters = "clusters"


class ChartFormat(StrEnum):
    svg = "svg"
    png = "png"


@router.get(
    "/{chart}.{fmt}",
    operation_id="render_chart",
    summary="A chart as SVG or PNG",
    response_class=Response,
    responses=file_response("The chart", "image/svg+xml", "image/png"),
    description="`series`: the indicators named by `indicator` (their breakdown when only one with a "
    "breakdown is named; a few network and activity counts by default) month by month or quarter "
    "by quarter; `funnel`: linkages proposed in the period by the furthest stage reached; "
    "`clusters`: clusters supported in the period at their coordinates, sized by firms, over Natural Earth "
    "country outlines (with `country`: that country's map), labels placed so that none overlaps another. Filters "
    "as for `/v1/indicators`.",
)
async def render_chart(
    chart: ChartName,
    fmt: ChartFormat,
    app: AppDep,
    session: SessionDep,
    principal: ReaderDep,
    query: Annotated[SeriesQuery, Query()],
) -> Response:
    report = await resolve(session, principal, query)
    if chart is ChartName.series:
        if not query.indicator:
            query = query.model_copy(update={"indicator": list(DEFAULT_SERIES)})
        body = await series_body(app, session, report, query)
        labels = [p.label for p in body.periods]
        lines: dict[str, Sequence[float | int | None]]
        only = body.series[query.indicator[0]] if len(body.series) == 1 else None
        if only is not None and only.breakdown:
            lines = {category: values for category, values in only.breakdown.items() if any(values)}
        else:
            lines = {BY_KEY[key].label: values.values for key, values in body.series.items()}
        title = f"{BY_KEY[query.indicator[0]].label}, " if len(body.series) == 1 else ""
        span = f"{labels[0]} to {labels[-1]}" if len(labels) > 1 else labels[0]
        image = await asyncio.to_thread(
            series_chart, f"{title}{span}, by {query.granularity}", labels, lines, fmt.value
        )
    elif chart is ChartName.funnel:
        figures = await compute(session, report.scope, report.period, ["linkage_funnel", "linkage_conversion"])
        funnel = figures["linkage_funnel"].breakdown or {}
        conversion = figures["linkage_conversion"].breakdown or {}
        stages = {stage: int(funnel.get(stage) or 0) for stage in (*FUNNEL_STAGES, "dropped")}
        shares = {b: conversion.get(step) for step, b in zip(CONVERSIONS, FUNNEL_STAGES[1:], strict=True)}
        image = await asyncio.to_thread(funnel_chart, stages, shares, fmt.value)
    else:
        rows = await cluster_figures(session, report.scope, report.period)
        points = [
            ClusterPoint(r.name, r.latitude, r.longitude, r.firms, r.country)
            for r in rows
            if r.latitude is not None and r.longitude is not None
        ]
        image = await asyncio.to_thread(cluster_map, points, fmt.value, country=report.scope.country)
    return Response(image, media_type=MEDIA_TYPES[fmt.value], headers={"Cache-Control": "private, max-age=30"})
