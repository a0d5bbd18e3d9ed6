"""An import survives ``kill -9`` of the registry during its rows phase and of the duplicate check
that follows the rows on the change feed, run in a process of its own.

The registry runs as a real process (``python -m services.registry serve``) on a
fresh database, with the duplicate check off; the check runs as
``python -m services.registry duplicates``. Each is killed with SIGKILL in the middle of
its phase and started again. The job must resume and finish with every row imported once: as many firms
as rows accepted, one ``created`` entry each on the change feed, in sequence order,
every new firm checked for duplicates once (the check's cursor moves in the
transaction of what it found) and no pair queued twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.platform_processes import wait_ready
from tests.registry.helpers import firm_row, to_csv
from tests.support import ADMIN, SERVICE, TEST_SECRET, agency_headers, free_port

ROWS = 3000


class Registry:
    """A registry process (``command``: ``serve``, or ``duplicates``: the check alone), which a test
    can kill and start again."""

    def __init__(self, database_url: str, data_dir: Path, command: str = "serve") -> None:
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / f"registry-{command}.log"
        self.env = os.environ | {
            "DATA_DIR": str(data_dir),
            "PRINCIPAL_SECRET": TEST_SECRET,
            "REGISTRY_DATABASE_URL": database_url,
            "REGISTRY_PORT": str(self.port),
            "REGISTRY_IMPORT_BATCH_ROWS": "100",  # many transactions, so a kill lands between and inside them
            "REGISTRY_DUPLICATES_BATCH_CHANGES": "50",  # many pages, so a kill lands inside the check
            "REGISTRY_IMPORT_PARALLEL_MIN_BYTES": "0",  # the validating worker process too
            "REGISTRY_MATCHING_URL": f"http://127.0.0.1:{free_port()}",
            "LOG_JSON": "true",
            "REGISTRY_DUPLICATES_CHECK": "false",  # in the API's process: it runs in its own
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.registry", self.command], env=self.env, stdout=log, stderr=log
            )
        wait_ready(f"{self.url}/readyz")

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid]

    def children(self) -> list[int]:
        """The process's children: its validating workers and multiprocessing's helpers."""
        assert self.process is not None
        pid = self.process.pid
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def kill(self) -> None:
        """SIGKILL the registry; its validating worker processes must not outlive it."""
        assert self.process is not None
        children = self.children()
        self.process.send_signal(signal.SIGKILL)
        _signal(children, signal.SIGCONT)  # stopped by a test, they could not notice
        self.process.wait(10)
        self.process = None
        deadline = time.monotonic() + 15
        while alive := [pid for pid in children if Path(f"/proc/{pid}").exists() and not _zombie(pid)]:
            assert time.monotonic() < deadline, f"worker processes {alive} outlived the registry"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True  # gone between the two reads


@pytest.fixture
def registry_processes(registry_url: str, tmp_path: Path) -> Iterator[tuple[Registry, Registry]]:
    """The registry's API, started, and its duplicate check, not started yet."""
    registry, check = Registry(registry_url, tmp_path), Registry(registry_url, tmp_path, "duplicates")
    registry.start()
    try:
        yield registry, check
    finally:
        check.stop()
        registry.stop()


def _rows() -> list[dict[str, Any]]:
    """ROWS firms, every tenth a copy of the one before it under another name form and no id."""
    rows = []
    for i in range(ROWS):
        if i % 10 == 9:
            rows.append(
                firm_row(
                    i - 1,
                    name=f"CONFECCIONES IMBABURA {i - 1} COMPAÑÍA LIMITADA",
                    national_id="",
                    national_id_scheme="",
                )
            )
        else:
            rows.append(firm_row(i))
    return rows


