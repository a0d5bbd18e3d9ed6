"""A lead firm's workflow through a Python client generated from the gateway's OpenAPI document.

The client is generated the way docs/api.md tells integrators to (openapi-python-client with
``scripts/openapi-python-client.json``), must generate without a warning, and is then used
as is: models in, models out, and error answers parsed as ``Problem`` objects.
"""

from __future__ import annotations

import codecs
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.matching.helpers import Market, request_body
from tests.support import Stack

CLIENT_CONFIG = Path(__file__).parents[2] / "scripts" / "openapi-python-client.json"
PACKAGE = "linkages_client"


def generate_client(document: dict[str, Any], folder: Path) -> None:
    """Write the client's package under ``folder``; fail on any warning of the generator."""
    spec = folder / "openapi.json"
    spec.write_text(json.dumps(document))
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--config",
            str(CLIENT_CONFIG),
            "--output-path",
            str(folder / PACKAGE),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "Warning" not in output and "Unable to" not in output, output


class GeneratedClient:
    """The generated package's modules, by the names the document gives them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __getattr__(self, name: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.{name}")

    def operation(self, tag: str, operation_id: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")


@pytest.fixture
def client_folder(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path`` on ``sys.path`` while the test runs, and the generated package forgotten after."""
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for module in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[module]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the database is beside the point here
async def test_a_lead_firm_works_through_the_generated_client(whole_platform: Stack, client_folder: Path) -> None:
    generate_client((await whole_platform.client.get("/openapi.json")).json(), client_folder)
    generated = GeneratedClient(client_folder)
    models = generated.models
    market = await Market(whole_platform).setup()  # an agency, its cluster, four suppliers, two lead firms
    client = generated.client.AuthenticatedClient(
        base_url="http://gateway",
        token=market.lead_a["Authorization"].removeprefix("Bearer "),
        httpx_args={"transport": httpx.ASGITransport(app=whole_platform.gateway)},
    )

    def call(tag: str, operation_id: str) -> Any:
        return generated.operation(tag, operation_id).asyncio_detailed

    async with client:
        # Saved standards, then a new version through a typed change and If-Match.
        created = await call("buyer_standards", "create_buyer_standards")(
            client=client,
            body=models.StandardsCreate(
                name="Knitwear, Tamil Nadu",
                constraints=models.HardConstraints(isic_codes=["143"], required_certifications=["iso-9001"]),
            ),
        )
        assert created.status_code == 201, created.content
        standards = created.parsed
        assert isinstance(standards, models.StandardsPublic) and standards.version == 1
        change = models.StandardsUpdate(
            constraints=models.HardConstraintsChange(required_certifications=["iso-9001", "oeko-tex-100"])
        )
        updated = await call("buyer_standards", "update_buyer_standards")(
            standards.id, client=client, body=change, if_match=created.headers["ETag"]
        )
        assert updated.status_code == 200, updated.content
        assert updated.parsed.version == 2
        assert updated.parsed.standards.constraints.isic_codes == ["143"]  # kept: only the certifications changed
        stale = await call("buyer_standards", "update_buyer_standards")(
            standards.id, client=client, body=change, if_match=created.headers["ETag"]
        )
        assert isinstance(stale.parsed, models.Problem) and stale.parsed.status == 412, stale.content

        # A shortlist from the saved standards, read back.
        shortlisted = await call("shortlists", "create_shortlist")(
            client=client, body=models.ShortlistRequest(standards_id=standards.id, include_development=True)
        )
        assert shortlisted.status_code == 201, shortlisted.content
        shortlist = shortlisted.parsed
        assert (shortlist.eligible_count, shortlist.development_count) == (3, 1)
        candidate = shortlist.development[0]
        assert candidate.supplier_id == market.suppliers["devi"] and candidate.gap.scheme == "oeko-tex-100"
        read = await call("shortlists", "read_shortlist")(shortlist.id, client=client)
        assert read.status_code == 200 and [i.supplier_id for i in read.parsed.items] == [
            i.supplier_id for i in shortlist.items
        ]

        # A linkage with the development candidate, its gap typed, moved to its next stage.
        linked = await call("linkages", "create_linkage")(
            client=client,
            body=models.LinkageCreate(shortlist_id=shortlist.id, supplier_id=candidate.supplier_id),
        )
        assert linked.status_code == 201, linked.content
        linkage = linked.parsed
        assert isinstance(linkage.gap, models.GapPublic) and linkage.gap.kind == "certification"
        again = await call("linkages", "create_linkage")(
            client=client,
            body=models.LinkageCreate(shortlist_id=shortlist.id, supplier_id=candidate.supplier_id),
        )
        assert isinstance(again.parsed, models.Problem) and again.parsed.status == 409, again.content
        moved = await call("linkages", "update_linkage")(
            linkage.id,
            client=client,
            body=models.LinkageUpdate(stage=models.Stage.CONTACTED),
            if_match=linked.headers["ETag"],
        )
        assert moved.status_code == 200, moved.content
        assert moved.parsed.stage == models.Stage.CONTACTED

        # A request for quotation to the top supplier.
        invite = {"shortlist_id": shortlist.id, "supplier_ids": [shortlist.items[0].supplier_id]}
        requested = await call("requests", "create_request")(
            client=client, body=models.RequestCreate.from_dict(request_body(invite))
        )
        assert requested.status_code == 201, requested.content
        assert requested.parsed.status == models.RequestStatus.DRAFT
        assert [i.supplier_id for i in requested.parsed.invitations] == invite["supplier_ids"]

        # Errors are Problem objects with their fields, not None.
        missing = await call("linkages", "read_linkage")("lnk_missing", client=client)
        assert isinstance(missing.parsed, models.Problem) and missing.parsed.status == 404, missing.content
        invalid = await call("shortlists", "create_shortlist")(
            client=client, body=models.ShortlistRequest(constraints=models.HardConstraints(countries=["XX"]))
        )
        assert isinstance(invalid.parsed, models.Problem) and invalid.parsed.status == 422, invalid.content
        assert [error.field for error in invalid.parsed.errors] == ["constraints.countries.0"]

        # A file download is bytes.
        template = await call("imports", "download_import_template_csv")(client=client)
        assert template.status_code == 200
        assert template.parsed.payload.read().startswith(codecs.BOM_UTF8 + b"name,")  # UTF-8 for Excel
