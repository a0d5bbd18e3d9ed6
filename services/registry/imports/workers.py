"""Where an import's rows are parsed and validated: a worker thread, or worker processes.

Validation with the create schema (``FirmCreate``…) is CPU work in Python: in the registry's event loop
thread it would hold the GIL the database writes also need. Small files are
prepared in a thread, one batch ahead of the writes. Large files (from
``REGISTRY_IMPORT_PARALLEL_MIN_BYTES`` on) get ``REGISTRY_IMPORT_WORKERS``
processes: worker ``k`` of ``n`` reads the file and prepares batches ``k``,
``k + n``, ... into a queue of two, and the writer takes them back in file order,
so the checkpoint stays "the first N rows" and memory stays a few batches
whatever the size of the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import queue as queues
import threading
from itertools import islice
from pathlib import Path
from typing import Any

from services.registry.imports.files import ImportFile, Mapping_
from services.registry.imports.kinds import DEFAULT_KIND, KINDS
from services.registry.imports.prepare import PreparedBatch, prepare


class ThreadBatches:
    """Batches prepared in a worker thread, one ahead of the writer."""

    def __init__(
        self,
        source: ImportFile,
        mapping: Mapping_,
        agency_id: str,
        *,
        skip: int,
        size: int,
        staged: bool,
        workers: int = 0,
        kind: str = DEFAULT_KIND,
    ) -> None:
        rows = source.rows(skip=skip)
        self.rows = rows
        self.prepare = lambda: prepare(rows, size, mapping, agency_id, kind, staged=staged)
        self.upcoming: asyncio.Task[PreparedBatch] = asyncio.create_task(asyncio.to_thread(self.prepare))

    async def next(self) -> PreparedBatch:
        batch = await self.upcoming
        if batch:  # the next batch is parsed and validated while this one is written
            self.upcoming = asyncio.create_task(asyncio.to_thread(self.prepare))
        return batch

    async def close(self) -> None:
        # A thread cannot be cancelled: let it finish its batch before the file is closed.
        with contextlib.suppress(BaseException):
            await self.upcoming
        self.rows.close()  # type: ignore[attr-defined]


class WorkerFailed(Exception):
    pass


def _put(out: Any, item: Any, parent: int) -> None:
    """Hand ``item`` to the writer, or exit once the writer's process is gone (killed with
    SIGKILL, it never stops its workers: an orphan would wait on the full queue forever)."""
    while True:
        try:
            out.put(item, timeout=1.0)
            return
        except queues.Full:
            if os.getppid() != parent:
                out.cancel_join_thread()  # nobody reads the pipe: exiting must not wait to flush it
                os._exit(0)


def _work(
    path: str,
    fmt: str,
    options: dict[str, Any],
    by_input: dict[str, str | None],
    agency_id: str,
    skip: int,
    size: int,
    staged: bool,
    stripe: int,
    stripes: int,
    out: Any,
    parent: int,
    kind: str = DEFAULT_KIND,
) -> None:
    """In a worker process: prepare every ``stripes``-th batch, from batch ``stripe`` on."""
    # What the process has loaded by now (modules, schemas) lives as long as it does: kept out
    # of the cyclic collector, whose full passes over it cost about a sixth of the worker's
    # CPU. The batches' own objects are collected as before.
    gc.freeze()
    try:
        rows = ImportFile(Path(path), fmt, **options).rows(skip=skip)
        mapping = Mapping_(by_input, KINDS[kind].columns)
        index = 0
        while True:
            if index % stripes == stripe:
                batch = prepare(rows, size, mapping, agency_id, kind, staged=staged)
                _put(out, batch, parent)  # waits while the writer is two batches behind: memory stays bounded
                if not batch:
                    return
            elif sum(1 for _ in islice(rows, size)) == 0:
                return
            index += 1
    except BaseException as exc:  # reported to the writer, which fails the job
        out.put(WorkerFailed(f"{type(exc).__name__}: {exc}"))


class ProcessBatches:
    """Batches prepared by worker processes, taken back in file order."""

    def __init__(
        self,
        source: ImportFile,
        mapping: Mapping_,
        agency_id: str,
        *,
        skip: int,
        size: int,
        staged: bool,
        workers: int,
        kind: str = DEFAULT_KIND,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process with an event loop and connections
        self.stop = threading.Event()
        self.queues = [context.Queue(maxsize=2) for _ in range(workers)]
        options = {"encoding": source.encoding, "delimiter": source.delimiter, "sheet": source.sheet}
        self.processes = [
            context.Process(
                target=_work,
                args=(
                    str(source.path),
                    source.format,
                    options,
                    mapping.by_input,
                    agency_id,
                    skip,
                    size,
                    staged,
                    k,
                    workers,
                    q,
                    os.getpid(),
                    kind,
                ),
                daemon=True,
                name=f"import-worker-{k}",
            )
            for k, q in enumerate(self.queues)
        ]
        for process in self.processes:
            process.start()
        self.index = 0
        self.done = False

    def _get(self, q: Any) -> Any:
        while not self.stop.is_set():
            try:
                return q.get(timeout=0.5)
            except queues.Empty:
                if not any(p.is_alive() for p in self.processes) and q.empty():
                    return WorkerFailed("the import worker processes stopped")
        return PreparedBatch()

    async def next(self) -> PreparedBatch:
        if self.done:
            return PreparedBatch()
        batch = await asyncio.to_thread(self._get, self.queues[self.index % len(self.queues)])
        self.index += 1
        if isinstance(batch, WorkerFailed):
            raise batch
        if not batch:
            self.done = True
        assert isinstance(batch, PreparedBatch)
        return batch

    async def close(self) -> None:
        self.stop.set()
        for process in self.processes:
            if process.is_alive():
                process.kill()
        for process in self.processes:
            await asyncio.to_thread(process.join, 5)
        for q in self.queues:
            q.cancel_join_thread()
            q.close()