def _job(client: httpx.Client, job_id: str, agency: str) -> dict[str, Any]:
    response = client.get(f"/v1/imports/{job_id}", headers=agency_headers(agency))
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait(
    client: httpx.Client, job_id: str, agency: str, until: Callable[[dict[str, Any]], bool], *, ended_ok: bool = False
) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while True:
        job = _job(client, job_id, agency)
        if until(job):
            return job
        assert ended_ok or job["progress"]["duplicate_check"] != "done", f"the job ended before the kill: {job}"
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def _step_until(
    working: Callable[[], list[int]],
    client: httpx.Client,
    job_id: str,
    agency: str,
    until: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """Let the ``working`` processes run 20 ms at a time, stopped (SIGSTOP) while the job is read,
    until ``until`` holds: they are left stopped there, however fast they work and however slow the
    reads are, so a kill that follows lands inside the phase."""
    deadline = time.monotonic() + 300
    while True:
        pids = working()
        _signal(pids, signal.SIGCONT)
        time.sleep(0.02)
        _signal(pids, signal.SIGSTOP)
        job = _job(client, job_id, agency)
        if until(job):
            return job
        assert job["progress"]["duplicate_check"] != "done", f"the job ended before the kill: {job}"
        assert time.monotonic() < deadline, job


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _all(client: httpx.Client, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get(path, params=params | ({"cursor": cursor} if cursor else {}), headers=ADMIN).json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


def test_an_import_killed_in_each_phase_resumes_and_writes_every_row_once(
    registry_processes: tuple[Registry, Registry],
) -> None:
    registry, check = registry_processes
    with httpx.Client(base_url=registry.url, timeout=30) as client:
        created = client.post("/v1/agencies", json={"name": "Agency", "country": "EC"}, headers=ADMIN)
        assert created.status_code == 201, created.text
        agency = created.json()["id"]
        uploaded = client.post(
            "/v1/imports", content=to_csv(_rows()), headers=agency_headers(agency) | {"Content-Type": "text/csv"}
        )
        assert uploaded.status_code == 202, uploaded.text
        job_id = uploaded.json()["id"]

        # kill -9 in the rows phase: some batches committed, not all. The duplicate check does not
        # run yet, so the rows are in before any firm is checked: the import waits for none. The
        # validating workers run in slices, so the registry can write only the few batches queued.
        seen = _step_until(registry.children, client, job_id, agency, lambda job: job["progress"]["rows_read"] >= 500)
        registry.kill()
        assert seen["progress"]["rows_read"] < ROWS, "the kill came after the rows phase"
        registry.start()
        job = _wait(client, job_id, agency, lambda job: job["status"] == "completed")
        assert job["progress"]["rows_checked"] == 0 and job["progress"]["duplicate_check"] == "pending", job
        assert job["progress"]["duplicates_pending"] == job["progress"]["rows_accepted"], job
        # kill -9 in the duplicate check, in its own process: some pages checked, not all. The check
        # runs in short slices and is stopped while the job is read, so it cannot finish unseen.
        check.start()
        seen = _step_until(check.pids, client, job_id, agency, lambda job: job["progress"]["rows_checked"] >= 100)
        check.kill()
        assert seen["progress"]["duplicates_pending"] > 0, "the kill came after the check"
        check.start()
        job = _wait(client, job_id, agency, lambda job: job["progress"]["duplicate_check"] == "done", ended_ok=True)
        # The check's process serves its health and lag, not the API.
        with httpx.Client(base_url=check.url, timeout=30) as check_client:
            assert check_client.get("/v1/firms", headers=ADMIN).status_code == 404
            metrics = check_client.get("/metrics").text
        assert 'registry_duplicate_check_lag_changes{partition="duplicates"} 0.0' in metrics

        assert job["status"] == "completed", job
        assert registry.log.read_text().count("import_resumed") == 1  # the start after the kill took the job up
        progress = job["progress"]
        assert progress["rows_read"] == ROWS and progress["rows_rejected"] == 0
        assert progress["rows_accepted"] + progress["rows_skipped"] == ROWS
        firms = _all(client, "/v1/firms", {"agency_id": agency, "limit": "200"})
        assert len(firms) == progress["rows_accepted"], progress
        assert progress["rows_checked"] == progress["rows_accepted"], progress
        assert len({(f["name"], f["locality"]) for f in firms}) == len(firms)  # no row written twice
        changes = []
        after = 0
        while True:
            page = client.get("/v1/changes", params={"after": after, "limit": 1000}, headers=SERVICE).json()
            changes += page["items"]
            after = page["next_after"]
            if not page["has_more"]:
                break
        seqs = [c["seq"] for c in changes]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        created_firms = [c["entity_id"] for c in changes if c["entity"] == "firm" and c["op"] == "created"]
        assert sorted(created_firms) == sorted(f["id"] for f in firms)  # one feed entry each, none lost
        pairs = _all(client, "/v1/duplicates", {"import_id": job_id, "limit": "200"})
        assert len({(p["firm_a"], p["firm_b"]) for p in pairs}) == len(pairs) == progress["duplicates_suspected"]
        assert len(pairs) >= ROWS // 10 * 0.9  # the copies were found
