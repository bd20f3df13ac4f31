"""Ids and cross-sheet keys: duplicated ids named at their cell, foreign keys that resolve to a
valid row (rows that depend on a rejected row are left out with a message saying so)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evmeta.schema.cells import coerce
from evmeta.schema.collector import _Collector
from evmeta.schema.columns import ID_COLUMNS, SHEETS, Column
from evmeta.schema.row_rules import _check_consistency, _fill_dose_schedules
from evmeta.sheets.reader import RawSheet


def _check_ids(
    sheet_name: str,
    rows: list[dict[str, Any]],
    out: _Collector,
    letters: dict[str, str],
    typed: dict[str, list[int]] | None = None,
) -> list[dict[str, Any]]:
    """Drop rows whose id was typed on an earlier row (valid or not) of the same sheet."""
    id_column = ID_COLUMNS.get(sheet_name)
    if sheet_name == "risk_of_bias":
        key = lambda r: (r.get("study_id"), r.get("experiment_id"))  # noqa: E731
        label = "study_id/experiment_id"
    elif id_column:
        key = lambda r: r.get(id_column)  # noqa: E731
        label = id_column
    else:
        return rows
    # The first row typed with each id, even one with errors (then it is not in ``rows``).
    first: dict[Any, int] = {}
    if typed and id_column and sheet_name != "risk_of_bias":
        first = {k: min(r) for k, r in typed.items()}
    kept = []
    for row in rows:
        k = key(row)
        if k in first and first[k] < row["_row"]:
            out.add(
                sheet_name,
                row["_row"],
                label.split("/")[0],
                k if not isinstance(k, tuple) else "/".join(filter(None, k)),
                f"duplicated id: the same {label} is on row {first[k]}",
                letter=letters.get(label.split("/")[0]),
            )
            continue
        first[k] = row["_row"]
        kept.append(row)
    if typed and id_column and sheet_name != "risk_of_bias":
        # Later rows with other errors: name the duplicate at its cell too.
        valid_rows = {row["_row"] for row in rows}
        for k, typed_rows in typed.items():
            for excel_row in typed_rows[1:]:
                if excel_row not in valid_rows:
                    out.add(
                        sheet_name,
                        excel_row,
                        id_column,
                        k,
                        f"duplicated id: the same {label} is on row {typed_rows[0]}",
                        letter=letters.get(id_column),
                    )
    return kept


_FOREIGN_KEYS = [
    ("preparations", "study_id", "studies"),
    ("experiments", "study_id", "studies"),
    ("arms", "experiment_id", "experiments"),
    ("arms", "prep_id", "preparations"),
    ("outcomes", "experiment_id", "experiments"),
    ("outcomes", "arm_id", "arms"),
    ("risk_of_bias", "study_id", "studies"),
    ("risk_of_bias", "experiment_id", "experiments"),
]


def _check_keys(
    tables: dict[str, list[dict[str, Any]]],
    typed_ids: dict[str, dict[str, list[int]]],
    out: _Collector,
    letters,
) -> None:
    """Drop rows whose foreign keys do not resolve to a valid row (in sheet order, so drops cascade)."""
    for sheet_name in SHEETS:
        rows = tables.get(sheet_name)
        if rows is None:
            continue
        keep = []
        parent_ids = {
            parent: {r[ID_COLUMNS[parent]] for r in tables[parent]}
            for child, _, parent in _FOREIGN_KEYS
            if child == sheet_name and parent in tables
        }
        for row in rows:
            ok = True
            for child, column, parent in _FOREIGN_KEYS:
                if child != sheet_name or not row.get(column) or parent not in tables:
                    continue
                value = row[column]
                if value in parent_ids[parent]:
                    continue
                ok = False
                why = _unresolved(value, parent, typed_ids.get(parent, {}).get(value, []))
                out.add(sheet_name, row["_row"], column, value, why, letter=letters[sheet_name].get(column))
            if ok:
                keep.append(row)
        tables[sheet_name] = keep
    _fill_dose_schedules(tables, out, letters)
    _check_consistency(tables, out, letters)


def _unresolved(value: Any, parent: str, typed_rows: list[int]) -> str:
    """Why a foreign key names no valid row: absent, on a row with errors, or duplicated."""
    if not typed_rows:
        return f"{value!r} is not a {ID_COLUMNS[parent]} on the {parent} sheet"
    if len(typed_rows) == 1:
        return f"refers to {parent} row {typed_rows[0]}, which has errors"
    listed = ", ".join(map(str, typed_rows[:-1])) + f" and {typed_rows[-1]}"
    return (
        f"refers to {value!r}, which is typed on {parent} rows {listed}: the id is duplicated and "
        "those rows have errors; fix them first"
    )


def _typed_ids(sheet: RawSheet, index: int, column: Column) -> dict[str, list[int]]:
    """Id as read (same coercion as validation) -> every Excel row it was typed on."""
    found: dict[str, list[int]] = defaultdict(list)
    for excel_row, cells in sheet.rows:
        if index < len(cells):
            value, _, _ = coerce(cells[index], column)
            if value is not None:
                found[value].append(excel_row)
    return dict(found)
