"""Buyer standards as shortlists use them: a saved version, and the schemes it names."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import FieldError, NotFound, ValidationFailed, field_error
from services.common.principal import Principal
from services.matching.ownership import readable
from services.matching.standards.schemas import Standards
from services.matching.tables import BuyerStandard, BuyerStandardVersion


def check_schemes(standards: Standards, known: set[str], prefix: str = "") -> None:
    """422 naming every certification scheme the registry's vocabulary lacks."""
    errors: list[FieldError] = []
    for field, codes in (
        ("constraints.required_certifications", standards.constraints.required_certifications),
        ("criteria.preferred_certifications", standards.criteria.preferred_certifications),
    ):
        errors += [
            field_error(f"{prefix}{field}.{i}", f"'{code}' is not a known certification scheme", "unknown_scheme")
            for i, code in enumerate(codes)
            if code not in known
        ]
    if errors:
        raise ValidationFailed("Unknown certification schemes", errors=errors)


async def load_version(
    session: AsyncSession, principal: Principal, standards_id: str, version: int | None
) -> tuple[Standards, int]:
    """The standards ``standards_id`` at ``version`` (the current one when None), and that version."""
    row = readable(principal, await session.get(BuyerStandard, standards_id), "buyer standards", standards_id)
    assert isinstance(row, BuyerStandard)
    if version is None or version == row.version:
        return Standards.model_validate(row.body), row.version
    past = await session.get(BuyerStandardVersion, (standards_id, version))
    if past is None:
        raise NotFound(f"Buyer standards '{standards_id}' have no version {version}")
    return Standards.model_validate(past.body), version
