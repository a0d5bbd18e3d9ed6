"""XLSX downloads: a table as a workbook that spreadsheets open as it is, accents included.

XLSX stores text as UTF-8 XML, so no byte order mark is needed (unlike CSV, see
``csvtext``). Header cells are bold; None is an empty cell; dates stay dates.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.responses import Response

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_bytes(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> bytes:
    """A workbook of ``(title, header, rows)`` sheets, in order."""
    import openpyxl  # here, not at the top: seconds of start-up every process would pay
    from openpyxl.styles import Font

    workbook = openpyxl.Workbook()
    default = workbook.active
    assert default is not None
    workbook.remove(default)
    for title, header, rows in sheets:
        sheet = workbook.create_sheet(title[:31])  # Excel's limit on a sheet's name
        sheet.append(list(header))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(list(row))
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def xlsx_download(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]], filename: str) -> Response:
    return Response(
        xlsx_bytes(sheets),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
