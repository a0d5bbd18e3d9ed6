"""Reverse matching: which saved standards with an alert does one changed supplier now meet?

Testing every standards for every supplier change is linear in the standards; instead
``StandardsIndex`` keeps, per categorical hard constraint, the standards that name each
value, under the catalogue's own facet keys (``facets.Facet``): ISIC codes and prefixes
(and section letters), HS codes and prefixes, countries and subdivisions, clusters, size
classes, required certification schemes and excluded suppliers. A supplier's keys select
the standards whose every categorical constraint it passes (roaring bitmaps of standards
slots: a union per dimension, one difference each). Those candidates are checked and
scored together by ``sheet.StandardsSheet`` (certificates valid on the day, capacity,
distance, and the explained score, bit for bit the engine's); a close call on a maximum
distance goes to the engine itself (the supplier as a one-row ``Segment``), and a top N
is decided against the standards' top N + 1 over the view, ranked by the engine and
kept (``Field``, ``StandardsIndex.leaders``). ``reverse_match(..., naive=True)`` asks
the engine standards by standards instead: the peer the fast path is tested against.

A supplier *meets* alerted standards when it is eligible under their hard constraints,
its score is at least ``min_score`` (when set) and, when ``top_n`` is set, it is within the
exact top N of the standards' shortlist (ties by id, as the engine ranks). A match is a
transition: the supplier's record after the change meets the standards and its record
before the change did not, both judged against the current view (its text model, and the
other suppliers it is ranked among).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache

import numpy as np
from pyroaring import BitMap

from services.common.codes import isic_section_divisions
from services.common.geo import haversine_km
from services.matching.alerts.sheet import Scores, StandardsSheet, SupplierVector, microseconds
from services.matching.catalogue.bitmaps import as_array, bitmap_of
from services.matching.catalogue.catalogue import View
from services.matching.catalogue.facets import Facet, inclusion_key, supplier_keys
from services.matching.catalogue.query import CRITERIA, INCLUSION_CLASSES, Query
from services.matching.catalogue.ranking import Ranked, SegmentRanking, Terms
from services.matching.catalogue.records import SupplierRecord
from services.matching.catalogue.segment import COUNT_MAX, Segment, isic_sections
from services.matching.catalogue.text import TextModel

ONE_ROW = np.zeros(1, dtype=np.int64)
RECENT_RECORDS = 64  # records whose candidates are kept (``StandardsIndex.candidates``)
UNAPPLIED_CHANGES = 32  # a field with more changes to apply is ranked anew
RANGE_MARGIN_KM = 1.0  # the index's distance check leaves closer calls to the engine
# The any-of dimensions a standards may constrain, by the prefix of their facet keys.
DIMENSIONS = {
    Facet.isic.value: "isic",
    Facet.hs.value: "hs",
    Facet.country.value: "place",
    Facet.subdivision.value: "place",
    Facet.cluster.value: "cluster",
    Facet.size_class.value: "size",
    # Each required inclusion class is a dimension of its own (all of them are required).
    **{Facet[c].value: c for c in INCLUSION_CLASSES},
}


@dataclass(frozen=True)
class Alert:
    """Alerted standards as reverse matching reads them (``query``'s date is set per check)."""

    standards_id: str
    version: int
    owner: str
    agency_id: str | None
    firm_id: str | None
    query: Query
    min_score: float | None
    top_n: int | None
    enabled_at: datetime


@dataclass(frozen=True)
class Evaluation:
    """A supplier meeting alerted standards: its explained score, and its rank when asked for."""

    ranked: Ranked
    weights: dict[str, float]
    rank: int | None


@dataclass(frozen=True)
class Match:
    alert: Alert
    supplier_id: str
    version: int  # the supplier's, in the registry
    evaluation: Evaluation


FieldKey = tuple[str, int, date]  # standards id, version, day


@dataclass
class Field:
    """The top N + 1 (``limit``) of alerted standards over the view: the (negated score, id) of
    each, best first; fewer when fewer suppliers are eligible."""

    keys: list[tuple[float, str]]
    limit: int

    def updated(self, changed: dict[str, tuple[float, str] | None]) -> Field | None:
        """The field once the suppliers of ``changed`` have changed, each now keyed as given
        (None: not eligible), the others unchanged; None when that is not known without a new
        ranking. The suppliers it does not hold all rank after its last member: when it was full,
        its new members must all rank at or before that member, or one of them might be passed."""
        keys = sorted([k for k in self.keys if k[1] not in changed] + [k for k in changed.values() if k is not None])
        if len(self.keys) == self.limit and (len(keys) < self.limit or keys[self.limit - 1] > self.keys[-1]):
            return None
        return Field(keys[: self.limit], self.limit)

    def rank(self, key: tuple[float, str]) -> int:
        """1 + how many of its members, but ``key``'s supplier, rank before ``key``."""
        return 1 + sum(1 for other in self.keys if other[1] != key[1] and other < key)


@cache
def _division_sections() -> dict[str, str]:
    return {division: section for section in isic_sections() for division in isic_section_divisions(section)}


def standards_keys(query: Query) -> dict[str, list[str]]:
    """The facet keys of each any-of dimension ``query`` constrains (a supplier must hold one)."""
    keys: dict[str, list[str]] = {}
    if query.isic_codes:
        keys["isic"] = Facet.isic.keys(query.isic_codes)  # section letters are keys of their own
    if query.hs_codes:
        keys["hs"] = Facet.hs.keys(query.hs_codes)
    if query.countries or query.subdivisions:
        narrowed = {s.split("-", 1)[0] for s in query.subdivisions}
        keys["place"] = Facet.country.keys(c for c in query.countries if c not in narrowed)
        keys["place"] += Facet.subdivision.keys(query.subdivisions)
    if query.cluster_ids:
        keys["cluster"] = Facet.cluster.keys(query.cluster_ids)
    if query.size_classes:
        keys["size"] = Facet.size_class.keys(query.size_classes)
    for inclusion_class in query.required_inclusion:
        keys[inclusion_class] = [inclusion_key(inclusion_class)]
    return keys


def record_keys(record: SupplierRecord) -> list[str]:
    """The facet keys of ``record`` that standards may name (with its ISIC sections)."""
    # A code that is no ISIC class (a section letter given as a code, say) is in no section's
    # rows: only the sections of its divisions stand for a supplier, as ``Segment.base`` reads them.
    isic = Facet.isic.prefix
    keys = {
        k for k in supplier_keys(record, "", float("nan")) if not k.startswith(isic) or k[len(isic) :][:1].isdigit()
    }
    sections = _division_sections()
    keys.update(Facet.isic.key(sections[code[:2]]) for code in record.isic_codes if code[:2] in sections)
    return [key for key in keys if key.split(":", 1)[0] in DIMENSIONS]


@dataclass
class StandardsIndex:
    """The alerted standards, indexed by their categorical hard constraints (see the module)."""

    alerts: dict[str, Alert] = field(default_factory=dict)
    _slot: dict[str, int] = field(default_factory=dict)
    _by_slot: list[str | None] = field(default_factory=list)
    _free: list[int] = field(default_factory=list)
    _live: BitMap = field(default_factory=BitMap)
    _postings: dict[str, BitMap] = field(default_factory=dict)  # facet key -> standards naming it
    _constrained: dict[str, BitMap] = field(default_factory=dict)  # dimension -> standards constraining it
    _requiring: dict[str, BitMap] = field(default_factory=dict)  # scheme -> standards requiring it
    _excluding: dict[str, BitMap] = field(default_factory=dict)  # supplier id -> standards excluding it
    _terms: dict[tuple[str, int, int], Terms] = field(default_factory=dict)
    _queries: dict[tuple[str, int, date], Query] = field(default_factory=dict)
    _fields: dict[FieldKey, Field] = field(default_factory=dict)
    _members: dict[str, set[FieldKey]] = field(default_factory=dict)  # supplier -> fields holding it
    _kept: dict[str, set[FieldKey]] = field(default_factory=dict)  # standards -> its fields
    _fielded: BitMap = field(default_factory=BitMap)  # the slots of the standards in ``_kept``
    # Per field, the suppliers changed since it was ranked that may move it, with their records
    # now (None: deleted): applied when the field is next read (``Field.updated``).
    _unapplied: dict[FieldKey, dict[str, SupplierRecord | None]] = field(default_factory=dict)
    _suppliers: dict[tuple[SupplierRecord, int, date], _Supplier] = field(default_factory=dict)
    _fields_of: int | None = None  # the text model epoch ``_fields`` were ranked with
    # Per slot, the range constraints (NaN: none): a necessary check before the engine's exact one.
    _ranges: np.ndarray = field(default_factory=lambda: np.full((0, 4), np.nan))  # lat, lon, km, capacity
    _ranged: BitMap = field(default_factory=BitMap)
    # The candidates of the last few records: a change's records are looked up by the watcher,
    # ``changed`` and ``reverse_match`` in turn. Cleared whenever an alert is put or removed.
    _recent: dict[SupplierRecord, BitMap] = field(default_factory=dict)
    sheet: StandardsSheet = field(default_factory=StandardsSheet)  # the slots' columns, scored at once

    def __len__(self) -> int:
        return len(self.alerts)

    def put(self, alert: Alert) -> None:
        """Add ``alert``, or replace the alert on the same standards."""
        self.remove(alert.standards_id)
        self._recent.clear()
        slot = self._free.pop() if self._free else len(self._by_slot)
        if slot == len(self._by_slot):
            self._by_slot.append(None)
        self._by_slot[slot] = alert.standards_id
        self._slot[alert.standards_id] = slot
        self.alerts[alert.standards_id] = alert
        self._live.add(slot)
        query = alert.query
        self.sheet.put(slot, query, alert.enabled_at, alert.min_score, alert.top_n)
        distance = query.max_distance_km if query.has_point else None
        if distance is not None or query.min_monthly_capacity is not None:
            if slot >= len(self._ranges):
                grown = np.full((max(64, 2 * len(self._ranges)), 4), np.nan)
                grown[: len(self._ranges)] = self._ranges
                self._ranges = grown
            self._ranges[slot] = (
                query.latitude if distance is not None else np.nan,
                query.longitude if distance is not None else np.nan,
                distance if distance is not None else np.nan,
                query.min_monthly_capacity if query.min_monthly_capacity is not None else np.nan,
            )
            self._ranged.add(slot)
        for slot_sets, keys in self._memberships(alert):
            for key in keys:
                slot_sets.setdefault(key, BitMap()).add(slot)

    def remove(self, standards_id: str) -> None:
        alert = self.alerts.pop(standards_id, None)
        if alert is None:
            return
        self._recent.clear()
        for kept in list(self._kept.get(standards_id, ())):
            self._forget(kept)
        slot = self._slot.pop(standards_id)
        self._by_slot[slot] = None
        self._free.append(slot)
        self._live.discard(slot)
        self._ranged.discard(slot)
        for slot_sets, keys in self._memberships(alert):
            for key in keys:
                slots = slot_sets[key]
                slots.discard(slot)
                if not slots:
                    del slot_sets[key]

    def _memberships(self, alert: Alert) -> Iterable[tuple[dict[str, BitMap], Iterable[str]]]:
        keys = standards_keys(alert.query)
        yield self._postings, [key for dimension in keys.values() for key in dimension]
        yield self._constrained, keys
        yield self._requiring, set(alert.query.required_certifications)
        yield self._excluding, set(alert.query.exclude_ids)

    def candidates(self, record: SupplierRecord) -> list[Alert]:
        """The alerts whose categorical constraints ``record`` may pass: a superset of those it meets."""
        return [self.alert_of(slot) for slot in self.candidate_slots(record)]

    def alert_of(self, slot: int) -> Alert:
        standards_id = self._by_slot[slot]
        assert standards_id is not None
        return self.alerts[standards_id]

    def candidate_slots(self, record: SupplierRecord) -> BitMap:
        """The slots of ``candidates`` (not to be changed). Their categorical constraints and
        exclusions ``record`` passes exactly (the same facet keys as the engine's); it holds a
        certificate of each scheme they require (not necessarily valid on the day) and may be
        within their range constraints."""
        found = self._recent.get(record)
        if found is None:
            if len(self._recent) >= RECENT_RECORDS:
                self._recent.clear()
            found = self._recent[record] = self._candidates(record)
        return found

    def requiring(self, schemes: Iterable[str]) -> BitMap:
        """The slots of the standards requiring any of ``schemes``."""
        found = [self._requiring[s] for s in schemes if s in self._requiring]
        return BitMap.union(*found) if found else BitMap()

    def _candidates(self, record: SupplierRecord) -> BitMap:
        chosen = self._live.copy()
        hits: dict[str, list[BitMap]] = {}
        for key in record_keys(record):
            slots = self._postings.get(key)
            if slots is not None:
                hits.setdefault(DIMENSIONS[key.split(":", 1)[0]], []).append(slots)
        for dimension, constrained in self._constrained.items():
            found = hits.get(dimension)
            chosen -= constrained - BitMap.union(*found) if found else constrained
            if not chosen:
                return chosen
        held = {certificate.scheme for certificate in record.certificates}
        for scheme, requiring in self._requiring.items():
            if scheme not in held:
                chosen -= requiring
        excluding = self._excluding.get(record.id)
        if excluding is not None:
            chosen -= excluding
        ranged = chosen & self._ranged
        if ranged:
            chosen -= self._out_of_range(record, ranged)
        return chosen

    def _out_of_range(self, record: SupplierRecord, ranged: BitMap) -> BitMap:
        """The slots of ``ranged`` whose maximum distance or minimum capacity ``record`` surely
        fails (by a margin: the engine decides the close calls)."""
        slots = as_array(ranged)
        lat, lon, km, minimum = self._ranges[slots].T
        fails = np.zeros(len(slots), dtype=bool)
        distanced = ~np.isnan(km)
        if record.latitude is None or record.longitude is None:
            fails |= distanced  # without coordinates no distance is within
        elif distanced.any():
            far = haversine_km(lat[distanced], lon[distanced], record.latitude, record.longitude)
            fails[distanced] = far > km[distanced] + RANGE_MARGIN_KM
        capacity = record.monthly_capacity
        floored = ~np.isnan(minimum)
        if capacity is None:
            fails |= floored & (minimum > 0)
        else:
            fails |= floored & (minimum > capacity * (1 + 1e-9) + 1e-9)
        return bitmap_of(slots[fails])

    def query_on(self, alert: Alert, on_date: date) -> Query:
        """``alert``'s query on ``on_date`` (kept per standards version and day)."""
        key = (alert.standards_id, alert.version, on_date)
        found = self._queries.get(key)
        if found is None:
            if len(self._queries) > 2 * len(self.alerts) + 1024:
                self._queries.clear()
            found = self._queries[key] = replace(alert.query, on_date=on_date)
        return found

    def leaders(
        self, alert: Alert, view: View, query: Query, known: tuple[SupplierRecord, float] | None = None
    ) -> Field:
        """The top N + 1 of ``alert``'s standards over ``view``: the field a supplier's score is
        ranked in. Kept across views while ``changed`` is told of every supplier change: the
        changes that may move a field are applied to it when it is next read, by scoring the
        changed suppliers' records (``known``: a record eligible under ``alert`` and its score),
        and it is ranked anew only when they leave its last places unknown (``Field.updated``)."""
        if self._fields_of != view.text.epoch:  # a refitted text model moves every text score
            self.forget_leaders()
            self._fields_of = view.text.epoch
        key = (alert.standards_id, alert.version, query.on_date)
        found = self._fields.get(key)
        unapplied = self._unapplied.pop(key, None)
        if found is not None and unapplied:
            changed: dict[str, tuple[float, str] | None] = {}
            for supplier_id, record in unapplied.items():
                score = None
                if record is not None and known is not None and known[0] is record:
                    score = known[1]
                elif record is not None:
                    score = self.score_of(alert, record, view, query.on_date)
                changed[supplier_id] = None if score is None else (-score, supplier_id)
            found = self._apply(key, found, changed)
        if found is None:
            assert alert.top_n is not None
            if len(self._fields) > len(self.alerts) + 1024:
                self.forget_leaders()
            found = self._keep(key, Field(field_of(view, query, alert.top_n + 1), alert.top_n + 1))
        return found

    def settle(self, alert: Alert, query: Query, record: SupplierRecord, score: float | None) -> None:
        """Apply the change to ``record`` (the view's record of its supplier: eligible under
        ``alert`` with ``score``, or not, None) to ``alert``'s kept field on ``query``'s day, if
        the field has it to apply: judged now, it need not be scored again when the field is read."""
        key = (alert.standards_id, alert.version, query.on_date)
        unapplied = self._unapplied.get(key)
        if unapplied is None or record.id not in unapplied or unapplied[record.id] is not record:
            return
        del unapplied[record.id]
        if not unapplied:
            del self._unapplied[key]
        found = self._fields.get(key)
        if found is not None:
            self._apply(key, found, {record.id: None if score is None else (-score, record.id)})

    def has_fields(self, slots: np.ndarray) -> np.ndarray:
        """Whether each of ``slots`` has a kept top N field."""
        return np.isin(slots, as_array(self._fielded)) if self._fielded else np.zeros(len(slots), dtype=bool)

    def _apply(self, key: FieldKey, found: Field, changed: dict[str, tuple[float, str] | None]) -> Field | None:
        """``found`` with ``changed`` applied (``Field.updated``), kept; None (forgotten) when not known."""
        if len(changed) == 1:
            # The common case: a supplier outside the field that stays out of it (not eligible, or
            # ranking after the last member of a full one) leaves it as it is.
            [(supplier_id, now)] = changed.items()
            outside = all(member != supplier_id for _, member in found.keys)
            if outside and (now is None or (len(found.keys) == found.limit and now > found.keys[-1])):
                return found
        updated = found.updated(changed)
        if updated is None:
            self._forget(key)
            return None
        before, after = {i for _, i in found.keys}, {i for _, i in updated.keys}
        for supplier_id in before - after:
            self._drop(self._members, supplier_id, key)
        for supplier_id in after - before:
            self._members.setdefault(supplier_id, set()).add(key)
        self._fields[key] = updated
        return updated

    def _keep(self, key: FieldKey, kept: Field) -> Field:
        self._fields[key] = kept
        self._kept.setdefault(key[0], set()).add(key)
        if key[0] in self._slot:
            self._fielded.add(self._slot[key[0]])
        for _, supplier_id in kept.keys:
            self._members.setdefault(supplier_id, set()).add(key)
        return kept

    def score_of(self, alert: Alert, record: SupplierRecord, view: View, on_date: date) -> float | None:
        """``record``'s score under ``alert`` over ``view`` on ``on_date``, None when not eligible."""
        supplier = self.supplier(record, view, on_date)
        slot = self._slot[alert.standards_id]
        if slot not in _slots(self, supplier):
            return None
        slots = np.array([slot], dtype=np.int64)
        self.sheet.ready(slots, lambda _: alert.query, view.text)
        scored = self.sheet.score(supplier.vector, slots)
        if scored.unsure[0]:
            if eligible(self, alert, supplier.segment, on_date) is None:
                return None
        elif not scored.eligible[0]:
            return None
        return float(scored.scores[0])

    def supplier(self, record: SupplierRecord, view: View, on_date: date) -> _Supplier:
        """``record`` as reverse matching reads it under ``view``'s text model (the last few kept)."""
        key = (record, view.text.epoch, on_date)
        found = self._suppliers.get(key)
        if found is None:
            if len(self._suppliers) >= RECENT_RECORDS:
                self._suppliers.clear()
            found = self._suppliers[key] = _Supplier(record, view, on_date)
        return found

    def _forget(self, key: FieldKey) -> None:
        self._unapplied.pop(key, None)
        found = self._fields.pop(key, None)
        if found is None:
            return
        self._drop(self._kept, key[0], key)
        if key[0] not in self._kept and key[0] in self._slot:
            self._fielded.discard(self._slot[key[0]])
        for _, supplier_id in found.keys:
            self._drop(self._members, supplier_id, key)

    @staticmethod
    def _drop(keys: dict[str, set[FieldKey]], name: str, key: FieldKey) -> None:
        held = keys.get(name)
        if held is not None:
            held.discard(key)
            if not held:
                del keys[name]

    def changed(self, changes: Sequence[SupplierChange]) -> None:
        """Keep the top N fields true to ``changes``: each change is left to apply to the fields
        holding its supplier (its record before may have been one of the best) and to those its
        record after may enter (those of the standards whose categorical constraints it passes:
        a superset of those it is eligible for). A field neither holds nor may take in is left
        as it is: a supplier outside it that changes stays outside."""
        if not self._fields:
            return
        for change in changes:
            touched = set(self._members.get(change.supplier_id, ()))
            if change.after is not None:
                for slot in self.candidate_slots(change.after) & self._fielded:
                    touched.update(self._kept.get(self._by_slot[slot] or "", ()))
            for key in touched:
                unapplied = self._unapplied.setdefault(key, {})
                unapplied[change.supplier_id] = change.after
                if len(unapplied) > UNAPPLIED_CHANGES:
                    self._forget(key)

    def forget_leaders(self) -> None:
        """Forget every kept top N field."""
        self._fields.clear()
        self._members.clear()
        self._kept.clear()
        self._fielded.clear()
        self._unapplied.clear()

    def terms(self, alert: Alert, text: TextModel) -> Terms:
        """The query vector of ``alert``'s description under ``text`` (kept per standards version and model)."""
        key = (alert.standards_id, alert.version, text.epoch)
        found = self._terms.get(key)
        if found is None:
            if len(self._terms) > 4 * len(self.alerts) + 1024:
                self._terms.clear()
            found = self._terms[key] = text.query_vector(alert.query.description)
        return found


def field_of(view: View, query: Query, limit: int) -> list[tuple[float, str]]:
    """The (negated score, id) of the best ``limit`` suppliers of ``view`` eligible under
    ``query``, best first: ``run_query``'s items, scored by the engine but not explained."""
    terms = view.text.query_vector(query.description)
    weights = query.active_weights(text_active=len(terms[0]) > 0)
    keys = [
        (-score, supplier_id)
        for score, supplier_id in SegmentRanking(view.main, query, weights, terms).leaders(view.removed, limit)
    ]
    if view.delta is not None:
        keys += [
            (-score, supplier_id)
            for score, supplier_id in SegmentRanking(view.delta, query, weights, terms).leaders(BitMap(), limit)
        ]
        keys.sort()
    return keys[:limit]


def hard_attributes(record: SupplierRecord) -> tuple[object, ...]:
    """What hard constraints read of a supplier (soft criteria read its text and performance too)."""
    r = record
    return (
        r.country,
        r.subdivision,
        r.latitude,
        r.longitude,
        r.size_class,
        r.isic_codes,
        r.hs_codes,
        r.certificates,
        r.monthly_capacity,
        r.capacity_unit,
        r.cluster_ids,
        r.inclusion,
    )


def eligible(index: StandardsIndex, alert: Alert, segment: Segment, on_date: date) -> Query | None:
    """``alert``'s query on ``on_date`` if the one-row ``segment`` is eligible under it (the engine's check)."""
    query = index.query_on(alert, on_date)
    rows, _, _ = segment.candidate_sets(query, BitMap())
    return query if rows else None


def evaluate(
    index: StandardsIndex, alert: Alert, segment: Segment, view: View, on_date: date, supplier_id: str
) -> Evaluation | None:
    """Whether the supplier of the one-row ``segment`` (built with ``view``'s text model) meets
    ``alert`` over ``view`` on ``on_date``: its explained score and rank if it does."""
    query = eligible(index, alert, segment, on_date)
    if query is None:
        return None
    terms = index.terms(alert, view.text)
    weights = query.active_weights(text_active=len(terms[0]) > 0)
    [ranked] = SegmentRanking(segment, query, weights, terms).best(ONE_ROW, 1)
    if alert.min_score is not None and ranked.score < alert.min_score:
        return None
    rank = None
    if alert.top_n is not None:
        rank = place(index, alert, view, query, ranked.score, supplier_id)
        if rank is None:
            return None
    return Evaluation(ranked, weights, rank)


def place(
    index: StandardsIndex,
    alert: Alert,
    view: View,
    query: Query,
    score: float,
    supplier_id: str,
    known: tuple[SupplierRecord, float] | None = None,
) -> int | None:
    """The rank of ``supplier_id`` scoring ``score`` under ``alert`` over ``view``, if within its
    top N: its place among the others of the view's top N + 1, as the engine orders them (score,
    then id). ``known``: as in ``StandardsIndex.leaders``."""
    assert alert.top_n is not None
    rank = index.leaders(alert, view, query, known).rank((-score, supplier_id))
    return rank if rank <= alert.top_n else None


@dataclass(frozen=True)
class SupplierChange:
    """A supplier as a feed page changed it: its record before and after (None: none, or not a supplier)."""

    supplier_id: str
    version: int
    occurred_at: datetime
    before: SupplierRecord | None
    after: SupplierRecord | None


def reverse_match(
    index: StandardsIndex,
    changes: Sequence[SupplierChange],
    view: View,
    on_date: date,
    *,
    naive: bool = False,
) -> list[Match]:
    """The alerted standards each changed supplier now meets and its previous record did not,
    both scored with ``view``'s text model and ranked among ``view``'s other suppliers (so a
    replica's transitions do not depend on how its feed pages split the changes).

    The index's candidates are checked and scored together (``sheet.StandardsSheet``), and
    only the matches are explained; ``naive`` checks every standards, one by one, with the
    engine's calls on a one-row segment of the supplier (the peer both are tested against)."""
    matches: list[Match] = []
    for change in changes:
        if change.after is None:
            continue
        if naive:
            matches += _naive_matches(index, change, view, on_date)
        else:
            matches += _matches(index, change, view, on_date)
    return matches


class _Supplier:
    """One record of a change as reverse matching reads it: its vector, and its one-row
    segment only if the engine is asked (a close call on a maximum distance)."""

    def __init__(self, record: SupplierRecord, view: View, on_date: date) -> None:
        self.record = record
        self.view = view
        self.vector = SupplierVector.of(record, view.text, on_date)
        self._segment: Segment | None = None

    @property
    def segment(self) -> Segment:
        if self._segment is None:
            self._segment = Segment.build([self.record], self.view.text, verify_text=False)
        return self._segment


def _slots(index: StandardsIndex, supplier: _Supplier) -> BitMap:
    """The candidate slots, but those requiring a scheme the supplier holds no certificate of valid on the day."""
    slots = index.candidate_slots(supplier.record)
    lapsed = supplier.vector.lapsed_schemes
    return slots - index.requiring(lapsed) if lapsed and slots else slots


def _meeting(
    index: StandardsIndex, supplier: _Supplier, slots: np.ndarray, view: View, on_date: date, *, known_now: bool
) -> tuple[Scores, list[int | None]]:
    """Of ``slots`` (candidates of ``supplier``), those whose standards it meets: their scores and
    ranks (``known_now``: the supplier's record is the one ``view`` holds, so its score is the
    one a top N field takes in)."""
    sheet = index.sheet
    sheet.ready(slots, lambda slot: index.alert_of(slot).query, view.text)
    scored = sheet.score(supplier.vector, slots)
    meets = scored.eligible.copy()
    for at in np.flatnonzero(scored.unsure).tolist():
        meets[at] = eligible(index, index.alert_of(int(slots[at])), supplier.segment, on_date) is not None
    judged = meets.copy()  # eligible
    meets &= ~(scored.scores < sheet.col("min_score")[slots])  # NaN: no minimum
    ranked = sheet.col("top_n")[slots] > 0
    if known_now:
        # The top N fields this change may move and that no rank below reads: apply it to them now.
        for at in np.flatnonzero(ranked & ~meets & index.has_fields(slots)).tolist():
            alert = index.alert_of(int(slots[at]))
            score = float(scored.scores[at]) if judged[at] else None
            index.settle(alert, index.query_on(alert, on_date), supplier.record, score)
    ranks: list[int | None] = [None] * len(slots)
    for at in np.flatnonzero(meets & ranked).tolist():
        alert = index.alert_of(int(slots[at]))
        score = float(scored.scores[at])
        known = (supplier.record, score) if known_now else None
        rank = place(index, alert, view, index.query_on(alert, on_date), score, supplier.record.id, known)
        if rank is None:
            meets[at] = False
        ranks[at] = rank
    kept = np.flatnonzero(meets)
    return scored.subset(kept), [ranks[at] for at in kept.tolist()]


def _matches(index: StandardsIndex, change: SupplierChange, view: View, on_date: date) -> list[Match]:
    """``reverse_match`` of one change (see there)."""
    assert change.after is not None
    now = index.supplier(change.after, view, on_date)
    candidates = _slots(index, now)
    if not candidates:
        return []
    sheet = index.sheet
    slots = as_array(candidates)
    slots = slots[sheet.col("enabled")[slots] <= microseconds(change.occurred_at)]
    # Eligibility reads the hard attributes only: when they are unchanged, standards that ask
    # for no score or rank were met before exactly when they are met now.
    if change.before is not None and hard_attributes(change.before) == hard_attributes(change.after):
        slots = slots[~(np.isnan(sheet.col("min_score")[slots]) & (sheet.col("top_n")[slots] == 0))]
    if not len(slots):
        return []
    met, ranks = _meeting(index, now, slots, view, on_date, known_now=True)
    if change.before is not None and len(met.slots):
        then = index.supplier(change.before, view, on_date)
        could = _slots(index, then)
        again = np.flatnonzero(np.fromiter((slot in could for slot in met.slots.tolist()), bool, len(met.slots)))
        if len(again):
            met_before, _ = _meeting(index, then, met.slots[again], view, on_date, known_now=False)
            fresh = ~np.isin(met.slots, met_before.slots)
            met, ranks = met.subset(np.flatnonzero(fresh)), [r for r, f in zip(ranks, fresh.tolist(), strict=True) if f]
    record = change.after
    basis = (
        (min(record.performance_scorecards, COUNT_MAX), min(record.performance_buyers, COUNT_MAX))
        if record.performance_scorecards
        else None
    )
    found = []
    for at, slot in enumerate(met.slots.tolist()):
        weights = sheet.weights[slot]
        assert weights is not None
        columns = [(criterion, CRITERIA.index(criterion)) for criterion in weights]
        values, contributions = met.values[at].tolist(), met.contributions[at].tolist()
        ranked = Ranked(
            id=record.id,
            name=record.name,
            score=float(met.scores[at]),
            values={criterion: values[column] for criterion, column in columns},
            contributions={criterion: contributions[column] for criterion, column in columns},
            performance_basis=basis,
        )
        found.append(Match(index.alert_of(slot), record.id, change.version, Evaluation(ranked, weights, ranks[at])))
    return found


def _naive_matches(index: StandardsIndex, change: SupplierChange, view: View, on_date: date) -> list[Match]:
    """``reverse_match`` of one change, every standards through the engine's calls (the peer)."""
    record = change.after
    assert record is not None
    matches: list[Match] = []
    alerts = [a for a in index.alerts.values() if a.enabled_at <= change.occurred_at]
    if not alerts:
        return matches
    now_segment = Segment.build([record], view.text, verify_text=False)
    then_segment: Segment | None = None
    same_hard = change.before is not None and hard_attributes(change.before) == hard_attributes(record)
    for alert in alerts:
        eligibility_only = alert.min_score is None and alert.top_n is None
        if same_hard and eligibility_only:
            continue
        # Standards asking for eligibility only are scored only when they make a match.
        if eligibility_only:
            found = None
            if eligible(index, alert, now_segment, on_date) is None:
                continue
        else:
            found = evaluate(index, alert, now_segment, view, on_date, record.id)
            if found is None:
                continue
        if change.before is not None:
            if then_segment is None:
                then_segment = Segment.build([change.before], view.text, verify_text=False)
            if eligibility_only:
                met = eligible(index, alert, then_segment, on_date) is not None
            else:
                met = evaluate(index, alert, then_segment, view, on_date, record.id) is not None
            if met:
                continue  # it met them already
        found = found or evaluate(index, alert, now_segment, view, on_date, record.id)
        if found is None:
            continue
        matches.append(Match(alert, record.id, change.version, found))
    return matches
