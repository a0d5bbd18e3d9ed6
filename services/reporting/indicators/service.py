"""The indicators, computed with SQL on the read model (definitions in ``definitions.py``).

Each calculator computes a few related indicators for one scope and one period
and returns them keyed as in ``DEFINITIONS``; ``compute`` runs those needed. A
series is the same computation for each month or quarter.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, and_, case, distinct, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import is_postgres
from services.reporting.indicators.definitions import (
    ACTIVITY_KINDS,
    BY_KEY,
    CONVERSIONS,
    FUNNEL_STAGES,
    GAP_KINDS,
    GENDER_GROUPS,
    INSTITUTION_KINDS,
    JOINT_ACTION_KINDS,
    LISTED_AS,
    OUTCOME_FIRMS,
    OWNERSHIP,
    PEOPLE_GROUPS,
    SIZE_CLASSES,
    SMALL_AND_MEDIUM,
    STAGES,
    SUBMITTED_BY,
)
from services.reporting.indicators.scope import Scope
from services.reporting.tables import (
    Activity,
    Broker,
    BrokerCluster,
    Cluster,
    FeedState,
    Firm,
    FirmCertification,
    FirmCluster,
    FirmResult,
    Institution,
    InstitutionCluster,
    JointAction,
    Linkage,
    LinkageEvent,
    LinkageMember,
    Network,
    NetworkMember,
    Programme,
    Request,
    RequestInvitation,
    Scorecard,
    Shortlist,
    ShortlistConsortium,
    ShortlistSupplier,
    table_of,
)

CLUSTERS, PROGRAMMES, FIRMS = table_of(Cluster), table_of(Programme), table_of(Firm)
FIRM_CLUSTERS, CERTIFICATES = table_of(FirmCluster), table_of(FirmCertification)
INSTITUTIONS, INSTITUTION_CLUSTERS = table_of(Institution), table_of(InstitutionCluster)
BROKERS, BROKER_CLUSTERS = table_of(Broker), table_of(BrokerCluster)
NETWORKS, MEMBERS, ACTIONS = table_of(Network), table_of(NetworkMember), table_of(JointAction)
ACTIVITIES = table_of(Activity)
SHORTLISTS, LISTED = table_of(Shortlist), table_of(ShortlistSupplier)
LINKAGES, EVENTS = table_of(Linkage), table_of(LinkageEvent)
CONSORTIA, LINKAGE_MEMBERS = table_of(ShortlistConsortium), table_of(LinkageMember)
REQUESTS, INVITED, SCORECARDS = table_of(Request), table_of(RequestInvitation), table_of(Scorecard)
FEED_STATE = table_of(FeedState)
FIRM_RESULTS = table_of(FirmResult)

Number = int | float | None


@dataclass(frozen=True)
class Period:
    start: date | None  # None: since the first record
    end: date

    def within(self, column: Any) -> ColumnElement[bool]:
        if self.start is None:
            return column <= self.end  # type: ignore[no-any-return]
        return and_(column >= self.start, column <= self.end)


@dataclass
class Figure:
    value: Number
    breakdown: dict[str, Number] | None = None
    splits: dict[str, dict[str, Number]] | None = None  # firm indicators: by size_class and by ownership


@dataclass
class ClusterFigures:
    id: str
    name: str
    programme_id: str | None
    country: str
    subdivision: str | None
    sector_isic: str
    latitude: float | None
    longitude: float | None
    jobs: int | None
    firms: int = 0
    horizontal_networks_active: int = 0
    vertical_networks_active: int = 0
    linkages_proposed: int = 0
    linkages_contracted: int = 0


Calculator = Callable[[AsyncSession, Scope, Period], Awaitable[dict[str, Figure]]]


def _breakdown(rows: Sequence[Any], categories: Sequence[str]) -> dict[str, Number]:
    counts: dict[str, Number] = dict.fromkeys(categories, 0)
    for category, count in rows:
        counts[str(category)] = int(count or 0)
    return counts


def _total(breakdown: dict[str, Number]) -> int:
    return sum(int(v or 0) for v in breakdown.values())


async def firm_figure(
    session: AsyncSession, firm_ids: Select[Any], breakdown: dict[str, Number] | None = None
) -> Figure:
    """A firm indicator: the distinct firms ``firm_ids`` selects (its one column), split by
    size class and by ownership (docs/reporting.md, "Firm indicators by size and ownership").

    One query: the firms grouped by size class, each group counting its inclusion claims;
    the ownership split adds the groups up. Ids with no firm in the read model count in
    the value and in neither split.
    """
    ids = firm_ids.distinct().subquery()
    value = await session.scalar(select(func.count()).select_from(ids))
    claims = (FIRMS.c.women_owned, FIRMS.c.women_led, FIRMS.c.youth_led)
    recorded = or_(*(c.is_not(None) for c in claims))
    attested = or_(*(c == true() for c in claims))
    ownership = (
        *(c == true() for c in claims),  # women_owned, women_led, youth_led: they overlap
        and_(recorded, ~attested),  # other: recorded, none of them attested
        ~recorded,  # not_recorded
    )
    rows = (
        await session.execute(
            select(FIRMS.c.size_class, func.count(), *(func.sum(case((c, 1), else_=0)) for c in ownership))
            .select_from(ids.join(FIRMS, FIRMS.c.id == list(ids.c)[0]))
            .group_by(FIRMS.c.size_class)
        )
    ).all()
    by_size = _breakdown([(row[0], row[1]) for row in rows], SIZE_CLASSES)
    by_ownership: dict[str, Number] = {
        name: sum(int(row[2 + i] or 0) for row in rows) for i, name in enumerate(OWNERSHIP)
    }
    return Figure(int(value or 0), breakdown, {"size_class": by_size, "ownership": by_ownership})


# --- clusters and firms -----------------------------------------------------------------


def supported_during(period: Period) -> tuple[Any, ColumnElement[bool]]:
    """The join of clusters and their programmes, and the condition that support overlaps ``period``."""
    joined = CLUSTERS.outerjoin(PROGRAMMES, PROGRAMMES.c.id == CLUSTERS.c.programme_id)
    starts = func.coalesce(PROGRAMMES.c.start_date, CLUSTERS.c.registered_on)
    condition = starts <= period.end
    if period.start is not None:
        condition = and_(condition, (PROGRAMMES.c.end_date.is_(None)) | (PROGRAMMES.c.end_date >= period.start))
    return joined, condition


async def clusters(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    joined, supported = supported_during(period)
    count, jobs = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(func.coalesce(CLUSTERS.c.jobs, 0)), 0))
            .select_from(joined)
            .where(supported, scope.clusters(CLUSTERS))
        )
    ).one()
    registered = await firm_figure(
        session,
        select(FIRMS.c.id).where(FIRMS.c.registered_on <= period.end, scope.linked(FIRMS, FIRM_CLUSTERS, "firm_id")),
    )
    assert registered.splits is not None
    registered.breakdown = registered.splits["size_class"]
    return {
        "clusters_supported": Figure(int(count)),
        "firms_registered": registered,
        "jobs_in_supported_clusters": Figure(int(jobs)),
    }


# --- networks ---------------------------------------------------------------------------


def formed_on(n: Any = NETWORKS) -> Any:
    return func.coalesce(n.c.formed_on, n.c.registered_on)


def active_at(period: Period, kind: str) -> ColumnElement[bool]:
    return and_(NETWORKS.c.kind == kind, NETWORKS.c.status == "active", formed_on() <= period.end)


async def networks(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    in_scope = scope.networks(NETWORKS)
    result: dict[str, Figure] = {}
    for kind in ("horizontal", "vertical"):
        formed = await session.scalar(
            select(func.count()).where(NETWORKS.c.kind == kind, period.within(formed_on()), in_scope)
        )
        active = await session.scalar(select(func.count()).where(active_at(period, kind), in_scope))
        result[f"{kind}_networks_formed"] = Figure(int(formed or 0))
        result[f"{kind}_networks_active"] = Figure(int(active or 0))
    members = MEMBERS.join(NETWORKS, NETWORKS.c.id == MEMBERS.c.network_id)
    with_firms = members.join(FIRMS, FIRMS.c.id == MEMBERS.c.firm_id)
    sme = FIRMS.c.size_class.in_(SMALL_AND_MEDIUM)
    horizontal_smes = await firm_figure(
        session,
        select(MEMBERS.c.firm_id).select_from(with_firms).where(active_at(period, "horizontal"), in_scope, sme),
    )
    vertical_smes = await firm_figure(
        session,
        select(MEMBERS.c.firm_id)
        .select_from(with_firms)
        .where(active_at(period, "vertical"), in_scope, sme, MEMBERS.c.role == "supplier"),
    )
    leads = await firm_figure(
        session,
        select(MEMBERS.c.firm_id)
        .select_from(members)
        .where(active_at(period, "vertical"), in_scope, MEMBERS.c.role == "lead_firm"),
    )
    started = func.coalesce(ACTIONS.c.started_on, formed_on())
    actions = (
        await session.execute(
            select(ACTIONS.c.kind, func.count())
            .select_from(ACTIONS.join(NETWORKS, NETWORKS.c.id == ACTIONS.c.network_id))
            .where(period.within(started), in_scope)
            .group_by(ACTIONS.c.kind)
        )
    ).all()
    by_kind = _breakdown(actions, JOINT_ACTION_KINDS)
    result |= {
        "smes_in_horizontal_networks": horizontal_smes,
        "smes_in_vertical_networks": vertical_smes,
        "lead_firms_in_vertical_networks": leads,
        "joint_actions": Figure(_total(by_kind), by_kind),
    }
    return result


# --- brokers and institutions -----------------------------------------------------------


async def support(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    in_scope = scope.brokers(BROKERS, BROKER_CLUSTERS)
    trained = await session.scalar(select(func.count()).where(period.within(BROKERS.c.trained_on), in_scope))
    certified = await session.scalar(select(func.count()).where(period.within(BROKERS.c.certified_on), in_scope))
    linked = exists(select(1).where(INSTITUTION_CLUSTERS.c.institution_id == INSTITUTIONS.c.id))
    institutions = (
        await session.execute(
            select(INSTITUTIONS.c.kind, func.count())
            .where(
                INSTITUTIONS.c.registered_on <= period.end,
                linked,
                scope.linked(INSTITUTIONS, INSTITUTION_CLUSTERS, "institution_id"),
            )
            .group_by(INSTITUTIONS.c.kind)
        )
    ).all()
    by_kind = _breakdown(institutions, INSTITUTION_KINDS)
    return {
        "brokers_trained": Figure(int(trained or 0)),
        "brokers_certified": Figure(int(certified or 0)),
        "institutions_engaged": Figure(_total(by_kind), by_kind),
    }


# --- activities -------------------------------------------------------------------------


async def activities(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    where = (period.within(ACTIVITIES.c.start_date), scope.activities(ACTIVITIES))
    kinds = (
        await session.execute(select(ACTIVITIES.c.kind, func.count()).where(*where).group_by(ACTIVITIES.c.kind))
    ).all()
    people = (
        await session.execute(
            select(*(func.coalesce(func.sum(ACTIVITIES.c[g]), 0) for g in PEOPLE_GROUPS)).where(*where)
        )
    ).one()
    by_kind = _breakdown(kinds, ACTIVITY_KINDS)
    by_group: dict[str, Number] = {g: int(v) for g, v in zip(PEOPLE_GROUPS, people, strict=True)}
    everyone = sum(ACTIVITIES.c[g] for g in PEOPLE_GROUPS)
    recorded = ACTIVITIES.c.women_participants.is_not(None)
    women, with_women = (
        await session.execute(
            select(
                func.coalesce(func.sum(ACTIVITIES.c.women_participants), 0),
                func.coalesce(func.sum(case((recorded, everyone), else_=0)), 0),
            ).where(*where)
        )
    ).one()
    total = _total(by_group)
    by_gender: dict[str, Number] = dict(
        zip(GENDER_GROUPS, (int(women), int(with_women) - int(women), total - int(with_women)), strict=True)
    )
    return {
        "activities_held": Figure(_total(by_kind), by_kind),
        "people_reached": Figure(total, by_group),
        "women_reached": Figure(int(women)),
        "people_reached_by_gender": Figure(total, by_gender),
    }


# --- firm outcomes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one figure moved in the firms that report it (``FIRM_OUTCOME_RECORDS``)."""

    change: Number  # the sum, over those firms, of current minus baseline (not of money: currencies differ)
    median_relative_change: Number  # of current / baseline - 1, over the baselines above 0
    moved: dict[str, Number]  # OUTCOME_FIRMS


