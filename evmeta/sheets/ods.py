"""Read raw cells from an OpenDocument spreadsheet (.ods, LibreOffice Calc).

The archive is checked like an .xlsx (size, unpacked size, mimetype), then ``content.xml``
is streamed through defusedxml (no DTDs, no entity expansion) and turned into the same
``RawSheet`` rows the .xlsx reader returns, so validation and cell names (``outcomes!H14``)
are identical. ``table:number-rows-repeated`` and ``table:number-columns-repeated`` are
honoured without expanding empty extents (Calc writes a trailing empty row repeated a
million times); repeated non-empty rows are expanded, and repeated cells only within the
header's columns, under the limits of every workbook (``MAX_ROWS``, ``MAX_COLUMNS``,
``MAX_CELLS`` in ``evmeta.sheets.raw``).
Formulas (``table:formula``) are reported, never evaluated; comments (``office:annotation``)
are not cell text.

Reference: OASIS Open Document Format for Office Applications (OpenDocument) v1.3, part 3,
section 9.1 (tables).
"""

from __future__ import annotations

import datetime as _dt
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evmeta.errors import Problem
from evmeta.sheets.raw import (
    EMPTY,
    EXCEL_ERRORS,
    MAX_CELLS,
    MAX_COLUMNS,
    MAX_ROWS,
    MAX_UNCOMPRESSED_BYTES,
    Cell,
    RawSheet,
    RawWorkbook,
    UnreadableInput,
    _check_size,
    _is_blank,
    column_letter,
    file_sha256,
)

if TYPE_CHECKING:  # parsing itself goes through defusedxml
    from xml.etree.ElementTree import Element

MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"
#: Last column of a LibreOffice Calc sheet: cells past it cannot exist and are not read.
MAX_ODS_COLUMNS = 16_384
#: Largest number of identical data rows expanded from one ``table:number-rows-repeated``.
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


def _text(element: Element) -> str:
    """Cell text: paragraphs joined by newlines; text:s, text:tab, text:line-break honoured."""
    paragraphs = []
    for child in element:
        if child.tag == ANNOTATION:
            continue
        if child.tag in {_q("text", "p"), _q("text", "h")}:
            paragraphs.append(_inline(child))
    return "\n".join(paragraphs)


def _inline(element: Element) -> str:
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


