"""Opaque, stable, time-ordered identifiers such as ``clu_01JD3W6V8K2N4R7T9X0Y1Z2A3B``.

A prefix names the kind of record; the rest is a ULID (48-bit millisecond time and
80 random bits in Crockford base32), so ids sort by creation time and keyset
pagination over ids lists records oldest first.
"""

from __future__ import annotations

import base64
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# RFC 4648 base32 digits to Crockford's: the C-coded encoder writes the 26 digits at once.
_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


def _ulid(millis: int, randomness: int) -> str:
    """26 Crockford digits of the 130-bit number ``millis`` (50 bits) then ``randomness`` (80 bits)."""
    value = (millis % (1 << 50)) << 80 | randomness
    # Shifted to 160 bits (20 bytes, 32 digits), the first 26 digits are the number's.
    return base64.b32encode((value << 30).to_bytes(20, "big")).decode()[:26].translate(_TO_CROCKFORD)


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_ulid(millis, secrets.randbits(80))}"


# A random byte to a random digit: its low 5 bits (256 is a multiple of 32: uniform).
_BYTE_TO_DIGIT = bytes(_CROCKFORD.encode()[byte & 31] for byte in range(256))


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` new ids at once, as ``new_id`` makes them, for a fraction of the cost: one
    clock read and one draw of randomness for all (a bulk import's batches)."""
    # A ULID's first 10 digits are its 50 bits of time, the other 16 its 80 random bits.
    time_digits = _ulid(time.time_ns() // 1_000_000, 0)[:10]
    digits = secrets.token_bytes(16 * count).translate(_BYTE_TO_DIGIT).decode()
    return [f"{prefix}_{time_digits}{digits[start : start + 16]}" for start in range(0, 16 * count, 16)]
