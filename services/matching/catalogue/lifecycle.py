"""The catalogue's life: loaded from a snapshot or the store, then kept up with the feed.

``CatalogueLifecycle`` is the registry feed's consumer (``FeedFollower``). Changes are
written to the store with the cursor, then published as a new view with a rebuilt
delta; when the delta grows past ``delta_limit`` (or after a bulk catch-up) the main
segment is rebuilt from the store in a worker thread, with a freshly fitted text
model: a new ``epoch``, so a new catalogue version. Each rebuilt main segment is saved
as a snapshot, which a restart opens instead of rebuilding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog
from pyroaring import BitMap

from services.common.changefeed import Change, ChangePage
from services.matching.alerts.reverse import SupplierChange
from services.matching.catalogue import snapshot
from services.matching.catalogue.catalogue import Catalogue, View, build_view, with_delta, with_networks
from services.matching.catalogue.consortia import (
    EMPTY_INDEX,
    FIGURES_BYTES,
    NetworkEntry,
    NetworkIndex,
    network_from_record,
)
from services.matching.catalogue.records import SupplierRecord, supplier_from_firm
from services.matching.catalogue.store import CatalogueStore

logger = structlog.get_logger(__name__)


class SupplierWatcher(Protocol):
    """Told of the supplier changes of each applied page (``alerts.service.StandardsWatcher``)."""

    async def sync(self) -> bool:
        """Whether the watcher wants the page's changes (e.g. any alerts exist)."""
        ...

    async def supplier_changes(self, changes: Sequence[SupplierChange], view: View | None) -> None:
        """``view``: the view published with the page's changes; None while catching up."""
        ...


