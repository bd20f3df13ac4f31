"""Lowest layer: reading raw cells from workbooks and CSV files, and safe export."""

from evmeta.sheets.export import neutralize_formulas, write_csv
from evmeta.sheets.reader import Cell, RawSheet, RawWorkbook, UnreadableInput, column_letter, read_raw

__all__ = [
    "Cell",
    "RawSheet",
    "RawWorkbook",
    "UnreadableInput",
    "column_letter",
    "neutralize_formulas",
    "read_raw",
    "write_csv",
]
