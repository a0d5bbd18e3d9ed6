"""Duplicate detection against the database, and reversible merges.

``detect`` files new (or changed) firms under their blocking keys in
``firm_match_keys``, looks up the firms already filed under the same keys (one
query per batch), scores the pairs with ``detector.score_pairs`` and records the
likely ones in ``duplicate_candidates``. It runs behind the writes, in the
duplicate check that follows the registry's change feed (``consumer.py``), for a
page of firm changes at a time and for one ``Partition`` of the blocking keys.

``merge_firms`` keeps one survivor: every record referring to the merged firm
(networks' members and anything else indexed in ``record_tags``) is repointed,
the merged firm is deleted, and all of it is published on the change feed and
stored in a ``duplicate_merges`` row, which ``undo_merge`` plays back.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import numpy as np
import pydantic_core
from pydantic import BaseModel
from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bulk import chunks, insert_records, insert_rows, one_of
from services.common.changefeed import PendingChange, record_changes
from services.common.db import is_postgres
from services.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.common.ids import new_id
from services.common.principal import Principal
from services.registry.duplicates import detector
from services.registry.duplicates.models import (
    DuplicateCandidate,
    DuplicateMerge,
    DuplicatePolicy,
    FirmMatchKey,
    FirmProfile,
)
from services.registry.firms.models import Firm
from services.registry.firms.resource import FIRMS
from services.registry.imports.models import ImportRowKey
from services.registry.records import (
    OUTBOX,
    apply_update,
    get_record,
    public_of,
    publish_record,
    remove_record,
    tag_rows,
    validate_document,
    with_derived,
)
from services.registry.resources import RESOURCES
from services.registry.tables import RecordColumns, RecordTag

MATCH_KEYS = FirmMatchKey.__table__  # type: ignore[attr-defined]
PROFILES = FirmProfile.__table__  # type: ignore[attr-defined]
CANDIDATES = DuplicateCandidate.__table__  # type: ignore[attr-defined]
FIRM_TABLE = Firm.__table__  # type: ignore[attr-defined]
_CHUNK = 5000
FIRM_COLUMNS: tuple[Any, ...] = (
    Firm.id,
    Firm.agency_id,
    Firm.name,
    Firm.country,
    Firm.national_ids,
    Firm.street,
    Firm.locality,
    Firm.postal_code,
    Firm.latitude,
    Firm.longitude,
    Firm.isic_codes,
    Firm.hs_codes,
    Firm.monthly_capacity,
    Firm.capacity_unit,
    Firm.certifications,
)


@dataclass(frozen=True)
class Partition:
    """One replica's share of the duplicate check: the blocking keys it files and searches.

    A key belongs to partition ``crc32(key) % count``. Two firms are compared where they
    share a key, so each pair is found by the replica owning one of their shared keys,
    whichever replicas their other keys (and the changes that wrote them) belong to: a
    key's block is only ever filed and searched by one replica, in feed order. A firm's
    stored profile belongs to the partition of its id.
    """

    index: int = 0
    count: int = 1

    def owns(self, key: str) -> bool:
        return self.count == 1 or zlib.crc32(key.encode()) % self.count == self.index

    @property
    def feed(self) -> str:
        """The name of this partition's cursor in ``feed_cursors``."""
        return "duplicates" if self.count == 1 else f"duplicates:{self.index}/{self.count}"


EVERY_KEY = Partition()


@dataclass
class Detection:
    """What one call of ``detect`` found."""

    candidates: list[dict[str, Any]] = field(default_factory=list)  # rows newly written to duplicate_candidates
    pairs_compared: int = 0


class UnpackedProfiles:
    """The stored profiles a check process unpacked last, each with the text it came from.

    Firms in blocks of common words are compared with page after page of new firms (in a
    50,000-row import, 78 % of the stored profiles read had been read before), and decoding
    their JSON was most of reading them. A profile is reused only when the text read now is
    the text it was unpacked from, so an entry never needs invalidating: a firm changed, or
    filed by another replica, has other text. At most ``size`` entries, the least recently
    used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[str, detector.Profile | None]] = OrderedDict()

    def unpack(self, firm_id: str, packed: str) -> detector.Profile | None:
        entry = self._entries.get(firm_id)
        if entry is not None and entry[0] == packed:
            self._entries.move_to_end(firm_id)
            return entry[1]
        profile = _unpack(firm_id, packed)
        self._entries[firm_id] = (packed, profile)
        self._entries.move_to_end(firm_id)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return profile


def _unpack(firm_id: str, packed: str) -> detector.Profile | None:
    """A stored profile's text, decoded and unpacked (None: packed by other rules)."""
    return detector.Profile.unpack(pydantic_core.from_json(packed))


