"""An integrator's workflow: generate a client from the merged OpenAPI and use it."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import BOOTSTRAP_KEY, Stack


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the database is beside the point here
async def test_a_client_generated_from_the_openapi_document_works(stack: Stack, tmp_path: Path) -> None:
    document = (await stack.client.get("/openapi.json")).json()
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"project_name_override": "linkages-client", "package_name_override": "linkages_client", "post_hooks": []}
        )
    )
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--config",
            str(config),
            "--output-path",
            str(tmp_path / "linkages_client"),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Unable to" not in generated.stdout, generated.stdout  # every operation was generated

    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module("linkages_client")
        create_agency = importlib.import_module("linkages_client.api.agencies.create_agency")
        list_clusters = importlib.import_module("linkages_client.api.clusters.list_clusters")
        models = importlib.import_module("linkages_client.models")
    finally:
        sys.path.remove(str(tmp_path))

    transport = httpx.ASGITransport(app=stack.gateway)
    client = client_module.AuthenticatedClient(
        base_url="http://gateway", token=BOOTSTRAP_KEY, httpx_args={"transport": transport}
    )
    async with client:
        agency = await create_agency.asyncio(
            client=client, body=models.AgencyCreate(name="Portal agency", country="IN")
        )
        assert agency.id.startswith("agy_")
        page = await list_clusters.asyncio_detailed(client=client)
        assert page.status_code == 200
        assert page.parsed.items == []
