"""A known programme dataset, built through the gateway like clients build it.

Inclusion: F2 is attested women-owned and women-led, F4 women-led and youth-led, F8
youth-led (its other claims not recorded), F7 none of them (recorded); the other firms
record no claim.

Two agencies: A (India: programme P1 with clusters C1 Tiruppur and C2 Ludhiana,
ended pilot P2 with cluster C3 Agra) and B (Ecuador: programme P3 with cluster C4
Atuntaqui, and C5 without a programme). Firms, institutions, brokers, networks and
activities with dated events in 2025; three shortlists issued by two lead firms;
five linkages moved through their stages on given days; certificates obtained
after a gap was named. ``expected.py`` states every indicator this gives.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.types import ASGIApp

from services.common.principal import Role
from tests.registry.helpers import cluster_body, firm_body
from tests.support import BOOTSTRAP_KEY, Stack, principal_headers

ADMIN = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
VALID = {"valid_from": "2020-01-01", "valid_until": "2099-12-31"}
ISO = {"scheme": "iso-9001", **VALID}
OEKO = {"scheme": "oeko-tex-100", **VALID}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass
class Dataset:
    stack: Stack
    ids: dict[str, str] = field(default_factory=dict)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.stack.client

    def __getitem__(self, name: str) -> str:
        return self.ids[name]

    async def post(self, path: str, body: dict[str, Any], key: str, name: str | None = None) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=self.keys[key])
        assert response.status_code == 201, f"{path}: {response.status_code} {response.text}"
        data = dict(response.json())
        if name is not None:
            self.ids[name] = data["id"]
        return data

    async def patch(self, path: str, body: dict[str, Any], key: str, version: int) -> dict[str, Any]:
        response = await self.client.patch(path, json=body, headers=self.keys[key] | {"If-Match": f'"{version}"'})
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return dict(response.json())

    # --- building ---------------------------------------------------------------------------

    async def build(self) -> Dataset:
        self.keys["admin"] = ADMIN
        for name, country in (("A", "IN"), ("B", "EC")):
            agency = await self.client.post(
                "/v1/agencies", json={"name": f"Agency {name}", "country": country}, headers=ADMIN
            )
            assert agency.status_code == 201, agency.text
            self.ids[name] = agency.json()["id"]
            self.keys[name] = bearer(await self.stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=self[name]))
        self.keys["viewer"] = bearer(await self.stack.issue_key(BOOTSTRAP_KEY, role="viewer"))
        await self._registry()
        await self._wait_for_catalogue()
        await self._matching()
        await self._after_matching()
        return self

    async def _registry(self) -> None:
        post = self.post
        await post(
            "/v1/programmes",
            {"name": "Tamil Nadu and Punjab knitwear", "country": "IN", "phase": "pilot", "start_date": "2025-01-01"},
            "A",
            "P1",
        )
        await post(
            "/v1/programmes",
            {
                "name": "Agra footwear pilot",
                "country": "IN",
                "phase": "pilot",
                "start_date": "2023-01-01",
                "end_date": "2023-12-31",
            },
            "A",
            "P2",
        )
        await post(
            "/v1/programmes",
            {"name": "Ecuador clusters", "country": "EC", "phase": "upscaling", "start_date": "2025-03-01"},
            "B",
            "P3",
        )
        clusters: dict[str, tuple[str, dict[str, Any]]] = {
            "C1": (
                "A",
                dict(
                    name="Tiruppur knitwear",
                    country="IN",
                    subdivision="IN-TN",
                    latitude=11.108,
                    longitude=77.341,
                    sector_isic="1430",
                    jobs=4000,
                    programme_id=self["P1"],
                ),
            ),
            "C2": (
                "A",
                dict(
                    name="Ludhiana hosiery",
                    country="IN",
                    subdivision="IN-PB",
                    latitude=30.901,
                    longitude=75.857,
                    sector_isic="1391",
                    jobs=2000,
                    programme_id=self["P1"],
                ),
            ),
            "C3": (
                "A",
                dict(
                    name="Agra footwear",
                    country="IN",
                    subdivision="IN-UP",
                    latitude=27.176,
                    longitude=78.008,
                    sector_isic="1520",
                    jobs=1500,
                    programme_id=self["P2"],
                ),
            ),
            "C4": (
                "B",
                dict(
                    name="Atuntaqui garments",
                    country="EC",
                    subdivision="EC-I",
                    latitude=0.332,
                    longitude=-78.214,
                    sector_isic="1410",
                    jobs=3000,
                    programme_id=self["P3"],
                ),
            ),
            "C5": (
                "B",
                dict(
                    name="Cayambe dairy",
                    country="EC",
                    subdivision="EC-P",
                    latitude=0.041,
                    longitude=-78.146,
                    sector_isic="1050",
                    jobs=None,
                ),
            ),
        }
        for name, (agency, body) in clusters.items():
            await post("/v1/clusters", cluster_body(**body), agency, name)

        india = {"country": "IN", "hs_codes": ["6110"], "capacity_unit": "pieces"}
        firms: dict[str, tuple[str, dict[str, Any]]] = {
            "F1": (
                "A",
                dict(
                    india,
                    name="Big Apparel Exports",
                    roles=["lead_firm"],
                    size_class="large",
                    subdivision="IN-TN",
                    isic_codes=["1430"],
                    certifications=[],
                    employees=800,
                    monthly_capacity=None,
                    capacity_unit=None,
                    latitude=13.08,
                    longitude=80.27,
                ),
            ),
            "F2": (
                "A",
                dict(
                    india,
                    name="Sri Murugan Knits",
                    women_owned={"value": True, "attested_by": "agency", "attested_on": "2025-01-20"},
                    women_led={"value": True, "attested_by": "agency", "attested_on": "2025-01-20"},
                    youth_led={"value": False, "attested_by": "agency", "attested_on": "2025-01-20"},
                    women_employees=40,
                    size_class="small",
                    subdivision="IN-TN",
                    isic_codes=["1430"],
                    certifications=[ISO, OEKO],
                    monthly_capacity=20000,
                    employees=60,
                    cluster_ids=[self["C1"]],
                    latitude=11.11,
                    longitude=77.34,
                    capabilities="cotton knitted sweaters",
                ),
            ),
            "F3": (
                "A",
                dict(
                    india,
                    name="Kongu Knitwear",
                    size_class="small",
                    subdivision="IN-TN",
                    isic_codes=["1430"],
                    certifications=[ISO],
                    monthly_capacity=15000,
                    employees=45,
                    cluster_ids=[self["C1"]],
                    latitude=11.2,
                    longitude=77.3,
                ),
            ),
            "F4": (
                "A",
                dict(
                    india,
                    name="Little Loom Garments",
                    women_owned={"value": False, "attested_by": "broker", "attested_on": "2025-01-20"},
                    women_led={"value": True, "attested_by": "broker", "attested_on": "2025-01-20"},
                    youth_led={"value": True, "attested_by": "self", "attested_on": "2025-01-20"},
                    size_class="micro",
                    subdivision="IN-TN",
                    isic_codes=["1430"],
                    certifications=[ISO, OEKO],
                    monthly_capacity=9000,
                    employees=8,
                    cluster_ids=[self["C1"]],
                    latitude=11.0,
                    longitude=77.0,
                ),
            ),
            "F5": (
                "A",
                dict(
                    india,
                    name="Ludhiana Hosiery Works",
                    size_class="medium",
                    subdivision="IN-PB",
                    isic_codes=["1430"],
                    certifications=[ISO, OEKO],
                    monthly_capacity=12000,
                    employees=150,
                    cluster_ids=[self["C2"]],
                    latitude=30.9,
                    longitude=75.85,
                ),
            ),
            "F6": (
                "A",
                dict(
                    india,
                    name="Agra Shoe Company",
                    size_class="small",
                    subdivision="IN-UP",
                    isic_codes=["1520"],
                    hs_codes=["6403"],
                    certifications=[ISO],
                    monthly_capacity=3000,
                    employees=30,
                    cluster_ids=[self["C3"]],
                    latitude=27.18,
                    longitude=78.0,
                ),
            ),
            "F7": (
                "B",
                dict(
                    name="Textiles Andinos",
                    women_owned={"value": False, "attested_by": "agency", "attested_on": "2025-01-20"},
                    women_led={"value": False, "attested_by": "agency", "attested_on": "2025-01-20"},
                    youth_led={"value": False, "attested_by": "agency", "attested_on": "2025-01-20"},
                    women_employees=0,
                    size_class="small",
                    country="EC",
                    subdivision="EC-I",
                    isic_codes=["1410"],
                    certifications=[],
                    employees=25,
                    cluster_ids=[self["C4"]],
                ),
            ),
            "F8": (
                "B",
                dict(
                    name="Confecciones Imbabura",
                    youth_led={"value": True, "attested_by": "self", "attested_on": "2025-02-01"},
                    size_class="micro",
                    country="EC",
                    subdivision="EC-I",
                    isic_codes=["1410"],
                    certifications=[],
                    employees=6,
                    cluster_ids=[self["C4"]],
                    latitude=0.35,
                    longitude=-78.12,
                ),
            ),
            "F9": (
                "B",
                dict(
                    name="Lácteos Cayambe",
                    size_class="small",
                    country="EC",
                    subdivision="EC-P",
                    isic_codes=["1050"],
                    hs_codes=["0401"],
                    certifications=[{"scheme": "haccp", **VALID}],
                    monthly_capacity=50000,
                    capacity_unit="kg",
                    cluster_ids=[self["C5"]],
                    latitude=0.04,
                    longitude=-78.14,
                ),
            ),
            "F10": (
                "B",
                dict(
                    name="Supermercados Andinos",
                    roles=["lead_firm"],
                    size_class="large",
                    country="EC",
                    subdivision="EC-P",
                    isic_codes=["4711"],
                    hs_codes=[],
                    certifications=[],
                    monthly_capacity=None,
                    capacity_unit=None,
                    employees=3000,
                    latitude=-0.18,
                    longitude=-78.47,
                ),
            ),
        }
        for name, (agency, body) in firms.items():
            await post("/v1/firms", firm_body(**body), agency, name)
        # An update the read model must follow: F9 grew from small to medium.
        await self.patch(f"/v1/firms/{self['F9']}", {"size_class": "medium"}, "B", 1)

        institutions: dict[str, tuple[str, dict[str, Any]]] = {
            "I1": (
                "A",
                dict(
                    name="Tiruppur Knitwear Training Centre",
                    kind="training_provider",
                    country="IN",
                    subdivision="IN-TN",
                    cluster_ids=[self["C1"]],
                ),
            ),
            "I2": (
                "A",
                dict(
                    name="Punjab Textile University",
                    kind="university",
                    country="IN",
                    subdivision="IN-PB",
                    cluster_ids=[self["C1"], self["C2"]],
                ),
            ),
            "I3": ("A", dict(name="Craft NGO", kind="ngo", country="IN")),  # supports no cluster: not engaged
            "I4": (
                "B",
                dict(
                    name="Cámara de Comercio de Antonio Ante",
                    kind="business_association",
                    country="EC",
                    subdivision="EC-I",
                    cluster_ids=[self["C4"]],
                ),
            ),
            "I5": ("B", dict(name="Deleted later", kind="other", country="EC", cluster_ids=[self["C4"]])),
        }
        for name, (agency, body) in institutions.items():
            await post("/v1/institutions", body, agency, name)
        deleted = await self.client.delete(
            f"/v1/institutions/{self['I5']}", headers=self.keys["B"] | {"If-Match": '"1"'}
        )
        assert deleted.status_code == 204, deleted.text

        brokers: dict[str, tuple[str, dict[str, Any]]] = {
            "B1": (
                "A",
                dict(
                    name="Lakshmi Narayanan",
                    country="IN",
                    trained_on="2025-01-20",
                    certified_on="2025-04-15",
                    cluster_ids=[self["C1"]],
                ),
            ),
            "B2": ("A", dict(name="Harpreet Singh", country="IN", trained_on="2025-02-05", cluster_ids=[self["C2"]])),
            "B3": (
                "B",
                dict(
                    name="María Cevallos",
                    country="EC",
                    trained_on="2024-11-10",
                    certified_on="2025-03-01",
                    cluster_ids=[self["C4"]],
                ),
            ),
        }
        for name, (agency, body) in brokers.items():
            await post("/v1/brokers", body, agency, name)

        def members(role: str, *firms: str) -> list[dict[str, str]]:
            return [{"firm_id": self[f], "role": role} for f in firms]

        networks: dict[str, tuple[str, dict[str, Any]]] = {
            "N1": (
                "A",
                dict(
                    name="Tiruppur joint yarn purchase",
                    kind="horizontal",
                    cluster_id=self["C1"],
                    broker_id=self["B1"],
                    members=members("member", "F2", "F3", "F4"),
                    status="active",
                    formed_on="2025-02-10",
                    joint_actions=[{"kind": "joint_purchase", "started_on": "2025-03-05"}, {"kind": "joint_marketing"}],
                ),
            ),
            "N2": (
                "A",
                dict(
                    name="Ludhiana forming group",
                    kind="horizontal",
                    cluster_id=self["C2"],
                    members=members("member", "F5"),
                    status="forming",
                ),
            ),
            "N3": (
                "A",
                dict(
                    name="Big Apparel supplier programme",
                    kind="vertical",
                    cluster_id=self["C1"],
                    members=[*members("lead_firm", "F1"), *members("supplier", "F2", "F4")],
                    status="active",
                    formed_on="2025-04-01",
                    joint_actions=[{"kind": "supplier_upgrading", "started_on": "2025-04-20"}],
                ),
            ),
            "N4": (
                "B",
                dict(
                    name="Atuntaqui shared embroidery",
                    kind="horizontal",
                    cluster_id=self["C4"],
                    members=members("member", "F7", "F8"),
                    status="active",
                    formed_on="2025-03-15",
                    joint_actions=[{"kind": "shared_equipment", "started_on": "2025-06-01"}],
                ),
            ),
            "N5": (
                "B",
                dict(
                    name="Supermercados sourcing (ended)",
                    kind="vertical",
                    cluster_id=self["C4"],
                    members=[*members("lead_firm", "F10"), *members("supplier", "F7")],
                    status="dissolved",
                    formed_on="2024-06-01",
                ),
            ),
        }
        for name, (agency, body) in networks.items():
            await post("/v1/networks", body, agency, name)

        activities: dict[str, tuple[str, dict[str, Any]]] = {
            "A1": (
                "A",
                dict(
                    title="Knitting quality training",
                    kind="training",
                    start_date="2025-01-15",
                    programme_id=self["P1"],
                    cluster_id=self["C1"],
                    country="IN",
                    subdivision="IN-TN",
                    participants={"entrepreneurs": 20, "brokers": 2, "academics": 1},
                    women_participants=9,
                ),
            ),
            "A2": (
                "A",
                dict(
                    title="Punjab policy workshop",
                    kind="workshop",
                    start_date="2025-02-20",
                    programme_id=self["P1"],
                    country="IN",
                    subdivision="IN-PB",
                    participants={"entrepreneurs": 15, "policy_makers": 3},
                ),
            ),
            "A3": (
                "A",
                dict(
                    title="Agra awareness day",
                    kind="awareness_event",
                    start_date="2024-06-10",
                    programme_id=self["P2"],
                    cluster_id=self["C3"],
                    country="IN",
                    subdivision="IN-UP",
                    participants={"entrepreneurs": 40},
                    women_participants=12,
                ),
            ),
            "A4": (
                "B",
                dict(
                    title="Atuntaqui diffusion event",
                    kind="diffusion_event",
                    start_date="2025-04-02",
                    cluster_id=self["C4"],
                    country="EC",
                    subdivision="EC-I",
                    participants={"entrepreneurs": 30, "private_sector_leaders": 5, "other": 2},
                    women_participants=15,
                ),
            ),
        }
        for name, (agency, body) in activities.items():
            await post("/v1/activities", body, agency, name)

    async def _wait_for_catalogue(self) -> None:
        """Until matching has applied the whole registry feed (no test shortlists, which would count)."""
        target = await last_seq(self.stack.upstreams["registry"])
        deadline = time.monotonic() + 15
        async with in_process(self.stack.upstreams["matching"]) as matching:
            while True:
                stats = (await matching.get("/v1/catalogue", headers=principal_headers(Role.admin))).json()
                if stats.get("loaded") and int(str(stats["version"]).split(".")[1]) >= target:
                    return
                assert time.monotonic() < deadline, f"the matching catalogue did not catch up: {stats}"
                await asyncio.sleep(0.02)

    async def _matching(self) -> None:
        for firm in ("F1", "F10"):
            self.keys[firm] = bearer(await self.stack.issue_key(BOOTSTRAP_KEY, role="lead_firm", firm_id=self[firm]))
        s1 = await self.post(
            "/v1/shortlists",
            {
                "constraints": {
                    "isic_codes": ["143"],
                    "required_certifications": ["iso-9001", "oeko-tex-100"],
                    "min_monthly_capacity": 10000,
                    "capacity_unit": "pieces",
                    "subdivisions": ["IN-TN"],
                },
                "include_development": True,
            },
            "F1",
            "S1",
        )
        assert [i["supplier_id"] for i in s1["items"]] == [self["F2"]]
        assert {d["supplier_id"]: d["gap"]["kind"] for d in s1["development"]} == {
            self["F3"]: "certification",
            self["F4"]: "capacity",
        }
        s2 = await self.post(
            "/v1/shortlists",
            {"constraints": {"isic_codes": ["14"], "required_certifications": ["iso-9001"], "countries": ["IN"]}},
            "F1",
            "S2",
        )
        assert {i["supplier_id"] for i in s2["items"]} == {self[f] for f in ("F2", "F3", "F4", "F5")}
        s3 = await self.post(
            "/v1/shortlists",
            {
                "constraints": {"isic_codes": ["14"], "required_certifications": ["gots"], "countries": ["EC"]},
                "include_development": True,
            },
            "F10",
            "S3",
        )
        assert s3["items"] == []
        assert {(d["supplier_id"], d["gap"]["scheme"]) for d in s3["development"]} == {
            (self["F7"], "gots"),
            (self["F8"], "gots"),
        }

        async def linkage(
            name: str, shortlist: str, supplier: str, key: str, proposed: str, *moves: tuple[str, str]
        ) -> None:
            created = await self.post(
                "/v1/linkages",
                {"shortlist_id": self[shortlist], "supplier_id": self[supplier], "on": proposed},
                key,
                name,
            )
            for version, (stage, on) in enumerate(moves, start=created["version"]):
                await self.patch(f"/v1/linkages/{created['id']}", {"stage": stage, "on": on}, key, version)

        await linkage(
            "L1",
            "S1",
            "F2",
            "F1",
            "2025-03-01",
            ("contacted", "2025-03-10"),
            ("qualified", "2025-03-20"),
            ("contracted", "2025-04-09"),
            ("active", "2025-05-01"),
        )
        await linkage("L2", "S1", "F3", "F1", "2025-03-01", ("contacted", "2025-03-15"), ("dropped", "2025-04-01"))
        await linkage("L3", "S2", "F4", "F1", "2025-03-05", ("contracted", "2025-03-25"))
        await linkage("L4", "S2", "F5", "F1", "2025-05-10")
        await linkage("L5", "S3", "F7", "F10", "2025-04-01", ("contacted", "2025-04-03"), ("qualified", "2025-06-01"))

    async def _after_matching(self) -> None:
        # Gaps named today: F7 and F8 obtain GOTS afterwards (F8's certificate has no dates: the day the
        # registry recorded it counts); F3's OEKO-TEX certificate dates from before it was named.
        await self.patch(
            f"/v1/firms/{self['F7']}", {"certifications": [{"scheme": "gots", "valid_from": today()}]}, "B", 1
        )
        await self.patch(f"/v1/firms/{self['F8']}", {"certifications": [{"scheme": "gots"}]}, "B", 1)
        await self.patch(
            f"/v1/firms/{self['F3']}",
            {
                "certifications": [
                    ISO,
                    {"scheme": "oeko-tex-100", "valid_from": "2024-01-01", "valid_until": "2099-12-31"},
                ]
            },
            "A",
            1,
        )


def in_process(app: ASGIApp) -> httpx.AsyncClient:
    """A client of one service, directly (not through the gateway)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


