"""A fixed-seed set of shortlist queries over the synthetic world of ``catalogue_gen``.

Queries come from templates aimed at four selectivity buckets (under 0.1 % of the
catalogue, 0.1 to 1 %, 1 to 10 %, and broad sector-only or country-wide queries);
the benchmark labels each query with the bucket it measured (eligible / N), which
depends on N. About half the queries carry a description (text similarity), and
many carry other soft criteria (preferred certifications, a point, a desired
capacity, custom weights). The set depends only on the seed and the count.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from bench.catalogue_gen import (
    COUNTRIES,
    DEFAULT_SEED,
    GENERIC_WORDS,
    REF_DATE,
    SECTORS,
    SIZE_CAPACITY_FACTOR,
    Sector,
    World,
    supplier_id,
    world,
)
from services.matching.catalogue.query import DEFAULT_WEIGHTS, Query

BUCKETS = ("<0.1%", "0.1-1%", "1-10%", ">=10%")


def bucket_of(eligible: int, n: int) -> str:
    share = eligible / n if n else 0.0
    if share < 0.001:
        return BUCKETS[0]
    if share < 0.01:
        return BUCKETS[1]
    if share < 0.1:
        return BUCKETS[2]
    return BUCKETS[3]


@dataclass(frozen=True)
class BenchQuery:
    name: str  # e.g. "q017-cluster+cert"
    intent: str  # the bucket the template aims at
    query: Query

    @property
    def has_text(self) -> bool:
        return bool(self.query.description)


class _Maker:
    def __init__(self, w: World, rnd: random.Random, id_pool: int) -> None:
        self.w = w
        self.rnd = rnd
        self.id_pool = id_pool

    # -- draws ----------------------------------------------------------------------

    def country(self) -> str:
        return self.rnd.choices([c.code for c in COUNTRIES], weights=[c.share for c in COUNTRIES])[0]

    def sector(self, country: str) -> int:
        weights = self.w.sector_weights[country]
        return self.rnd.choices(range(len(SECTORS)), weights=weights.tolist())[0]

    def town(self, country: str) -> int:
        ix = self.w.towns_by_country[country]
        return int(self.rnd.choices(ix.tolist(), weights=self.w.town_weights[country].tolist())[0])

    def cluster(self, country: str, sector: int, weighted: bool) -> str | None:
        key = (country, sector)
        if key not in self.w.clusters_by:
            return None
        ix: list[int] = self.w.clusters_by[key].tolist()
        pick = (
            self.rnd.choices(ix, weights=self.w.cluster_weights[key].tolist())[0] if weighted else self.rnd.choice(ix)
        )
        return self.w.clusters[pick].id

    def scheme(self, sector: Sector) -> str:
        return self.rnd.choices([s for s, _ in sector.certs], weights=[p for _, p in sector.certs])[0]

    def isic_class(self, sector: Sector) -> str:
        return self.rnd.choice(sector.lines).isic

    def hs6(self, sector: Sector) -> str:
        heading = self.rnd.choice(self.rnd.choice(sector.lines).hs)
        return self.rnd.choice(self.w.hs6[heading])

    def description(self, sector: Sector) -> str:
        line = self.rnd.choice(sector.lines)
        words = self.rnd.sample(line.words, min(len(line.words), self.rnd.randint(1, 3)))
        words += self.rnd.sample(sector.processes, self.rnd.randint(0, 2))
        words += self.rnd.sample(sector.materials, min(len(sector.materials), self.rnd.randint(0, 2)))
        if self.rnd.random() < 0.3:
            words.append(self.rnd.choice(GENERIC_WORDS))
        if self.rnd.random() < 0.1:
            words.append("zqxjvw")  # a word no supplier uses
        self.rnd.shuffle(words)
        return " ".join(words)

    # -- soft criteria ----------------------------------------------------------------

    def soft(self, sector: Sector, country: str, point: bool = True) -> dict[str, object]:
        extra: dict[str, object] = {}
        if self.rnd.random() < 0.5:
            extra["description"] = self.description(sector)
        if self.rnd.random() < 0.35:
            schemes = list(dict.fromkeys(self.scheme(sector) for _ in range(self.rnd.randint(1, 3))))
            extra["preferred_certifications"] = tuple(schemes)
        if point and self.rnd.random() < 0.35:
            town = self.w.towns[self.town(country)]
            extra["latitude"], extra["longitude"] = town.latitude, town.longitude
        if self.rnd.random() < 0.3:
            extra["desired_monthly_capacity"] = round(
                sector.micro_capacity * SIZE_CAPACITY_FACTOR[self.rnd.randrange(4)] * self.rnd.uniform(0.5, 2.0), 1
            )
            extra["capacity_unit"] = sector.unit
        if self.rnd.random() < 0.2:
            # The criteria the generated catalogue has data for (no inclusion claims): the same
            # draws as before the inclusion criterion, so the mix stays comparable across revisions.
            extra["weights"] = {c: round(self.rnd.uniform(0.0, 1.0), 2) for c in DEFAULT_WEIGHTS if c != "inclusion"}
        extra["limit"] = self.rnd.choices([20, 10, 50, 100], weights=[70, 10, 15, 5])[0]
        return extra

    def query(self, **fields: object) -> Query:
        return Query(on_date=REF_DATE, **fields)  # type: ignore[arg-type]

    # -- templates ------------------------------------------------------------------------

    def tiny(self) -> tuple[str, Query]:
        country = self.country()
        si = self.sector(country)
        sector = SECTORS[si]
        kind = self.rnd.randrange(6)
        soft = self.soft(sector, country)
        if kind == 0:
            cluster = self.cluster(country, si, weighted=False)
            if cluster:
                return "cluster+cert", self.query(
                    cluster_ids=(cluster,), required_certifications=(self.scheme(sector),), **soft
                )
        if kind == 1:
            town = self.w.towns[self.town(country)]
            return "class+subdivision+size", self.query(
                isic_codes=(self.isic_class(sector),),
                subdivisions=(town.subdivision,),
                size_classes=("medium", "large"),
                **soft,
            )
        if kind == 2:
            return "hs6+country", self.query(hs_codes=(self.hs6(sector),), countries=(country,), **soft)
        if kind == 3:
            town = self.w.towns[self.town(country)]
            soft.pop("latitude", None)
            soft.pop("longitude", None)
            return "point25km+class", self.query(
                latitude=town.latitude,
                longitude=town.longitude,
                max_distance_km=self.rnd.choice([15.0, 25.0, 30.0]),
                isic_codes=(self.isic_class(sector),),
                **soft,
            )
        if kind == 4:
            soft["capacity_unit"] = sector.unit
            return "class+cert+capacity", self.query(
                isic_codes=(self.isic_class(sector),),
                required_certifications=(self.scheme(sector),),
                min_monthly_capacity=round(sector.micro_capacity * self.rnd.choice([20, 40, 80]), 1),
                **soft,
            )
        cluster = self.cluster(country, si, weighted=True)
        excluded = tuple(supplier_id(self.w.seed, self.rnd.randrange(self.id_pool)) for _ in range(3))
        return "cluster+size+exclusions", self.query(
            cluster_ids=(cluster,) if cluster else (),
            size_classes=("small", "medium"),
            isic_codes=(self.isic_class(sector),),
            exclude_ids=excluded,
            countries=(country,),
            **soft,
        )

    def small(self) -> tuple[str, Query]:
        country = self.country()
        si = self.sector(country)
        sector = SECTORS[si]
        kind = self.rnd.randrange(6)
        soft = self.soft(sector, country)
        if kind == 0:
            cluster = self.cluster(country, si, weighted=True)
            if cluster:
                return "cluster", self.query(cluster_ids=(cluster,), **soft)
        if kind == 1:
            town = self.w.towns[self.town(country)]
            place: dict[str, object] = (
                {"subdivisions": (town.subdivision,)} if country == "IN" else {"countries": (country,)}
            )
            return "class+place", self.query(isic_codes=(self.isic_class(sector),), **place, **soft)
        if kind == 2:
            town = self.w.towns[self.town(country)]
            return "hs4+subdivision", self.query(
                hs_codes=(self.hs6(sector)[:4],), subdivisions=(town.subdivision,), **soft
            )
        if kind == 3:
            town = self.w.towns[self.town(country)]
            soft.pop("latitude", None)
            soft.pop("longitude", None)
            return "point100km+division", self.query(
                latitude=town.latitude,
                longitude=town.longitude,
                max_distance_km=self.rnd.choice([60.0, 100.0, 120.0]),
                isic_codes=(self.isic_class(sector)[:2],),
                **soft,
            )
        if kind == 4:
            return "class+cert", self.query(
                isic_codes=(self.isic_class(sector),), required_certifications=(sector.certs[0][0],), **soft
            )
        return "hs4+country+size", self.query(
            hs_codes=(self.hs6(sector)[:4],), countries=(country,), size_classes=("small", "medium", "large"), **soft
        )

    def medium(self) -> tuple[str, Query]:
        country = self.country()
        si = self.sector(country)
        sector = SECTORS[si]
        kind = self.rnd.randrange(6)
        soft = self.soft(sector, country)
        if kind == 0:
            return "division+country", self.query(
                isic_codes=(self.isic_class(sector)[:2],), countries=(country,), **soft
            )
        if kind == 1:
            return "hs2", self.query(hs_codes=(self.hs6(sector)[:2],), **soft)
        if kind == 2:
            town = self.w.towns[self.town("IN")]
            return "subdivision+size", self.query(
                subdivisions=(town.subdivision,),
                size_classes=self.rnd.choice([("micro",), ("small", "medium")]),
                **soft,
            )
        if kind == 3:
            return "cert", self.query(required_certifications=(self.scheme(sector),), **soft)
        if kind == 4:
            town = self.w.towns[self.town(country)]
            soft.pop("latitude", None)
            soft.pop("longitude", None)
            return "point300km", self.query(
                latitude=town.latitude,
                longitude=town.longitude,
                max_distance_km=self.rnd.choice([250.0, 300.0, 400.0]),
                **soft,
            )
        return "class", self.query(isic_codes=(self.isic_class(sector),), **soft)

    def broad(self) -> tuple[str, Query]:
        country = self.country()
        si = self.sector(country)
        sector = SECTORS[si]
        kind = self.rnd.randrange(6)
        soft = self.soft(sector, country)
        if kind == 0:
            return "section-C", self.query(isic_codes=("C",), **soft)
        if kind == 1:
            return "top-division", self.query(isic_codes=(self.rnd.choice(["14", "10", "13"]),), **soft)
        if kind == 2:
            return "country", self.query(countries=("IN",), **soft)
        if kind == 3:
            return "everything", self.query(**soft)
        if kind == 4:
            return "sections-A+C", self.query(isic_codes=("A", "C"), **soft)
        return "micro-small", self.query(size_classes=("micro", "small"), **soft)


def make_queries(count: int = 240, seed: int = DEFAULT_SEED, id_pool: int = 1000) -> list[BenchQuery]:
    """``count`` queries, a quarter aimed at each bucket; exclusions name suppliers ``< id_pool``."""
    maker = _Maker(world(seed), random.Random(seed + 7), id_pool)
    templates: list[tuple[str, Callable[[], tuple[str, Query]]]] = [
        (BUCKETS[0], maker.tiny),
        (BUCKETS[1], maker.small),
        (BUCKETS[2], maker.medium),
        (BUCKETS[3], maker.broad),
    ]
    queries: list[BenchQuery] = []
    for i in range(count):
        intent, make = templates[i % len(templates)]
        name, query = make()
        queries.append(BenchQuery(f"q{i:03d}-{name}", intent, query))
    return queries
