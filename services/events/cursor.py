"""The cursor of ``GET /v1/events``: a position in the events log, issued to one reader.

A cursor holds the ``seq`` of the last event the reader has seen and a MAC over it and
the reader's tenancy (role, owner key and agency) under the deployment's principal
secret. It survives restarts (it is only a number and a signature), and one that is
garbage, altered or issued to another tenant is refused with a 400 naming ``after``
rather than read as some position.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from services.common.errors import BadRequest, field_error
from services.common.principal import Principal, owner_key

_CONTEXT = b"linkages-events-cursor-v1"
_MAC_BYTES = 16


def _reader(principal: Principal) -> bytes:
    """What a cursor is bound to: whose events it walks through."""
    return f"{principal.role.value}|{owner_key(principal)}|{principal.agency_id or ''}".encode()


def _mac(secret: str, seq: int, principal: Principal) -> bytes:
    key = hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()
    return hmac.new(key, struct.pack(">Q", seq) + b"|" + _reader(principal), hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(seq: int, principal: Principal, secret: str) -> str:
    raw = struct.pack(">Q", seq) + _mac(secret, seq, principal)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def invalid_cursor(message: str) -> BadRequest:
    return BadRequest(f"after: {message}", errors=[field_error("after", message, "invalid_cursor", "query")])


def decode_cursor(cursor: str, principal: Principal, secret: str) -> int:
    """The ``seq`` in ``cursor``; a 400 naming ``after`` unless this API issued it to this reader."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise invalid_cursor("not a cursor returned by GET /v1/events") from None
    if len(raw) != 8 + _MAC_BYTES:
        raise invalid_cursor("not a cursor returned by GET /v1/events")
    (seq,) = struct.unpack(">Q", raw[:8])
    if not hmac.compare_digest(raw[8:], _mac(secret, seq, principal)):
        raise invalid_cursor("not a cursor returned by GET /v1/events to this API key's tenant")
    return int(seq)
