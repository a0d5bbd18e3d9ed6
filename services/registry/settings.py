"""Registry service settings (environment prefix ``REGISTRY_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from services.common.settings import ServiceSettings, service_config


class RegistrySettings(ServiceSettings):
    model_config = service_config("REGISTRY_")

    service_name: str = "registry"
    port: int = 8001
    # Bulk imports: the largest upload accepted (413 past it), rows committed per
    # transaction, and where uploads are kept until their job is done.
    import_max_bytes: int = 1024 * 1024 * 1024
    import_batch_rows: int = 2000
    # Files from this size on are parsed and validated by worker processes (0 workers: in a thread).
    import_workers: int = 1
    import_parallel_min_bytes: int = 8 * 1024 * 1024
    import_dir: Path | None = None
    # Matching's change feed, followed for suppliers' observed performance ("" follows none).
    matching_url: str = "http://127.0.0.1:8002"
    feed_wait_seconds: float = 10.0
    # The duplicate check, a consumer of the registry's own change feed behind the writes
    # (``duplicates/consumer.py``): whether this process runs it, as which partition of
    # how many (replicas split the blocking keys), from which registry ("": this process's
    # own feed, in-process) and how many changes it checks per transaction (at most 1000).
    duplicates_check: bool = True
    duplicates_partitions: int = Field(default=1, ge=1, le=64)
    duplicates_partition: int = Field(default=0, ge=0)
    duplicates_feed_url: str = ""
    duplicates_batch_changes: int = Field(default=1000, ge=1, le=1000)

    @model_validator(mode="after")
    def _partition_exists(self) -> Self:
        if self.duplicates_partition >= self.duplicates_partitions:
            raise ValueError(
                f"REGISTRY_DUPLICATES_PARTITION must be below REGISTRY_DUPLICATES_PARTITIONS "
                f"({self.duplicates_partition} >= {self.duplicates_partitions})"
            )
        return self

    @property
    def import_directory(self) -> Path:
        return self.import_dir or self.data_dir / "imports"
