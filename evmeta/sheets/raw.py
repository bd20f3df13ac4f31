"""What the sheet readers produce: raw cells with their positions, and the limits they keep.

Shared by the .xlsx/CSV reader (``evmeta.sheets.reader``) and the LibreOffice reader
(``evmeta.sheets.ods``), so neither imports the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evmeta._paths import MAX_INPUT_BYTES, PathError, read_bytes_capped, require_regular_file
from evmeta.errors import Problem, UnreadableInput

#: Largest input file accepted, in bytes (an extraction workbook is typically < 5 MB).
MAX_FILE_BYTES = MAX_INPUT_BYTES
#: Largest uncompressed size of an .xlsx archive, in bytes (the bundled example unpacks to
#: 0.6 MB; 5,000 outcome rows to about 10 MB). Measured (benchmarks/bench_reader_limits.py):
#: a sheet part of small numeric cells at this size peaks near 250 MB and parses in well
#: under a minute; a larger limit only buys longer parses of hostile files.
MAX_UNCOMPRESSED_BYTES = 32 * 1024 * 1024
#: Most data rows read per sheet (an extraction sheet holds hundreds to a few thousand).
MAX_ROWS = 50_000
#: Most header columns per sheet (the widest schema sheet has well under 100).
MAX_COLUMNS = 1_000
#: Most cells held per sheet, data rows x header columns (5,000 outcome rows of the widest
#: schema sheet hold about 300,000). An .xlsx is bounded by its unpacked size; an .ods can
#: repeat a row and a cell any number of times in a few bytes, so the count is capped.
MAX_CELLS = 2_000_000

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


#: The empty cell (shared: a row of a wide sheet costs nothing for its blank cells).
EMPTY = Cell(None)


@dataclass
class RawSheet:
    """One sheet's header and non-empty data rows, with Excel row numbers (header = 1)."""

    name: str
    header: list[str]
    rows: list[tuple[int, list[Cell]]]
    merged: list[str] = field(default_factory=list)
    header_row: int = 1
    #: Excel row numbers of data rows hidden in the workbook (they are still read).
    hidden_rows: list[int] = field(default_factory=list)
    #: 0-based indexes of header columns hidden in the workbook.
    hidden_columns: list[int] = field(default_factory=list)
    #: True when the sheet itself is hidden (or "very hidden").
    hidden: bool = False
    #: Decimal separator of numbers typed as text: "," for a semicolon CSV (a decimal-comma
    #: spreadsheet's export), else ".".
    decimal: str = "."


@dataclass
class RawWorkbook:
    """Every sheet of one input, plus what was noticed while reading it."""

    path: Path
    sheets: dict[str, RawSheet]
    sha256: str
    problems: list[Problem] = field(default_factory=list)


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
    """Refuse anything but a regular file within MAX_FILE_BYTES (FIFO, device, folder)."""
    try:
        require_regular_file(path, max_bytes=MAX_FILE_BYTES)
    except PathError as exc:
        raise UnreadableInput(
            f"{exc}. An extraction workbook should be far smaller than the limit: "
            "remove embedded images or split it."
            if "limit" in str(exc)
            else str(exc)
        ) from None


def _csv_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.csv") if not p.name.startswith("."))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of every CSV in a folder (sorted by name), read with a byte cap."""
    digest = hashlib.sha256()
    files = _csv_files(path) if path.is_dir() else [path]
    for item in files:
        if path.is_dir():
            digest.update(item.name.encode())
        try:
            digest.update(read_bytes_capped(item, max_bytes=MAX_FILE_BYTES))
        except PathError as exc:
            raise UnreadableInput(str(exc)) from None
    return digest.hexdigest()