def reported_figures(firms: Select[Any], period: Period, measure: str, *, money: bool, windows: bool) -> Subquery:
    """Per firm of ``firms`` that reports ``measure``: (firm_id, baseline, current), chosen as
    ``FIRM_OUTCOME_RECORDS`` says, in one SQL statement, so that a national catalogue's results
    are not carried into Python row by row.

    The baseline is the firm's first result recording the measure by period end (a longer
    period first); the current figure is from its latest result as long as the baseline's
    that starts after the baseline's end; money compares only within one currency.
    ``windows``: with window functions over every result (PostgreSQL: 4 times faster than
    the look-ups), else with two look-ups per firm, each an ``ORDER BY ... LIMIT 1`` on the
    firm's few results (SQLite: 3 times faster than its window functions); docs/benchmarks.md.
    Both give the same pairs on both databases (tests/reporting/test_outcome_sql.py).
    """
    pairs = _pairs_by_windows if windows else _pairs_by_lookups
    base_id, baseline, base_currency, current, currency, joined = pairs(firms, period, measure)
    reported = select(base_id.label("firm_id"), baseline.label("baseline"), current.label("current"))
    if joined is not None:
        reported = reported.select_from(joined)
    if money:  # two currencies: no change can be read off
        reported = reported.where(currency.is_not_distinct_from(base_currency))
    return reported.subquery("reported")