async def _profiles_of(
    session: AsyncSession, ids: Sequence[str], unpacked: UnpackedProfiles | None = None
) -> dict[str, detector.Profile]:
    """Registered firms' profiles: as stored with their keys, else profiled from ``firms``.
    A profile's ``name_count`` is the caller's to set (a reused one holds an earlier page's)."""
    found: dict[str, detector.Profile] = {}
    unpack = unpacked.unpack if unpacked is not None else _unpack
    for chunk in chunks(sorted(ids), 20000):
        rows = await session.execute(
            select(PROFILES.c.firm_id, PROFILES.c.profile).where(one_of(session, PROFILES.c.firm_id, chunk))
        )
        for firm_id, packed in rows:
            stored = unpack(firm_id, packed)
            if stored is not None:
                found[firm_id] = stored
    missing = sorted(set(ids) - found.keys())  # registered before profiles were stored
    for chunk in chunks(missing, 20000):
        rows = await session.execute(select(*FIRM_COLUMNS).where(one_of(session, Firm.id, chunk)))
        for row in rows:
            found[row.id] = detector.profile_of_firm(dict(row._mapping))
    return found


# Block sizes are counted up to here: enough to tell a block too large to use, and a name
# so common that its frequency weight is at its floor (``detector.NAME_FREQUENCY_WEIGHT``).
COUNT_CAP = 200
# Keys travel as one text, a key a line (keys are normalised words, codes and numbers: no line
# breaks): an array parameter of thousands of strings cost asyncpg and SQLAlchemy a check and
# a conversion per element.
_CAPPED_COUNTS = text(
    "SELECT k.key, (SELECT count(*) FROM (SELECT 1 FROM firm_match_keys m WHERE m.key = k.key LIMIT :cap) AS s) "
    "FROM unnest(string_to_array(:keys, chr(10))) AS k(key)"
)


# A block's members where the block is still usable with the page's own firms under the key
# (``room``: how many filed firms it may hold), NULL where it is too large; keys no firm is
# filed under give no row. Each probe reads at most ``room + 1`` index entries, and a block's
# members come as one array: no row a member to decode.
_USABLE_BLOCKS = text(
    "SELECT k.key, CASE WHEN cardinality(m.ids) <= k.room THEN m.ids END "
    "FROM unnest(string_to_array(:keys, chr(10)), string_to_array(:rooms, ',')::int[]) AS k(key, room) "
    "CROSS JOIN LATERAL (SELECT array_agg(s.firm_id) AS ids FROM "
    "(SELECT firm_id FROM firm_match_keys WHERE key = k.key LIMIT k.room + 1) AS s) AS m "
    "WHERE m.ids IS NOT NULL"
)


async def _usable_blocks(session: AsyncSession, rooms: dict[str, int]) -> dict[str, list[str] | None]:
    """The firms filed under each key of ``rooms`` where they are at most its room (the block
    stays within ``detector.MAX_BLOCK`` with the page's firms), None where they are more (too
    common a key to use). Keys no firm is filed under are left out."""
    blocks: dict[str, list[str] | None] = {}
    for chunk in chunks(sorted(rooms), 20000):
        if is_postgres(session):  # an index probe per key, bounded however common the key
            values = {"keys": "\n".join(chunk), "rooms": ",".join([str(rooms[key]) for key in chunk])}
            blocks.update({key: ids for key, ids in await session.execute(_USABLE_BLOCKS, values)})
            continue
        filed: dict[str, list[str]] = {}
        rows = await session.execute(
            select(MATCH_KEYS.c.key, MATCH_KEYS.c.firm_id).where(one_of(session, MATCH_KEYS.c.key, chunk))
        )
        for key, firm_id in rows:
            filed.setdefault(key, []).append(firm_id)
        blocks.update((key, ids if len(ids) <= rooms[key] else None) for key, ids in filed.items())
    return blocks


