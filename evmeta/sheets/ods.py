"""Read raw cells from an OpenDocument spreadsheet (.ods, LibreOffice Calc).

The archive is checked like an .xlsx (size, unpacked size, mimetype), then ``content.xml``
is streamed through defusedxml (no DTDs, no entity expansion) and turned into the same
``RawSheet`` rows the .xlsx reader returns, so validation and cell names (``outcomes!H14``)
are identical. ``table:number-rows-repeated`` and ``table:number-columns-repeated`` are
honoured without expanding empty extents (Calc writes a trailing empty row repeated a
million times); repeated non-empty rows or cells are expanded up to the sheet limits.
Formulas (``table:formula``) are reported, never evaluated; comments (``office:annotation``)
are not cell text.

Reference: OASIS Open Document Format for Office Applications (OpenDocument) v1.3, part 3,
section 9.1 (tables).
"""

from __future__ import annotations

import datetime as _dt
import zipfile
from pathlib import Path
from typing import Any

from evmeta.sheets.raw import (
    EXCEL_ERRORS,
    MAX_UNCOMPRESSED_BYTES,
    Cell,
    RawSheet,
    RawWorkbook,
    UnreadableInput,
    _check_size,
    column_letter,
    file_sha256,
)

MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"
#: Sheet limits of LibreOffice Calc (rows, columns); repeats beyond them are refused.
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
#: Largest number of identical non-empty rows or cells expanded from one repeat attribute.
MAX_REPEAT_EXPANDED = 10_000

_NS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
}


def _q(prefix: str, name: str) -> str:
    return f"{{{_NS[prefix]}}}{name}"


TABLE, ROW, CELL, COVERED = (
    _q("table", "table"),
    _q("table", "table-row"),
    _q("table", "table-cell"),
    _q("table", "covered-table-cell"),
)
ANNOTATION = _q("office", "annotation")


