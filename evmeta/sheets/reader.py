"""Read raw cells from an extraction workbook (.xlsx) or a folder of CSV files.

Nothing here interprets a cell: it returns what is in the file with its position, and flags
cells that must never be trusted (formulas, Excel error values, dates, merged ranges).
Formulas are never evaluated: openpyxl is asked for the formula text, not a cached value.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
import zipfile
from pathlib import Path
from typing import Any

from evmeta._paths import PathError, read_bytes_capped
from evmeta.errors import Problem
from evmeta.sheets.raw import (  # re-exported: callers import them from here too
    EMPTY,
    EXCEL_ERRORS,
    MAX_COLUMNS,
    MAX_FILE_BYTES,
    MAX_ROWS,
    MAX_UNCOMPRESSED_BYTES,
    Cell,
    RawSheet,
    RawWorkbook,
    UnreadableInput,
    _check_size,
    _csv_files,
    _is_blank,
    column_letter,
    file_sha256,
)


def read_raw(path: str | Path) -> RawWorkbook:
    """Read an ``.xlsx`` workbook or a folder of CSV files into raw sheets.

    Raises
    ------
    UnreadableInput
        When the path does not exist, is too large, or is not a readable workbook.
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableInput(f"{path} does not exist")
    if path.is_dir():
        return _read_csv_folder(path)
    _check_size(path)  # before any open(): opening a FIFO blocks until a writer comes
    suffix = path.suffix.lower()
    if suffix == ".csv":
        sheet, problems = _read_csv_file(path)
        return RawWorkbook(path, {sheet.name: sheet}, file_sha256(path), problems)
    if suffix in {".xlsx", ".xlsm"}:
        return _read_xlsx(path)
    if suffix == ".ods":  # LibreOffice Calc; same RawSheet rows and cell names (evmeta.sheets.ods)
        from evmeta.sheets.ods import read_ods

        return read_ods(path)
    raise UnreadableInput(
        f"{path.name}: expected an Excel (.xlsx) or LibreOffice (.ods) workbook, or a folder of CSV files, "
        f"got '{suffix or 'no extension'}'"
    )


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableInput(
            f"{path.name} is not an Excel workbook (.xlsx is a zip archive; this file is not one: {exc})"
        ) from None
    if total > MAX_UNCOMPRESSED_BYTES:
        raise UnreadableInput(
            f"{path.name} unpacks to {total / 1e6:.0f} MB, over the {MAX_UNCOMPRESSED_BYTES / 1e6:.0f} MB limit"
        )
    if "xl/workbook.xml" not in names:
        raise UnreadableInput(f"{path.name} is a zip archive but not an Excel workbook (no xl/workbook.xml)")


