"""The reporting API's bodies, built once for the JSON API, the exports, charts and dashboard."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.deps import Report, freshness, indicator_keys, series_buckets
from services.reporting.indicators.definitions import BY_KEY, DEFINITIONS, FIRM_INDICATORS, FIRM_SPLITS
from services.reporting.indicators.schemas import (
    DefinitionPublic,
    FigurePublic,
    IndicatorsPublic,
    PeriodPublic,
    SeriesPeriod,
    SeriesPublic,
    SeriesQuery,
    SeriesValues,
)
from services.reporting.indicators.service import compute, series


def definitions() -> list[DefinitionPublic]:
    return [
        DefinitionPublic(
            key=d.key,
            label=d.label,
            section=d.section,
            unit=d.unit,
            kind=d.kind.value,
            counts=d.counts,
            source=d.source,
            date=d.date,
            breakdown_by=d.breakdown_by,
            breakdown=list(d.breakdown),
            splits=dict(FIRM_SPLITS) if d.key in FIRM_INDICATORS else {},
            breakdown_unit=d.breakdown_unit or d.unit,
        )
        for d in DEFINITIONS
    ]


async def indicators_body(app: FastAPI, session: AsyncSession, report: Report) -> IndicatorsPublic:
    figures = await compute(session, report.scope, report.period)
    feeds, as_of = await freshness(app, session)
    return IndicatorsPublic(
        filters=report.scope.as_dict(),
        period=PeriodPublic(start=report.period.start, end=report.period.end),
        as_of=as_of,
        freshness=feeds,
        indicators={
            key: FigurePublic(value=f.value, breakdown=f.breakdown, splits=f.splits) for key, f in figures.items()
        },
    )


async def series_body(app: FastAPI, session: AsyncSession, report: Report, query: SeriesQuery) -> SeriesPublic:
    keys = indicator_keys(query)
    parts = series_buckets(report, query, app.state.settings.series_max_periods)
    result = await series(session, report.scope, parts, keys)
    feeds, as_of = await freshness(app, session)
    values: dict[str, SeriesValues] = {}
    for key in keys:
        figures = result.figures[key]
        breakdown = None
        if BY_KEY[key].breakdown:
            breakdown = {c: [(f.breakdown or {}).get(c) for f in figures] for c in BY_KEY[key].breakdown}
        values[key] = SeriesValues(values=[f.value for f in figures], breakdown=breakdown)
    return SeriesPublic(
        filters=report.scope.as_dict(),
        granularity=query.granularity,
        as_of=as_of,
        freshness=feeds,
        periods=[SeriesPeriod(label=b.label, start=b.period.start or b.period.end, end=b.period.end) for b in parts],
        series=values,
    )
