"""CSV downloads that spreadsheets open with the right characters.

Excel on Windows reads a CSV file as UTF-8 only when it starts with a byte order
mark; without one, "Guayaquil–Durán" opens garbled. Every CSV the platform serves
starts with one (and the importer accepts files that do).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from fastapi.responses import Response, StreamingResponse

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
UTF8_BOM = "\ufeff"


def csv_rows(rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` as CSV lines (CRLF, as RFC 4180 writes them); None is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def csv_download(header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    """A whole table as a CSV attachment."""
    return Response(UTF8_BOM + csv_rows([header, *rows]), media_type=CSV_MEDIA_TYPE, headers=_attachment(filename))


def csv_stream(
    header: Sequence[str], batches: AsyncIterator[Iterable[Sequence[Any]]], filename: str
) -> StreamingResponse:
    """A table read batch by batch, sent as each is read."""

    async def lines() -> AsyncIterator[str]:
        yield UTF8_BOM + csv_rows([header])
        async for batch in batches:
            yield csv_rows(batch)

    return StreamingResponse(lines(), media_type=CSV_MEDIA_TYPE, headers=_attachment(filename))
