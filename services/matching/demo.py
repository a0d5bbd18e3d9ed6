"""Demo linkages: requests for quotation, answers, awards and delivery scorecards.

``python -m services.matching demo`` writes, on top of the registry's demo (the
clusters and firms ``python -m services.registry demo`` loads), what a few lead firms
and their suppliers do with the platform: buyer standards, shortlists, requests
inviting several suppliers (a development candidate among them), bids and no-bids
(one answered by the agency on behalf of a micro firm), a clarification thread,
closes, awards (one to a development candidate), a request left open, one cancelled,
one still a draft, and delivery scorecards of the awarded linkages, one appealed and
decided. A fresh dashboard then shows a linkage funnel and delivery figures.

Unlike the registry's demo it drives the public API through the gateway, with keys
it issues as an admin (a lead firm's for each buyer, a supplier's for each supplier
that answers for itself, an agency's for answers on behalf and the appeal's
decision), so every write follows the rules, tenancy and feeds a user's would.

What the demo is about (clusters, titles, quantities, prices, scorecards) is data,
in ``demo_data/requests.json`` beside this module; whom it invites is read from the
registry and the shortlists. Prices and lead times come from a seeded generator, so
the same registry data give the same requests. Dates are relative to today: the
requests run from now, the scorecards record deliveries of the past months.

Loading again skips each scenario whose request (by its title) exists already, so
a second run adds nothing, and a run after a failure adds the scenarios that had
not created their request (the check is a ``GET /v1/requests`` with the admin key);
it does nothing when the registry holds none of the demo's clusters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.common.http import create_http_client
from services.common.settings import ServiceSettings

DEMO_SEED = 1966  # as the registry's demo
SCENARIOS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "demo_data" / "requests.json").read_text(encoding="utf-8")
)["scenarios"]
DEMO_TITLES = frozenset(s["title"] for s in SCENARIOS)
INVITED_BIDDERS = 3  # the top suppliers invited: bidder, second (bids), third (declines)
# Where the buyer got with shortlisted suppliers it did not invite (outside the request),
# so that the linkage funnel shows every stage: a path of stages and the days since each.
PURSUED = (
    (("proposed", 20),),
    (("proposed", 30), ("contacted", 21)),
    (("proposed", 45), ("contacted", 35), ("qualified", 14)),
    (("proposed", 40), ("contacted", 30), ("dropped", 10)),
)
MIN_HOLDERS = 3  # a scheme is required only when this many of the cluster's suppliers hold it
READY_CHECKS = ("registry", "matching")  # the gateway's upstreams the demo writes through
COUNTED = (  # what the report counts, in this order
    "API keys",
    "buyer standards",
    "shortlists",
    "requests",
    "invitations",
    "bids",
    "no-bids",
    "answers on behalf",
    "messages",
    "awards",
    "linkages pursued",
    "scorecards",
    "appeals decided",
)


class DemoLoadError(RuntimeError):
    """A demo write was refused, or the platform did not become ready."""


@dataclass
class DemoReport:
    loaded: bool
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    reason: str = ""

    def summary(self) -> str:
        if not self.loaded:
            return f"Demo linkages not loaded: {self.reason}."
        listed = ", ".join(f"{name}: {self.counts[name]}" for name in COUNTED if self.counts[name])
        return f"Loaded demo linkages in {self.seconds:.1f} s: {listed}."


class Gateway:
    """The gateway's API as the demo uses it: every answer checked, keys by owner."""

    def __init__(self, client: httpx.AsyncClient, admin_key: str) -> None:
        self.client = client
        self.admin = _bearer(admin_key)
        self._keys: dict[tuple[str, str], asyncio.Future[dict[str, str]]] = {}
        self.counts: Counter[str] = Counter()

    async def call(
        self, method: str, path: str, headers: dict[str, str], *, expect: int = 200, **kwargs: Any
    ) -> dict[str, Any]:
        response = await self.client.request(method, path, headers=headers, **kwargs)
        if response.status_code != expect:
            raise DemoLoadError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return dict(response.json())

    async def create(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        return await self.call("POST", path, headers, expect=201, json=body)

    async def listed(self, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
        """Every item of a list, all pages."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            paging = {"limit": 200} | ({"cursor": cursor} if cursor else {})
            page = await self.call("GET", path, headers, params=params | paging)
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    async def key(self, role: str, owner_id: str, name: str) -> dict[str, str]:
        """The Authorization header of a key of ``role`` for a firm or an agency, issued once
        (scenarios running side by side share it)."""
        if (role, owner_id) not in self._keys:
            self._keys[role, owner_id] = asyncio.ensure_future(self._issue(role, owner_id, name))
        return await self._keys[role, owner_id]

    async def _issue(self, role: str, owner_id: str, name: str) -> dict[str, str]:
        owner = "agency_id" if role == "agency" else "firm_id"
        body = {"name": f"Demo: {name}"[:200], "role": role, owner: owner_id}
        issued = await self.create("/v1/api-keys", body, self.admin)
        self.counts["API keys"] += 1
        return _bearer(issued["key"])


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _if_match(headers: dict[str, str], record: dict[str, Any]) -> dict[str, str]:
    return headers | {"If-Match": f'"{record["version"]}"'}


async def wait_until_ready(client: httpx.AsyncClient, *, timeout: float) -> None:
    """Until the gateway answers and the registry and matching (its catalogue loaded) are ready."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            response = await client.get("/readyz")
            checks = response.json().get("checks", {})
            if all(checks.get(name) == "ok" for name in READY_CHECKS):
                return
            last = f"{response.status_code}: {checks}"
        except (httpx.TransportError, ValueError) as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise DemoLoadError(f"The platform was not ready within {timeout:g} s ({last})")
        await asyncio.sleep(0.5)


@dataclass
class Invited:
    """The suppliers a scenario invites, by part: bidder, second, third, development."""

    firms: dict[str, dict[str, Any]]  # part -> the registry's firm
    on_behalf: str | None  # the part the supplier's agency answers for (a micro firm)

    @property
    def ids(self) -> list[str]:
        return [firm["id"] for firm in self.firms.values()]


class Scenario:
    """One request of ``demo_data/requests.json``, from the shortlist to the scorecards."""

    def __init__(
        self,
        api: Gateway,
        spec: dict[str, Any],
        cluster: dict[str, Any],
        buyer: dict[str, Any],
        *,
        seed: int,
        now: datetime,
    ) -> None:
        self.api = api
        self.spec = spec
        self.cluster = cluster
        self.buyer = buyer
        self.rng = random.Random(f"{seed}/{spec['title']}")  # the same draws whatever runs alongside
        self.now = now
        self.today = now.date()

    def days_ago(self, days: int) -> str:
        return (self.today - timedelta(days=days)).isoformat()

    async def standards(self) -> dict[str, Any]:
        """The shortlist's constraints and criteria: the first required scheme enough suppliers hold."""
        spec = self.spec["standards"]
        required: list[str] = []
        for scheme in spec.get("required", []):
            params = {"cluster_id": self.cluster["id"], "role": "supplier", "certification": scheme}
            holders = await self.api.call("GET", "/v1/firms", self.api.admin, params=params | {"limit": MIN_HOLDERS})
            if len(holders["items"]) >= MIN_HOLDERS:
                required = [scheme]
                break
        constraints = {
            "isic_codes": spec["isic"],
            "cluster_ids": [self.cluster["id"]],
            "required_certifications": required,
            "exclude_supplier_ids": [self.buyer["id"]],
        }
        criteria = {"description": spec["description"], "preferred_certifications": spec.get("preferred", [])}
        return {"constraints": constraints, "criteria": criteria}

    async def invited(self, shortlist: dict[str, Any]) -> Invited:
        """The top suppliers and a development candidate (a micro firm when one is listed)."""
        micro = {
            f["id"]
            for f in await self.api.listed(
                "/v1/firms", self.api.admin, cluster_id=self.cluster["id"], role="supplier", size_class="micro"
            )
        }
        parts = dict(zip(("bidder", "second", "third"), shortlist["items"][:INVITED_BIDDERS], strict=False))
        development = shortlist.get("development") or []
        if development:
            parts["development"] = next((i for i in development if i["supplier_id"] in micro), development[0])
        read = [self.api.call("GET", f"/v1/firms/{item['supplier_id']}", self.api.admin) for item in parts.values()]
        firms = dict(zip(parts, await asyncio.gather(*read), strict=True))
        on_behalf = None
        if self.spec.get("on_behalf"):  # by the agency: a micro firm's answer, else the development candidate's
            micro_parts = [p for p in ("development", "third", "second") if firms.get(p, {}).get("id") in micro]
            on_behalf = next(iter(micro_parts), "development" if "development" in firms else None)
        return Invited(firms, on_behalf)

    def request_body(self, invite: dict[str, Any]) -> dict[str, Any]:
        spec = self.spec
        return {
            "title": spec["title"],
            "description": spec["description"],
            "quantity": spec["quantity"],
            "unit": spec["unit"],
            "delivery": {"subdivision": self.cluster["subdivision"], "place": spec["place"]},
            "needed_by": (self.today + timedelta(days=spec["needed_in_days"])).isoformat(),
            "respond_by": (self.now + timedelta(days=spec["respond_in_days"])).isoformat(),
            "target_price": spec["target_price"],
            "currency": spec["currency"],
            "invite": invite,
        }

    def bid(self, share: float) -> dict[str, Any]:
        spec = self.spec
        return {
            "kind": "bid",
            "unit_price": round(spec["target_price"] * self.rng.uniform(0.9, 1.06), 2),
            "currency": spec["currency"],
            "lead_time_days": self.rng.randint(spec["needed_in_days"] // 3, spec["needed_in_days"] - 5),
            "capacity_offered": round(spec["quantity"] * share, 2),
        }

    async def answer(self, request: dict[str, Any], invited: Invited, part: str, body: dict[str, Any]) -> None:
        firm = invited.firms[part]
        if part == invited.on_behalf:
            headers = await self.api.key("agency", firm["agency_id"], f"agency of {firm['name']}")
            body = body | {"supplier_id": firm["id"]}
            self.api.counts["answers on behalf"] += 1
        else:
            headers = await self.api.key("supplier", firm["id"], firm["name"])
        await self.api.create(f"/v1/requests/{request['id']}/answers", body, headers)
        self.api.counts["bids" if body["kind"] == "bid" else "no-bids"] += 1

    async def run(self) -> None:
        api, spec = self.api, self.spec
        lead = await api.key("lead_firm", self.buyer["id"], self.buyer["name"])
        standards = await self.standards()
        outcome = spec["outcome"]
        if outcome == "draft":  # the top of a fresh shortlist, still being written
            invite = {"shortlist": standards, "top": spec["top"]}
            await api.create("/v1/requests", self.request_body(invite), lead)
            api.counts["requests"] += 1
            return
        source: dict[str, Any] = standards
        if spec.get("save_standards"):
            saved = await api.create("/v1/buyer-standards", {"name": spec["standards"]["name"], **standards}, lead)
            api.counts["buyer standards"] += 1
            source = {"standards_id": saved["id"]}
        shortlist_body = {**source, "limit": 10, "include_development": True, "development_limit": 20}
        shortlist = await api.create("/v1/shortlists", shortlist_body, lead)
        api.counts["shortlists"] += 1
        invited = await self.invited(shortlist)
        if not invited.firms:
            raise DemoLoadError("no supplier meets its standards")
        invite = {"shortlist_id": shortlist["id"], "supplier_ids": invited.ids}
        request = await api.create("/v1/requests", self.request_body(invite), lead)
        api.counts["requests"] += 1
        api.counts["invitations"] += len(invited.ids)
        request = await api.call("POST", f"/v1/requests/{request['id']}/open", _if_match(lead, request))
        await self.pursue(shortlist, lead)

        awards: dict[str, float] = spec.get("awards", {})
        answering = ("bidder", "third") if outcome in ("open", "cancelled") else tuple(invited.firms)
        for part in (p for p in invited.firms if p in answering):
            no_bid = {"kind": "no_bid", "no_bid_reason": spec.get("no_bid_reason", "not_interested")}
            await self.answer(request, invited, part, no_bid if part == "third" else self.bid(awards.get(part, 0.5)))
        if "question" in spec and "bidder" in invited.firms:
            await self.clarify(request, invited.firms["bidder"], lead)
        if outcome == "open":
            return
        request = await api.call("GET", f"/v1/requests/{request['id']}", lead)  # its version after the answers
        if outcome == "cancelled":
            cancel = {"reason": spec["cancel_reason"]}
            await api.call("POST", f"/v1/requests/{request['id']}/cancel", _if_match(lead, request), json=cancel)
            return
        request = await api.call("POST", f"/v1/requests/{request['id']}/close", _if_match(lead, request))
        if outcome == "closed":
            return
        awarded = {part: share for part, share in awards.items() if part in invited.firms}
        if not awarded:  # too few suppliers met the standards to award as the scenario says
            return
        body = {
            "awards": [
                {"supplier_id": invited.firms[part]["id"], "quantity": round(spec["quantity"] * share, 2)}
                for part, share in awarded.items()
            ],
            "note": "Awarded on price, lead time and the shortlist's ranking",
        }
        await api.call("POST", f"/v1/requests/{request['id']}/awards", _if_match(lead, request), json=body)
        api.counts["awards"] += len(awarded)
        for part, share in awarded.items():
            await self.deliveries(shortlist, invited.firms[part], part, share, lead)

    async def pursue(self, shortlist: dict[str, Any], lead: dict[str, str]) -> None:
        """Linkages with the shortlisted suppliers after those invited, one per path of ``PURSUED``."""
        others = shortlist["items"][INVITED_BIDDERS:]
        for item, stages in zip(others, PURSUED, strict=False):
            (_proposed, days), *later = stages
            body = {"shortlist_id": shortlist["id"], "supplier_id": item["supplier_id"], "on": self.days_ago(days)}
            linkage = await self.api.create("/v1/linkages", body, lead)
            for stage, days in later:
                move = {"stage": stage, "on": self.days_ago(days)}
                if stage == "dropped":
                    move["note"] = "Could not meet the sampling deadline"
                linkage = await self.api.call(
                    "PATCH", f"/v1/linkages/{linkage['id']}", _if_match(lead, linkage), json=move
                )
            self.api.counts["linkages pursued"] += 1

    async def clarify(self, request: dict[str, Any], firm: dict[str, Any], lead: dict[str, str]) -> None:
        path = f"/v1/requests/{request['id']}/messages"
        await self.api.create(path, {"supplier_id": firm["id"], "body": self.spec["question"]}, lead)
        supplier = await self.api.key("supplier", firm["id"], firm["name"])
        await self.api.create(path, {"body": self.spec["reply"]}, supplier)
        self.api.counts["messages"] += 2

    async def deliveries(
        self, shortlist: dict[str, Any], firm: dict[str, Any], part: str, share: float, lead: dict[str, str]
    ) -> None:
        """The awarded linkage's development action, stage, scorecards and appeal."""
        api, spec = self.api, self.spec
        [linkage] = await api.listed("/v1/linkages", lead, shortlist_id=shortlist["id"], supplier_id=firm["id"])
        path = f"/v1/linkages/{linkage['id']}"
        if part == "development" and "development_action" in spec:
            action = {
                "action": spec["development_action"],
                "scheme": (linkage.get("gap") or {}).get("scheme"),
                "due_on": (self.today + timedelta(days=120)).isoformat(),
            }
            linkage = await api.call("PATCH", path, _if_match(lead, linkage), json={"development_actions": [action]})
        if part == "bidder" and spec.get("active"):
            stage = {"stage": "active", "note": "First lot delivered"}
            linkage = await api.call("PATCH", path, _if_match(lead, linkage), json=stage)
        recorded = []
        for card in spec.get("scorecards", {}).get(part, []):
            body = self.scorecard(card, spec["quantity"] * share)
            recorded.append(await api.create(f"{path}/scorecards", body, lead))
            api.counts["scorecards"] += 1
        appeal = spec.get("appeal")
        if part == "bidder" and appeal is not None:
            scorecard = f"/v1/scorecards/{recorded[appeal['scorecard']]['id']}"
            supplier = await api.key("supplier", firm["id"], firm["name"])
            await api.call("POST", f"{scorecard}/appeal", supplier, json={"reason": appeal["reason"]})
            agency = await api.key("agency", firm["agency_id"], f"agency of {firm['name']}")
            decision = {"outcome": appeal["outcome"], "note": appeal["note"]}
            await api.call("POST", f"{scorecard}/decision", agency, json=decision)
            api.counts["appeals decided"] += 1

    def scorecard(self, card: dict[str, Any], awarded: float) -> dict[str, Any]:
        if card["kind"] == "period":
            return {
                "kind": "period",
                "period_start": self.days_ago(card["from_days_ago"]),
                "period_end": self.days_ago(card["to_days_ago"]),
                "quality": card["quality"],
                "on_time": card["on_time"],
            }
        quantity = max(1, round(awarded * card["share"]))
        return {
            "kind": "delivery",
            "quantity": quantity,
            "accepted_quantity": round(quantity * card["accepted"]),
            "due_on": self.days_ago(card["due_days_ago"]),
            "delivered_on": self.days_ago(card["days_ago"]),
        }


async def demo_titles_present(api: Gateway) -> set[str]:
    """The demo's requests that exist: their scenarios ran (or began to) and are skipped."""
    return {r["title"] for r in await api.listed("/v1/requests", api.admin)} & DEMO_TITLES


async def load_demo(
    client: httpx.AsyncClient,
    admin_key: str,
    *,
    seed: int = DEMO_SEED,
    now: datetime | None = None,
    ready_timeout: float = 120.0,
    progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Write the demo's requests, answers, awards and scorecards through the gateway at
    ``client``'s base URL; nothing if they exist already or the registry demo is absent."""
    await wait_until_ready(client, timeout=ready_timeout)
    started = time.perf_counter()
    api = Gateway(client, admin_key)
    present = await demo_titles_present(api)
    if present == DEMO_TITLES:
        return DemoReport(loaded=False, reason="they exist already")
    clusters = {c["name"]: c for c in await api.listed("/v1/clusters", api.admin)}
    planned = [s for s in SCENARIOS if s["cluster"] in clusters and s["title"] not in present]
    if not planned:
        reason = "they exist already" if present else "the registry holds none of the demo's clusters"
        return DemoReport(loaded=False, reason=reason)
    if progress is not None:
        progress(f"Loading {len(planned)} demo requests for quotation...")
    now = now or datetime.now(UTC)
    leads: dict[str, list[dict[str, Any]]] = {}
    for cluster_id in dict.fromkeys(clusters[s["cluster"]]["id"] for s in planned):
        found = await api.listed("/v1/firms", api.admin, cluster_id=cluster_id, role="lead_firm")
        leads[cluster_id] = sorted(found, key=lambda f: (f["name"], f["id"]))
    scenarios = []
    for spec in planned:
        cluster = clusters[spec["cluster"]]
        buyers = leads[cluster["id"]]
        if buyers:
            scenarios.append(Scenario(api, spec, cluster, buyers[spec["buyer"] % len(buyers)], seed=seed, now=now))
    # The scenarios run side by side (each waits on the gateway most of the time); each
    # goes as far as it can when another fails.
    outcomes = await asyncio.gather(*(s.run() for s in scenarios), return_exceptions=True)
    failed = [(s, e) for s, e in zip(scenarios, outcomes, strict=True) if isinstance(e, BaseException)]
    if failed:
        scenario, error = failed[0]
        raise DemoLoadError(
            f"{len(failed)} of {len(scenarios)} demo requests failed; the first, {scenario.spec['title']!r}: {error}"
        ) from error
    return DemoReport(loaded=True, counts=api.counts, seconds=time.perf_counter() - started)


def demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway",
        default=f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8000')}",
        help="the gateway's base URL (default http://127.0.0.1:$GATEWAY_PORT, port 8000)",
    )
    parser.add_argument(
        "--key-file", type=Path, help="a file holding an admin API key (default: $GATEWAY_BOOTSTRAP_API_KEY)"
    )
    parser.add_argument(
        "--wait", type=float, default=300.0, help="seconds to wait for the platform to be ready (default 300)"
    )


async def load_demo_command(settings: ServiceSettings, args: argparse.Namespace) -> None:
    """``python -m services.matching demo``: load the demo linkages through a running gateway."""
    if args.key_file is not None:
        key = args.key_file.read_text(encoding="utf-8").strip()
    else:
        key = os.environ.get("GATEWAY_BOOTSTRAP_API_KEY", "")
    if not key:
        raise DemoLoadError("Give an admin API key: --key-file FILE, or GATEWAY_BOOTSTRAP_API_KEY")
    async with create_http_client(base_url=args.gateway, read_timeout=30.0) as client:
        report = await load_demo(client, key, ready_timeout=args.wait, progress=lambda line: print(line, flush=True))
    print(report.summary(), flush=True)
