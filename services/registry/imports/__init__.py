"""Bulk import of firms from CSV, XLSX and NDJSON files, as background jobs."""
