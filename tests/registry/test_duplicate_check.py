"""The duplicate check as a consumer of the registry's change feed, behind the writes.

Writes and imports commit without it; the review queue, the jobs' duplicate counts and
the lag metric follow once it has read the feed. A page that fails half-way is checked
again whole (nothing lost, nothing recorded twice), and replicas that split the
blocking keys between them find the pairs one check finds.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, Table, insert, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.migrations import upgrade
from services.registry.app import MIGRATIONS, create_app
from services.registry.duplicates import consumer as consumer_module
from services.registry.duplicates import service as service_module
from services.registry.settings import RegistrySettings
from tests.registry.helpers import (
    checked_job,
    create,
    duplicates_checked,
    finished,
    firm_body,
    firm_row,
    make_agency,
    to_csv,
    upload,
)
from tests.support import ADMIN, SERVICE, Backend, agency_headers, registry_settings_for, running


def _rows(count: int) -> list[dict[str, Any]]:
    """``count`` firms; every seventh a copy, under another name form and without its id, of the
    firm 40 rows before it (so the two are read in different pages of the feed)."""
    rows = []
    for i in range(count):
        if i % 7 == 6 and i >= 40:
            original = i - 40
            name = f"CONFECCIONES IMBABURA {original} COMPAÑÍA LIMITADA"
            rows.append(firm_row(original, name=name, national_id="", national_id_scheme=""))
        else:
            rows.append(firm_row(i))
    return rows


async def _pairs(registry: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = params | {"limit": "200"} | ({"cursor": cursor} if cursor else {})
        page = (await registry.get("/v1/duplicates", params=query, headers=ADMIN)).json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


async def _named_pairs(registry: httpx.AsyncClient, agency: str) -> set[tuple[str, str]]:
    """The queued pairs by the firms' names and localities (ids differ between databases)."""
    firms: dict[str, str] = {}
    cursor = None
    while True:
        params = {"agency_id": agency, "limit": "200"} | ({"cursor": cursor} if cursor else {})
        page = (await registry.get("/v1/firms", params=params, headers=ADMIN)).json()
        firms |= {f["id"]: f"{f['name']} / {f['street']}" for f in page["items"]}
        if not (cursor := page["next_cursor"]):
            break
    pairs = {tuple(sorted((firms[p["firm_a"]], firms[p["firm_b"]]))) for p in await _pairs(registry)}
    return {(a, b) for a, b in pairs}


def _lag(metrics: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith('registry_duplicate_check_lag_changes{partition="'))
    return float(line.rsplit(" ", 1)[1])


async def test_writes_commit_without_the_check_and_the_queue_fills_behind_them(
    registry_settings: RegistrySettings,
) -> None:
    copy = firm_row(0, name="Confecciones Imbabura 0 Compañía Limitada", national_id="", national_id_scheme="")
    rows = [firm_row(i) for i in range(3)] + [copy]
    async with running(create_app(registry_settings.model_copy(update={"duplicates_check": False}))) as registry:
        agency = await make_agency(registry)
        first = await create(registry, "/v1/firms", firm_body(name="Tejidos Otavalo S.A."), agency)
        twin = await create(registry, "/v1/firms", firm_body(name="Tejidos Otavalo Sociedad Anonima"), agency)
        response = await upload(registry, to_csv(rows), agency)
        job = await finished(registry, response.json()["id"], agency)
        # Every write committed, and nothing looked for duplicates yet.
        assert job["status"] == "completed" and job["progress"]["rows_accepted"] == 4, job
        progress = job["progress"]
        assert progress["duplicate_check"] == "pending" and progress["duplicates_pending"] == 4, job
        assert progress["rows_checked"] == progress["duplicates_suspected"] == 0, job
        assert await _pairs(registry) == []
        status = (await registry.get("/v1/duplicates/check", headers=agency_headers(agency))).json()
        assert status["lag"] == 7 and status["partitions"][0]["partition"] == "duplicates"  # agency, 6 firms
        assert _lag((await registry.get("/metrics")).text) == status["lag"]
    async with running(create_app(registry_settings)) as registry:
        await duplicates_checked(registry)
        pairs = {(p["firm_a"], p["firm_b"], p["source"]) for p in await _pairs(registry)}
        job = await checked_job(registry, job["id"], agency)
        assert job["progress"] | {"duplicate_check": "done", "duplicates_pending": 0} == job["progress"]
        assert job["progress"]["rows_checked"] == 4 and job["progress"]["duplicates_suspected"] == 1, job
        assert (min(first["id"], twin["id"]), max(first["id"], twin["id"]), "create") in pairs
        assert sum(source == f"import:{job['id']}" for _, _, source in pairs) == 1
        assert _lag((await registry.get("/metrics")).text) == 0


