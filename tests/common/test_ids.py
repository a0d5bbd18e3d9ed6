"""Record ids: a prefix and a ULID in Crockford base32, sorting by creation time."""

from __future__ import annotations

import random
import time

from services.common.ids import _CROCKFORD, _ulid, new_id, new_ids


def _digits(value: int, length: int) -> str:
    """Crockford base32, most significant digit first: the plain definition ``_ulid`` must equal."""
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def test_the_encoder_writes_the_time_then_the_randomness_in_crockford_digits() -> None:
    rng = random.Random(7)
    cases = [(0, 0), ((1 << 48) - 1, (1 << 80) - 1), (1, 1)]
    cases += [(rng.getrandbits(48), rng.getrandbits(80)) for _ in range(20000)]
    for millis, randomness in cases:
        assert _ulid(millis, randomness) == _digits(millis, 10) + _digits(randomness, 16)


def test_ids_carry_their_prefix_and_sort_by_creation_time() -> None:
    first = new_id("frm")
    time.sleep(0.002)
    second = new_id("frm")
    assert first.startswith("frm_") and len(first) == 30
    assert set(first[4:]) <= set(_CROCKFORD)
    assert first < second


def test_ids_drawn_a_batch_at_a_time_are_ulids_of_the_moment_and_distinct() -> None:
    before = new_id("frm")
    time.sleep(0.002)
    batch = new_ids("frm", 5000)
    time.sleep(0.002)
    after = new_id("frm")
    assert len(set(batch)) == len(batch) == 5000
    assert all(i.startswith("frm_") and len(i) == 30 and set(i[4:]) <= set(_CROCKFORD) for i in batch)
    assert all(before < i < after for i in batch)  # the time digits of when they were drawn
    # Each random digit is drawn uniformly: every one of the 32 occurs in every position.
    assert all(len({i[14 + position] for i in batch}) == 32 for position in range(16))
