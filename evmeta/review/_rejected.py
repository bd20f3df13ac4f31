"""Rows a validator rejected, carried through reconciliation instead of vanishing.

A row with an error is not in an extraction's tables. When both reviewers typed the same
invalid cell, comparing the tables alone would drop the row from the consensus workbook
and report "0 discrepancies"; these helpers read such rows as typed and turn each
rejected cell (or row) into a discrepancy of kind ``invalid in A|B|both: <message>``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from evmeta.schema.columns import ID_COLUMNS, SHEETS, column_map


def key_columns(sheet: str) -> list[str]:
    """Columns whose values identify a row of ``sheet`` (joined by "/")."""
    return ["study_id", "experiment_id"] if sheet == "risk_of_bias" else [ID_COLUMNS[sheet]]


def dict_key(values: dict[str, Any], sheet: str) -> str:
    return "/".join(_key_part(values.get(c)) for c in key_columns(sheet))


def _key_part(value: Any) -> str:
    """One identifying value as text ("" when empty or NaN)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def _snake(text: object) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).strip().casefold()).strip("_")


def invalid_rows(path: Path, extraction: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Rows the validator rejected, as typed: sheet -> key -> {column: raw value, _row, _errors}.

    A row with an error is not in the extraction's tables; reconciliation must still carry
    it into the consensus workbook (for correction) and count it as a discrepancy.
    """
    from evmeta.sheets.reader import read_raw

    raw = read_raw(path)
    errors: dict[tuple[str, int], list[Any]] = {}
    for problem in extraction.problems:
        if problem.severity == "error" and problem.row:
            errors.setdefault((problem.sheet, problem.row), []).append(problem)
    by_snake = {_snake(name): sheet for name, sheet in raw.sheets.items()}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for sheet_name in SHEETS:
        sheet = by_snake.get(sheet_name)
        if sheet is None:
            continue
        kept = (
            set(extraction.sheets[sheet_name]["_row"]) if "_row" in extraction.sheets[sheet_name] else set()
        )
        names = {i: _snake(h) for i, h in enumerate(sheet.header)}
        for excel_row, cells in sheet.rows:
            if excel_row in kept:
                continue
            values = {
                names[i]: str(c.value) if c.kind != "value" else c.value
                for i, c in enumerate(cells)
                if i in names and names[i] in column_map(sheet_name) and c.value is not None
            }
            values["_row"] = excel_row
            values["_errors"] = errors.get((sheet_name, excel_row)) or errors.get((sheet.name, excel_row), [])
            rows = out.setdefault(sheet_name, {})
            key = dict_key(values, sheet_name)
            rows[key if key not in rows else f"{key} (row {excel_row})"] = values
    return out


def _problem_column(problem: Any, sheet: str) -> str | None:
    return problem.column if problem.column in column_map(sheet) else None


def invalid_discrepancies(sheet: str, invalid_a: dict, invalid_b: dict) -> list[dict[str, Any]]:
    """One discrepancy per rejected cell (or row) of either reviewer, with both values."""
    found = []
    for key in dict.fromkeys([*invalid_a, *invalid_b]):
        row_a, row_b = invalid_a.get(key), invalid_b.get(key)
        who = "both" if row_a and row_b else ("A" if row_a else "B")
        problems = [*(row_a or {}).get("_errors", []), *(row_b or {}).get("_errors", [])]
        columns = dict.fromkeys(_problem_column(p, sheet) for p in problems) or {None: None}
        for column in columns:
            message = next((p.message for p in problems if _problem_column(p, sheet) == column), "")
            found.append(
                {
                    "sheet": sheet,
                    "key": key,
                    "column": column,
                    "value_a": (row_a or {}).get(column) if column else ("row present" if row_a else None),
                    "value_b": (row_b or {}).get(column) if column else ("row present" if row_b else None),
                    "row_a": (row_a or {}).get("_row"),
                    "row_b": (row_b or {}).get("_row"),
                    "kind": f"invalid in {who}: {message}" if message else f"invalid in {who}",
                }
            )
    return found
