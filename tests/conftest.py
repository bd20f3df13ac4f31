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


#: Test modules outside the inner-loop tier (``make test-fast``, ``-m fast``): end-to-end
#: runs of the pipeline, CLI, report, figures and LibreOffice, and the hostile-input suites.
#: Every other test is marked ``fast``; the full suite (``make test``) runs them all.
END_TO_END = {
    "test_cli_newcomer",
    "test_project_update",
    "test_digitized",
    "test_figure_forest",
    "test_figure_layout",
    "test_figure_layout_evidence",
    "test_figure_workers",
    "test_hostile_cli",
    "test_hostile_fuzz",
    "test_hostile_review",
    "test_hostile_sheets",
    "test_multiverse",
    "test_ods",
    "test_pipeline",
    "test_plots",
    "test_prisma",
    "test_docs_examples",
    "test_core_only",
    "test_export_r",
    "test_report_browser",
    "test_report_results",
    "test_screening",
    "test_template",
}


def pytest_collection_modifyitems(config, items):
    """Mark every test outside :data:`END_TO_END` as ``fast``."""
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] not in END_TO_END:
            item.add_marker(pytest.mark.fast)