async def last_seq(app: ASGIApp) -> int:
    """The newest sequence number of a service's change feed."""
    async with in_process(app) as client:
        after = 0
        while True:
            page = (
                await client.get(
                    "/v1/changes",
                    params={"after": after, "limit": 1000},
                    headers=principal_headers(Role.service, subject="test-feed"),
                )
            ).json()
            after = page["next_after"]
            if not page["has_more"]:
                return int(after)


async def caught_up(stack: Stack, reporting: ASGIApp | None = None, seconds: float = 15.0) -> None:
    """Until the reporting service has applied both feeds up to their newest change."""
    reporting = reporting or stack.upstreams["reporting"]
    targets = {
        "registry": await last_seq(stack.upstreams["registry"]),
        "matching": await last_seq(stack.upstreams["matching"]),
    }
    deadline = time.monotonic() + seconds
    while True:
        reached = await feed_positions(reporting)
        if all(reached[feed] >= seq for feed, seq in targets.items()):
            return
        assert time.monotonic() < deadline, f"reporting at {reached}, feeds at {targets}"
        await asyncio.sleep(0.02)


async def feed_positions(reporting: ASGIApp) -> dict[str, int]:
    """How far the reporting service has applied each feed, as its API states it."""
    async with in_process(reporting) as client:
        response = await client.get("/v1/indicators/freshness", headers=principal_headers(Role.admin))
        assert response.status_code == 200, response.text
        return {feed: int(state["position"]) for feed, state in response.json()["feeds"].items()}