def _recorded(results: Any, period: Period, measure: str) -> ColumnElement[bool]:
    return and_(results.c[measure].is_not(None), results.c.period_end <= period.end)


def _pairs_by_windows(firms: Select[Any], period: Period, measure: str) -> tuple[Any, ...]:
    r = FIRM_RESULTS.c
    by_end = {"partition_by": r.firm_id, "order_by": (r.period_end, r.months.desc())}

    def first(column: Any, name: str) -> Any:
        return func.first_value(column).over(**by_end).label(name)

    # Each result beside its firm's baseline (the first by end), then the latest comparable one.
    ranked = (
        select(r.firm_id, r.period_start, r.period_end, r.months, r.currency, r[measure].label("figure"))
        .add_columns(
            first(r.period_end, "base_end"),
            first(r.months, "base_months"),
            first(r.currency, "base_currency"),
            first(r[measure], "baseline"),
        )
        .where(_recorded(FIRM_RESULTS, period, measure), r.firm_id.in_(firms))
        .subquery("ranked")
    )
    latest = func.row_number().over(partition_by=ranked.c.firm_id, order_by=ranked.c.period_end.desc())
    c = (
        select(ranked, latest.label("recency"))
        .where(ranked.c.months == ranked.c.base_months, ranked.c.period_start > ranked.c.base_end)
        .subquery("comparable")
        .c
    )
    joined = select(c.firm_id, c.baseline, c.base_currency, c.figure, c.currency).where(c.recency == 1).subquery()
    j = joined.c
    return j.firm_id, j.baseline, j.base_currency, j.figure, j.currency, joined


