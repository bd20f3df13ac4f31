"""Ids and cross-sheet keys: duplicated ids named at their cell, foreign keys that resolve to a
valid row (rows that depend on a rejected row are left out with a message saying so)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evmeta.schema.cells import coerce
from evmeta.schema.columns import ID_COLUMNS, SHEETS, Column
from evmeta.schema.validation.collector import _Collector
from evmeta.schema.validation.dose_check import check_dose_texts
from evmeta.schema.validation.pairing import check_pairing
from evmeta.schema.validation.row_rules import _check_consistency, _fill_dose_schedules
from evmeta.schema.validation.suggest import did_you_mean
from evmeta.sheets.reader import RawSheet

#: The columns that identify a row of each sheet (risk_of_bias rows by study and experiment).
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    **{sheet: (column,) for sheet, column in ID_COLUMNS.items()},
    "risk_of_bias": ("study_id", "experiment_id"),
}


def _row_key(row: dict[str, Any], columns: tuple[str, ...]) -> Any:
    """The key of a validated row: the id itself, or a tuple for a composite key."""
    return row.get(columns[0]) if len(columns) == 1 else tuple(row.get(c) for c in columns)


def _show_key(key: Any) -> Any:
    """A composite key as typed (``'ZHANG2020/E1'``); a single id unchanged."""
    return "/".join(str(part) for part in key if part is not None) if isinstance(key, tuple) else key


def _check_ids(
    sheet_name: str,
    rows: list[dict[str, Any]],
    out: _Collector,
    letters: dict[str, str],
    typed: dict[Any, list[int]] | None = None,
) -> list[dict[str, Any]]:
    """Drop rows whose key was typed on an earlier row (valid or not) of the same sheet.

    Parameters
    ----------
    sheet_name
        The sheet the rows come from.
    rows
        Rows that passed cell and row validation, in sheet order.
    out
        Collects the problems.
    letters
        Column name -> Excel column letter on this sheet.
    typed
        Key as read -> every Excel row it was typed on, rows with errors included (from
        :func:`_typed_keys`); keys of :data:`KEY_COLUMNS`, tuples for composite keys. Without it
        only duplicates among valid rows are found.

    Returns
    -------
    list of dict
        The rows whose key was not typed on an earlier row.
    """
    columns = KEY_COLUMNS.get(sheet_name)
    if not columns:
        return rows
    label = "/".join(columns)
    # Problems are named at the first key column (the id, or study_id of a composite key).
    column = columns[0]
    # The first row typed with each key, even one with errors (then it is not in ``rows``).
    first: dict[Any, int] = {k: min(r) for k, r in typed.items()} if typed else {}
    kept = []
    for row in rows:
        k = _row_key(row, columns)
        if k in first and first[k] < row["_row"]:
            out.add(
                sheet_name,
                row["_row"],
                column,
                _show_key(k),
                f"duplicated id: the same {label} is on row {first[k]}",
                letter=letters.get(column),
            )
            continue
        first[k] = row["_row"]
        kept.append(row)
    if typed:
        # Later rows with other errors: name the duplicate at its cell too.
        valid_rows = {row["_row"] for row in rows}
        for k, typed_rows in typed.items():
            for excel_row in typed_rows[1:]:
                if excel_row not in valid_rows:
                    out.add(
                        sheet_name,
                        excel_row,
                        column,
                        _show_key(k),
                        f"duplicated id: the same {label} is on row {typed_rows[0]}",
                        letter=letters.get(column),
                    )
    return kept


_FOREIGN_KEYS = [
    ("preparations", "study_id", "studies"),
    ("experiments", "study_id", "studies"),
    ("arms", "experiment_id", "experiments"),
    ("arms", "prep_id", "preparations"),
    ("arms", "control_arm_id", "arms"),
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
    broken: list[dict[str, Any]] | None = None,
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
                typed_rows = typed_ids.get(parent, {}).get(value, [])
                if len(typed_rows) == 1:
                    # Only a consequence: folded into the line of the row with errors.
                    out.depend(sheet_name, row["_row"], parent, typed_rows[0])
                    continue
                why = _unresolved(value, parent, typed_rows, typed_ids.get(parent, {}))
                out.add(sheet_name, row["_row"], column, value, why, letter=letters[sheet_name].get(column))
            if ok:
                keep.append(row)
        tables[sheet_name] = keep
    _fill_dose_schedules(tables, out, letters)
    check_dose_texts(tables, out, letters)
    _check_consistency(tables, out, letters, typed_ids)
    check_pairing(tables, out, letters, broken)


def broken_rows(
    sheet: RawSheet, mapped: dict[int, Column], valid: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The cells that could be read of the rows of ``sheet`` not in ``valid`` (rows with errors).

    Each dict has the readable values by column name, ``_row``, and ``_time_unreadable``
    (True when the ``timepoint`` cell holds something that is not a number).
    """
    good = {row["_row"] for row in valid}
    out = []
    for excel_row, cells in sheet.rows:
        if excel_row in good:
            continue
        row: dict[str, Any] = {"_row": excel_row, "_time_unreadable": False}
        for index, column in mapped.items():
            if index >= len(cells):
                continue
            value, error, _ = coerce(cells[index], column, sheet.decimal)
            if error and column.name == "timepoint":
                row["_time_unreadable"] = True
            if value is not None:
                row[column.name] = value
        out.append(row)
    return out


def _unresolved(value: Any, parent: str, typed_rows: list[int], typed: dict[Any, list[int]]) -> str:
    """Why a foreign key names no valid row: absent (with the closest id), on a row with
    errors, or duplicated."""
    if not typed_rows:
        return f"{value!r} is not a {ID_COLUMNS[parent]} on the {parent} sheet{did_you_mean(value, typed)}"
    if len(typed_rows) == 1:
        return f"refers to {parent} row {typed_rows[0]}, which has errors"
    listed = ", ".join(map(str, typed_rows[:-1])) + f" and {typed_rows[-1]}"
    return (
        f"refers to {value!r}, which is typed on {parent} rows {listed}: the id is duplicated and "
        "those rows have errors; fix them first"
    )


def _typed_ids(sheet: RawSheet, index: int, column: Column) -> dict[str, list[int]]:
    """Id as read (same coercion as validation) -> every Excel row it was typed on."""
    return _typed_keys(sheet, {index: column}, (column.name,))


def _typed_keys(sheet: RawSheet, mapped: dict[int, Column], columns: tuple[str, ...]) -> dict[Any, list[int]]:
    """Key as read (same coercion as validation) -> every Excel row it was typed on.

    Parameters
    ----------
    sheet
        The sheet as read.
    mapped
        Header index -> column spec, as the header was mapped.
    columns
        The key columns (see :data:`KEY_COLUMNS`); one without a header reads as empty, as it
        does in the validated rows.

    Returns
    -------
    dict
        The id itself for a one-column key, a tuple of the parts for a composite key -> Excel
        rows. Rows whose first key cell is empty, or whose key cell holds an unreadable value,
        are left out: their key is not known.
    """
    where = {c.name: (i, c) for i, c in mapped.items()}
    found: dict[Any, list[int]] = defaultdict(list)
    for excel_row, cells in sheet.rows:
        parts: list[Any] = []
        for name in columns:
            located = where.get(name)
            if located is None or located[0] >= len(cells):
                parts.append(None)
                continue
            index, column = located
            value, error, _ = coerce(cells[index], column)
            if error:
                break
            parts.append(value)
        else:
            if parts[0] is not None:
                found[parts[0] if len(parts) == 1 else tuple(parts)].append(excel_row)
    return dict(found)
