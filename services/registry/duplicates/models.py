"""Tables of the duplicate detector: blocking keys, candidate pairs, merges, policies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field

from services.common.db import UTCDateTime
from services.registry.tables import RegistryTable


class FirmMatchKey(RegistryTable, table=True):
    """A blocking key of a firm (see ``detector.blocking_keys``): firms sharing one are compared."""

    __tablename__ = "firm_match_keys"

    key: str = Field(sa_column=Column(String(100), primary_key=True))
    firm_id: str = Field(sa_column=Column(String(40), primary_key=True, index=True))


class DuplicateCandidate(RegistryTable, table=True):
    """Two firms the detector thinks may be one, with its score and reasons, and the decision."""

    __tablename__ = "duplicate_candidates"
    __table_args__ = (UniqueConstraint("firm_a", "firm_b", name="uq_duplicate_candidates_pair"),)

    id: str = Field(primary_key=True, max_length=40)
    firm_a: str = Field(max_length=40, index=True)  # the smaller id of the two
    firm_b: str = Field(max_length=40, index=True)
    agency_a: str = Field(max_length=40, index=True)
    agency_b: str = Field(max_length=40, index=True)
    score: float
    same_national_id: bool = False
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=10, index=True)  # open, merged, distinct
    source: str = Field(max_length=60)  # "create", "update", "undo" or "import:<job id>"
    detected_at: datetime = Field(sa_type=UTCDateTime())
    # The change-feed sequence number of the firm change this pair was last found for: a
    # later change of either firm drops the open pair unless a check finds it again since.
    feed_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    decided_by: str | None = Field(default=None, max_length=200)
    merge_id: str | None = Field(default=None, max_length=40)


class DuplicateMerge(RegistryTable, table=True):
    """One merge: the survivor, the merged firm and everything needed to undo it."""

    __tablename__ = "duplicate_merges"
    __table_args__ = (Index("ix_duplicate_merges_firms", "survivor_id", "merged_id"),)

    id: str = Field(primary_key=True, max_length=40)
    candidate_id: str | None = Field(default=None, max_length=40, index=True)
    survivor_id: str = Field(max_length=40)
    merged_id: str = Field(max_length=40, index=True)
    agency_id: str = Field(max_length=40, index=True)  # the survivor's agency
    automatic: bool = False
    merged_by: str = Field(max_length=200)
    merged_at: datetime = Field(sa_type=UTCDateTime())
    # The merged firm as it was, the records repointed (before, and their version after)
    # and the candidates and import keys changed: what ``undo`` restores.
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    undone_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    undone_by: str | None = Field(default=None, max_length=200)


class DuplicatePolicy(RegistryTable, table=True):
    """An agency's choices: whether imports merge exact national-id matches automatically."""

    __tablename__ = "duplicate_policies"

    agency_id: str = Field(primary_key=True, max_length=40)
    auto_merge_same_national_id: bool = False
    updated_at: datetime = Field(sa_type=UTCDateTime())


class FirmProfile(RegistryTable, table=True):
    """A firm's normalised profile (``detector.Profile.pack`` as JSON), filed with its keys.

    Kept so that a firm found in a block is compared without being read from ``firms``
    and normalised again; a firm without one (or of an older format) is profiled afresh.
    """

    __tablename__ = "firm_profiles"

    firm_id: str = Field(sa_column=Column(String(40), primary_key=True))
    profile: str = Field(sa_column=Column(Text, nullable=False))
