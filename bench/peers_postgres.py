"""Peer: PostgreSQL, with the hard constraints and the whole score formula in SQL.

Schema, as a competent DBA would lay it out for this workload:

* ``supplier``: one row per supplier; coordinates as ``real`` (the float32 the
  contract stores), quality and on-time as ``smallint`` shares of 1/10,000, capacity
  as ``float8``; ISIC and HS codes as arrays of every prefix, clusters and held schemes as
  arrays, each with a GIN index; btree indexes on country, subdivision, size class
  and (unit, capacity); a GiST index on ``point(lon, lat)`` for a bounding-box
  prefilter before the exact great-circle distance;
* ``certificate`` (supplier, scheme, valid from, valid until) with a covering btree
  on (scheme, supplier);
* ``term_weight`` (term, supplier, weight): the TF-IDF weights of the engine's fitted
  text model, one row per non-zero, clustered on its primary key (term, supplier) so
  a term's posting list is one index range.

A query is one statement: the eligible rows, the dot product of their TF-IDF rows
with the request's vector (summed in the request's term order, so the float64 sums
are bit-identical), the share of preferred schemes held, proximity, capacity fit and
performance, each contribution and the score rounded as numpy does
(``rint(x * 1e9) / 1e9``), and the exact top k by (score desc, id asc) in the "C"
collation (byte order, as the engine compares ids).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg
import numpy as np

from bench.matching_reference import (
    DEG,
    Answer,
    Item,
    Reference,
    bounding_box,
    f32,
    hs_prefixes,
    isic_keys,
    isic_prefixes,
    place_keys,
    share,
    weights_for,
)
from services.matching.catalogue.query import (
    CRITERIA,
    EARTH_RADIUS_KM,
    PERFORMANCE_PRIOR,
    PROXIMITY_REFERENCE_KM,
    Query,
)
from services.matching.catalogue.records import SupplierRecord

SCHEMA = f"""
CREATE TABLE supplier (
    row_id integer PRIMARY KEY,
    id text COLLATE "C" NOT NULL,
    country text NOT NULL,
    subdivision text,
    size_class text NOT NULL,
    lat real,
    lon real,
    capacity float8,
    unit text NOT NULL,
    quality smallint,
    on_time smallint,
    isic text[] NOT NULL,
    hs text[] NOT NULL,
    clusters text[] NOT NULL,
    schemes text[] NOT NULL
);
CREATE TABLE certificate (row_id integer NOT NULL, scheme text NOT NULL, valid_from date, valid_until date);
CREATE TABLE term_weight (term integer NOT NULL, row_id integer NOT NULL, weight real NOT NULL);
-- great-circle distance from float32 coordinates, operation by operation as the contract computes it
CREATE FUNCTION hav_km(lat real, lon real, phi1 float8, lmb0 float8, cos_phi1 float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT {2 * EARTH_RADIUS_KM!r}::float8 * asin(sqrt(least(greatest(
        sin((lat::float8 * {DEG!r}::float8 - phi1) / 2) * sin((lat::float8 * {DEG!r}::float8 - phi1) / 2)
        + (cos_phi1 * cos(lat::float8 * {DEG!r}::float8))
          * (sin((lon::float8 * {DEG!r}::float8 - lmb0) / 2) * sin((lon::float8 * {DEG!r}::float8 - lmb0) / 2)),
        0::float8), 1::float8)))
$$;
"""

INDEXES = """
CREATE UNIQUE INDEX supplier_id ON supplier (id);
CREATE INDEX supplier_isic ON supplier USING gin (isic);
CREATE INDEX supplier_hs ON supplier USING gin (hs);
CREATE INDEX supplier_clusters ON supplier USING gin (clusters);
CREATE INDEX supplier_schemes ON supplier USING gin (schemes);
CREATE INDEX supplier_country ON supplier (country);
CREATE INDEX supplier_subdivision ON supplier (subdivision);
CREATE INDEX supplier_size ON supplier (size_class);
CREATE INDEX supplier_capacity ON supplier (unit, capacity);
CREATE INDEX supplier_point ON supplier USING gist (point(lon::float8, lat::float8));
CREATE INDEX certificate_scheme ON certificate (scheme, row_id) INCLUDE (valid_from, valid_until);
ALTER TABLE term_weight ADD PRIMARY KEY (term, row_id) INCLUDE (weight);  -- loaded in this order: clustered
"""

SESSION = {
    "jit": "off",  # JIT compilation costs more than it saves on these statements
    "plan_cache_mode": "force_custom_plan",  # selectivity varies by orders of magnitude between parameters
    "work_mem": "128MB",
    "random_page_cost": "1.1",
}


class PostgresPeer:
    name = "postgres"

    def __init__(self, admin_url: str, database: str, records: Sequence[SupplierRecord], reference: Reference) -> None:
        self.admin_url = admin_url
        self.database = database
        self.reference = reference
        self.loop = asyncio.new_event_loop()
        started = time.perf_counter()
        self.loop.run_until_complete(self._create())
        self.connection: asyncpg.Connection = self.loop.run_until_complete(
            asyncpg.connect(self._url(database), server_settings=SESSION, statement_cache_size=1000)
        )
        self.loop.run_until_complete(self._load(records))
        self.build_seconds = time.perf_counter() - started
        self.disk_bytes = int(
            self.loop.run_until_complete(self.connection.fetchval("SELECT pg_database_size(current_database())"))
        )

    def _url(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    async def _create(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await admin.close()

    async def _load(self, records: Sequence[SupplierRecord]) -> None:
        c = self.connection
        await c.execute(SCHEMA)
        rows = []
        certs: list[tuple[int, str, date | None, date | None]] = []
        for row, r in enumerate(records):
            rows.append(
                (
                    row,
                    r.id,
                    r.country,
                    r.subdivision,
                    r.size_class,
                    None if r.latitude is None else f32(r.latitude),
                    None if r.longitude is None else f32(r.longitude),
                    r.monthly_capacity,
                    (r.capacity_unit or "").strip().lower(),
                    None if r.quality_score is None else share(r.quality_score),
                    None if r.on_time_delivery_rate is None else share(r.on_time_delivery_rate),
                    sorted({p for code in r.isic_codes for p in isic_prefixes(code)}),
                    sorted({p for code in r.hs_codes for p in hs_prefixes(code)}),
                    list(r.cluster_ids),
                    sorted({cert.scheme for cert in r.certificates}),
                )
            )
            certs.extend((row, cert.scheme, cert.valid_from, cert.valid_until) for cert in r.certificates)
            if len(rows) >= 50_000:
                await c.copy_records_to_table("supplier", records=rows)
                rows = []
        if rows:
            await c.copy_records_to_table("supplier", records=rows)
        await c.copy_records_to_table("certificate", records=certs)
        matrix = self.reference.tfidf.tocoo()
        order = np.lexsort((matrix.row, matrix.col))
        terms, suppliers = matrix.col[order].tolist(), matrix.row[order].tolist()
        weights = matrix.data[order].astype(np.float32).tolist()
        step = 1_000_000
        for start in range(0, len(terms), step):
            await c.copy_records_to_table(
                "term_weight",
                records=zip(
                    terms[start : start + step],
                    suppliers[start : start + step],
                    weights[start : start + step],
                    strict=True,
                ),
            )
        await c.execute(INDEXES)
        await c.execute("VACUUM ANALYZE")

    def close(self) -> None:
        async def drop() -> None:
            await self.connection.close()
            admin = await asyncpg.connect(self.admin_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await admin.close()

        self.loop.run_until_complete(drop())
        self.loop.close()

    # -- queries ----------------------------------------------------------------------

    def statement(self, query: Query) -> tuple[str, list[Any]]:
        """The SQL and its arguments for ``query``."""
        args: list[Any] = []

        def arg(value: Any, cast: str) -> str:
            args.append(value)
            return f"${len(args)}::{cast}"

        day: list[str] = []

        def valid() -> str:
            if not day:
                day.append(arg(query.on_date, "date"))
            return (
                f"(c.valid_from IS NULL OR c.valid_from <= {day[0]}) AND "
                f"(c.valid_until IS NULL OR c.valid_until >= {day[0]})"
            )

        where: list[str] = []
        if query.isic_codes:
            where.append(f"s.isic && {arg(isic_keys(query.isic_codes), 'text[]')}")
        if query.hs_codes:
            where.append(f"s.hs && {arg(list(query.hs_codes), 'text[]')}")
        if query.countries or query.subdivisions:
            countries, subdivisions = place_keys(query)
            either = []
            if countries:
                either.append(f"s.country = ANY({arg(countries, 'text[]')})")
            if subdivisions:
                either.append(f"s.subdivision = ANY({arg(subdivisions, 'text[]')})")
            where.append("(" + " OR ".join(either) + ")")
        if query.cluster_ids:
            where.append(f"s.clusters && {arg(list(query.cluster_ids), 'text[]')}")
        if query.size_classes:
            where.append(f"s.size_class = ANY({arg(list(query.size_classes), 'text[]')})")
        if query.required_certifications:
            where.append(f"s.schemes @> {arg(list(query.required_certifications), 'text[]')}")
            for scheme in query.required_certifications:
                where.append(
                    f"EXISTS (SELECT 1 FROM certificate c WHERE c.row_id = s.row_id "
                    f"AND c.scheme = {arg(scheme, 'text')} AND {valid()})"
                )
        if query.min_monthly_capacity is not None:
            if query.capacity_unit:
                where.append(
                    f"s.unit = {arg(query.capacity_unit.strip().lower(), 'text')} "
                    f"AND s.capacity >= {arg(float(query.min_monthly_capacity), 'float8')}"
                )
            else:
                where.append("false")
        point_args = ""
        if query.has_point:
            assert query.latitude is not None and query.longitude is not None
            phi1 = query.latitude * DEG
            point_args = (
                f"{arg(phi1, 'float8')}, {arg(query.longitude * DEG, 'float8')}, {arg(math.cos(phi1), 'float8')}"
            )
        if query.max_distance_km is not None and query.has_point:
            assert query.latitude is not None and query.longitude is not None
            box = bounding_box(query.latitude, query.longitude, query.max_distance_km)
            if box is not None:
                lat_lo, lat_hi, lon_lo, lon_hi = box
                where.append(
                    f"point(s.lon::float8, s.lat::float8) <@ box(point({arg(lon_lo, 'float8')}, "
                    f"{arg(lat_lo, 'float8')}), point({arg(lon_hi, 'float8')}, {arg(lat_hi, 'float8')}))"
                )
            where.append(f"hav_km(s.lat, s.lon, {point_args}) <= {arg(query.max_distance_km, 'float8')}")
        if query.exclude_ids:
            where.append(f"NOT (s.id = ANY({arg(list(query.exclude_ids), 'text[]')}))")

        weights, terms, term_weights = weights_for(query, self.reference.text)
        ctes = [
            "e AS MATERIALIZED (SELECT s.row_id, s.id, s.lat, s.lon, s.capacity, s.unit, s.quality, s.on_time "
            "FROM supplier s" + (" WHERE " + " AND ".join(where) if where else "") + ")"
        ]
        joins = []
        values: dict[str, str] = {}
        if "text" in weights:
            ctes.append(
                "t AS (SELECT tw.row_id, sum(tw.weight::float8 * q.w ORDER BY q.ord) AS dot "
                f"FROM unnest({arg(terms.tolist(), 'int4[]')}, {arg(term_weights.tolist(), 'float8[]')}) "
                "WITH ORDINALITY AS q(term, w, ord) JOIN term_weight tw ON tw.term = q.term "
                "JOIN e ON e.row_id = tw.row_id GROUP BY tw.row_id)"
            )
            joins.append("LEFT JOIN t ON t.row_id = e.row_id")
            values["text"] = "least(greatest(coalesce(t.dot, 0::float8), 0::float8), 1::float8)"
        if "certifications" in weights:
            preferred = arg(list(query.preferred_certifications), "text[]")
            ctes.append(
                "p AS (SELECT c.row_id, count(DISTINCT c.scheme)::float8 AS held FROM certificate c "
                f"JOIN e ON e.row_id = c.row_id WHERE c.scheme = ANY({preferred}) AND {valid()} GROUP BY c.row_id)"
            )
            joins.append("LEFT JOIN p ON p.row_id = e.row_id")
            values["certifications"] = (
                f"coalesce(p.held, 0::float8) / {arg(float(len(query.preferred_certifications)), 'float8')}"
            )
        if "proximity" in weights:
            reference = query.max_distance_km or PROXIMITY_REFERENCE_KM
            values["proximity"] = (
                f"CASE WHEN e.lat IS NULL OR e.lon IS NULL THEN 0::float8 ELSE least(greatest("
                f"1::float8 - hav_km(e.lat, e.lon, {point_args}) / {arg(reference, 'float8')}, "
                "0::float8), 1::float8) END"
            )
        if "capacity" in weights:
            assert query.capacity_target is not None and query.capacity_unit is not None
            values["capacity"] = (
                f"CASE WHEN e.unit = {arg(query.capacity_unit.strip().lower(), 'text')} "
                "AND e.capacity IS NOT NULL THEN least(1::float8, e.capacity / "
                f"{arg(float(query.capacity_target), 'float8')}) ELSE 0::float8 END"
            )
        if "performance" in weights:
            values["performance"] = (
                f"CASE WHEN e.quality IS NULL AND e.on_time IS NULL THEN {arg(PERFORMANCE_PRIOR, 'float8')} "
                "ELSE (coalesce(e.quality::float8 / 10000::float8, 0::float8) "
                "+ coalesce(e.on_time::float8 / 10000::float8, 0::float8)) / "
                "((e.quality IS NOT NULL)::int + (e.on_time IS NOT NULL)::int)::float8 END"
            )
        active = [c for c in CRITERIA if c in weights]
        scale = "1e9::float8"
        contributions = ", ".join(
            f"round(({arg(weights[c], 'float8')} * {values[c]}) * {scale}) / {scale} AS c_{c}" for c in active
        )
        total = " + ".join(f"c_{c}" for c in active)
        sql = (
            "WITH " + ", ".join(ctes) + ", "
            f"v AS (SELECT e.id, {contributions} FROM e {' '.join(joins)}) "
            f"SELECT id, round(({total}) * {scale}) / {scale} AS score, count(*) OVER () AS eligible, "
            + ", ".join(f"c_{c}" for c in active)
            + f" FROM v ORDER BY score DESC, id LIMIT {arg(query.limit, 'int8')}"
        )
        return sql, args

    def run(self, query: Query) -> Answer:
        sql, args = self.statement(query)
        rows = self.loop.run_until_complete(self.connection.fetch(sql, *args))
        weights = [c for c in CRITERIA if f"c_{c}" in (rows[0].keys() if rows else ())]
        items = [Item(r["id"], float(r["score"]), tuple((c, float(r[f"c_{c}"])) for c in weights)) for r in rows]
        eligible = int(rows[0]["eligible"]) if rows else self._count(query)
        return Answer(items, eligible)

    def _count(self, query: Query) -> int:
        """The eligible count when no row came back (limit 0 or nobody eligible)."""
        if query.limit > 0:
            return 0
        sql, args = self.statement(query)
        return int(
            self.loop.run_until_complete(
                self.connection.fetchval(f"SELECT count(*) FROM ({sql.rsplit(' LIMIT ', 1)[0]}) x", *args[:-1])
            )
        )

    def explain(self, query: Query) -> str:
        sql, args = self.statement(query)
        plan = self.loop.run_until_complete(self.connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args))
        return "\n".join(r[0] for r in plan)