def _number(text: str) -> int | float | None:
    """``office:value`` as a number; None when it is not one (a hand-edited file)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
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


def convert_cell(element: Element) -> Cell:
    """One ``table:table-cell`` as a ``Cell`` (value, formula, error or date)."""
    formula = element.get(_q("table", "formula"))
    if formula is not None:
        return Cell(formula.split(":", 1)[1] if formula.startswith(("of:", "oooc:")) else formula, "formula")
    kind = element.get(_q("office", "value-type"))
    if kind in {"float", "percentage", "currency"}:
        raw = element.get(_q("office", "value"), "nan")
        value = _number(raw)
        # A value that is not a number is kept as the text shown, for validation to name.
        return Cell(value) if value is not None else Cell(_text(element) or raw)
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


def _repeat(element: Element, attribute: str) -> int:
    try:
        return max(1, int(element.get(_q("table", attribute), "1")))
    except ValueError:
        return 1


class _SheetBuilder:
    """Collects one table's rows, without materializing repeated empty rows or cells.

    The header (row 1) is read up to its last non-empty cell, at most ``MAX_COLUMNS``; data
    rows keep only the header's columns (a value further right is counted and reported at its
    cell, as the .xlsx reader does), so a cell repeated 16,384 times costs the header's width.
    Data rows are counted against ``MAX_ROWS`` and the materialized cells against ``MAX_CELLS``
    before a repeated row is expanded.
    """

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems
        self.row_number = 0
        self.header: list[str] = []
        self.width = 0
        self.rows: list[tuple[int, list[Cell]]] = []
        self.merged: list[str] = []
        self.cells = 0
        self.beyond: list[str] = []  # the first few cells right of the header, for the message
        self.beyond_count = 0

    def _runs(self, row: Element) -> list[tuple[int, int, Cell]]:
        """The row's non-empty cells as (first column, repeat count, cell); blanks are skipped."""
        runs: list[tuple[int, int, Cell]] = []
        column = 0
        for element in row:
            if element.tag not in {CELL, COVERED}:
                continue
            count = _repeat(element, "number-columns-repeated")
            if column >= MAX_ODS_COLUMNS:
                break  # past Calc's last column: nothing a sheet can hold
            self._note_merge(element, column)
            cell = convert_cell(element) if element.tag == CELL else EMPTY
            if cell.value is not None:
                runs.append((column, count, cell))
            column += count
        return runs

    def add_row(self, row: Element) -> None:
        runs = self._runs(row)
        repeat = _repeat(row, "number-rows-repeated")
        if not any(not _is_blank(cell) for _, _, cell in runs):
            self.row_number += repeat  # blank rows are counted, never expanded
            return
        if self.row_number == 0:
            self._read_header(runs)
            self.row_number = 1
            repeat -= 1
            if repeat == 0:
                return
        self._add_data_rows(runs, repeat, row)

    def _read_header(self, runs: list[tuple[int, int, Cell]]) -> None:
        texts: dict[int, str] = {}
        too_far: list[int] = []
        for column, count, cell in runs:
            text = str(cell.value).strip()
            if not text:
                continue
            if column >= MAX_COLUMNS:
                too_far.append(column)
                continue
            for index in range(column, min(column + count, MAX_COLUMNS)):
                texts[index] = text
            if column + count > MAX_COLUMNS:
                too_far.append(MAX_COLUMNS)
        if too_far:
            self.problems.append(
                Problem(
                    self.name,
                    1,
                    None,
                    None,
                    f"header cell(s) beyond column {column_letter(MAX_COLUMNS - 1)} ignored "
                    f"({', '.join(column_letter(i) + '1' for i in too_far[:5])}); "
                    f"a sheet may have at most {MAX_COLUMNS} columns",
                )
            )
        self.width = max(texts) + 1 if texts else 0
        self.header = [texts.get(i, "") for i in range(self.width)]

    def _add_data_rows(self, runs: list[tuple[int, int, Cell]], repeat: int, row: Element) -> None:
        first = self.row_number + 1
        if repeat > MAX_REPEAT_EXPANDED:
            raise UnreadableInput(
                f"sheet {self.name!r}: row {first} is repeated {repeat:,} times "
                f"(at most {MAX_REPEAT_EXPANDED:,} identical data rows are read); expected data rows"
            )
        if len(self.rows) + repeat > MAX_ROWS:
            raise UnreadableInput(
                f"sheet {self.name!r} has more than {MAX_ROWS:,} data rows (row {first}); "
                "an extraction sheet should be far smaller: delete stray content below the data"
            )
        if self.cells + repeat * self.width > MAX_CELLS:
            raise UnreadableInput(
                f"sheet {self.name!r} holds more than {MAX_CELLS:,} cells within its header's "
                f"{self.width} columns (row {first}); an extraction sheet should be far smaller"
            )
        cells = [EMPTY] * self.width
        beyond: list[int] = []
        for column, count, cell in runs:
            for index in range(column, min(column + count, self.width)):
                cells[index] = cell
            if column + count > self.width and not _is_blank(cell):
                beyond.append(max(column, self.width))
                self.beyond_count += repeat * (column + count - max(column, self.width))
        data = any(not _is_blank(c) for c in cells)
        for number in range(first, first + repeat):
            if len(self.beyond) < 10:
                self.beyond.extend(f"{column_letter(i)}{number}" for i in beyond[: 10 - len(self.beyond)])
            if data:
                self.rows.append((number, list(cells)))
                self.cells += self.width
        self.row_number += repeat

    def _note_merge(self, element: Element, column: int) -> None:
        rows = _repeat(element, "number-rows-spanned")
        columns = _repeat(element, "number-columns-spanned")
        if rows > 1 or columns > 1:
            first = self.row_number + 1
            self.merged.append(
                f"{column_letter(column)}{first}:{column_letter(column + columns - 1)}{first + rows - 1}"
            )

    def build(self) -> RawSheet:
        if self.beyond:
            extra = self.beyond_count - len(self.beyond)
            shown = ", ".join(self.beyond) + (f" and {extra:,} more" if extra > 0 else "")
            self.problems.append(
                Problem(
                    self.name,
                    None,
                    None,
                    None,
                    f"{self.beyond_count:,} cell(s) hold data right of the last header column "
                    f"({column_letter(self.width - 1) if self.width else 'none'}): {shown}; "
                    "name the column or delete the data",
                )
            )
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
    problems: list[Problem] = []
    builder: _SheetBuilder | None = None
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as stream:
            for event, element in iterparse(stream, events=("start", "end")):
                if event == "start":
                    if element.tag == TABLE:
                        builder = _SheetBuilder(
                            element.get(_q("table", "name"), f"Sheet{len(sheets) + 1}"), problems
                        )
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
    return RawWorkbook(path, sheets, file_sha256(path), problems)
