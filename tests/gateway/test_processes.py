"""The gateway and the registry as real uvicorn processes, one of them killed mid-test."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.platform_processes import wait_ready
from tests.support import assert_problem, free_port

KEY = "lk_process_test_key_0123456789abcdefghijklmnopqrstuv"


class Processes:
    def __init__(self, data_dir: Path) -> None:
        self.registry_port, self.gateway_port, self.matching_port = free_port(), free_port(), free_port()
        self.env = os.environ | {
            "DATA_DIR": str(data_dir),
            "PRINCIPAL_SECRET": "process-test-secret-0123456789abcdef",
            "LOG_JSON": "true",
            "REGISTRY_PORT": str(self.registry_port),
            "GATEWAY_PORT": str(self.gateway_port),
            "GATEWAY_REGISTRY_URL": f"http://127.0.0.1:{self.registry_port}",
            "GATEWAY_MATCHING_URL": f"http://127.0.0.1:{self.matching_port}",
            "MATCHING_PORT": str(self.matching_port),
            "MATCHING_REGISTRY_URL": f"http://127.0.0.1:{self.registry_port}",
            "REGISTRY_MATCHING_URL": f"http://127.0.0.1:{self.matching_port}",
            "GATEWAY_REPORTING_URL": f"http://127.0.0.1:{free_port()}",
            "GATEWAY_EVENTS_URL": f"http://127.0.0.1:{free_port()}",
            "GATEWAY_BOOTSTRAP_API_KEY": KEY,
            "GATEWAY_REQUIRED_UPSTREAMS": "registry",  # the one service every test here runs
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "1000000",  # a burst of shortlists is not a rate-limit test
            "GATEWAY_RATE_LIMIT_BURST": "100000",
            "GATEWAY_BREAKER_RESET_SECONDS": "1",
            "GATEWAY_UPSTREAM_CONNECT_TIMEOUT": "0.5",
            "GATEWAY_UPSTREAM_READ_TIMEOUT": "3",
        }
        self.logs = data_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, module: str) -> None:
        with open(self.logs / f"{module}.log", "ab") as log:  # the child keeps its own descriptor
            self.running[module] = subprocess.Popen(
                [sys.executable, "-m", module, "serve"], env=self.env, stdout=log, stderr=log
            )

    def kill(self, module: str) -> None:
        process = self.running.pop(module)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for module in list(self.running):
            process = self.running.pop(module)
            process.terminate()  # graceful: uvicorn finishes in-flight requests
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    try:
        running.start("services.registry")
        running.start("gateway")
        wait_ready(f"http://127.0.0.1:{running.registry_port}/readyz")
        wait_ready(f"http://127.0.0.1:{running.gateway_port}/readyz")
        yield running
    finally:
        running.stop_all()


def test_a_proxied_answer_has_one_date_and_one_server_header(processes: Processes) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{processes.gateway_port}", headers=headers, timeout=10) as client:
        for response in (client.get("/v1/firms"), client.get("/v1/firms/frm_unknown"), client.get("/v1/api-keys")):
            names = [name.lower() for name, _ in response.headers.multi_items()]
            assert names.count("date") == 1 and names.count("server") == 1, response.headers
            duplicated = {name for name in names if names.count(name) > 1} - {"set-cookie", "vary"}
            assert not duplicated, response.headers


def test_the_stack_survives_an_upstream_killed_mid_test(processes: Processes) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{processes.gateway_port}", headers=headers, timeout=10) as client:
        agency = client.post("/v1/agencies", json={"name": "Ministerio", "country": "EC"})
        assert agency.status_code == 201, agency.text
        direct = httpx.get(f"http://127.0.0.1:{processes.registry_port}/v1/agencies")
        assert direct.status_code == 401, "the registry refuses requests that bypass the gateway"

        processes.kill("services.registry")
        down = client.get("/v1/agencies")
        # 503 (cannot be reached), not 504: the refused connection ended it, no read timeout was waited out.
        assert_problem(down, 503)
        assert client.get("/readyz").json()["checks"]["registry"] != "ok"

        processes.start("services.registry")
        wait_ready(f"http://127.0.0.1:{processes.registry_port}/readyz")
        deadline = time.monotonic() + 60  # the breaker closes after 1 s; 60 only bounds a hang on a loaded machine
        while (response := client.get("/v1/agencies")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert response.status_code == 200
        assert [a["name"] for a in response.json()["items"]] == ["Ministerio"], "nothing was lost"


async def _shortlists_until_killed(processes: Processes, clients: int) -> tuple[list[str], int]:
    """``clients`` concurrent lead firms asking for shortlists while matching is killed
    with SIGKILL: the ids of the shortlists answered 201, and the requests that failed."""
    answered: list[str] = []
    failed = 0
    stop = asyncio.Event()
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {"constraints": {"countries": ["EC"]}, "criteria": {"description": "knitted garments"}}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{processes.gateway_port}", headers=headers, timeout=30
    ) as client:

        async def lead_firm() -> None:
            nonlocal failed
            while not stop.is_set():
                response = await client.post("/v1/shortlists", json=body)
                if response.status_code == 201:
                    answered.append(response.json()["id"])
                else:
                    failed += 1
                    await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(lead_firm()) for _ in range(clients)]
        while len(answered) < 100:  # well into the stream of concurrent writes
            await asyncio.sleep(0.01)
        processes.kill("services.matching")
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
    return answered, failed


def test_every_shortlist_answered_survives_a_kill_9_of_matching(processes: Processes) -> None:
    # Shortlists without an Idempotency-Key are committed in batches (group commit): each
    # answer waits for its batch's commit, so none answered is lost when the process dies.
    processes.start("services.matching")
    wait_ready(f"http://127.0.0.1:{processes.matching_port}/readyz")
    answered, failed = asyncio.run(_shortlists_until_killed(processes, clients=16))
    assert failed > 0, "the kill was not in the middle of the requests"
    processes.start("services.matching")
    wait_ready(f"http://127.0.0.1:{processes.matching_port}/readyz")
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{processes.gateway_port}", headers=headers, timeout=10) as client:
        deadline = time.monotonic() + 60  # the breaker closes after 1 s
        while client.get("/v1/shortlists", params={"limit": 1}).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        missing = [i for i in answered if client.get(f"/v1/shortlists/{i}").status_code != 200]
        stored: set[str] = set()
        cursor = None
        while True:
            listed = client.get("/v1/shortlists", params={"limit": 100} | ({"cursor": cursor} if cursor else {}))
            assert listed.status_code == 200, listed.text
            page = listed.json()
            stored |= {s["id"] for s in page["items"]}
            if not (cursor := page["next_cursor"]):
                break
    assert not missing, f"{len(missing)} of {len(answered)} shortlists answered 201 are gone"
    assert set(answered) <= stored and len(answered) >= 100