async def _block_sizes(session: AsyncSession, keys: Sequence[str]) -> dict[str, int]:
    """How many firms are filed under each key (up to ``COUNT_CAP``): one query per 20,000 keys."""
    sizes: dict[str, int] = {}
    for chunk in chunks(list(keys), 20000):
        if is_postgres(session):  # an index probe per key, bounded however common the key
            rows = await session.execute(_CAPPED_COUNTS, {"keys": "\n".join(chunk), "cap": COUNT_CAP})
        else:
            rows = await session.execute(
                select(MATCH_KEYS.c.key, func.count())
                .where(one_of(session, MATCH_KEYS.c.key, chunk))
                .group_by(MATCH_KEYS.c.key)
            )
        sizes.update({key: min(int(count), COUNT_CAP) for key, count in rows if count})
    return sizes


async def detect(
    session: AsyncSession,
    firms: Sequence[tuple[str, str, Any]],
    *,
    sources: Sequence[str],
    feed_seqs: Sequence[int | None] | None = None,
    partition: Partition = EVERY_KEY,
    unpacked: UnpackedProfiles | None = None,
) -> Detection:
    """File ``firms`` (id, agency, data) under their keys of ``partition`` and record their likely
    duplicates; ``sources[i]`` and ``feed_seqs[i]`` are what a pair found for ``firms[i]`` records.
    ``unpacked``: the process's stored profiles unpacked before, to reuse.

    The firms must not be filed yet (``forget`` them first). A pair already recorded is not
    recorded twice: an open one is refreshed, a decided one left as decided."""
    result = Detection()
    if not firms:
        return result
    seqs = list(feed_seqs) if feed_seqs is not None else [None] * len(firms)
    profiles = []
    for firm_id, agency_id, data in firms:
        p = detector.profile_of_firm(data, id=firm_id)
        p.agency_id = agency_id
        profiles.append(p)
    keys_of = [detector.blocking_keys(p) for p in profiles]
    batch_blocks: defaultdict[str, list[int]] = defaultdict(list)
    for index, keys in enumerate(keys_of):
        for key in keys:
            batch_blocks[key].append(index)
    counting = sorted(key for key in batch_blocks if detector.counting_key(key))
    owned = {key for key in batch_blocks if partition.owns(key)}
    # A key the page's firms alone make too common is not looked up: its block is not used.
    rooms = {
        key: detector.MAX_BLOCK - len(batch_blocks[key])
        for key in owned
        if not detector.counting_key(key) and len(batch_blocks[key]) <= detector.MAX_BLOCK
    }
    new_ids = {p.id for p in profiles}
    # The name keys only count firms of one name; the others' members are read where the block
    # is small enough to use.
    name_sizes = await _block_sizes(session, counting)
    filed = await _usable_blocks(session, rooms)
    name_counts = {key: name_sizes.get(key, 0) + len(batch_blocks[key]) for key in counting}
    for p in profiles:
        p.name_count = name_counts.get(detector.name_key(p), 1)
    wanted: dict[int, set[str]] = {}  # batch index -> existing firm ids to compare with
    within: set[tuple[int, int]] = set()
    for key in sorted(rooms):
        members = batch_blocks[key]
        filed_ids = filed.get(key, ())
        if filed_ids is None:
            continue  # too common a key, counting the firms filed under it before this batch
        existing = [firm_id for firm_id in filed_ids if firm_id not in new_ids]
        for position, index in enumerate(members):
            if existing:
                wanted.setdefault(index, set()).update(existing)
            for earlier in members[:position]:
                within.add((earlier, index))
    others = await _profiles_of(session, sorted({firm_id for ids in wanted.values() for firm_id in ids}), unpacked)
    for other in others.values():
        other.name_count = name_counts.get(detector.name_key(other), 1)
    everyone = profiles + list(others.values())
    slot = {p.id: k for k, p in enumerate(everyone)}
    pair_list = list(within)  # in any order: each pair is in it once, and is scored on its own
    for index, ids in wanted.items():
        pair_list += [(index, slot[firm_id]) for firm_id in ids if firm_id in slot]
    result.pairs_compared = len(pair_list)
    # Scoring is CPU alone and filing the page is PostgreSQL's work (its indexes): side by side.
    likely, _ = await asyncio.gather(
        asyncio.to_thread(_likely_pairs, everyone, pair_list), _file(session, profiles, keys_of, owned, partition)
    )
    if not likely:
        return result
    batch_size = len(profiles)
    now = datetime.now(UTC)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for a_index, b_index, score, row, reasons in likely:
        a, b = everyone[a_index], everyone[b_index]
        first, second = (a, b) if a.id < b.id else (b, a)
        if (first.id, second.id) in found:
            continue
        # The pair is found for the later of its firms in the batch (``b`` when both are in it).
        finder = b_index if b_index < batch_size else a_index
        found[(first.id, second.id)] = {
            "id": new_id("dup"),
            "firm_a": first.id,
            "firm_b": second.id,
            "agency_a": first.agency_id or "",
            "agency_b": second.agency_id or "",
            "score": round(score, 4),
            "same_national_id": bool(row[1] == detector.SAME_ID),
            "reasons": [r.as_dict() for r in reasons],
            "status": "open",
            "source": sources[finder],
            "detected_at": now,
            "feed_seq": seqs[finder],
        }
    # In pair order, so replicas recording pairs at once take their locks in one order (no deadlock).
    result.candidates = await _record_candidates(session, [found[pair] for pair in sorted(found)])
    return result


