"""Alerts published on matching's change feed, exactly once however many replicas run.

``StandardsWatcher`` is told by the catalogue's lifecycle of each registry feed page it
applies (the suppliers' records before and after, the views before and after) and
publishes a ``standards_match`` change for each alerted standards a supplier newly
meets (``reverse.py``). ``CertificateSweeper`` publishes a ``certificate_expiring``
change for each certificate of a supplier in a lead firm's ongoing linkage (contracted
or active) that expires within the horizon.

Every replica follows the registry's feed into its own catalogue, so every replica finds
the same matches. Each publication is claimed by its natural key in
``alert_publications`` (``INSERT … ON CONFLICT DO NOTHING … RETURNING``) in the
transaction that writes its outbox row: the first replica's claim wins, the others' are
no-ops, and a change is published once. Claims of one page are written in one
transaction, in key order (no deadlock between replicas).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from services.common.bulk import chunks
from services.common.changefeed import PendingChange, record_changes
from services.common.db import insert_or_skip
from services.common.ids import new_id
from services.common.periodic import PeriodicSweep
from services.matching.alerts.reverse import Alert, Match, StandardsIndex, SupplierChange, reverse_match
from services.matching.alerts.router import ENTITY as ALERT_ENTITY
from services.matching.alerts.schemas import CertificateExpiringPublic, StandardsMatchPublic
from services.matching.catalogue.catalogue import View
from services.matching.catalogue.store import CatalogueStore
from services.matching.linkages.schemas import Stage
from services.matching.shortlists.schemas import ShortlistRequest
from services.matching.shortlists.service import listed_item, to_query
from services.matching.standards.schemas import Standards
from services.matching.tables import OUTBOX, AlertPublication, BuyerStandard, Linkage, StandardsAlert

logger = structlog.get_logger(__name__)

STANDARDS_MATCH = "standards_match"
CERTIFICATE_EXPIRING = "certificate_expiring"
ONGOING = (Stage.contracted.value, Stage.active.value)  # linkages whose suppliers' certificates are watched
CLAIM_CHUNK = 200


async def claim(session: AsyncSession, kind: str, keys: dict[str, str], now: datetime) -> set[str]:
    """Claim ``keys`` (natural key -> the change id it would publish) of ``kind``: the keys
    this transaction is first to claim (others were claimed before, by any replica)."""
    table = AlertPublication.__table__  # type: ignore[attr-defined]
    claimed: set[str] = set()
    for chunk in chunks(sorted(keys), CLAIM_CHUNK):
        rows = [{"kind": kind, "key": key, "change_id": keys[key], "created_at": now} for key in chunk]
        statement = insert_or_skip(session, table).values(rows).returning(table.c.key)
        claimed.update(await session.scalars(statement))
    return claimed


def alert_of(alert: StandardsAlert, standards: BuyerStandard) -> Alert:
    """The alerted standards as reverse matching reads them."""
    request = ShortlistRequest.model_validate({"limit": alert.top_n or 1})
    query = to_query(Standards.model_validate(standards.body), request, date.min)
    return Alert(
        standards_id=standards.id,
        version=standards.version,
        owner=standards.owner,
        agency_id=standards.agency_id,
        firm_id=standards.firm_id,
        query=query,
        min_score=alert.min_score,
        top_n=alert.top_n,
        enabled_at=alert.enabled_at,
    )


class StandardsWatcher:
    """Reverse matching beside the catalogue (see the module): the lifecycle's ``watcher``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock
        self.index = StandardsIndex()
        self._synced: int | None = None  # matching's outbox sequence the index is current at
        self._pending: list[SupplierChange] = []  # changes of pages applied while the view waits for a rebuild

    async def sync(self) -> bool:
        """Bring the index up to matching's own feed (alerts and standards changed by any
        replica); whether any standards have an alert. A database failure is logged and
        skips the page's alerts: it must not hold the catalogue up."""
        try:
            return await self._sync()
        except Exception as exc:
            logger.warning("standards_alerts_sync_failed", error=repr(exc))
            return False

    async def _sync(self) -> bool:
        async with self.sessions() as session:
            last = int(await session.scalar(select(func.coalesce(func.max(OUTBOX.c.seq), 0))) or 0)
            if self._synced is None:
                ids = None
            elif last > self._synced:
                ids = list(
                    await session.scalars(
                        select(OUTBOX.c.entity_id)
                        .where(OUTBOX.c.seq > self._synced, OUTBOX.c.seq <= last)
                        .where(OUTBOX.c.entity.in_(("buyer_standards", ALERT_ENTITY)))
                        .distinct()
                    )
                )
            else:
                ids = []
            if ids is None or ids:
                statement = select(StandardsAlert, BuyerStandard).join(
                    BuyerStandard, col(BuyerStandard.id) == col(StandardsAlert.standards_id)
                )
                if ids is not None:
                    statement = statement.where(col(StandardsAlert.standards_id).in_(ids))
                found = {
                    standards.id: alert_of(alert, standards) for alert, standards in await session.execute(statement)
                }
                for standards_id in ids or ():
                    if standards_id not in found:
                        self.index.remove(standards_id)
                for alert_entry in found.values():
                    self.index.put(alert_entry)
        self._synced = last
        return len(self.index) > 0

    async def supplier_changes(self, changes: Sequence[SupplierChange], view: View | None) -> None:
        """Publish the matches of ``changes`` (a page's) over ``view``, the view published with
        them (None while catching up: they are judged over the next one)."""
        try:
            await self._supplier_changes(changes, view)
        except Exception as exc:  # a database hiccup must not stop the catalogue
            logger.warning("standards_alerts_failed", error=repr(exc), suppliers=len(changes))

    async def _supplier_changes(self, changes: Sequence[SupplierChange], view: View | None) -> None:
        self.index.changed(changes)  # before any field is ranked over a view with them
        self._pending += [c for c in changes if c.after is not None and self.index.candidates(c.after)]
        if view is None or not self._pending:
            return
        pending, self._pending = self._pending, []
        matches = await asyncio.to_thread(reverse_match, self.index, pending, view, self.clock().date())
        if matches:
            await self.publish(matches)

    async def publish(self, matches: Sequence[Match]) -> int:
        """Publish the ``matches`` not yet published (by any replica); how many were."""
        now = self.clock()
        by_key = {f"{m.alert.standards_id}/{m.supplier_id}/{m.version}": m for m in matches}
        ids = {key: new_id("smt") for key in by_key}
        async with self.sessions() as session, session.begin():
            claimed = await claim(session, STANDARDS_MATCH, ids, now)
            changes = [_match_change(ids[key], by_key[key], now) for key in sorted(claimed)]
            await record_changes(session, OUTBOX, changes)
        if changes:
            logger.info("standards_matched", published=len(changes), found=len(matches))
        return len(changes)


