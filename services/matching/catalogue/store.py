"""The catalogue's durable side: the latest supplier record per firm, the candidate
consortia (active horizontal networks), and the cursor.

A local SQLite file (one per matching replica, beside its snapshots) written in the
same transaction as the feed cursor, so a replica that restarts rebuilds its
catalogue from disk and resumes the registry feed where it stopped, without
replaying it from the start. Deleted suppliers stay as markers (``record`` NULL)
with the sequence number of their deletion.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from services.common.bulk import chunks
from services.matching.catalogue.consortia import NetworkEntry
from services.matching.catalogue.records import Certificate, SupplierRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS suppliers (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, record TEXT);
CREATE INDEX IF NOT EXISTS suppliers_seq ON suppliers (seq);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schemes (code TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, record TEXT);
"""


def encode(record: SupplierRecord) -> str:
    return json.dumps(asdict(record), default=str, separators=(",", ":"))


def decode(text: str) -> SupplierRecord:
    data: dict[str, Any] = json.loads(text)
    data["certificates"] = tuple(
        Certificate(
            c["scheme"],
            date.fromisoformat(c["valid_from"]) if c["valid_from"] else None,
            date.fromisoformat(c["valid_until"]) if c["valid_until"] else None,
        )
        for c in data["certificates"]
    )
    for key in ("isic_codes", "hs_codes", "cluster_ids"):
        data[key] = tuple(data[key])
    data["inclusion"] = tuple(data.get("inclusion", ()))  # records stored before it have none
    return SupplierRecord(**data)


class CatalogueStore:
    """Thread-safe access to the store (calls run in worker threads)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def cursor(self) -> int:
        with self._lock:
            row = self._connection.execute("SELECT value FROM state WHERE key = 'cursor'").fetchone()
        return int(row[0]) if row else 0

    def apply(
        self,
        changes: Sequence[tuple[str, int, SupplierRecord | None]],
        cursor: int,
        schemes: Sequence[str] = (),
        networks: Sequence[tuple[str, int, NetworkEntry | None]] = (),
    ) -> None:
        """Upsert suppliers and networks (id, seq, record-or-None) and known schemes, and
        move the cursor, atomically (a network that is no candidate consortium is None)."""
        rows = [(supplier_id, seq, encode(record) if record else None) for supplier_id, seq, record in changes]
        network_rows = [
            (network_id, seq, json.dumps(asdict(entry), separators=(",", ":")) if entry else None)
            for network_id, seq, entry in networks
        ]
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "INSERT INTO suppliers (id, seq, record) VALUES (?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, record = excluded.record",
                    rows,
                )
                connection.executemany("INSERT OR IGNORE INTO schemes (code) VALUES (?)", [(c,) for c in schemes])
                connection.executemany(
                    "INSERT INTO networks (id, seq, record) VALUES (?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, record = excluded.record",
                    network_rows,
                )
                connection.execute(
                    "INSERT INTO state (key, value) VALUES ('cursor', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(cursor),),
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def live_records(self) -> tuple[int, list[SupplierRecord]]:
        """Every live supplier and the cursor they are current at, read consistently."""
        reader = sqlite3.connect(self.path)
        try:
            reader.execute("BEGIN")
            row = reader.execute("SELECT value FROM state WHERE key = 'cursor'").fetchone()
            seq = int(row[0]) if row else 0
            records = [
                decode(text)
                for (text,) in reader.execute("SELECT record FROM suppliers WHERE record IS NOT NULL ORDER BY id")
            ]
            reader.execute("COMMIT")
            return seq, records
        finally:
            reader.close()

    def changed_after(self, seq: int) -> Iterator[tuple[str, int, SupplierRecord | None]]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT id, seq, record FROM suppliers WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
        for supplier_id, change_seq, text in rows:
            yield supplier_id, int(change_seq), decode(text) if text else None

    def records(self, supplier_ids: Sequence[str]) -> dict[str, SupplierRecord]:
        """The live suppliers among ``supplier_ids``, by id (the removed are left out)."""
        found: dict[str, SupplierRecord] = {}
        with self._lock:
            for chunk in chunks(list(supplier_ids), 500):  # below SQLite's bound-parameter limit
                marks = ",".join("?" * len(chunk))
                for supplier_id, text in self._connection.execute(
                    f"SELECT id, record FROM suppliers WHERE record IS NOT NULL AND id IN ({marks})", chunk
                ):
                    found[supplier_id] = decode(text)
        return found

    def networks(self) -> list[NetworkEntry]:
        """The candidate consortia."""
        with self._lock:
            rows = self._connection.execute("SELECT record FROM networks WHERE record IS NOT NULL").fetchall()
        entries = []
        for (text,) in rows:
            data = json.loads(text)
            entries.append(NetworkEntry(data["id"], data["name"], data["agency_id"], tuple(data["member_ids"])))
        return entries

    def schemes(self) -> set[str]:
        with self._lock:
            return {code for (code,) in self._connection.execute("SELECT code FROM schemes")}

    def count(self) -> int:
        with self._lock:
            return int(
                self._connection.execute("SELECT count(*) FROM suppliers WHERE record IS NOT NULL").fetchone()[0]
            )
