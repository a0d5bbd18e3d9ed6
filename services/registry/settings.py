"""Registry service settings (environment prefix ``REGISTRY_``)."""

from __future__ import annotations

from pathlib import Path

from services.common.settings import ServiceSettings, service_config


class RegistrySettings(ServiceSettings):
    model_config = service_config("REGISTRY_")

    service_name: str = "registry"
    port: int = 8001
    # Bulk imports: the largest upload accepted (413 past it), rows committed per
    # transaction, and where uploads are kept until their job is done.
    import_max_bytes: int = 1024 * 1024 * 1024
    import_batch_rows: int = 2000
    import_check_rows: int = 5000  # new firms checked for duplicates per transaction, after the rows
    # Files from this size on are parsed and validated by worker processes (0 workers: in a thread).
    import_workers: int = 1
    import_parallel_min_bytes: int = 8 * 1024 * 1024
    import_dir: Path | None = None
    # Matching's change feed, followed for suppliers' observed performance ("" follows none).
    matching_url: str = "http://127.0.0.1:8002"
    feed_wait_seconds: float = 10.0

    @property
    def import_directory(self) -> Path:
        return self.import_dir or self.data_dir / "imports"