@dataclass
class CatalogueLifecycle:
    """Builds ``catalogue``'s views: applies feed pages, rebuilds and snapshots the main segment."""

    store: CatalogueStore
    catalogue: Catalogue = field(default_factory=Catalogue)
    snapshots: Path | None = None  # where main segments are saved for fast restarts
    delta_limit: int = 5000
    small_catalogue: int = 1000  # up to this many suppliers every change rebuilds the main segment
    watcher: SupplierWatcher | None = None  # told of each page's supplier changes (saved-standards alerts)
    figures_bytes: int = FIGURES_BYTES  # consortium figures kept per view (``MATCHING_CONSORTIUM_FIGURES_BYTES``)
    _networks: dict[str, NetworkEntry] = field(default_factory=dict)  # candidate consortia by id
    _network_index: NetworkIndex = EMPTY_INDEX  # of ``_networks``, as views carry it
    _rebuild_needed: bool = False
    _rebuilding: asyncio.Task[None] | None = None
    _publish: asyncio.Lock = field(default_factory=asyncio.Lock)
    _applying: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def load_cursor(self) -> int:
        """FeedConsumer: where the store stopped; builds the first view from the store."""
        if self.catalogue.view is None:
            self.catalogue.schemes = await asyncio.to_thread(self.store.schemes)
            self._networks = {e.id: e for e in await asyncio.to_thread(self.store.networks)}
            self._network_index = await asyncio.to_thread(self._index_of_networks)
            if not await self._restore():
                await self._rebuild(epoch=1)
        return await asyncio.to_thread(self.store.cursor)

    async def _restore(self) -> bool:
        """Open the newest snapshot and put what the store has beyond it in the delta."""
        path = snapshot.latest(self.snapshots) if self.snapshots else None
        if path is None:
            return False
        started = time.perf_counter()
        try:
            main, text, seq = await asyncio.to_thread(snapshot.load, path)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("snapshot_unreadable", path=str(path), error=repr(exc))
            return False
        delta = {i: (s, r) for i, s, r in await asyncio.to_thread(lambda: list(self.store.changed_after(seq)))}
        base = View(
            main=main,
            text=text,
            removed=BitMap(),
            delta=None,
            delta_records={},
            seq=seq,
            main_seq=seq,
            networks=self._network_index,
        )
        cursor = await asyncio.to_thread(self.store.cursor)
        restored = await asyncio.to_thread(with_delta, base, delta, max(cursor, seq)) if delta else base
        self.catalogue.view = await asyncio.to_thread(resolved, restored)
        if len(delta) > self.delta_limit:
            self._rebuild_needed = True
        logger.info(
            "catalogue_restored",
            path=str(path),
            suppliers=main.n,
            delta=len(delta),
            seconds=round(time.perf_counter() - started, 3),
        )
        return True

    async def apply(self, page: ChangePage) -> None:
        """FeedConsumer: store the page with its cursor, then publish the change.

        Pages are applied one at a time, in feed order (a background rebuild may run
        meanwhile): the store's cursor must never pass a page not yet stored.
        """
        async with self._applying:
            await self._apply(page)

    async def _apply(self, page: ChangePage) -> None:
        changes: list[tuple[str, int, SupplierRecord | None]] = []
        schemes: list[str] = []
        firms: list[Change] = []
        networks: list[tuple[str, int, NetworkEntry | None]] = []
        for change in page.items:
            if change.entity == "certification_scheme" and change.op != "deleted":
                schemes.append(change.entity_id)
            elif change.entity == "network":
                entry = network_from_record(change.data) if change.op != "deleted" and change.data else None
                networks.append((change.entity_id, change.seq, entry))
            elif change.entity == "firm":
                record = supplier_from_firm(change.data) if change.op != "deleted" and change.data else None
                changes.append((change.entity_id, change.seq, record))
                firms.append(change)
        watched = self.watcher is not None and bool(firms) and await self.watcher.sync()
        before = await asyncio.to_thread(self.store.records, [c.entity_id for c in firms]) if watched else {}
        published = await self._update(page, changes, schemes, networks)
        if watched and self.watcher is not None:
            # Each change in feed order, from the record before it: replicas whose pages split
            # the feed differently see the same transitions.
            supplier_changes = []
            for change, (supplier_id, _, record) in zip(firms, changes, strict=True):
                previous = before.get(supplier_id)
                supplier_changes.append(
                    SupplierChange(supplier_id, change.version, change.occurred_at, previous, record)
                )
                if record is None:
                    before.pop(supplier_id, None)
                else:
                    before[supplier_id] = record
            await self.watcher.supplier_changes(supplier_changes, self.catalogue.view if published else None)

    async def _update(
        self,
        page: ChangePage,
        changes: list[tuple[str, int, SupplierRecord | None]],
        schemes: list[str],
        networks: list[tuple[str, int, NetworkEntry | None]],
    ) -> bool:
        """Store the page's changes, then publish a view with them; whether one was (not while catching up)."""
        await asyncio.to_thread(self.store.apply, changes, page.next_after, schemes, networks)
        self.catalogue.schemes.update(schemes)
        if networks:
            for network_id, _, entry in networks:
                if entry is None:
                    self._networks.pop(network_id, None)
                else:
                    self._networks[network_id] = entry
            if not page.has_more and not self._rebuild_needed:  # else the rebuild once drained builds it
                changed = {network_id: entry for network_id, _, entry in networks}
                self._network_index = await asyncio.to_thread(self._network_index.changed, changed)
        if page.has_more:
            self._rebuild_needed = True  # catching up: one rebuild once the feed is drained
            return False
        if self._rebuild_needed or self.catalogue.view is None:
            await self._rebuild(epoch=self._next_epoch())
            self.catalogue.loaded.set()
            return True
        current = self.catalogue.view
        delta = dict(current.delta_records)
        for supplier_id, seq, record in changes:
            delta[supplier_id] = (seq, record)
        if current.main.n + len(delta) <= self.small_catalogue:
            # A small catalogue is rebuilt whole (milliseconds), so its text model knows every word.
            await self._rebuild(epoch=current.text.epoch + 1)
            self.catalogue.loaded.set()
            return True
        async with self._publish:
            current = self.catalogue.view
            delta = dict(current.delta_records)
            for supplier_id, seq, record in changes:
                delta[supplier_id] = (seq, record)
            updated = with_networks(current, self._network_index, page.next_after) if networks else current
            if changes or not networks:
                updated = await asyncio.to_thread(with_delta, updated, delta, page.next_after)
            self.catalogue.view = await asyncio.to_thread(resolved, updated)
        self.catalogue.loaded.set()
        if len(delta) > self.delta_limit and self._rebuilding is None:
            self._rebuilding = asyncio.create_task(self._rebuild(epoch=current.text.epoch + 1))
        return True

    async def caught_up(self) -> None:
        """Called by the follower when a poll found nothing new."""
        if self._rebuild_needed or self.catalogue.view is None:
            await self._rebuild(epoch=self._next_epoch())
            if self.watcher is not None:  # changes of the pages caught up with, over the rebuilt view
                await self.watcher.supplier_changes([], self.catalogue.view)
        self.catalogue.loaded.set()

    async def _rebuild(self, epoch: int) -> None:
        try:
            if self._rebuild_needed:  # caught up: the networks' index was left for now
                self._network_index = await asyncio.to_thread(self._index_of_networks)
            seq, records = await asyncio.to_thread(self.store.live_records)
            started = time.perf_counter()
            fresh = await asyncio.to_thread(build_view, records, seq, epoch)
            async with self._publish:
                # Changes applied while building stay in the delta of the new main segment,
                # and the networks are those of the latest page.
                current = self.catalogue.view
                pending = {i: v for i, v in (current.delta_records if current else {}).items() if v[0] > seq}
                current_seq = max(seq, current.seq if current else 0)
                fresh_view = with_networks(fresh, self._network_index, current_seq)
                if pending:
                    fresh_view = await asyncio.to_thread(with_delta, fresh_view, pending, current_seq)
                self.catalogue.view = await asyncio.to_thread(resolved, fresh_view)
            self._rebuild_needed = False
            if self.snapshots is not None:
                await asyncio.to_thread(snapshot.save, self.snapshots, fresh.main, fresh.text, epoch=epoch, seq=seq)
            logger.info(
                "catalogue_built",
                suppliers=fresh.main.n,
                epoch=epoch,
                seq=seq,
                seconds=round(time.perf_counter() - started, 3),
                bytes=fresh.main.nbytes,
            )
        finally:
            self._rebuilding = None

    def _index_of_networks(self) -> NetworkIndex:
        return NetworkIndex(list(self._networks.values()), self.figures_bytes)

    def _next_epoch(self) -> int:
        view = self.catalogue.view
        return view.text.epoch + 1 if view else 1

    async def wait_rebuilt(self) -> None:
        if self._rebuilding is not None:
            await asyncio.shield(self._rebuilding)


def resolved(view: View) -> View:
    """``view`` with its networks' members resolved, so no query pays for it."""
    _ = view.members
    return view


def store_path(data_dir: Path) -> Path:
    return data_dir / "matching-catalogue" / "store.sqlite3"


def snapshot_folder(data_dir: Path) -> Path:
    return data_dir / "matching-catalogue" / "snapshots"
