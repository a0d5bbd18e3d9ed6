"""Lifespan parts every service can use (``services/common/app.py``)."""

from __future__ import annotations

import gc

from services.common.app import frozen_heap


def test_the_heap_is_frozen_for_the_lifespan_and_given_back_after() -> None:
    with frozen_heap():
        assert gc.get_freeze_count() > 0  # left out of the collector's full passes
    assert gc.get_freeze_count() == 0  # collectable again: tests build many apps in one process
