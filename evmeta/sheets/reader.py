"""Read raw cells from an extraction workbook (.xlsx) or a folder of CSV files.

Nothing here interprets a cell: it returns what is in the file with its position, and flags
cells that must never be trusted (formulas, Excel error values, dates, merged ranges).
Formulas are never evaluated: openpyxl is asked for the formula text, not a cached value.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evmeta.errors import Problem

#: Largest input file accepted, in bytes (an extraction workbook is typically < 5 MB).
MAX_FILE_BYTES = 50 * 1024 * 1024
#: Largest uncompressed size of an .xlsx archive (zip-bomb guard), in bytes.
MAX_UNCOMPRESSED_BYTES = 500 * 1024 * 1024

EXCEL_ERRORS = frozenset(
    {
        "#DIV/0!",
        "#N/A",
        "#NAME?",
        "#NULL!",
        "#NUM!",
        "#REF!",
        "#VALUE!",
        "#GETTING_DATA",
        "#SPILL!",
        "#CALC!",
        "#FIELD!",
        "#BLOCKED!",
        "#CONNECT!",
        "#BUSY!",
        "#UNKNOWN!",
    }
)


@dataclass(frozen=True)
class Cell:
    """One cell as stored: ``kind`` is value, formula, error or date."""

    value: Any
    kind: str = "value"


@dataclass
class RawSheet:
    """One sheet's header and non-empty data rows, with Excel row numbers (header = 1)."""

    name: str
    header: list[str]
    rows: list[tuple[int, list[Cell]]]
    merged: list[str] = field(default_factory=list)
    header_row: int = 1


@dataclass
class RawWorkbook:
    """Every sheet of one input, plus what was noticed while reading it."""

    path: Path
    sheets: dict[str, RawSheet]
    sha256: str
    problems: list[Problem] = field(default_factory=list)


class UnreadableInput(Exception):
    """The input is not a workbook or CSV folder evmeta can read; the message says why."""


def column_letter(index: int) -> str:
    """Excel column letter for a 0-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _is_blank(cell: Cell) -> bool:
    return cell.value is None or (isinstance(cell.value, str) and not cell.value.strip())


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UnreadableInput(
            f"{path.name} is {size / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB. "
            "An extraction workbook should be far smaller: remove embedded images or split it."
        )


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of every CSV in a folder (sorted by name)."""
    digest = hashlib.sha256()
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    for item in files:
        if path.is_dir():
            digest.update(item.name.encode())
        digest.update(item.read_bytes())
    return digest.hexdigest()


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
    _check_size(path)
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


def _convert_xlsx_cell(cell: Any) -> Cell:
    from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

    value = cell.value
    if value is None:
        return Cell(None)
    if cell.data_type == "f" or isinstance(value, (ArrayFormula, DataTableFormula)):
        text = value.text if isinstance(value, ArrayFormula) else str(value)
        return Cell(text, "formula")
    if cell.data_type == "e" or (isinstance(value, str) and value.strip().upper() in EXCEL_ERRORS):
        return Cell(str(value), "error")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time, _dt.timedelta)):
        return Cell(value, "date")
    return Cell(value)


def _read_xlsx(path: Path) -> RawWorkbook:
    _check_zip(path)
    import openpyxl
    import openpyxl.xml

    # openpyxl parses through defusedxml when it is installed; refuse to run without it.
    if not getattr(openpyxl.xml, "DEFUSEDXML", False):
        raise RuntimeError("defusedxml is required to read workbooks safely; pip install defusedxml")
    try:
        book = openpyxl.load_workbook(path, data_only=False, read_only=False, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for corrupt files
        raise UnreadableInput(f"{path.name} could not be opened as an Excel workbook: {exc}") from None
    sheets: dict[str, RawSheet] = {}
    try:
        for worksheet in book.worksheets:
            merged = [str(r) for r in worksheet.merged_cells.ranges]
            rows_iter = worksheet.iter_rows()
            header: list[str] = []
            rows: list[tuple[int, list[Cell]]] = []
            for excel_row, row in enumerate(rows_iter, start=1):
                cells = [_convert_xlsx_cell(c) for c in row]
                if excel_row == 1:
                    header = ["" if c.value is None else str(c.value).strip() for c in cells]
                    continue
                if all(_is_blank(c) for c in cells):
                    continue
                rows.append((excel_row, cells))
            sheets[worksheet.title] = RawSheet(worksheet.title, header, rows, merged)
    finally:
        book.close()
    return RawWorkbook(path, sheets, file_sha256(path))


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
    text, note = _decode(path.read_bytes(), path.name)
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
            rows.append((number, cells))
    except csv.Error as exc:
        raise UnreadableInput(f"{path.name} is not a well-formed CSV file: {exc}") from None
    return RawSheet(sheet_name, header, rows), problems


def _csv_cell(text: str) -> Cell:
    stripped = text.strip()
    if not stripped:
        return Cell(None)
    if stripped.upper() in EXCEL_ERRORS:
        return Cell(stripped, "error")
    if stripped.startswith("=") and len(stripped) > 1:
        return Cell(stripped, "formula")  # typed as a formula in a spreadsheet, then saved as CSV
    return Cell(text)


def _read_csv_folder(path: Path) -> RawWorkbook:
    files = sorted(path.glob("*.csv"))
    if not files:
        raise UnreadableInput(f"{path} contains no .csv files; expected one CSV file per sheet")
    sheets: dict[str, RawSheet] = {}
    problems: list[Problem] = []
    for item in files:
        sheet, found = _read_csv_file(item)
        sheets[sheet.name] = sheet
        problems.extend(found)
    return RawWorkbook(path, sheets, file_sha256(path), problems)
