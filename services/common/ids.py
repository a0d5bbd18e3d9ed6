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