async def _file(
    session: AsyncSession,
    profiles: list[detector.Profile],
    keys_of: list[list[str]],
    owned: set[str],
    partition: Partition,
) -> None:
    """File a page's firms under their keys of ``partition``, and store the profiles it owns."""
    key_rows: list[tuple[str, str]] = []
    for p, keys in zip(profiles, keys_of, strict=True):
        key_rows += zip(keys, repeat(p.id)) if partition.count == 1 else [(key, p.id) for key in keys if key in owned]
    await insert_records(session, MATCH_KEYS, ("key", "firm_id"), key_rows)
    await insert_records(
        session,
        PROFILES,
        ("firm_id", "profile"),
        [(p.id, pydantic_core.to_json(p.pack()).decode()) for p in profiles if partition.owns(p.id)],
    )


def _likely_pairs(
    everyone: list[detector.Profile], pair_list: list[tuple[int, int]]
) -> list[tuple[int, int, float, np.ndarray, tuple[detector.Reason, ...]]]:
    """The pairs of ``pair_list`` (indices into ``everyone``) likely to be duplicates: (a, b,
    score, weights, reasons)."""
    if not pair_list:
        return []
    table = detector.ProfileTable(everyone)
    pairs = np.array(pair_list, dtype=np.int64)
    w = detector.table_weights(table, pairs[:, 0], pairs[:, 1])
    scores = detector.scores(w)
    likely = []
    for k in np.flatnonzero(scores >= detector.THRESHOLD).tolist():
        a, b = pair_list[k]
        likely.append((a, b, float(scores[k]), w[k], detector.explain(everyone[a], everyone[b], w[k])))
    return likely


def _insert_new(session: AsyncSession) -> Any:
    """An ``INSERT`` of candidates that leaves a pair already recorded as it is (and says which
    were written): replicas of the check may find one pair through keys of two partitions."""
    dialect = postgresql if is_postgres(session) else sqlite
    return (
        dialect.insert(CANDIDATES)
        .on_conflict_do_nothing(index_elements=["firm_a", "firm_b"])
        .returning(CANDIDATES.c.id)
    )


