"""Shared fixtures: paths to the example workbook and helpers to plant mistakes in copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "extraction" / "example.xlsx"
DATA = ROOT / "tests" / "data"


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A fresh copy of the example workbook that a test may edit."""
    target = tmp_path / "book.xlsx"
    shutil.copy(EXAMPLE, target)
    return target


def header_index(sheet, name: str) -> int:
    """1-based column index of header ``name`` on ``sheet``."""
    for cell in sheet[1]:
        if cell.value == name:
            return cell.column
    raise KeyError(name)


def set_cell(book, sheet: str, row: int, column: str, value, data_type: str | None = None) -> str:
    """Write ``value`` into the named column; returns the Excel column letter."""
    ws = book[sheet]
    cell = ws.cell(row=row, column=header_index(ws, column))
    cell.value = value
    if data_type:
        cell.data_type = data_type
    return cell.column_letter


def edit(path: Path):
    """Open a workbook for editing (caller saves)."""
    return openpyxl.load_workbook(path)
