"""Opaque, stable, time-ordered identifiers such as ``clu_01JD3W6V8K2N4R7T9X0Y1Z2A3B``.

A prefix names the kind of record; the rest is a ULID (48-bit millisecond time and
80 random bits in Crockford base32), so ids sort by creation time and keyset
pagination over ids lists records oldest first.
"""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_base32(millis, 10)}{_base32(secrets.randbits(80), 16)}"
