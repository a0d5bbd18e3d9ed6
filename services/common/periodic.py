"""A sweep run every few seconds in the background, that a failure does not end."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

logger = structlog.get_logger(__name__)


class PeriodicSweep:
    """Runs ``sweep()`` now and then every ``interval_seconds`` until stopped; logs what it did.

    Subclasses set ``name`` (the task's name and the prefix of its log events) and
    implement ``sweep``, which returns how many records it settled or published.
    """

    name = "sweep"
    interval_seconds: float
    _task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            try:
                done = await self.sweep()
                if done:
                    logger.info(f"{self.name}_swept", records=done)
            except Exception as exc:  # a database hiccup must not end the sweeping
                logger.warning(f"{self.name}_sweep_failed", error=repr(exc))
            await asyncio.sleep(self.interval_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