def _pairs_by_lookups(firms: Select[Any], period: Period, measure: str) -> tuple[Any, ...]:
    chosen = firms.distinct().subquery("chosen")
    firm_id = next(iter(chosen.c))
    first = FIRM_RESULTS.alias("first")
    base_id = (
        select(first.c.id)
        .where(first.c.firm_id == firm_id, _recorded(first, period, measure))
        .order_by(first.c.period_end, first.c.months.desc())
        .limit(1)
        .scalar_subquery()
    )
    based = select(base_id.label("base_id")).select_from(chosen).subquery("based")  # per firm chosen
    base, later = FIRM_RESULTS.alias("base"), FIRM_RESULTS.alias("later")
    current_id = (
        select(later.c.id)
        .where(
            later.c.firm_id == base.c.firm_id,
            later.c.months == base.c.months,
            later.c.period_start > base.c.period_end,
            _recorded(later, period, measure),
        )
        .order_by(later.c.period_end.desc())
        .limit(1)
        .scalar_subquery()
    )
    paired = (
        select(base.c.firm_id, base.c[measure].label("baseline"), base.c.currency, current_id.label("current_id"))
        .select_from(based.join(base, base.c.id == based.c.base_id))
        .subquery("paired")
    )
    current = FIRM_RESULTS.alias("current")
    p = paired.c
    joined = paired.join(current, current.c.id == p.current_id)
    return p.firm_id, p.baseline, p.currency, current.c[measure], current.c.currency, joined