def _match_change(change_id: str, match: Match, now: datetime) -> PendingChange:
    alert, evaluation = match.alert, match.evaluation
    item = listed_item(evaluation.rank or 1, evaluation.ranked, evaluation.weights)
    public = StandardsMatchPublic(
        id=change_id,
        standards_id=alert.standards_id,
        standards_version=alert.version,
        owner=alert.owner,
        agency_id=alert.agency_id,
        buyer_firm_id=alert.firm_id,
        supplier_id=match.supplier_id,
        supplier_name=evaluation.ranked.name,
        score=evaluation.ranked.score,
        rank=evaluation.rank,
        criteria=item["criteria"],
        matched_at=now,
    )
    data = public.model_dump(mode="json")
    return PendingChange(
        entity=STANDARDS_MATCH, entity_id=change_id, op="created", version=1, agency_id=alert.agency_id, data=data
    )


class CertificateSweeper(PeriodicSweep):
    """Publishes ``certificate_expiring`` once per (linkage, scheme, valid until) within the horizon."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: CatalogueStore,
        clock: Callable[[], datetime],
        *,
        days: int,
        interval_seconds: float,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.clock = clock
        self.days = days
        self.interval_seconds = interval_seconds

    name = "certificates_expiring"

    async def sweep(self, batch: int = 1000) -> int:
        """Publish the certificates expiring within the horizon not yet published; how many were."""
        now = self.clock()
        today = now.date()
        horizon = today + timedelta(days=self.days)
        published = 0
        after = ""
        while True:
            async with self.sessions() as session:
                linkages = list(
                    await session.scalars(
                        select(Linkage)
                        .where(col(Linkage.stage).in_(ONGOING), col(Linkage.id) > after)
                        .order_by(col(Linkage.id))
                        .limit(batch)
                    )
                )
            if not linkages:
                return published
            after = linkages[-1].id
            records = await asyncio.to_thread(self.store.records, sorted({row.supplier_id for row in linkages}))
            due: dict[str, PendingChange] = {}
            for linkage in linkages:
                record = records.get(linkage.supplier_id)
                for certificate in record.certificates if record else ():
                    until = certificate.valid_until
                    if until is None or not today <= until <= horizon:
                        continue
                    key = f"{linkage.id}/{certificate.scheme}/{until.isoformat()}"
                    change_id = new_id("cex")
                    data = CertificateExpiringPublic(
                        id=change_id,
                        linkage_id=linkage.id,
                        owner=linkage.owner,
                        agency_id=linkage.agency_id,
                        buyer_firm_id=linkage.firm_id,
                        supplier_id=linkage.supplier_id,
                        scheme=certificate.scheme,
                        valid_until=until,
                        days_ahead=(until - today).days,
                    ).model_dump(mode="json")
                    due[key] = PendingChange(
                        entity=CERTIFICATE_EXPIRING,
                        entity_id=change_id,
                        op="created",
                        version=1,
                        agency_id=linkage.agency_id,
                        data=data,
                    )
            if due:
                async with self.sessions() as session, session.begin():
                    claimed = await claim(session, CERTIFICATE_EXPIRING, {k: c.entity_id for k, c in due.items()}, now)
                    await record_changes(session, OUTBOX, [due[key] for key in sorted(claimed)])
                published += len(claimed)
