"""The signed principal header: what verifies, and every way it must not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from services.common.errors import Unauthorized
from services.common.principal import Principal, Role, sign_principal, verify_principal

SECRET = "unit-test-secret-0123456789abcdef0123"
NOW = 1_750_000_000.0
PRINCIPAL = Principal(subject="key-1", role=Role.agency, agency_id="agy_1", scopes=("records:write",))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _signed(payload: object, secret: str = SECRET) -> str:
    """A correctly signed header around an arbitrary JSON payload."""
    encoded = _b64(json.dumps(payload).encode())
    signature = _b64(hmac.new(secret.encode(), f"v1.{encoded}".encode(), hashlib.sha256).digest())
    return f"v1.{encoded}.{signature}"


def test_round_trip() -> None:
    header = sign_principal(PRINCIPAL, SECRET, ttl_seconds=60, now=NOW)
    assert verify_principal(header, SECRET, now=NOW) == PRINCIPAL
    assert verify_principal(header, SECRET, now=NOW + 59) == PRINCIPAL


def test_round_trip_keeps_every_field() -> None:
    firm = Principal(subject="buyer-key", role=Role.lead_firm, firm_id="frm_9", scopes=("a", "b"))
    verified = verify_principal(sign_principal(firm, SECRET, now=NOW), SECRET, now=NOW)
    assert verified.role is Role.lead_firm
    assert (verified.subject, verified.firm_id, verified.agency_id, verified.scopes) == (
        "buyer-key",
        "frm_9",
        None,
        ("a", "b"),
    )


def test_tampered_payload_is_refused() -> None:
    version, _payload, signature = sign_principal(PRINCIPAL, SECRET, now=NOW).split(".")
    promoted = PRINCIPAL.model_dump(mode="json") | {"role": "admin", "exp": int(NOW + 60)}
    forged_payload = _b64(json.dumps(promoted, separators=(",", ":"), sort_keys=True).encode())
    with pytest.raises(Unauthorized):
        verify_principal(f"{version}.{forged_payload}.{signature}", SECRET, now=NOW)


def test_tampered_signature_is_refused() -> None:
    version, payload, signature = sign_principal(PRINCIPAL, SECRET, now=NOW).split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(Unauthorized):
        verify_principal(f"{version}.{payload}.{flipped}", SECRET, now=NOW)
    with pytest.raises(Unauthorized):
        verify_principal(f"{version}.{payload}.", SECRET, now=NOW)


def test_wrong_secret_is_refused() -> None:
    header = sign_principal(PRINCIPAL, "another-secret-0123456789abcdef0123", now=NOW)
    with pytest.raises(Unauthorized, match="signature"):
        verify_principal(header, SECRET, now=NOW)


def test_other_version_is_refused() -> None:
    _version, payload, signature = sign_principal(PRINCIPAL, SECRET, now=NOW).split(".")
    with pytest.raises(Unauthorized):
        verify_principal(f"v2.{payload}.{signature}", SECRET, now=NOW)


def test_expired_is_refused() -> None:
    header = sign_principal(PRINCIPAL, SECRET, ttl_seconds=60, now=NOW)
    with pytest.raises(Unauthorized, match="expired"):
        verify_principal(header, SECRET, now=NOW + 61)


def test_expiry_too_far_in_the_future_is_refused() -> None:
    """A header valid for longer than max_age (e.g. a leaked long-lived one) is refused."""
    header = sign_principal(PRINCIPAL, SECRET, ttl_seconds=3600, now=NOW)
    with pytest.raises(Unauthorized, match="expired"):
        verify_principal(header, SECRET, max_age_seconds=300, now=NOW)
    assert verify_principal(header, SECRET, max_age_seconds=3600, now=NOW) == PRINCIPAL


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "v1.onlytwo",
        "v1.a.b.c",
        "v1..",
        "v1.***.***",
        "v1.é.ü",
    ],
)
def test_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(Unauthorized):
        verify_principal(header, SECRET, now=NOW)


@pytest.mark.parametrize(
    "payload",
    [
        {"subject": "k", "role": "admin"},  # no expiry
        {"subject": "k", "role": "admin", "exp": "soon"},
        {"subject": "k", "role": "admin", "exp": None},
        {"subject": "k", "role": "admin", "exp": float("inf")},
        {"subject": "k", "role": "superuser", "exp": int(NOW + 60)},  # unknown role
        {"role": "admin", "exp": int(NOW + 60)},  # no subject
        [1, 2, 3],
        "a string",
        42,
        None,
    ],
    ids=lambda p: type(p).__name__ + ":" + json.dumps(p)[:30],
)
def test_signed_but_malformed_payload_is_refused(payload: object) -> None:
    """Even a correctly signed payload must be a well-formed principal, or it is a 401, not a crash."""
    with pytest.raises(Unauthorized):
        verify_principal(_signed(payload), SECRET, now=NOW)


def test_signed_payload_that_is_not_base64_json_is_refused() -> None:
    for raw in ("not-json", "%%%", _b64(b"\xff\xfe\x00")):
        signature = _b64(hmac.new(SECRET.encode(), f"v1.{raw}".encode(), hashlib.sha256).digest())
        with pytest.raises(Unauthorized):
            verify_principal(f"v1.{raw}.{signature}", SECRET, now=NOW)