async def firm_outcome(
    session: AsyncSession, firms: Select[Any], period: Period, measure: str, *, money: bool, windows: bool | None = None
) -> Outcome:
    """The sums, counts and (``money``) median of ``reported_figures``, in one statement: the
    middle of the ordered ratios is found with a window over the firms reporting."""
    windows = is_postgres(session) if windows is None else windows
    pairs = reported_figures(firms, period, measure, money=money, windows=windows)
    figures: Subquery = pairs
    if money:  # each ratio with its place among them (a window), for the median
        ratio = case((pairs.c.baseline > 0, pairs.c.current / pairs.c.baseline - 1))  # no division by 0
        figures = select(
            pairs.c.current,
            pairs.c.baseline,
            ratio.label("ratio"),
            func.row_number().over(order_by=(ratio.is_(None), ratio)).label("position"),  # the ratios first
            func.count(ratio).over().label("ratios"),
        ).subquery("ranked")
    k = figures.c
    if money:
        # The middle one, or the mean of the middle two, as statistics.median takes it.
        middle = case((or_(k.position == (k.ratios + 1) // 2, k.position == (k.ratios + 2) // 2), k.ratio))
        total = (func.min(middle) + func.max(middle)) / 2
    else:
        total = func.sum(k.current - k.baseline)  # not of money: currencies differ
    statement = select(
        func.count(),
        func.sum(case((k.current > k.baseline, 1), else_=0)),
        func.sum(case((k.current == k.baseline, 1), else_=0)),
        func.sum(case((k.current < k.baseline, 1), else_=0)),
        total,
    )
    reporting, grew, unchanged, shrank, value = (await session.execute(statement)).one()
    moved = dict(zip(OUTCOME_FIRMS, (reporting, grew or 0, unchanged or 0, shrank or 0), strict=True))
    if money:
        return Outcome(None, None if value is None else round(float(value), 4), moved)
    return Outcome(int(value or 0), None, moved)


async def outcomes(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    joined, supported = supported_during(period)
    supported_clusters = select(CLUSTERS.c.id).select_from(joined).where(supported, scope.clusters(CLUSTERS))
    in_supported = select(FIRM_CLUSTERS.c.firm_id).where(FIRM_CLUSTERS.c.cluster_id.in_(supported_clusters))
    cluster_firms = select(FIRMS.c.id).where(
        FIRMS.c.id.in_(in_supported), scope.linked(FIRMS, FIRM_CLUSTERS, "firm_id")
    )
    jobs = await firm_outcome(session, cluster_firms, period, "employees", money=False)
    members = (
        select(MEMBERS.c.firm_id)
        .select_from(MEMBERS.join(NETWORKS, NETWORKS.c.id == MEMBERS.c.network_id))
        .where(formed_on() <= period.end, scope.networks(NETWORKS))
    )
    sales = await firm_outcome(session, members, period, "sales", money=True)
    exports = await firm_outcome(session, members, period, "exports", money=True)
    return {
        "jobs_created_in_supported_clusters": Figure(jobs.change, jobs.moved),
        "sales_change_of_network_members": Figure(sales.median_relative_change, sales.moved),
        "exports_change_of_network_members": Figure(exports.median_relative_change, exports.moved),
    }


# --- shortlists and development candidates ------------------------------------------------


async def shortlists(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    supplier_in_scope = scope.supplier(LISTED.c.supplier_id, FIRM_CLUSTERS)
    issued_where: list[ColumnElement[bool]] = [period.within(SHORTLISTS.c.issued_on)]
    if not scope.unrestricted:
        inner = LISTED.alias()
        issued_where.append(
            exists(
                select(1).where(
                    inner.c.shortlist_id == SHORTLISTS.c.id, scope.supplier(inner.c.supplier_id, FIRM_CLUSTERS)
                )
            )
        )
    issued = await session.scalar(select(func.count()).where(*issued_where))
    listed = LISTED.join(SHORTLISTS, SHORTLISTS.c.id == LISTED.c.shortlist_id)
    in_period = (period.within(SHORTLISTS.c.issued_on), supplier_in_scope)
    shortlisted = await firm_figure(
        session, select(LISTED.c.supplier_id).select_from(listed).where(LISTED.c.listed_as == "item", *in_period)
    )
    development = (LISTED.c.listed_as == "development", *in_period)
    by_gap = _breakdown(
        (
            await session.execute(
                select(LISTED.c.gap_kind, func.count(distinct(LISTED.c.supplier_id)))
                .select_from(listed)
                .where(*development, LISTED.c.gap_kind.is_not(None))
                .group_by(LISTED.c.gap_kind)
            )
        ).all(),
        GAP_KINDS,
    )
    named = (
        select(LISTED.c.supplier_id, LISTED.c.gap_scheme, func.min(SHORTLISTS.c.issued_on).label("named_on"))
        .select_from(listed)
        .where(*development, LISTED.c.gap_kind == "certification", LISTED.c.gap_scheme.is_not(None))
        .group_by(LISTED.c.supplier_id, LISTED.c.gap_scheme)
        .subquery()
    )
    gaps = await session.scalar(select(func.count()).select_from(named))
    closed = await session.scalar(
        select(func.count())
        .select_from(named)
        .where(
            exists(
                select(1).where(
                    CERTIFICATES.c.firm_id == named.c.supplier_id,
                    CERTIFICATES.c.scheme == named.c.gap_scheme,
                    CERTIFICATES.c.obtained_on >= named.c.named_on,
                    CERTIFICATES.c.obtained_on <= period.end,
                )
            )
        )
    )
    return {
        "shortlists_issued": Figure(int(issued or 0)),
        "suppliers_shortlisted": shortlisted,
        "development_candidates_flagged": await firm_figure(
            session, select(LISTED.c.supplier_id).select_from(listed).where(*development), by_gap
        ),
        "certification_gaps_named": Figure(int(gaps or 0)),
        "certification_gaps_closed": Figure(int(closed or 0)),
    }


# --- linkages ---------------------------------------------------------------------------

STAGE_RANK = {stage: rank for rank, stage in enumerate(FUNNEL_STAGES)}
CONTRACTED = ("contracted", "active")


def proposed_in(period: Period) -> tuple[Any, Any]:
    """Linkages joined to their first history entry, and that entry's alias; callers filter on its date."""
    first = EVENTS.alias("first_event")
    joined = LINKAGES.join(first, and_(first.c.linkage_id == LINKAGES.c.id, first.c.position == 0))
    return joined, first


def stage_at_end(period: Period) -> tuple[Any, Any]:
    """Linkages joined to the stage they were at on the period's last day (the last history
    entry dated on or before it), and that entry's alias; linkages proposed later are left out."""
    last = (
        select(EVENTS.c.linkage_id, func.max(EVENTS.c.position).label("position"))
        .where(EVENTS.c.reached_on <= period.end)
        .group_by(EVENTS.c.linkage_id)
        .subquery()
    )
    at_end = EVENTS.alias("at_end")
    joined = last.join(
        at_end, and_(at_end.c.linkage_id == last.c.linkage_id, at_end.c.position == last.c.position)
    ).join(LINKAGES, LINKAGES.c.id == last.c.linkage_id)
    return joined, at_end


async def linkages(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    supplier_in_scope = scope.supplier(LINKAGES.c.supplier_id, FIRM_CLUSTERS)
    staged, at_end = stage_at_end(period)
    rows = (
        await session.execute(
            select(at_end.c.stage, func.count()).select_from(staged).where(supplier_in_scope).group_by(at_end.c.stage)
        )
    ).all()
    by_stage = _breakdown(rows, STAGES)

    # The funnel: linkages proposed in the period, and the furthest stage each reached by its end.
    joined, first = proposed_in(period)
    rank = case(*((EVENTS.c.stage == stage, r) for stage, r in STAGE_RANK.items()), else_=-1)
    per_linkage = (
        select(
            LINKAGES.c.id,
            func.max(rank).label("furthest"),
            func.max(case((EVENTS.c.stage == "dropped", 1), else_=0)).label("dropped"),
        )
        .select_from(joined.join(EVENTS, EVENTS.c.linkage_id == LINKAGES.c.id))
        .where(period.within(first.c.reached_on), EVENTS.c.reached_on <= period.end, supplier_in_scope)
        .group_by(LINKAGES.c.id)
        .subquery()
    )
    groups = (
        await session.execute(
            select(per_linkage.c.furthest, per_linkage.c.dropped, func.count()).group_by(
                per_linkage.c.furthest, per_linkage.c.dropped
            )
        )
    ).all()
    funnel: dict[str, Number] = dict.fromkeys(STAGES, 0)
    cohort = 0
    for furthest, dropped, count in groups:
        cohort += int(count)
        for stage, r in STAGE_RANK.items():
            if int(furthest) >= r:
                funnel[stage] = int(funnel[stage] or 0) + int(count)
        if int(dropped):
            funnel["dropped"] = int(funnel["dropped"] or 0) + int(count)
    conversion: dict[str, Number] = {}
    for step, (a, b) in zip(CONVERSIONS, zip(FUNNEL_STAGES, FUNNEL_STAGES[1:], strict=False), strict=True):
        conversion[step] = _share(funnel[b], funnel[a])

    # Days from the proposal off the shortlist to the first contracted (or active) entry.
    reached = (
        select(first.c.reached_on, func.min(EVENTS.c.reached_on))
        .select_from(joined.join(EVENTS, EVENTS.c.linkage_id == LINKAGES.c.id))
        .where(
            period.within(first.c.reached_on),
            EVENTS.c.stage.in_(CONTRACTED),
            EVENTS.c.reached_on <= period.end,
            supplier_in_scope,
        )
        .group_by(LINKAGES.c.id, first.c.reached_on)
    )
    days = [(_day(contracted) - _day(proposed)).days for proposed, contracted in await session.execute(reached)]
    median = _median(days)
    return {
        "linkages_by_stage": Figure(_total(by_stage), by_stage),
        "linkage_funnel": Figure(cohort, funnel),
        "linkage_conversion": Figure(_share(funnel["contracted"], funnel["proposed"]), conversion),
        "median_days_to_contract": Figure(median),
    }


# --- consortia: networks as suppliers -----------------------------------------------------


async def consortia(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    inner = CONSORTIA.alias()
    issued = await session.scalar(
        select(func.count()).where(
            period.within(SHORTLISTS.c.issued_on),
            exists(select(1).where(inner.c.shortlist_id == SHORTLISTS.c.id, scope.network(inner.c.network_id))),
        )
    )
    network_linkage = (LINKAGES.c.supplier_kind == "network", scope.network(LINKAGES.c.supplier_id))
    staged, at_end = stage_at_end(period)
    rows = (
        await session.execute(
            select(at_end.c.stage, func.count()).select_from(staged).where(*network_linkage).group_by(at_end.c.stage)
        )
    ).all()
    by_stage = _breakdown(rows, STAGES)
    smes = await firm_figure(
        session,
        select(LINKAGE_MEMBERS.c.firm_id)
        .select_from(
            staged.join(LINKAGE_MEMBERS, LINKAGE_MEMBERS.c.linkage_id == LINKAGES.c.id).join(
                FIRMS, FIRMS.c.id == LINKAGE_MEMBERS.c.firm_id
            )
        )
        .where(*network_linkage, at_end.c.stage != "dropped", FIRMS.c.size_class.in_(SMALL_AND_MEDIUM)),
    )
    return {
        "consortium_shortlists_issued": Figure(int(issued or 0)),
        "network_linkages_by_stage": Figure(_total(by_stage), by_stage),
        "smes_reached_through_consortia": smes,
    }


def _median(days: Sequence[int]) -> Number:
    if not days:
        return None
    middle = statistics.median(days)
    return int(middle) if float(middle).is_integer() else float(middle)


# --- requests for quotation and delivery scorecards ---------------------------------------


def request_in_scope(scope: Scope) -> ColumnElement[bool]:
    """A request of the buyer's agency in scope that invites at least one supplier in scope."""
    if scope.unrestricted:
        return true()
    inner = INVITED.alias()
    return exists(
        select(1).where(
            inner.c.request_id == REQUESTS.c.id,
            scope.invitation(REQUESTS.c.agency_id, inner.c.supplier_id, FIRM_CLUSTERS),
        )
    )


async def requests(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    in_scope = request_in_scope(scope)
    invitations = INVITED.join(REQUESTS, REQUESTS.c.id == INVITED.c.request_id)
    invited = scope.invitation(REQUESTS.c.agency_id, INVITED.c.supplier_id, FIRM_CLUSTERS)
    issued = await session.scalar(select(func.count()).where(period.within(REQUESTS.c.opened_on), in_scope))
    sent = await session.execute(
        select(INVITED.c.development, func.count())
        .select_from(invitations)
        .where(period.within(REQUESTS.c.opened_on), invited)
        .group_by(INVITED.c.development)
    )
    by_listing = _breakdown([(LISTED_AS[bool(development)], n) for development, n in sent], LISTED_AS)
    answered, asked = (
        await session.execute(
            select(func.count(INVITED.c.answer_kind), func.count())
            .select_from(invitations)
            .where(period.within(REQUESTS.c.answers_closed_on), REQUESTS.c.status != "cancelled", invited)
        )
    ).one()
    bids = await session.execute(
        select(INVITED.c.on_behalf, func.count())
        .select_from(invitations)
        .where(INVITED.c.answer_kind == "bid", period.within(INVITED.c.answered_on), invited)
        .group_by(INVITED.c.on_behalf)
    )
    by_submitter = _breakdown([(SUBMITTED_BY[bool(on_behalf)], n) for on_behalf, n in bids], SUBMITTED_BY)
    awarded = (
        await session.execute(
            select(REQUESTS.c.opened_on, REQUESTS.c.awarded_on).where(period.within(REQUESTS.c.awarded_on), in_scope)
        )
    ).all()
    development = await session.scalar(
        select(func.count())
        .select_from(invitations)
        .where(period.within(REQUESTS.c.awarded_on), INVITED.c.status == "awarded", INVITED.c.development, invited)
    )
    days = [(_day(on) - _day(opened)).days for opened, on in awarded if opened is not None]
    return {
        "requests_issued": Figure(int(issued or 0)),
        "invitations_sent": Figure(_total(by_listing), by_listing),
        "response_rate": Figure(_share(answered, asked)),
        "bids_received": Figure(_total(by_submitter), by_submitter),
        "requests_awarded": Figure(len(awarded)),
        "median_days_to_award": Figure(_median(days)),
        "development_candidates_awarded": Figure(int(development or 0)),
    }


async def scorecards(session: AsyncSession, scope: Scope, period: Period) -> dict[str, Figure]:
    count, quality, on_time = (
        await session.execute(
            select(func.count(), func.avg(SCORECARDS.c.quality), func.avg(SCORECARDS.c.on_time)).where(
                SCORECARDS.c.counts,
                period.within(SCORECARDS.c.observed_on),
                scope.supplier(SCORECARDS.c.supplier_id, FIRM_CLUSTERS),
            )
        )
    ).one()
    return {
        "scorecards_counted": Figure(int(count or 0)),
        "delivery_quality": Figure(None if quality is None else round(float(quality), 4)),
        "delivery_on_time": Figure(None if on_time is None else round(float(on_time), 4)),
    }


def _share(part: Number, whole: Number) -> Number:
    return round(int(part or 0) / int(whole), 4) if whole else None


def _day(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


CALCULATORS: tuple[tuple[tuple[str, ...], Calculator], ...] = (
    (("clusters_supported", "firms_registered", "jobs_in_supported_clusters"), clusters),
    (
        (
            "horizontal_networks_formed",
            "horizontal_networks_active",
            "smes_in_horizontal_networks",
            "vertical_networks_formed",
            "vertical_networks_active",
            "lead_firms_in_vertical_networks",
            "smes_in_vertical_networks",
            "joint_actions",
        ),
        networks,
    ),
    (("brokers_trained", "brokers_certified", "institutions_engaged"), support),
    (("activities_held", "people_reached", "women_reached", "people_reached_by_gender"), activities),
    (
        (
            "shortlists_issued",
            "suppliers_shortlisted",
            "development_candidates_flagged",
            "certification_gaps_named",
            "certification_gaps_closed",
        ),
        shortlists,
    ),
    (("linkages_by_stage", "linkage_funnel", "linkage_conversion", "median_days_to_contract"), linkages),
    (("consortium_shortlists_issued", "network_linkages_by_stage", "smes_reached_through_consortia"), consortia),
    (
        (
            "requests_issued",
            "invitations_sent",
            "response_rate",
            "bids_received",
            "requests_awarded",
            "median_days_to_award",
            "development_candidates_awarded",
        ),
        requests,
    ),
    (("scorecards_counted", "delivery_quality", "delivery_on_time"), scorecards),
    (
        ("jobs_created_in_supported_clusters", "sales_change_of_network_members", "exports_change_of_network_members"),
        outcomes,
    ),
)
assert {k for keys, _ in CALCULATORS for k in keys} == set(BY_KEY), "every definition has a calculator"


async def compute(
    session: AsyncSession, scope: Scope, period: Period, keys: Sequence[str] | None = None
) -> dict[str, Figure]:
    """The indicators ``keys`` (all when None), in the definitions' order."""
    wanted = set(keys) if keys is not None else set(BY_KEY)
    figures: dict[str, Figure] = {}
    for produced, calculator in CALCULATORS:
        if wanted.intersection(produced):
            figures |= await calculator(session, scope, period)
    return {key: figures[key] for key in BY_KEY if key in wanted}


# --- series -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    label: str
    period: Period


def bucket_start(day: date, granularity: str) -> date:
    if granularity == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, day.month, 1)


def next_bucket(start: date, granularity: str) -> date:
    months = 3 if granularity == "quarter" else 1
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def bucket_label(start: date, granularity: str) -> str:
    if granularity == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year}-{start.month:02d}"


def buckets(start: date, end: date, granularity: str) -> list[Bucket]:
    """Months or quarters from ``start`` to ``end``, each clipped to them."""
    result: list[Bucket] = []
    current = bucket_start(start, granularity)
    while current <= end:
        following = next_bucket(current, granularity)
        last_day = following - timedelta(days=1)
        result.append(Bucket(bucket_label(current, granularity), Period(max(current, start), min(last_day, end))))
        current = following
    return result


def bucket_count(start: date, end: date, granularity: str) -> int:
    first, last = bucket_start(start, granularity), bucket_start(end, granularity)
    months = (last.year - first.year) * 12 + last.month - first.month
    return months // (3 if granularity == "quarter" else 1) + 1


def default_series_start(end: date, granularity: str, periods: int = 12) -> date:
    start = bucket_start(end, granularity)
    months = (periods - 1) * (3 if granularity == "quarter" else 1)
    index = start.year * 12 + start.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class Series:
    buckets: list[Bucket]
    figures: dict[str, list[Figure]] = field(default_factory=dict)


async def series(session: AsyncSession, scope: Scope, parts: list[Bucket], keys: Sequence[str]) -> Series:
    result = Series(parts, {key: [] for key in keys})
    for bucket in parts:
        figures = await compute(session, scope, bucket.period, keys)
        for key in keys:
            result.figures[key].append(figures[key])
    return result


async def earliest_day(session: AsyncSession, scope: Scope) -> date | None:
    """The first dated event in ``scope`` (a cluster's support starting, a network formed, a
    broker trained, ...): where a series over the scope begins to have something to show."""
    first_days = (
        select(func.min(func.coalesce(PROGRAMMES.c.start_date, CLUSTERS.c.registered_on)))
        .select_from(CLUSTERS.outerjoin(PROGRAMMES, PROGRAMMES.c.id == CLUSTERS.c.programme_id))
        .where(scope.clusters(CLUSTERS)),
        select(func.min(FIRMS.c.registered_on)).where(scope.linked(FIRMS, FIRM_CLUSTERS, "firm_id")),
        select(func.min(formed_on())).where(scope.networks(NETWORKS)),
        select(func.min(BROKERS.c.trained_on)).where(scope.brokers(BROKERS, BROKER_CLUSTERS)),
        select(func.min(ACTIVITIES.c.start_date)).where(scope.activities(ACTIVITIES)),
        select(func.min(SHORTLISTS.c.issued_on))
        .select_from(LISTED.join(SHORTLISTS, SHORTLISTS.c.id == LISTED.c.shortlist_id))
        .where(scope.supplier(LISTED.c.supplier_id, FIRM_CLUSTERS)),
        select(func.min(EVENTS.c.reached_on))
        .select_from(EVENTS.join(LINKAGES, LINKAGES.c.id == EVENTS.c.linkage_id))
        .where(scope.supplier(LINKAGES.c.supplier_id, FIRM_CLUSTERS)),
        select(func.min(REQUESTS.c.opened_on)).where(request_in_scope(scope)),
        select(func.min(SCORECARDS.c.observed_on)).where(scope.supplier(SCORECARDS.c.supplier_id, FIRM_CLUSTERS)),
    )
    days = [await session.scalar(query) for query in first_days]
    found = [_day(d) for d in days if d is not None]
    return min(found) if found else None


# --- per cluster ------------------------------------------------------------------------


# What the cluster figures list sorts by besides id (``sort``, services/common/pagination.py).
CLUSTER_SORTS = {"name": CLUSTERS.c.name, "country": CLUSTERS.c.country}


def clusters_supported(scope: Scope, period: Period) -> Select[Any]:
    """The clusters supported during the period, in scope (unordered)."""
    joined, supported = supported_during(period)
    return select(CLUSTERS).select_from(joined).where(supported, scope.clusters(CLUSTERS))


async def cluster_figures(
    session: AsyncSession, scope: Scope, period: Period, *, after: str | None = None, limit: int | None = None
) -> list[ClusterFigures]:
    """Clusters supported during the period (in scope), by id, each with its own figures."""
    statement = clusters_supported(scope, period).order_by(CLUSTERS.c.id)
    if after is not None:
        statement = statement.where(CLUSTERS.c.id > after)
    if limit is not None:
        statement = statement.limit(limit)
    return await figures_of(session, scope, period, list(await session.execute(statement)))


async def figures_of(
    session: AsyncSession, scope: Scope, period: Period, clusters: Sequence[Any]
) -> list[ClusterFigures]:
    """Each cluster row's own figures during the period, in the rows' order."""
    rows = {
        r.id: ClusterFigures(
            id=r.id,
            name=r.name,
            programme_id=r.programme_id,
            country=r.country,
            subdivision=r.subdivision,
            sector_isic=r.sector_isic,
            latitude=r.latitude,
            longitude=r.longitude,
            jobs=r.jobs,
        )
        for r in clusters
    }
    if not rows:
        return []
    ids = list(rows)
    firms = await session.execute(
        select(FIRM_CLUSTERS.c.cluster_id, func.count(distinct(FIRMS.c.id)))
        .select_from(FIRM_CLUSTERS.join(FIRMS, FIRMS.c.id == FIRM_CLUSTERS.c.firm_id))
        .where(
            FIRM_CLUSTERS.c.cluster_id.in_(ids),
            FIRMS.c.registered_on <= period.end,
            scope.linked(FIRMS, FIRM_CLUSTERS, "firm_id"),
        )
        .group_by(FIRM_CLUSTERS.c.cluster_id)
    )
    for cluster_id, count in firms:
        rows[cluster_id].firms = int(count)
    for kind in ("horizontal", "vertical"):
        active = await session.execute(
            select(NETWORKS.c.cluster_id, func.count())
            .where(NETWORKS.c.cluster_id.in_(ids), active_at(period, kind), scope.networks(NETWORKS))
            .group_by(NETWORKS.c.cluster_id)
        )
        for cluster_id, count in active:
            setattr(rows[cluster_id], f"{kind}_networks_active", int(count))
    joined_linkages, first = proposed_in(period)
    via_supplier = joined_linkages.join(FIRM_CLUSTERS, FIRM_CLUSTERS.c.firm_id == LINKAGES.c.supplier_id)
    cohort = (
        FIRM_CLUSTERS.c.cluster_id.in_(ids),
        period.within(first.c.reached_on),
        scope.supplier(LINKAGES.c.supplier_id, FIRM_CLUSTERS),
    )
    contracted = exists(
        select(1).where(
            EVENTS.c.linkage_id == LINKAGES.c.id, EVENTS.c.stage.in_(CONTRACTED), EVENTS.c.reached_on <= period.end
        )
    )
    for attribute, extra in (("linkages_proposed", true()), ("linkages_contracted", contracted)):
        counts = await session.execute(
            select(FIRM_CLUSTERS.c.cluster_id, func.count(distinct(LINKAGES.c.id)))
            .select_from(via_supplier)
            .where(*cohort, extra)
            .group_by(FIRM_CLUSTERS.c.cluster_id)
        )
        for cluster_id, count in counts:
            setattr(rows[cluster_id], attribute, int(count))
    return list(rows.values())


# --- freshness --------------------------------------------------------------------------


async def feed_states(session: AsyncSession) -> dict[str, dict[str, Any]]:
    rows = await session.execute(select(FEED_STATE))
    return {
        r.feed: {"position": r.last_seq, "last_change_at": r.last_change_at, "applied_at": r.applied_at} for r in rows
    }
