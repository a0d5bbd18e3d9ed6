"""Small helpers over roaring bitmaps of row numbers."""

from __future__ import annotations

import array
from collections.abc import Sequence

import numpy as np
from pyroaring import BitMap


def as_array(bitmap: BitMap) -> np.ndarray:
    """The rows of ``bitmap``, ascending, as int64."""
    return np.frombuffer(bitmap.to_array(), dtype=np.uint32).astype(np.int64)


def bitmap_of(rows: np.ndarray) -> BitMap:
    """A bitmap of ``rows`` (row numbers below 2**32).

    Through an ``array.array``: pyroaring reads its buffer at once, while it takes a
    numpy array element by element (about ten times slower).
    """
    return BitMap(array.array("I", np.asarray(rows, dtype=np.uint32).tobytes()))


def count_groups(chosen: BitMap, sets: Sequence[BitMap], most: int) -> list[tuple[BitMap, int]]:
    """``chosen`` split by how many of ``sets`` each row is in, counting up to ``most``:
    the non-empty parts with that count (``most`` standing for ``most`` or more).

    Bitmap operations only (no row is listed): ``at_least[j]`` holds the rows in ``j``
    or more of the sets seen so far. The cap keeps the work linear in ``len(sets)``.
    """
    at_least = [chosen]
    for members in sets:
        if len(at_least) <= most:
            at_least.append(BitMap())
        for j in range(len(at_least) - 1, 0, -1):
            at_least[j] |= at_least[j - 1] & members
    parts = [(at_least[j] - at_least[j + 1], j) for j in range(len(at_least) - 1)] + [(at_least[-1], len(at_least) - 1)]
    return [(rows, count) for rows, count in parts if rows]