async def test_a_page_that_fails_half_way_is_checked_again_whole(
    registry_settings: RegistrySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_detect = service_module.detect
    failures = 0

    async def fail_once_after_detecting(*args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        found = await real_detect(*args, **kwargs)  # keys, profiles and pairs written, then the crash
        if found.candidates and failures == 0:
            failures += 1
            raise RuntimeError("the check died before storing its cursor")
        return found

    monkeypatch.setattr(consumer_module, "detect", fail_once_after_detecting)
    settings = registry_settings.model_copy(update={"duplicates_batch_changes": 20})
    async with running(create_app(settings)) as registry:
        agency = await make_agency(registry)
        response = await upload(registry, to_csv(_rows(120)), agency)
        job = await checked_job(registry, response.json()["id"], agency)
    assert failures == 1
    progress = job["progress"]
    assert progress["rows_accepted"] == progress["rows_checked"] == 120, job
    async with running(create_app(settings)) as registry:
        pairs = await _pairs(registry, import_id=job["id"])
    assert len({(p["firm_a"], p["firm_b"]) for p in pairs}) == len(pairs) == progress["duplicates_suspected"]
    assert len(pairs) >= 10  # the copies 40 rows behind their originals were found


async def test_a_job_shown_checked_shows_its_final_counts(registry_settings: RegistrySettings) -> None:
    """A job read while the check commits its pages is never ``done`` with the counts of the
    page before (PostgreSQL reads each statement at its own moment: the cursor is read first)."""
    async with running(create_app(registry_settings.model_copy(update={"duplicates_check": False}))) as registry:
        agency = await make_agency(registry)
        jobs = []
        for start in range(0, 60, 3):  # 20 jobs of 3 rows: one page of the check each
            response = await upload(registry, to_csv([firm_row(i) for i in range(start, start + 3)]), agency)
            jobs.append((await finished(registry, response.json()["id"], agency))["id"])
    reads = 0
    one_job_a_page = registry_settings.model_copy(update={"duplicates_batch_changes": 3})
    async with running(create_app(one_job_a_page)) as registry:
        while True:
            page = (await registry.get("/v1/imports", params={"limit": "50"}, headers=agency_headers(agency))).json()
            reads += 1
            progress = [job["progress"] for job in page["items"]]
            for shown in progress:
                assert shown["duplicate_check"] == "pending" or shown["rows_checked"] == 3, shown
            if all(shown["duplicate_check"] == "done" for shown in progress):
                break
    assert len(progress) == len(jobs) and reads > len(jobs) // 2  # read while the check went


async def test_replicas_splitting_the_keys_find_the_pairs_one_check_finds(
    backend: Backend, registry_settings: RegistrySettings, tmp_path: Path
) -> None:
    rows = _rows(200)
    one = registry_settings.model_copy(update={"duplicates_batch_changes": 9})
    async with running(create_app(one)) as registry:
        agency = await make_agency(registry)
        response = await upload(registry, to_csv(rows), agency)
        await checked_job(registry, response.json()["id"], agency)
        expected = await _named_pairs(registry, agency)
    assert len(expected) >= 15

    split = registry_settings_for(await backend.fresh(MIGRATIONS), tmp_path / "split")
    replicas = [
        split.model_copy(update={"duplicates_batch_changes": 9, "duplicates_partitions": 2, "duplicates_partition": i})
        for i in range(2)
    ]
    async with running(create_app(replicas[0])) as first, running(create_app(replicas[1])) as second:
        agency = await make_agency(first)
        response = await upload(first, to_csv(rows), agency)
        job = await finished(first, response.json()["id"], agency)
        status = await duplicates_checked(second)
        assert [p["partition"] for p in status["partitions"]] == ["duplicates:0/2", "duplicates:1/2"]
        job = (await second.get(f"/v1/imports/{job['id']}", headers=agency_headers(agency))).json()
        found = await _named_pairs(first, agency)
        pairs = await _pairs(first)
    assert found == expected
    assert len({(p["firm_a"], p["firm_b"]) for p in pairs}) == len(pairs)  # each pair queued once
    progress = job["progress"]
    assert progress["duplicate_check"] == "done" and progress["rows_checked"] == progress["rows_accepted"], job
    assert progress["duplicates_suspected"] == len(pairs), job


async def test_two_processes_checking_one_partition_check_each_change_once(registry_settings: RegistrySettings) -> None:
    """The check scaled to two processes on one partition, or a rolling update's old and new pod:
    each page is checked by one of them (the cursor's row is locked while a page is checked)."""
    settings = registry_settings.model_copy(update={"duplicates_batch_changes": 7})
    apps = [create_app(settings), create_app(settings)]
    async with running(apps[0]) as first, running(apps[1]) as second:
        agency = await make_agency(first)
        response = await upload(first, to_csv(_rows(150)), agency)
        job = await checked_job(second, response.json()["id"], agency)
        pairs = await _pairs(first, import_id=job["id"])
        head = (await first.get("/v1/changes", params={"after": 0, "limit": 1000}, headers=SERVICE)).json()
        followers = [app.state.duplicate_check for app in apps]
        deadline = asyncio.get_running_loop().time() + 30
        while any(follower.cursor < head["next_after"] for follower in followers):
            assert asyncio.get_running_loop().time() < deadline, [(f.cursor, f.last_error) for f in followers]
            await asyncio.sleep(0.02)  # the one that checked less reaches the head behind the other
    # Neither failed on the other's work (keys filed twice, a pair recorded twice): each page was
    # checked once, by whichever of the two locked the cursor first.
    assert [follower.last_error for follower in followers] == [None, None]
    progress = job["progress"]
    assert progress["rows_accepted"] == progress["rows_checked"] == 150, job
    assert len({(p["firm_a"], p["firm_b"]) for p in pairs}) == len(pairs) == progress["duplicates_suspected"]
    assert len(pairs) >= 10


def test_a_partition_must_exist() -> None:
    with pytest.raises(ValueError, match="DUPLICATES_PARTITION must be below"):
        RegistrySettings(duplicates_partitions=2, duplicates_partition=2)


async def test_a_merge_undone_before_the_check_reads_it_keeps_its_pair(registry_settings: RegistrySettings) -> None:
    async with running(create_app(registry_settings)) as registry:
        agency = await make_agency(registry)
        await create(registry, "/v1/firms", firm_body(name="Tejidos Otavalo S.A."), agency)
        await create(registry, "/v1/firms", firm_body(name="Tejidos Otavalo Sociedad Anonima"), agency)
        await duplicates_checked(registry)
        (pair,) = await _pairs(registry)
    # The check is behind: the merged firm's deletion reaches it after the undo brought the firm back.
    async with running(create_app(registry_settings.model_copy(update={"duplicates_check": False}))) as registry:
        headers = agency_headers(agency)
        merge = (await registry.post(f"/v1/duplicates/{pair['id']}/merge", headers=headers)).json()
        undone = await registry.post(f"/v1/duplicates/merges/{merge['id']}/undo", headers=headers)
        assert undone.status_code == 200, undone.text
    one_change_a_page = registry_settings.model_copy(update={"duplicates_batch_changes": 1})
    async with running(create_app(one_change_a_page)) as registry:
        await duplicates_checked(registry)
        assert [(p["id"], p["status"]) for p in await _pairs(registry)] == [(pair["id"], "open")]


async def test_upgrading_waits_for_import_jobs_the_old_check_has_not_finished(backend: Backend) -> None:
    """Before revision 0011 a job checked its own rows after writing them; the new check starts
    at the feed's head, so an unfinished job's rows would go unchecked: the upgrade refuses."""
    url = await backend.empty()
    await upgrade(MIGRATIONS, url, "0010")
    engine = create_async_engine(url)
    now = datetime.now(UTC)
    counts = dict.fromkeys(
        ["rows_read", "rows_accepted", "rows_rejected", "rows_skipped", "duplicates_suspected"]
        + ["duplicates_merged", "checkpoint", "rows_checked", "size_bytes"],
        0,
    )
    job: dict[str, Any] = {"id": "imp_old", "agency_id": "agn_1", "principal": {}, "status": "running", "format": "csv"}
    job |= {"file_path": "x.csv", "file_sha256": "0" * 64, "options": {}, "columns": []}
    job |= counts | {"created_at": now, "updated_at": now}
    try:
        async with engine.begin() as connection:
            jobs = await connection.run_sync(lambda c: Table("import_jobs", MetaData(), autoload_with=c))
            await connection.execute(insert(jobs).values(job))
        with pytest.raises(RuntimeError, match="imp_old"):
            await upgrade(MIGRATIONS, url)
        async with engine.begin() as connection:
            await connection.execute(update(jobs).values(status="completed"))
        await upgrade(MIGRATIONS, url)  # nothing left unchecked: it goes through
        async with engine.connect() as connection:
            feeds = (await connection.execute(text("SELECT feed FROM feed_cursors"))).scalars().all()
        assert "duplicates" in feeds
    finally:
        await engine.dispose()