def _check_archive(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = {i.filename for i in infos}
            total = sum(i.file_size for i in infos)
            mimetype = (
                archive.read("mimetype").decode("ascii", "replace").strip() if "mimetype" in names else ""
            )
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableInput(
            f"{path.name} is not an OpenDocument spreadsheet (.ods is a zip archive; this file is not one: {exc})"
        ) from None
    if total > MAX_UNCOMPRESSED_BYTES:
        raise UnreadableInput(
            f"{path.name} unpacks to {total / 1e6:.0f} MB, over the {MAX_UNCOMPRESSED_BYTES / 1e6:.0f} MB limit"
        )
    if "content.xml" not in names or (mimetype and mimetype != MIMETYPE):
        raise UnreadableInput(
            f"{path.name} is a zip archive but not an OpenDocument spreadsheet "
            f"(mimetype {mimetype or 'missing'!r}, expected {MIMETYPE})"
        )


def _text(element) -> str:
    """Cell text: paragraphs joined by newlines; text:s, text:tab, text:line-break honoured."""
    paragraphs = []
    for child in element:
        if child.tag == ANNOTATION:
            continue
        if child.tag in {_q("text", "p"), _q("text", "h")}:
            paragraphs.append(_inline(child))
    return "\n".join(paragraphs)


def _inline(element) -> str:
    parts = [element.text or ""]
    for child in element:
        if child.tag == _q("text", "s"):
            parts.append(" " * int(child.get(_q("text", "c"), "1")))
        elif child.tag == _q("text", "tab"):
            parts.append("\t")
        elif child.tag == _q("text", "line-break"):
            parts.append("\n")
        elif child.tag != ANNOTATION and child.tag != _q("office", "annotation-end"):
            parts.append(_inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _number(text: str) -> int | float:
    value = float(text)
    if value.is_integer() and not any(c in text for c in ".eE") and abs(value) < 2**53:
        return int(value)
    return value


def _date(text: str) -> Any:
    try:
        if "T" in text:
            return _dt.datetime.fromisoformat(text)
        return _dt.date.fromisoformat(text)
    except ValueError:
        return text


def convert_cell(element) -> Cell:
    """One ``table:table-cell`` as a ``Cell`` (value, formula, error or date)."""
    formula = element.get(_q("table", "formula"))
    if formula is not None:
        return Cell(formula.split(":", 1)[1] if formula.startswith(("of:", "oooc:")) else formula, "formula")
    kind = element.get(_q("office", "value-type"))
    if kind in {"float", "percentage", "currency"}:
        return Cell(_number(element.get(_q("office", "value"), "nan")))
    if kind == "date":
        return Cell(_date(element.get(_q("office", "date-value"), "")), "date")
    if kind == "time":
        return Cell(element.get(_q("office", "time-value"), ""), "date")
    if kind == "boolean":
        return Cell(element.get(_q("office", "boolean-value"), "false") == "true")
    text = _text(element)
    if not text:
        return Cell(None)
    if text.strip().upper() in EXCEL_ERRORS:
        return Cell(text.strip(), "error")
    return Cell(text)


def _repeat(element, attribute: str) -> int:
    try:
        return max(1, int(element.get(_q("table", attribute), "1")))
    except ValueError:
        return 1


class _SheetBuilder:
    """Collects one table's rows, without materializing repeated empty rows or cells."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.row_number = 0
        self.header: list[str] = []
        self.rows: list[tuple[int, list[Cell]]] = []
        self.merged: list[str] = []

    def add_row(self, row) -> None:
        cells: list[Cell] = []
        pending_blank = 0
        for element in row:
            if element.tag not in {CELL, COVERED}:
                continue
            count = _repeat(element, "number-columns-repeated")
            cell = convert_cell(element) if element.tag == CELL else Cell(None)
            self._note_merge(element, len(cells) + pending_blank)
            if cell.value is None:
                pending_blank += count  # trailing blanks are never materialized
                continue
            if len(cells) + pending_blank + count > MAX_COLUMNS or count > MAX_REPEAT_EXPANDED:
                raise UnreadableInput(
                    f"{self.name}: row {self.row_number + 1} repeats a cell beyond the sheet limits"
                )
            cells.extend([Cell(None)] * pending_blank + [cell] * count)
            pending_blank = 0
        repeat = _repeat(row, "number-rows-repeated")
        if not cells:
            self.row_number += repeat
            return
        if repeat > MAX_REPEAT_EXPANDED or self.row_number + repeat > MAX_ROWS:
            raise UnreadableInput(
                f"{self.name}: row {self.row_number + 1} is repeated {repeat} times; expected data rows"
            )
        for _ in range(repeat):
            self.row_number += 1
            if self.row_number == 1:
                self.header = ["" if c.value is None else str(c.value).strip() for c in cells]
            elif any(
                c.value is not None and not (isinstance(c.value, str) and not c.value.strip()) for c in cells
            ):
                self.rows.append((self.row_number, list(cells)))

    def _note_merge(self, element, column: int) -> None:
        rows = _repeat(element, "number-rows-spanned")
        columns = _repeat(element, "number-columns-spanned")
        if rows > 1 or columns > 1:
            first = self.row_number + 1
            self.merged.append(
                f"{column_letter(column)}{first}:{column_letter(column + columns - 1)}{first + rows - 1}"
            )

    def build(self) -> RawSheet:
        return RawSheet(self.name, self.header, self.rows, self.merged)


def read_ods(path: str | Path) -> RawWorkbook:
    """Read every sheet of an ``.ods`` workbook into raw sheets (see the module docstring).

    Raises
    ------
    UnreadableInput
        When the file is not an OpenDocument spreadsheet, too large, or malformed XML.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, iterparse

    path = Path(path)
    _check_size(path)  # the 50 MB limit of every workbook, also when called directly
    _check_archive(path)
    sheets: dict[str, RawSheet] = {}
    builder: _SheetBuilder | None = None
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as stream:
            for event, element in iterparse(stream, events=("start", "end")):
                if event == "start":
                    if element.tag == TABLE:
                        builder = _SheetBuilder(element.get(_q("table", "name"), f"Sheet{len(sheets) + 1}"))
                    continue
                if element.tag == ROW and builder is not None:
                    builder.add_row(element)
                    element.clear()
                elif element.tag == TABLE and builder is not None:
                    sheets[builder.name] = builder.build()
                    builder = None
                    element.clear()
    except (ParseError, DefusedXmlException) as exc:
        raise UnreadableInput(
            f"{path.name}: content.xml is not well-formed or not safe to parse ({exc})"
        ) from None
    return RawWorkbook(path, sheets, file_sha256(path))
