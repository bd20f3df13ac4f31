"""The comparison table as a file: one sheet of a CSV file or workbook, and its header.

Header text maps to the column index; a header typed twice is refused, naming both
columns (the last one would otherwise win without a word).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from evmeta.errors import SpecError
from evmeta.sheets.raw import column_letter
from evmeta.sheets.reader import RawSheet, UnreadableInput, read_raw


def read_table(path: str | Path, sheet: str | None = None) -> RawSheet:
    """The table's header and rows, from a CSV file or one sheet of an .xlsx workbook."""
    try:
        book = read_raw(path)
    except UnreadableInput as exc:
        raise SpecError(str(exc)) from None
    if Path(path).is_dir():
        raise SpecError(f"{path} is a folder; give the CSV file or workbook holding the table")
    if sheet is None:
        return next(iter(book.sheets.values()))
    if sheet not in book.sheets:
        raise SpecError(f"{path}: no sheet {sheet!r}; sheets: {', '.join(book.sheets)}")
    return book.sheets[sheet]


def header_index(header: list[str]) -> dict[str, int]:
    """Header text (stripped) -> column index, read from the table's own header cells (no
    pandas ``x.1`` renaming). Two columns with one header are an error naming both: the
    last one would otherwise win without a word."""
    positions: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(header):
        if str(h).strip():
            positions[str(h).strip()].append(i)
    twice = {text: found for text, found in positions.items() if len(found) > 1}
    if twice:
        listed = "; ".join(
            f"{len(found)} columns headed {text!r} ({' and '.join(f'column {column_letter(i)}' for i in found)})"
            for text, found in twice.items()
        )
        raise SpecError(f"the table has {listed}: evmeta cannot tell which one is meant; rename all but one")
    return {h: found[0] for h, found in positions.items()}