def _read_xlsx(path: Path) -> RawWorkbook:
    _check_zip(path)
    import openpyxl
    import openpyxl.xml

    # openpyxl parses through defusedxml when it is installed; refuse to run without it.
    if not getattr(openpyxl.xml, "DEFUSEDXML", False):
        raise RuntimeError("defusedxml is required to read workbooks safely; pip install defusedxml")
    try:
        # read_only: rows are streamed from the sheet XML, never held as a full grid.
        book = openpyxl.load_workbook(path, data_only=False, read_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for corrupt files
        raise UnreadableInput(f"{path.name} could not be opened as an Excel workbook: {exc}") from None
    sheets: dict[str, RawSheet] = {}
    problems: list[Problem] = []
    try:
        for worksheet in book.worksheets:
            try:
                sheet = _stream_sheet(book, worksheet, problems)
            except UnreadableInput:
                raise
            except Exception as exc:  # a malformed sheet part: name it instead of a traceback
                raise UnreadableInput(
                    f"{path.name}: sheet {worksheet.title!r} could not be read: {exc}"
                ) from None
            sheets[sheet.name] = sheet
    finally:
        book.close()
    return RawWorkbook(path, sheets, file_sha256(path), problems)


def _stream_sheet(book: Any, worksheet: Any, problems: list[Problem]) -> RawSheet:
    """Read one sheet row by row; the cost follows the cells that hold data.

    openpyxl's read-only worksheet pads every row to the sheet's declared extent (one cell
    at ``XFD1048576`` means a million rows of 16,384 cells), so the sheet XML is parsed here
    with openpyxl's own streaming parser, which yields only the cells present in the file.
    Data rows keep the columns up to the header's last non-empty cell; a value further
    right is reported as an error at its cell.
    """
    from openpyxl.worksheet._reader import WorkSheetParser

    name = worksheet.title
    sheet = RawSheet(name, [], [], hidden=getattr(worksheet, "sheet_state", "visible") != "visible")
    beyond: list[str] = []  # the first few cells right of the header, for the message
    beyond_count = 0
    with worksheet._get_source() as source:
        parser = WorkSheetParser(
            source,
            worksheet._shared_strings,
            data_only=False,
            epoch=book.epoch,
            date_formats=book._date_formats,
            timedelta_formats=book._timedelta_formats,
        )
        width = 0
        for excel_row, raw_cells in parser.parse():
            present = [c for c in raw_cells if c["value"] is not None]
            if excel_row == 1:
                sheet.header = _header(present, name, problems)
                width = len(sheet.header)
                continue
            if not present:
                continue
            if len(sheet.rows) >= MAX_ROWS:
                raise UnreadableInput(
                    f"sheet {name!r} has more than {MAX_ROWS:,} data rows (row {excel_row}); "
                    "an extraction sheet should be far smaller: delete stray content below the data"
                )
            cells = [EMPTY] * width
            for raw in present:
                index = raw["column"] - 1
                if index < width:
                    cells[index] = _convert_parsed_cell(raw)
                elif not _is_blank(_convert_parsed_cell(raw)):
                    beyond_count += 1
                    if len(beyond) < 10:
                        beyond.append(f"{column_letter(index)}{excel_row}")
            if any(not _is_blank(c) for c in cells):
                sheet.rows.append((excel_row, cells))
                dimension = parser.row_dimensions.get(str(excel_row), {})
                if str(dimension.get("hidden", "0")).lower() in {"1", "true"}:
                    sheet.hidden_rows.append(excel_row)
        if parser.merged_cells is not None:
            sheet.merged = [str(m.ref) for m in parser.merged_cells.mergeCell]
        sheet.hidden_columns = _hidden_columns(parser.column_dimensions, width)
    if beyond:
        shown = ", ".join(beyond) + (f" and {beyond_count - 10} more" if beyond_count > 10 else "")
        problems.append(
            Problem(
                name,
                None,
                None,
                None,
                f"{beyond_count} cell(s) hold data right of the last header column "
                f"({column_letter(width - 1) if width else 'none'}): {shown}; name the column or delete the data",
            )
        )
    return sheet


def _header(present: list[dict], sheet_name: str, problems: list[Problem]) -> list[str]:
    """Header texts up to the last non-empty header cell (at most MAX_COLUMNS)."""
    texts = {c["column"] - 1: str(c["value"]).strip() for c in present}
    texts = {i: t for i, t in texts.items() if t}
    too_far = sorted(i for i in texts if i >= MAX_COLUMNS)
    if too_far:
        problems.append(
            Problem(
                sheet_name,
                1,
                None,
                None,
                f"header cell(s) beyond column {column_letter(MAX_COLUMNS - 1)} ignored "
                f"({', '.join(column_letter(i) + '1' for i in too_far[:5])}); "
                f"a sheet may have at most {MAX_COLUMNS} columns",
            )
        )
    kept = [i for i in texts if i < MAX_COLUMNS]
    width = max(kept) + 1 if kept else 0
    return [texts.get(i, "") for i in range(width)]


def _hidden_columns(dimensions: dict[str, dict], width: int) -> list[int]:
    """0-based indexes (< width) of columns marked hidden (``<col min max hidden>``)."""
    hidden: list[int] = []
    for attrs in dimensions.values():
        if str(attrs.get("hidden", "0")).lower() not in {"1", "true"}:
            continue
        try:
            first, last = int(attrs["min"]), int(attrs["max"])
        except (KeyError, ValueError):
            continue
        hidden.extend(range(first - 1, min(last, width)))
    return sorted(set(hidden))


def _convert_parsed_cell(raw: dict) -> Cell:
    """A cell dict from openpyxl's sheet parser as a :class:`Cell` (formulas never evaluated)."""
    from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

    value, data_type = raw["value"], raw["data_type"]
    if value is None:
        return EMPTY
    if data_type == "f" or isinstance(value, (ArrayFormula, DataTableFormula)):
        text = value.text if isinstance(value, ArrayFormula) else str(value)
        return Cell(text, "formula")
    if data_type == "e" or (isinstance(value, str) and value.strip().upper() in EXCEL_ERRORS):
        return Cell(str(value), "error")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time, _dt.timedelta)):
        return Cell(value, "date")
    return Cell(value)


