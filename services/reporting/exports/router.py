"""``/v1/exports/{table}.csv``: every table the API and dashboard show, as CSV."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.common.csvtext import csv_download
from services.common.deps import SessionDep
from services.common.errors import PROBLEM_RESPONSES
from services.common.openapi import file_response
from services.reporting.deps import AppDep, ReaderDep, resolve
from services.reporting.indicators.definitions import BY_KEY, CONVERSIONS, DEFINITIONS, FUNNEL_STAGES, STAGES
from services.reporting.indicators.reports import indicators_body, series_body
from services.reporting.indicators.schemas import ClusterFiguresPublic, SeriesQuery
from services.reporting.indicators.service import cluster_figures, compute

router = APIRouter(prefix="/v1/exports", tags=["exports"], responses=PROBLEM_RESPONSES)


class Table(StrEnum):
    indicators = "indicators"
    series = "series"
    clusters = "clusters"
    funnel = "funnel"
    definitions = "definitions"


@router.get(
    "/{table}.csv",
    operation_id="export_table",
    summary="A reporting table as CSV",
    response_class=Response,
    responses=file_response("The table", "text/csv"),
    description="`indicators`: one row per indicator and breakdown category (category empty for the value), "
    "and for firm indicators one per split category (`size_class:micro`, `ownership:women_owned`…); "
    "`series`: the same per month or quarter; `clusters`: figures per cluster; `funnel`: linkages "
    "per stage and conversion; `definitions`: what each indicator counts. Filters as for "
    "`/v1/indicators`; `granularity` and `indicator` apply to `series`.",
)
async def export_table(
    table: Table, app: AppDep, session: SessionDep, principal: ReaderDep, query: Annotated[SeriesQuery, Query()]
) -> Response:
    report = await resolve(session, principal, query)
    start, end = report.period.start, report.period.end
    if table is Table.indicators:
        body = await indicators_body(app, session, report)
        rows: list[Sequence[Any]] = []
        for key, figure in body.indicators.items():
            label, unit = BY_KEY[key].label, BY_KEY[key].unit
            rows.append((key, label, unit, "", figure.value, start, end))
            rows += [
                (key, label, unit, category, value, start, end) for category, value in (figure.breakdown or {}).items()
            ]
            rows += [  # firm indicators' splits: category "size_class:micro", "ownership:women_owned"…
                (key, label, unit, f"{split}:{category}", value, start, end)
                for split, values in (figure.splits or {}).items()
                for category, value in values.items()
            ]
        header: Sequence[str] = ("indicator", "label", "unit", "category", "value", "from", "to")
    elif table is Table.series:
        series = await series_body(app, session, report, query)
        rows = []
        for key, values in series.series.items():
            for i, period in enumerate(series.periods):
                rows.append((period.label, period.start, period.end, key, "", values.values[i]))
                rows += [
                    (period.label, period.start, period.end, key, category, by[i])
                    for category, by in (values.breakdown or {}).items()
                ]
        header = ("period", "from", "to", "indicator", "category", "value")
    elif table is Table.clusters:
        header = list(ClusterFiguresPublic.model_fields)
        clusters = await cluster_figures(session, report.scope, report.period)
        rows = [[getattr(c, f) for f in header] for c in clusters]
    elif table is Table.funnel:
        figures = await compute(session, report.scope, report.period, ["linkage_funnel", "linkage_conversion"])
        funnel = figures["linkage_funnel"].breakdown or {}
        conversion = figures["linkage_conversion"].breakdown or {}
        step_of = {b: step for step, b in zip(CONVERSIONS, FUNNEL_STAGES[1:], strict=True)}
        header = ("stage", "linkages", "conversion_from_previous")
        rows = [(s, funnel.get(s), conversion.get(step_of[s]) if s in step_of else None) for s in STAGES]
    else:
        header = ("indicator", "label", "section", "unit", "kind", "counts", "source", "date", "breakdown")
        rows = [
            (d.key, d.label, d.section, d.unit, d.kind.value, d.counts, d.source, d.date, " ".join(d.breakdown))
            for d in DEFINITIONS
        ]
    return csv_download(header, rows, f"{table.value}.csv")
