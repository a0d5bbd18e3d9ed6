"""Standard Webhooks 1.0 signatures: ``whsec_`` secrets and ``v1,<base64>`` HMAC-SHA256.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``, keyed with the
secret's bytes (the base64 after ``whsec_``). During a secret rotation's grace period
a delivery carries one signature per secret, space-separated, so a receiver that
still holds the old secret and one that already holds the new one both verify it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"


def new_secret(size: int = 32) -> str:
    """A fresh secret, ``whsec_`` and ``size`` random bytes in base64 (24 to 64 bytes)."""
    if not 24 <= size <= 64:
        raise ValueError("a webhook secret has 24 to 64 bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One signature: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``."""
    content = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), content, hashlib.sha256).digest()).decode()


def signature_header(secrets_: Iterable[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in secrets_)
