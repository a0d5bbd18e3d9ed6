"""Hooks: one domain announces, the handlers the app connected run, in order, once each."""

from __future__ import annotations

import pytest

from services.common.hooks import Hook


async def test_handlers_run_in_connection_order_with_the_callers_arguments() -> None:
    written: Hook[[str, int]] = Hook("written")
    seen: list[tuple[str, str, int]] = []

    async def first(op: str, count: int) -> None:
        seen.append(("first", op, count))

    async def second(op: str, count: int) -> None:
        seen.append(("second", op, count))

    await written.call("created", 0)  # nobody listens yet: nothing happens
    written.connect(first)
    written.connect(second)
    written.connect(first)  # a second app in the same process wires the same handler again
    await written.call("created", 3)
    assert seen == [("first", "created", 3), ("second", "created", 3)]


async def test_a_failing_handler_fails_the_call() -> None:
    written: Hook[[str]] = Hook("written")

    async def broken(op: str) -> None:
        raise RuntimeError(f"cannot handle {op}")

    written.connect(broken)
    with pytest.raises(RuntimeError, match="cannot handle deleted"):
        await written.call("deleted")
