from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, String, Text
from sqlmodel import Field

from services.registry.tables import RecordColumns, RegistryTable


class Firm(RecordColumns, table=True):
    """A firm: a supplier, a lead firm (buyer), or both.

    Multi-valued attributes are JSON columns here and indexed in ``record_tags``
    for filtering.
    """

    __tablename__ = "firms"

    name: str = Field(max_length=200)
    national_ids: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    roles: list[str] = Field(sa_column=Column(JSON, nullable=False))
    size_class: str = Field(max_length=10, index=True)
    employees: int | None = None
    women_employees: int | None = None
    # Inclusion claims ({value, attested_by, attested_on}); those attested true are also
    # tagged "inclusion" in record_tags for the list filter.
    women_owned: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    women_led: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    youth_led: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    isic_codes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    code_system: str = Field(default="isic4", sa_column=Column(String(12), nullable=False, server_default="isic4"))
    source_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    hs_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    certifications: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    monthly_capacity: float | None = None
    capacity_unit: str | None = Field(default=None, max_length=30)
    quality_score: float | None = None
    on_time_delivery_rate: float | None = None
    capabilities: str | None = None
    street: str | None = Field(default=None, max_length=300)
    locality: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(max_length=2, index=True)
    subdivision: str | None = Field(default=None, max_length=6, index=True)
    latitude: float | None = None
    longitude: float | None = None
    cluster_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # What buyers' delivery scorecards show (written from matching's feed, never by a client).
    observed_performance: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Folded copies for search (services/registry/firms/search.py), kept by every write:
    # " word word " with a space at each end, so LIKE '% carp%' finds a word's start.
    # On PostgreSQL with pg_trgm, migration 0007 adds trigram (GIN) indexes on them.
    search_name: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    search_place: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class SearchWord(RegistryTable, table=True):
    """The words of firms' names, places and capabilities, by deletion key (see
    ``services.common.folding.deletion_keys``): how a search finds the words one typo
    away from what was typed. Words are added as firms are written and never removed
    (a word no firm holds any more only costs a row)."""

    __tablename__ = "search_words"

    key: str = Field(sa_column=Column(String(40), primary_key=True))
    word: str = Field(sa_column=Column(String(40), primary_key=True))
