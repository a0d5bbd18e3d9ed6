"""Tables of bulk imports: jobs with their checkpoint, rejected rows, and row keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, String
from sqlmodel import Field

from services.common.db import UTCDateTime
from services.registry.tables import RegistryTable


class ImportJob(RegistryTable, table=True):
    """One uploaded file being imported; ``checkpoint`` is the last data row committed."""

    __tablename__ = "import_jobs"

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(max_length=40, index=True)
    principal: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # who imports: role, agency, subject
    status: str = Field(max_length=12, index=True)  # queued, running, completed, failed
    format: str = Field(max_length=8)  # csv, xlsx, ndjson
    filename: str | None = Field(default=None, max_length=300)
    file_path: str = Field(max_length=500)  # under the data directory
    file_sha256: str = Field(max_length=64)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    columns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # the input's header
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0  # already imported (same natural key)
    duplicates_suspected: int = 0
    duplicates_merged: int = 0
    checkpoint: int = 0  # data rows read and committed; a resumed job continues after them
    # The duplicate check follows the change feed behind the rows (``duplicates/consumer.py``):
    # it counts the job's new firms it has checked, and is done with the job once it has
    # passed ``last_change_seq``, the feed sequence number of the job's last new firm.
    rows_checked: int = 0
    checked_through: str | None = Field(default=None, max_length=40)  # "" once every row is in
    last_change_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime())
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    updated_at: datetime = Field(sa_type=UTCDateTime())


class ImportRowError(RegistryTable, table=True):
    """One problem of one rejected input row, in the input's terms (row number, column)."""

    __tablename__ = "import_errors"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    job_id: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    row_number: int
    column: str = Field(max_length=200)
    field: str = Field(max_length=200)
    code: str = Field(max_length=60)
    message: str
    value: str | None = None


class ImportRowKey(RegistryTable, table=True):
    """The natural key of an imported row, so that importing it again creates nothing.

    ``id:<SCHEME>:<VALUE>`` for a row with a national id, else ``row:<hash>`` of the
    row's validated content; scoped to the owning agency.
    """

    __tablename__ = "import_row_keys"

    agency_id: str = Field(sa_column=Column(String(40), primary_key=True))
    natural_key: str = Field(sa_column=Column(String(120), primary_key=True))
    firm_id: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    job_id: str = Field(max_length=40)
    row_number: int
