"""Peer: tantivy for the candidate set, an exact numpy re-rank of every hit.

The index holds the filterable fields of each supplier (raw-tokenised keyword fields
for ISIC and HS prefixes, place, clusters, size class, held certification schemes,
capacity unit and id; float fast fields for coordinates and capacity) and the row
number as a fast field. A query becomes one boolean filter (term sets, a bounding
box and a capacity range); the search collects *all* its hits, ordered by row, not
a BM25 top-k. The exact checks a keyword index cannot express (certificate validity
on the date, the great-circle distance) and the ranking
run in :class:`bench.matching_reference.Reference`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tantivy

from bench.matching_reference import (
    Answer,
    Reference,
    bounding_box,
    f32,
    hs_prefixes,
    isic_keys,
    isic_prefixes,
    place_keys,
)
from services.matching.catalogue.query import Query
from services.matching.catalogue.records import SupplierRecord

KEYWORDS = ("id", "isic", "hs", "country", "subdivision", "cluster", "size", "scheme", "unit")


class TantivyPeer:
    name = "tantivy"

    def __init__(
        self,
        records: Sequence[SupplierRecord],
        reference: Reference,
        path: Path | None = None,
        heap_bytes: int = 512_000_000,
    ) -> None:
        started = time.perf_counter()
        self.reference = reference
        self.path = path or Path(tempfile.mkdtemp(prefix="bench-tantivy-"))
        builder = tantivy.SchemaBuilder()
        builder.add_unsigned_field("row", fast=True)
        for field in KEYWORDS:
            builder.add_text_field(field, tokenizer_name="raw", index_option="basic")
        for field in ("lat", "lon", "capacity"):
            builder.add_float_field(field, fast=True, indexed=True)
        self.schema = builder.build()
        self.index = tantivy.Index(self.schema, path=str(self.path))
        writer = self.index.writer(heap_bytes, 1)
        for row, r in enumerate(records):
            doc = tantivy.Document()
            doc.add_unsigned("row", row)
            doc.add_text("id", r.id)
            for code in r.isic_codes:
                for key in isic_prefixes(code):
                    doc.add_text("isic", key)
            for code in r.hs_codes:
                for key in hs_prefixes(code):
                    doc.add_text("hs", key)
            doc.add_text("country", r.country)
            if r.subdivision:
                doc.add_text("subdivision", r.subdivision)
            for cluster in r.cluster_ids:
                doc.add_text("cluster", cluster)
            doc.add_text("size", r.size_class)
            for scheme in sorted({c.scheme for c in r.certificates}):
                doc.add_text("scheme", scheme)
            doc.add_text("unit", (r.capacity_unit or "").strip().lower())
            if r.latitude is not None and r.longitude is not None:
                doc.add_float("lat", f32(r.latitude))
                doc.add_float("lon", f32(r.longitude))
            if r.monthly_capacity is not None:
                doc.add_float("capacity", float(r.monthly_capacity))
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()
        self.build_seconds = time.perf_counter() - started

    @property
    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _terms(self, field: str, values: Sequence[str]) -> tantivy.Query:
        return tantivy.Query.term_set_query(self.schema, field, list(values))

    def filter(self, query: Query) -> tantivy.Query:
        must: list[tantivy.Query] = []
        if query.isic_codes:
            must.append(self._terms("isic", isic_keys(query.isic_codes)))
        if query.hs_codes:
            must.append(self._terms("hs", list(query.hs_codes)))
        if query.countries or query.subdivisions:
            countries, subdivisions = place_keys(query)
            should = []
            if countries:
                should.append((tantivy.Occur.Should, self._terms("country", countries)))
            if subdivisions:
                should.append((tantivy.Occur.Should, self._terms("subdivision", subdivisions)))
            must.append(tantivy.Query.boolean_query(should))
        if query.cluster_ids:
            must.append(self._terms("cluster", list(query.cluster_ids)))
        if query.size_classes:
            must.append(self._terms("size", list(query.size_classes)))
        for scheme in query.required_certifications:  # held at all; validity is checked exactly afterwards
            must.append(tantivy.Query.term_query(self.schema, "scheme", scheme))
        if query.min_monthly_capacity is not None:
            unit = (query.capacity_unit or "").strip().lower()
            if not query.capacity_unit:
                return tantivy.Query.empty_query()
            must.append(tantivy.Query.term_query(self.schema, "unit", unit))
            must.append(
                tantivy.Query.range_query(
                    self.schema, "capacity", tantivy.FieldType.Float, float(query.min_monthly_capacity), None
                )
            )
        if query.max_distance_km is not None and query.latitude is not None and query.longitude is not None:
            box = bounding_box(query.latitude, query.longitude, query.max_distance_km)
            if box is not None:
                lat_lo, lat_hi, lon_lo, lon_hi = box
                must.append(tantivy.Query.range_query(self.schema, "lat", tantivy.FieldType.Float, lat_lo, lat_hi))
                must.append(tantivy.Query.range_query(self.schema, "lon", tantivy.FieldType.Float, lon_lo, lon_hi))
            else:
                must.append(tantivy.Query.exists_query("lat"))
        clauses = [(tantivy.Occur.Must, q) for q in must] or [(tantivy.Occur.Must, tantivy.Query.all_query())]
        if query.exclude_ids:
            clauses.append((tantivy.Occur.MustNot, self._terms("id", list(query.exclude_ids))))
        return tantivy.Query.boolean_query(clauses)

    def candidates(self, query: Query) -> np.ndarray:
        """Every hit of the filter (row numbers, ascending)."""
        flt = self.filter(query)
        # tantivy's stub lists only .hits; .count exists at run time when count=True
        count = self.searcher.search(flt, limit=1, count=True).count  # type: ignore[attr-defined]
        if not count:
            return np.empty(0, dtype=np.int64)
        hits = self.searcher.search(flt, limit=count, count=False, order_by_field="row", order=tantivy.Order.Asc).hits
        return np.fromiter((key for key, _ in hits), dtype=np.int64, count=len(hits))

    def run(self, query: Query) -> Answer:
        rows = self.candidates(query)
        return self.reference.rank(self.reference.exact_filter(rows, query), query)