async def _record_candidates(session: AsyncSession, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write the pairs not recorded yet (returned), and refresh the open ones that were."""
    written: set[str] = set()
    for chunk in chunks(rows, 1000):
        result = await session.execute(_insert_new(session), chunk)
        written |= set(result.scalars().all())
    refreshed = [row for row in rows if row["id"] not in written]
    for row in refreshed:  # found again: still likely, as of this change (decided pairs stay decided)
        await session.execute(
            update(CANDIDATES)
            .where(CANDIDATES.c.firm_a == row["firm_a"], CANDIDATES.c.firm_b == row["firm_b"])
            .where(CANDIDATES.c.status == "open")
            .values(
                score=row["score"],
                same_national_id=row["same_national_id"],
                reasons=row["reasons"],
                feed_seq=row["feed_seq"],
            )
        )
    return [row for row in rows if row["id"] in written]


async def forget(session: AsyncSession, firm_ids: Sequence[str], *, partition: Partition = EVERY_KEY) -> None:
    """Take firms off ``partition``'s blocks (their keys, and the profiles it stores), so that
    they can be filed again as they are now, or are gone."""
    for chunk in chunks(list(firm_ids), _CHUNK):
        if partition.count == 1:
            await session.execute(delete(MATCH_KEYS).where(MATCH_KEYS.c.firm_id.in_(chunk)))
        else:
            rows = await session.execute(
                select(MATCH_KEYS.c.key, MATCH_KEYS.c.firm_id).where(MATCH_KEYS.c.firm_id.in_(chunk))
            )
            for key, firm_id in rows.all():
                if partition.owns(key):
                    await session.execute(
                        delete(MATCH_KEYS).where(MATCH_KEYS.c.key == key, MATCH_KEYS.c.firm_id == firm_id)
                    )
        owned = [firm_id for firm_id in chunk if partition.owns(firm_id)]
        if owned:
            await session.execute(delete(PROFILES).where(PROFILES.c.firm_id.in_(owned)))


async def drop_stale_candidates(session: AsyncSession, changed: Sequence[tuple[str, int]]) -> None:
    """Drop the open pairs of firms that changed (or are gone) as of a feed sequence number,
    unless a check found them again since: the check of the change records what still holds."""
    for firm_id, seq in changed:
        await session.execute(
            delete(CANDIDATES).where(
                CANDIDATES.c.status == "open",
                or_(CANDIDATES.c.firm_a == firm_id, CANDIDATES.c.firm_b == firm_id),
                or_(CANDIDATES.c.feed_seq.is_(None), CANDIDATES.c.feed_seq < seq),
            )
        )


async def auto_merge_enabled(session: AsyncSession, agency_id: str) -> bool:
    policy = await session.get(DuplicatePolicy, agency_id)
    return bool(policy and policy.auto_merge_same_national_id)


# --------------------------------------------------------------------------- merging


def _repoint(value: Any, old: str, new: str) -> Any:
    """``value`` with every ``old`` id replaced by ``new``; lists drop entries that became repeats."""
    if isinstance(value, str):
        return new if value == old else value
    if isinstance(value, dict):
        return {k: _repoint(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        items = [_repoint(v, old, new) for v in value]
        kept: list[Any] = []
        holders: set[str] = set()  # keys of dict entries already holding ``new``
        for original, item in zip(value, items, strict=True):
            if isinstance(item, str):
                if item == new and new in kept:
                    continue
            elif isinstance(item, dict):
                keys = {k for k, v in item.items() if v == new}
                if keys & holders:
                    continue
                if original != item or keys:
                    holders |= keys
            kept.append(item)
        return kept
    return value


def _specs_by_entity() -> dict[str, Any]:
    return {spec.entity: spec for spec in RESOURCES}


def _create_fields(spec: Any, document: dict[str, Any]) -> dict[str, Any]:
    allowed = set(spec.create.model_fields)
    return {k: v for k, v in document.items() if k in allowed}


async def merge_firms(
    session: AsyncSession,
    *,
    survivor_id: str,
    merged_id: str,
    principal: Principal,
    candidate: DuplicateCandidate | None = None,
    automatic: bool = False,
) -> DuplicateMerge:
    """Merge ``merged_id`` into ``survivor_id``: repoint references, delete it, record how to undo."""
    if survivor_id == merged_id:
        raise Conflict("A firm cannot be merged into itself")
    survivor = await get_record(session, FIRMS, survivor_id, for_update=True)
    merged = await get_record(session, FIRMS, merged_id, for_update=True)
    for firm in (survivor, merged):
        if not principal.can_write_for_agency(firm.agency_id):
            raise Forbidden(f"Firm {firm.id} belongs to another agency; only its agency or an admin may merge it")
    merged_document = public_of(FIRMS, merged).model_dump(mode="json")
    specs = _specs_by_entity()
    referrers = (
        await session.execute(
            select(RecordTag.entity, RecordTag.record_id)  # type: ignore[call-overload,unused-ignore]
            .where(RecordTag.value == merged_id, RecordTag.record_id != merged_id)  # type: ignore[arg-type,unused-ignore]
            .distinct()
        )
    ).all()
    repointed = []
    for entity, record_id in sorted(referrers):
        spec = specs[entity]
        row = await get_record(session, spec, record_id, for_update=True)
        before = public_of(spec, row).model_dump(mode="json")
        try:
            data = validate_document(spec, _repoint(_create_fields(spec, before), merged_id, survivor_id))
        except ValidationFailed as exc:
            raise Conflict(f"Repointing {entity} {record_id} to {survivor_id} would leave it invalid: {exc}") from None
        # The repointed references were made before (the two firms are of one agency for a
        # non-admin): kept whoever owns the referring record, so agency=None.
        try:
            await apply_update(session, spec, row, data, agency=None)
        except ValidationFailed as exc:  # e.g. both firms have results for one period
            raise Conflict(f"Repointing {entity} {record_id} to {survivor_id} would repeat a record: {exc}") from None
        repointed.append({"entity": entity, "id": record_id, "before": before, "version_after": row.version})
    others = (
        await session.execute(
            select(DuplicateCandidate).where(
                or_(DuplicateCandidate.firm_a == merged_id, DuplicateCandidate.firm_b == merged_id),  # type: ignore[arg-type]
                DuplicateCandidate.status == "open",  # type: ignore[arg-type]
            )
        )
    ).scalars()
    dropped = [_candidate_row(c) for c in others if candidate is None or c.id != candidate.id]
    if dropped:
        await session.execute(delete(CANDIDATES).where(CANDIDATES.c.id.in_([c["id"] for c in dropped])))
    keys = (
        await session.execute(
            select(ImportRowKey.agency_id, ImportRowKey.natural_key).where(ImportRowKey.firm_id == merged_id)  # type: ignore[arg-type,call-overload,unused-ignore]
        )
    ).all()
    if keys:
        await session.execute(
            update(ImportRowKey).where(ImportRowKey.firm_id == merged_id).values(firm_id=survivor_id)  # type: ignore[arg-type]
        )
    now = datetime.now(UTC)
    merge_id = new_id("mrg")
    if candidate is not None:  # decided before the merged firm's open pairs are dropped with it
        candidate.status = "merged"
        candidate.decided_at = now
        candidate.decided_by = principal.subject
        candidate.merge_id = merge_id
        await session.flush()
    await remove_record(session, FIRMS, merged)
    merge = DuplicateMerge(
        id=merge_id,
        candidate_id=candidate.id if candidate else None,
        survivor_id=survivor_id,
        merged_id=merged_id,
        agency_id=survivor.agency_id,
        automatic=automatic,
        merged_by=principal.subject,
        merged_at=now,
        snapshot={
            "merged": merged_document,
            "repointed": repointed,
            "dropped_candidates": [_jsonable(c) for c in dropped],
            "import_keys": [[agency, key] for agency, key in keys],
        },
    )
    session.add(merge)
    await session.flush()
    await _publish_merge(session, merge, "created")
    return merge


def _candidate_row(candidate: DuplicateCandidate) -> dict[str, Any]:
    return {column.name: getattr(candidate, column.name) for column in CANDIDATES.columns}


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def _from_json_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in ("detected_at", "decided_at"):
        if isinstance(out.get(name), str):
            out[name] = datetime.fromisoformat(out[name])
    return out


class MergeChange(BaseModel):
    """What a merge's change (entity ``firm_merge``) carries on the feed: the merged firm's
    id and the survivor's (the events service turns it into ``firm.merged``)."""

    id: str
    survivor_id: str
    merged_id: str


async def _publish_merge(session: AsyncSession, merge: DuplicateMerge, op: str) -> None:
    await record_changes(
        session,
        OUTBOX,
        [
            PendingChange(
                entity="firm_merge",
                entity_id=merge.id,
                op=op,  # type: ignore[arg-type,unused-ignore]
                version=1 if op == "created" else 2,
                agency_id=merge.agency_id,
                data=None
                if op == "deleted"
                else MergeChange(id=merge.id, survivor_id=merge.survivor_id, merged_id=merge.merged_id).model_dump(),
            )
        ],
    )


async def undo_merge(session: AsyncSession, merge: DuplicateMerge, *, principal: Principal) -> DuplicateMerge:
    """Play a merge back: the merged firm returns with its id, references point at it again."""
    if merge.undone_at is not None:
        raise Conflict(f"Merge {merge.id} was undone already")
    snapshot = merge.snapshot
    document: dict[str, Any] = snapshot["merged"]
    if not principal.can_write_for_agency(document["agency_id"]) or not principal.can_write_for_agency(merge.agency_id):
        raise Forbidden("Only the agency of both firms, or an admin, may undo this merge")
    if await session.get(Firm, merge.merged_id) is not None:
        raise Conflict(f"A firm with id {merge.merged_id} exists again")
    specs = _specs_by_entity()
    # Repointed records first, so a record changed since the merge stops the undo before anything is written.
    rows = []
    for entry in snapshot["repointed"]:
        spec = specs[entry["entity"]]
        try:
            row = await get_record(session, spec, entry["id"], for_update=True)
        except NotFound:
            continue  # deleted since: nothing to point back
        if row.version != entry["version_after"]:
            raise Conflict(
                f"{entry['entity']} {entry['id']} changed after the merge (version {row.version}, "
                f"merge left {entry['version_after']}); change it back by hand or merge again",
                changed={"entity": entry["entity"], "id": entry["id"]},
            )
        rows.append((spec, row, entry["before"]))
    data = validate_document(FIRMS, _create_fields(FIRMS, document) | {"agency_id": document["agency_id"]})
    now = datetime.now(UTC)
    version = int(document["version"]) + 2  # it was deleted at version + 1
    values = data.model_dump(mode="json")
    columns = Firm.__table__.columns  # type: ignore[attr-defined]
    row_values = {name: values[name] for name in columns.keys() if name in values}
    row_values.update(
        id=merge.merged_id,
        agency_id=document["agency_id"],
        version=version,
        created_at=datetime.fromisoformat(document["created_at"].replace("Z", "+00:00")),
        updated_at=now,
    )
    for name in ("name", "size_class", "country", "subdivision", "street", "locality", "postal_code"):
        row_values[name] = getattr(data, name, row_values.get(name))
    row_values = with_derived(FIRMS, row_values)
    await insert_rows(session, Firm.__table__, [row_values])  # type: ignore[attr-defined]
    await insert_rows(session, RecordTag.__table__, tag_rows(FIRMS, merge.merged_id, data))  # type: ignore[attr-defined]
    restored = await session.get(Firm, merge.merged_id)
    assert restored is not None
    await publish_record(session, FIRMS, restored, "created")
    for spec, row, before in rows:
        before_data = validate_document(spec, _create_fields(spec, before))
        await apply_update(session, spec, row, before_data, agency=None)  # as it was before the merge
    # The merged firm's other pairs come back as they were; the duplicate check then finds the
    # firm's pairs again behind this write (its ``created`` change), refreshing these.
    dropped = [_from_json_row(c) for c in snapshot.get("dropped_candidates", [])]
    partners = {c["firm_a"] for c in dropped} | {c["firm_b"] for c in dropped}
    present = set(
        (await session.scalars(select(FIRM_TABLE.c.id).where(one_of(session, FIRM_TABLE.c.id, sorted(partners))))).all()
    )
    dropped = [c for c in dropped if {c["firm_a"], c["firm_b"]} <= present]  # not a pair with a firm gone since
    if dropped:
        await session.execute(delete(CANDIDATES).where(CANDIDATES.c.id.in_([c["id"] for c in dropped])))
        await insert_rows(session, CANDIDATES, dropped)
    for agency, key in snapshot.get("import_keys", []):
        await session.execute(
            update(ImportRowKey)
            .where(ImportRowKey.agency_id == agency, ImportRowKey.natural_key == key)  # type: ignore[arg-type,unused-ignore]
            .values(firm_id=merge.merged_id)
        )
    if merge.candidate_id is not None:
        await session.execute(
            update(CANDIDATES)
            .where(CANDIDATES.c.id == merge.candidate_id)
            .values(status="open", decided_at=None, decided_by=None, merge_id=None)
        )
    merge.undone_at = now
    merge.undone_by = principal.subject
    await session.flush()
    await _publish_merge(session, merge, "deleted")
    return merge


async def count_open(session: AsyncSession, firm_ids: Sequence[str]) -> int:
    total = 0
    for chunk in chunks(list(firm_ids), _CHUNK):
        total += int(
            await session.scalar(
                select(func.count()).where(
                    CANDIDATES.c.status == "open", or_(CANDIDATES.c.firm_a.in_(chunk), CANDIDATES.c.firm_b.in_(chunk))
                )
            )
            or 0
        )
    return total


def owners(candidate: DuplicateCandidate) -> tuple[str, str]:
    return candidate.agency_a, candidate.agency_b


def as_model(row: RecordColumns, model: type[BaseModel]) -> BaseModel:
    return model.model_validate(row, from_attributes=True)
