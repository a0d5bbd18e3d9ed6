"""``/dashboard``: the indicators as a server-rendered HTML page that needs no JavaScript.

The filters are a plain GET form, so a filtered view is a link; charts are images
from ``/v1/charts`` and each table links to its CSV export, all with the same filters.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import pycountry
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from services.common.bounds import RecordId
from services.common.codes import isic_codes
from services.common.deps import SessionDep
from services.common.errors import PROBLEM_RESPONSES
from services.reporting.deps import AppDep, ReaderDep, resolve
from services.reporting.indicators.definitions import (
    BY_KEY,
    CONVERSIONS,
    DEFINITIONS,
    FIRM_INDICATORS,
    FIRM_SPLITS,
    FUNNEL_STAGES,
    SECTIONS,
    STAGES,
)
from services.reporting.indicators.reports import indicators_body
from services.reporting.indicators.schemas import DashboardQuery
from services.reporting.indicators.scope import Scope
from services.reporting.indicators.service import (
    CLUSTERS,
    Period,
    bucket_start,
    cluster_figures,
    clusters_supported,
    earliest_day,
)
from services.reporting.results.schemas import LEVELS
from services.reporting.results.service import results_body
from services.reporting.tables import Agency, Cluster, Programme, table_of

router = APIRouter(tags=["dashboard"], responses=PROBLEM_RESPONSES)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
KEY_FIGURES = (
    "clusters_supported",
    "firms_registered",
    "jobs_in_supported_clusters",
    "horizontal_networks_active",
    "smes_in_horizontal_networks",
    "vertical_networks_active",
    "smes_in_vertical_networks",
    "brokers_trained",
    "institutions_engaged",
    "people_reached",
    "women_reached",
    "shortlists_issued",
    "median_days_to_contract",
    "requests_issued",
    "response_rate",
    "delivery_on_time",
)
SERIES_MAX_PERIODS = 48  # the dashboard's series start at the first record, at most this many periods back
SERIES_CHARTS = (
    ("Networks and activities", ("horizontal_networks_formed", "vertical_networks_formed", "activities_held")),
    ("Shortlists and brokers", ("shortlists_issued", "suppliers_shortlisted", "brokers_trained")),
    ("Requests for quotation", ("requests_issued", "bids_received", "requests_awarded")),
)
FILTERS = ("programme_id", "country", "subdivision", "cluster_id", "sector", "agency_id")
# How the dashboard names each filter it shows (its value is shown by name too: ``_filter_names``).
FILTER_LABELS = {
    "programme_id": "programme",
    "country": "country",
    "subdivision": "subdivision",
    "cluster_id": "cluster",
    "sector": "sector",
    "agency_id": "agency",
}
MAX_COUNTRY_MAPS = 8  # without a country filter, a map per country of the clusters in scope, up to this many


def country_name(code: str) -> str:
    """``IN`` as India; a code pycountry does not know (e.g. XK) as itself."""
    country = pycountry.countries.get(alpha_2=code)
    return str(getattr(country, "common_name", None) or country.name) if country is not None else code


def subdivision_name(code: str) -> str:
    subdivision = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
    return f"{subdivision.name} ({code})" if subdivision is not None else code


async def _record_names(session: SessionDep, model: Any, ids: list[str]) -> dict[str, str]:
    table = table_of(model)
    rows = await session.execute(select(table.c.id, table.c.name).where(table.c.id.in_(ids)))
    return {record_id: name for record_id, name in rows}


async def _agency_name(session: SessionDep, agency_id: str | None) -> str | None:
    """The signed-in agency's name, for the pages' footers."""
    return (await _record_names(session, Agency, [agency_id])).get(agency_id) if agency_id else None


async def _filter_names(session: SessionDep, filters: dict[str, str]) -> list[tuple[str, str]]:
    """The filters applied, each as (label, the value's name): a programme, cluster or agency
    by its name, a country and subdivision by theirs, a sector by its ISIC title."""
    models = {"programme_id": Programme, "cluster_id": Cluster, "agency_id": Agency}
    named: list[tuple[str, str]] = []
    for key, value in filters.items():
        if key in models:
            shown = (await _record_names(session, models[key], [value])).get(value, value)
        elif key == "country":
            shown = country_name(value)
        elif key == "subdivision":
            shown = subdivision_name(value)
        elif key == "sector":
            title = isic_codes().get(value)
            shown = f"{value} {title}" if title else value
        else:
            shown = value
        named.append((FILTER_LABELS.get(key, key), shown))
    return named


async def _map_countries(session: SessionDep, scope: Scope, period: Period) -> list[str]:
    """The countries of the clusters supported in the period, in scope, with coordinates."""
    supported = clusters_supported(scope, period).where(CLUSTERS.c.latitude.is_not(None)).subquery()
    rows = await session.scalars(select(supported.c.country).distinct().order_by(supported.c.country))
    return list(rows)


def display(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if unit == "share":
        return f"{float(value):.0%}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


async def _options(session: SessionDep, agency_id: str | None, programme_id: str | None) -> dict[str, Any]:
    programmes, clusters = table_of(Programme), table_of(Cluster)
    p = select(programmes.c.id, programmes.c.name).order_by(programmes.c.name)
    c = select(clusters.c.id, clusters.c.name).order_by(clusters.c.name)
    countries = select(clusters.c.country).distinct().order_by(clusters.c.country)
    if agency_id is not None:
        p = p.where(programmes.c.agency_id == agency_id)
        c = c.where(clusters.c.agency_id == agency_id)
        countries = countries.where(clusters.c.agency_id == agency_id)
    if programme_id is not None:
        c = c.where(clusters.c.programme_id == programme_id)
    return {
        "programmes": (await session.execute(p)).all(),
        "clusters": (await session.execute(c)).all(),
        "countries": list(await session.scalars(countries)),
    }


def _back(end: date, granularity: str) -> date:
    """The first day of the period SERIES_MAX_PERIODS months or quarters before ``end``'s."""
    start = bucket_start(end, granularity)
    months = (SERIES_MAX_PERIODS - 1) * (3 if granularity == "quarter" else 1)
    index = start.year * 12 + start.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@router.get(
    "/dashboard",
    response_class=HTMLResponse,
    operation_id="read_dashboard",
    summary="The indicators dashboard (HTML)",
    description="Key figures, charts and tables for the filters given, which are those of `/v1/indicators` "
    "plus `granularity` for the series charts. Readable without JavaScript.",
)
async def dashboard(
    request: Request, app: AppDep, session: SessionDep, principal: ReaderDep, query: Annotated[DashboardQuery, Query()]
) -> HTMLResponse:
    report = await resolve(session, principal, query)
    body = await indicators_body(app, session, report)
    limit = app.state.settings.dashboard_cluster_rows
    cluster_rows = await cluster_figures(session, report.scope, report.period, limit=limit + 1)
    more_clusters = len(cluster_rows) > limit
    cluster_rows = sorted(cluster_rows[:limit], key=lambda r: r.name)
    params = {name: getattr(query, name) for name in FILTERS if getattr(query, name) is not None}
    if query.start is not None:
        params["from"] = query.start.isoformat()
    if query.end is not None:
        params["to"] = query.end.isoformat()
    chart_params = params | {"granularity": query.granularity.value}
    granularity = query.granularity.value
    series_start = report.period.start or await earliest_day(session, report.scope) or report.period.end
    series_start = min(max(series_start, _back(report.period.end, granularity)), report.period.end)
    series_params = chart_params | {"from": series_start.isoformat(), "to": report.period.end.isoformat()}

    def link(path: str, base: dict[str, str] | None = None, **extra: Any) -> str:
        items = list((base or chart_params).items()) + [(k, v) for k, values in extra.items() for v in values]
        return f"{path}?{urlencode(items)}" if items else path

    options = await _options(session, report.scope.agency_id, query.programme_id)
    # One map per country when the view spans several (a country filter: the main map is that country's).
    map_countries = [] if query.country else await _map_countries(session, report.scope, report.period)
    if len(map_countries) < 2:
        map_countries = []
    figures = body.indicators
    funnel = figures["linkage_funnel"].breakdown or {}
    conversion = figures["linkage_conversion"].breakdown or {}
    step_of = {b: step for step, b in zip(CONVERSIONS, FUNNEL_STAGES[1:], strict=True)}
    context = {
        "principal": principal,
        "query": query,
        "report": report,
        "body": body,
        "figures": figures,
        "firm_splits": FIRM_SPLITS,
        "firm_indicators": FIRM_INDICATORS,
        "definitions": DEFINITIONS,
        "by_key": BY_KEY,
        "sections": SECTIONS,
        "key_figures": KEY_FIGURES,
        "display": display,
        "options": options,
        "cluster_rows": cluster_rows,
        "more_clusters": more_clusters,
        "funnel_rows": [
            (s, funnel.get(s), step_of.get(s), conversion.get(step_of[s]) if s in step_of else None) for s in STAGES
        ],
        "series_charts": [
            (title, link("/v1/charts/series.svg", series_params, indicator=keys)) for title, keys in SERIES_CHARTS
        ],
        "series_range": f"{series_start:%Y-%m} to {report.period.end:%Y-%m} by {granularity}",
        "funnel_chart": link("/v1/charts/funnel.svg"),
        "map_chart": link("/v1/charts/clusters.svg"),
        "country_maps": [
            (code, country_name(code), link("/v1/charts/clusters.svg", chart_params | {"country": code}))
            for code in map_countries[:MAX_COUNTRY_MAPS]
        ],
        "more_country_maps": len(map_countries) > MAX_COUNTRY_MAPS,
        "country_view": lambda code: link("/dashboard", params | {"country": code}),
        "filter_names": await _filter_names(session, body.filters),
        "country_name": country_name,
        "agency_name": await _agency_name(session, principal.agency_id),
        "export": lambda table, **extra: link(f"/v1/exports/{table}.csv", **extra),
        "reset": "/dashboard",
        "problems": [f for f, state in body.freshness.items() if state.status != "ok"],
    }
    return templates.TemplateResponse(
        request, "dashboard.html", context, headers={"Cache-Control": "private, no-cache"}
    )


def bar_width(share: float | int | None) -> int:
    """A progress bar's filled percentage: the share achieved, within 0 and 100."""
    return 0 if share is None else round(min(max(float(share), 0.0), 1.0) * 100)


@router.get(
    "/dashboard/results/{programme_id}",
    response_class=HTMLResponse,
    operation_id="read_results_dashboard",
    summary="A programme's results against its framework (HTML)",
    description="The framework's indicators by level, each period's target, actual and a progress bar of the "
    "share achieved, as `/v1/results/{programme_id}` gives them; with links to the logframe and IATI exports.",
)
async def results_dashboard(
    request: Request, programme_id: RecordId, app: AppDep, session: SessionDep, principal: ReaderDep
) -> HTMLResponse:
    body = await results_body(app, session, principal, programme_id)
    levels = [(level.value, [i for i in body.indicators if i.level is level]) for level in LEVELS]
    context = {
        "principal": principal,
        "body": body,
        "levels": [(level, items) for level, items in levels if items],
        "display": display,
        "width": bar_width,
        "agency_name": await _agency_name(session, principal.agency_id),
        "base": f"/v1/results/{programme_id}",
        "dashboard": f"/dashboard?{urlencode({'programme_id': programme_id})}",
        "problems": [f for f, state in body.freshness.items() if state.status != "ok"],
    }
    return templates.TemplateResponse(request, "results.html", context, headers={"Cache-Control": "private, no-cache"})