def _decode(data: bytes, name: str) -> tuple[str, str | None]:
    """Decode CSV bytes: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data:
        raise UnreadableInput(f"{name} contains binary data (NUL bytes); expected a text CSV file")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        return text, f"{name} is not UTF-8; it was read as Windows-1252. Check accented letters and µ."


def _read_csv_file(path: Path) -> tuple[RawSheet, list[Problem]]:
    _check_size(path)
    try:
        data = read_bytes_capped(path, max_bytes=MAX_FILE_BYTES)
    except PathError as exc:
        raise UnreadableInput(str(exc)) from None
    text, note = _decode(data, path.name)
    problems = []
    sheet_name = path.stem
    if note:
        problems.append(Problem(sheet_name, None, None, None, note, "note"))
    sample = text[:20000]
    try:
        dialect = csv.Sniffer().sniff(sample.splitlines()[0] if sample else ",", delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    if delimiter != ",":
        problems.append(
            Problem(
                sheet_name,
                None,
                None,
                None,
                f"read with {delimiter!r} as the delimiter (not a comma)",
                "note",
            )
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    rows: list[tuple[int, list[Cell]]] = []
    try:
        for number, raw in enumerate(reader, start=1):
            if number == 1:
                header = [h.strip() for h in raw]
                continue
            cells = [_csv_cell(v) for v in raw]
            if all(_is_blank(c) for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise UnreadableInput(f"{path.name} has more than {MAX_ROWS:,} data rows (row {number})")
            rows.append((number, cells))
    except csv.Error as exc:
        raise UnreadableInput(f"{path.name} is not a well-formed CSV file: {exc}") from None
    # A semicolon is what a spreadsheet writes where the comma is the decimal separator.
    decimal = _decimal_separator(rows) if delimiter == ";" else "."
    if decimal == ",":
        problems.append(
            Problem(
                sheet_name,
                None,
                None,
                None,
                "numbers are read with ',' as the decimal separator (8,4 = 8.4): the file is "
                "separated by ';' and its numbers have decimal commas",
                "note",
            )
        )
    return RawSheet(sheet_name, header, rows, decimal=decimal), problems


#: Whole cells that only a decimal-comma program writes: 8,4; 9,08E+11; 1.234,50; 1.500.000.000.
_DECIMAL_COMMA = re.compile(
    r"^\s*[-+−]?(?:\d*,\d+(?:[eE][-+]?\d+)?|\d{1,3}(?:\.\d{3})+,\d+|\d{1,3}(?:\.\d{3}){2,})\s*$"
)


def _decimal_separator(rows: list[tuple[int, list[Cell]]]) -> str:
    """ "," when a semicolon file's cells hold numbers with a decimal comma (``8,4``), else ".".

    A semicolon file from a point-decimal program keeps the usual rules; one cell with a
    decimal comma is enough to read the whole file the decimal-comma way.
    """
    for _, cells in rows:
        for cell in cells:
            if isinstance(cell.value, str) and _DECIMAL_COMMA.match(cell.value):
                return ","
    return "."


def _csv_cell(text: str) -> Cell:
    stripped = text.strip()
    if not stripped:
        return EMPTY
    if stripped.upper() in EXCEL_ERRORS:
        return Cell(stripped, "error")
    if stripped.startswith("=") and len(stripped) > 1:
        return Cell(stripped, "formula")  # typed as a formula in a spreadsheet, then saved as CSV
    return Cell(text)


def _read_csv_folder(path: Path) -> RawWorkbook:
    files = _csv_files(path)
    if not files:
        raise UnreadableInput(f"{path} contains no .csv files; expected one CSV file per sheet")
    sheets: dict[str, RawSheet] = {}
    problems: list[Problem] = []
    for item in files:
        sheet, found = _read_csv_file(item)
        sheets[sheet.name] = sheet
        problems.extend(found)
    return RawWorkbook(path, sheets, file_sha256(path), problems)
