"""Results frameworks: who may see and change a programme's, and its results per period.

A programme's framework belongs to the programme's agency (the registry's record, as
the read model holds it): its agency and admins write it; admins and platform
viewers read every programme's, an agency (and the viewers it issued) its own. A
programme the caller may not see is 404, as if it did not exist.

An actual is the indicator (``indicators/service.py``) for the programme's records:
the scope ``programme_id`` with the programme's agency, over the target's period
(``from``..``to``; up to today while it runs; none before it begins).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import NotFound
from services.common.principal import Principal, Role
from services.reporting.deps import freshness, today
from services.reporting.indicators.definitions import BY_KEY
from services.reporting.indicators.scope import Scope
from services.reporting.indicators.service import Number, Period, compute
from services.reporting.results.schemas import (
    LEVELS,
    Baseline,
    IndicatorResults,
    PeriodResult,
    ProgrammePublic,
    ResultIndicatorPublic,
    ResultsPublic,
    Target,
    TargetPublic,
)
from services.reporting.tables import Programme, ResultIndicator, ResultTarget, table_of

PROGRAMMES = table_of(Programme)


def own_agency(principal: Principal) -> str | None:
    """The agency whose programmes alone ``principal`` may see; None for every programme."""
    if principal.role is Role.agency or (principal.role is Role.viewer and principal.agency_id):
        return principal.agency_id
    return None


async def programme_for(session: AsyncSession, principal: Principal, programme_id: str) -> Any:
    """The programme's read-model row, or 404 when there is none the caller may see."""
    row = (await session.execute(select(PROGRAMMES).where(PROGRAMMES.c.id == programme_id))).first()
    agency = own_agency(principal)
    if row is None or (agency is not None and row.agency_id != agency):
        raise NotFound(f"No programme '{programme_id}'")
    return row


def programme_public(row: Any) -> ProgrammePublic:
    return ProgrammePublic(
        id=row.id,
        name=row.name,
        agency_id=row.agency_id,
        country=row.country,
        start_date=row.start_date,
        end_date=row.end_date,
    )


@dataclass
class Framework:
    """One framework indicator with its targets, in period order."""

    row: ResultIndicator
    targets: list[ResultTarget]


async def load(session: AsyncSession, programme_id: str, indicator_id: str | None = None) -> list[Framework]:
    """The programme's framework (or one indicator of it): by level, then as created."""
    statement = select(ResultIndicator).where(ResultIndicator.programme_id == programme_id)  # type: ignore[arg-type]
    if indicator_id is not None:
        statement = statement.where(ResultIndicator.id == indicator_id)  # type: ignore[arg-type]
    rows = list((await session.scalars(statement)).all())
    rows.sort(key=lambda r: (LEVELS.index(r.level), r.created_at, r.id))
    targets: dict[str, list[ResultTarget]] = {r.id: [] for r in rows}
    if rows:
        found = await session.scalars(
            select(ResultTarget)
            .where(ResultTarget.result_indicator_id.in_(list(targets)))  # type: ignore[attr-defined]
            .order_by(ResultTarget.result_indicator_id, ResultTarget.position)  # type: ignore[arg-type]
        )
        for target in found:
            targets[target.result_indicator_id].append(target)
    return [Framework(r, targets[r.id]) for r in rows]


async def one(session: AsyncSession, programme_id: str, indicator_id: str) -> Framework:
    found = await load(session, programme_id, indicator_id)
    if not found:
        raise NotFound(f"Programme '{programme_id}' has no framework indicator '{indicator_id}'")
    return found[0]


async def replace_targets(
    session: AsyncSession, indicator_id: str, existing: Sequence[ResultTarget], targets: Sequence[Target]
) -> list[ResultTarget]:
    """``targets`` in place of ``existing``, by period (their last day, then their first)."""
    for target in existing:
        await session.delete(target)
    await session.flush()
    rows = [
        ResultTarget(
            result_indicator_id=indicator_id, position=i, label=t.label, start=t.start, end=t.end, value=t.value
        )
        for i, t in enumerate(sorted(targets, key=lambda t: (t.end, t.start or date.min)))
    ]
    session.add_all(rows)
    return rows


def public(framework: Framework) -> ResultIndicatorPublic:
    row = framework.row
    definition = BY_KEY[row.indicator]
    return ResultIndicatorPublic(
        id=row.id,
        programme_id=row.programme_id,
        agency_id=row.agency_id,
        indicator=row.indicator,
        label=definition.label,
        unit=definition.unit,
        level=row.level,
        statement=row.statement,
        baseline=Baseline(value=row.baseline_value, date=row.baseline_date),
        targets=[TargetPublic(label=t.label, start=t.start, end=t.end, value=t.value) for t in framework.targets],
        means_of_verification=row.means_of_verification,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def share_achieved(actual: Number, baseline: float, target: float) -> Number:
    """How far the actual has gone from the baseline towards the target (1 = reached)."""
    if actual is None or target == baseline:
        return None
    return round((float(actual) - baseline) / (target - baseline), 4)


async def results(
    session: AsyncSession, programme: Any, frameworks: Sequence[Framework], today: date
) -> list[IndicatorResults]:
    """Each framework indicator with its baseline, and target, actual and share achieved per period."""
    scope = Scope(agency_id=programme.agency_id, programme_id=programme.id)
    answer: list[IndicatorResults] = []
    for framework in frameworks:
        periods: list[PeriodResult] = []
        for target in framework.targets:
            actual: Number = None
            breakdown: dict[str, Number] | None = None
            measured_to: date | None = None
            if target.start is None or target.start <= today:
                measured_to = min(target.end, today)
                figures = await compute(session, scope, Period(target.start, measured_to), [framework.row.indicator])
                actual, breakdown = figures[framework.row.indicator].value, figures[framework.row.indicator].breakdown
            periods.append(
                PeriodResult(
                    label=target.label,
                    start=target.start,
                    end=target.end,
                    target=target.value,
                    actual=actual,
                    measured_to=measured_to,
                    breakdown=breakdown,
                    share_achieved=share_achieved(actual, framework.row.baseline_value, target.value),
                )
            )
        answer.append(IndicatorResults(**public(framework).model_dump(), periods=periods))
    return answer


async def results_body(app: FastAPI, session: AsyncSession, principal: Principal, programme_id: str) -> ResultsPublic:
    """``GET /v1/results/{programme_id}``'s body, which the exports and the dashboard show too."""
    programme = await programme_for(session, principal, programme_id)
    indicators = await results(session, programme, await load(session, programme.id), today())
    feeds, as_of = await freshness(app, session)
    return ResultsPublic(programme=programme_public(programme), as_of=as_of, freshness=feeds, indicators=indicators)
