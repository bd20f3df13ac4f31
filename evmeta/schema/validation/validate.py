"""Validate an extraction: headers, cells, rows, ids and cross-sheet keys.

Validation collects every problem, then raises once (``ExtractionError``). Every non-empty
row of every sheet ends up either in the returned ``Extraction`` or named by an error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from rapidfuzz import fuzz, process

from evmeta.errors import ExtractionError, Problem
from evmeta.schema.cells import coerce, show
from evmeta.schema.columns import ID_COLUMNS, SHEETS, Column, column_map
from evmeta.schema.extraction import Extraction
from evmeta.schema.records import RECORDS
from evmeta.schema.validation.collector import _Collector
from evmeta.schema.validation.dispersion_check import check_dispersion
from evmeta.schema.validation.keys import (
    KEY_COLUMNS,
    _check_ids,
    _check_keys,
    _typed_ids,
    _typed_keys,
    broken_rows,
)
from evmeta.schema.validation.row_rules import _note_hidden
from evmeta.schema.vocabulary import isolation_steps
from evmeta.sheets.reader import Cell, RawSheet, UnreadableInput, column_letter, read_raw

#: Sheets written by the template that carry no data.
IGNORED_SHEETS = {"readme", "vocabulary", "vocabularies", "instructions"}
#: Minimum header similarity (0-100) to report an unknown header as a renamed column.
HEADER_THRESHOLD = 75.0


def _snake(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).strip().casefold()).strip("_")


def _match_sheets(raw: dict[str, RawSheet], out: _Collector) -> dict[str, RawSheet]:
    found: dict[str, RawSheet] = {}
    for name, sheet in raw.items():
        key = _snake(name)
        if key in IGNORED_SHEETS:
            continue
        if key in SHEETS and key not in found:
            if key != name:
                out.add(name, None, None, name, f"sheet read as {key!r}", "note")
            found[key] = sheet
            continue
        best = process.extractOne(key, list(SHEETS), scorer=fuzz.ratio, score_cutoff=80)
        if best and best[0] not in found and best[0] not in {_snake(n) for n in raw}:
            out.add(name, None, None, name, f"sheet read as {best[0]!r} (match score {best[1]:.0f})", "note")
            found[best[0]] = sheet
        elif sheet.rows:
            out.add(
                name,
                None,
                None,
                name,
                f"sheet {name!r} is not part of the extraction schema and was not read",
                "note",
            )
    return found


def _map_header(
    sheet_name: str, sheet: RawSheet, out: _Collector
) -> tuple[dict[int, Column], dict[int, str], bool]:
    """Header index -> column spec; index -> extra column name; whether the sheet is usable."""
    specs = column_map(sheet_name)
    mapped: dict[int, Column] = {}
    extras: dict[int, str] = {}
    renamed: list[tuple[int, str, str]] = []
    for index, header in enumerate(sheet.header):
        letter = column_letter(index)
        key = _snake(header)
        has_data = any(index < len(cells) and cells[index].value not in (None, "") for _, cells in sheet.rows)
        if not key:
            if has_data:
                out.add(
                    sheet_name,
                    1,
                    None,
                    None,
                    "column has data but no header; name it or delete the data",
                    letter=letter,
                )
            continue
        if key in specs:
            if any(c.name == key for c in mapped.values()):
                out.add(sheet_name, 1, key, header, f"duplicated column {key!r}", letter=letter)
                continue
            if key != header:
                out.add(sheet_name, 1, key, header, f"header {header!r} read as {key!r}", "note", letter)
            mapped[index] = specs[key]
            continue
        best = process.extractOne(key, list(specs), scorer=fuzz.ratio, score_cutoff=HEADER_THRESHOLD)
        if best:
            renamed.append((index, header, best[0]))
        else:
            extras[index] = key
            out.add(
                sheet_name,
                1,
                key,
                header,
                "column is not part of the schema; kept as an extra column",
                "note",
                letter,
            )
    present = {c.name for c in mapped.values()}
    for index, header, guess in renamed:
        letter = column_letter(index)
        if guess in present:
            extras[index] = _snake(header)
            out.add(
                sheet_name,
                1,
                _snake(header),
                header,
                "column is not part of the schema; kept as an extra column",
                "note",
                letter,
            )
        else:
            out.add(
                sheet_name,
                1,
                guess,
                header,
                f"unknown column {header!r}; did you mean {guess!r}?",
                letter=letter,
            )
    usable = True
    for column in SHEETS[sheet_name]:
        if column.required_header and column.name not in present:
            closest = process.extractOne(
                column.name, [_snake(h) for h in sheet.header if h], scorer=fuzz.ratio
            )
            hint = f"; closest header found: {closest[0]!r}" if closest and closest[1] >= 50 else ""
            out.add(sheet_name, 1, column.name, None, f"required column {column.name!r} is missing{hint}")
            usable = False
    return mapped, extras, usable


def _pydantic_message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required, but the cell is empty"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {show(limit)}, got {show(value)}"
    return f"{error['msg']}, got {show(value)}"


def _validate_rows(
    sheet_name: str,
    sheet: RawSheet,
    mapped: dict[int, Column],
    extras: dict[int, str],
    out: _Collector,
    file_label: str,
) -> list[dict[str, Any]]:
    model = RECORDS[sheet_name]
    letters = {c.name: column_letter(i) for i, c in mapped.items()}
    merged_rows: dict[int, str] = {}
    for ref in sheet.merged:
        from openpyxl.utils.cell import range_boundaries

        min_col, min_row, _, max_row = range_boundaries(ref)
        if max_row > 1:
            out.add(
                sheet_name,
                max(min_row, 2),
                None,
                ref,
                f"merged cells {ref}: unmerge them and fill every cell",
                letter=column_letter(min_col - 1),
            )
            for r in range(max(min_row, 2), max_row + 1):
                merged_rows[r] = ref
    valid: list[dict[str, Any]] = []
    for excel_row, cells in sheet.rows:
        record: dict[str, Any] = {}
        row_errors = 0
        for index, column in mapped.items():
            cell = cells[index] if index < len(cells) else Cell(None)
            value, error, note = coerce(cell, column, sheet.decimal)
            if error:
                out.add(sheet_name, excel_row, column.name, cell.value, error, letter=letters[column.name])
                row_errors += 1
            elif note:
                out.add(sheet_name, excel_row, column.name, cell.value, note, "note", letters[column.name])
            if value is not None:
                record[column.name] = value
        for index in range(len(sheet.header), len(cells)):
            if cells[index].value not in (None, ""):
                out.add(
                    sheet_name,
                    excel_row,
                    None,
                    cells[index].value,
                    "value in a column without a header; it would be lost",
                    letter=column_letter(index),
                )
                row_errors += 1
        if row_errors:
            continue
        try:
            checked = model.model_validate({k: v for k, v in record.items()})
        except ValidationError as exc:
            for err in exc.errors():
                if err["type"] == "row_rules":
                    for column_name, message in err["ctx"]["issues"]:
                        out.add(
                            sheet_name,
                            excel_row,
                            column_name,
                            record.get(column_name),
                            message,
                            letter=letters.get(column_name),
                        )
                    continue
                column_name = str(err["loc"][0]) if err["loc"] else None
                out.add(
                    sheet_name,
                    excel_row,
                    column_name,
                    record.get(column_name) if column_name is not None else None,
                    _pydantic_message(err),
                    letter=letters.get(column_name or ""),
                )
            continue
        if excel_row in merged_rows:
            continue
        row = checked.model_dump()
        for index, name in extras.items():
            cell = cells[index] if index < len(cells) else Cell(None)
            row[name] = None if cell.kind in {"formula", "error"} else cell.value
        row.update({"_file": file_label, "_sheet": sheet_name, "_row": excel_row})
        valid.append(row)
    return valid


def _frame(sheet_name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = [c.name for c in SHEETS[sheet_name]]
    frame = pd.DataFrame(rows)
    for name in columns:
        if name not in frame.columns:
            frame[name] = None
    extra = [c for c in frame.columns if c not in columns and not c.startswith("_")]
    frame = (
        frame[[*columns, *extra, "_file", "_sheet", "_row"]]
        if len(frame)
        else frame.reindex(columns=[*columns, "_file", "_sheet", "_row"])
    )
    if sheet_name == "preparations" and len(frame):
        steps = isolation_steps()
        codes = frame["isolation_method"].astype(str)
        frame["isolation_steps"] = codes.str.split("+").map(len)
        families = codes.map(lambda c: {steps[s]["family"] for s in c.split("+")})
        frame["isolation_family"] = families.map(lambda f: next(iter(f)) if len(f) == 1 else "combined")
        frame["isolation_gmp_scalable"] = codes.map(
            lambda c: all(steps[s]["gmp_scalable"] for s in c.split("+"))
        )
    return frame


def validate_extraction(path: str | Path) -> tuple[Extraction | None, list[Problem]]:
    """Read and validate; return the rows that passed and every problem (errors and notes).

    The Extraction is None only when the input could not be read at all.
    """
    out = _Collector()
    try:
        raw = read_raw(path)
    except UnreadableInput as exc:
        return None, [Problem(Path(path).name, None, None, None, str(exc))]
    except (OSError, PermissionError) as exc:
        return None, [Problem(Path(path).name, None, None, None, f"could not read the file: {exc}")]
    out.problems.extend(raw.problems)
    sheets = _match_sheets(raw.sheets, out)
    _note_hidden(sheets, out)
    if not sheets:
        found = ", ".join(repr(n) for n in raw.sheets) or "none"
        out.add(
            raw.path.name,
            None,
            None,
            None,
            f"not an extraction workbook: expected sheets {', '.join(SHEETS)}; found {found}",
        )
        return None, out.problems
    tables: dict[str, list[dict[str, Any]]] = {}
    typed_ids: dict[str, dict[str, list[int]]] = {}
    letters: dict[str, dict[str, str]] = {}
    broken: list[dict[str, Any]] = []
    for sheet_name in SHEETS:
        sheet = sheets.get(sheet_name)
        letters[sheet_name] = {}
        if sheet is None:
            out.add(
                sheet_name,
                None,
                None,
                None,
                f"sheet {sheet_name!r} is missing; it holds one row per {_describe(sheet_name)}",
            )
            continue
        mapped, extras, usable = _map_header(sheet_name, sheet, out)
        letters[sheet_name] = {c.name: column_letter(i) for i, c in mapped.items()}
        id_column = ID_COLUMNS.get(sheet_name)
        if id_column and id_column in letters[sheet_name]:
            index = next(i for i, c in mapped.items() if c.name == id_column)
            typed_ids[sheet_name] = _typed_ids(sheet, index, mapped[index])
        if not usable:
            if sheet.rows:
                first, last = sheet.rows[0][0], sheet.rows[-1][0]
                out.add(
                    sheet_name,
                    None,
                    None,
                    None,
                    f"{len(sheet.rows)} row(s) ({first}-{last}) not read because required columns are missing",
                )
            tables[sheet_name] = []
            continue
        rows = _validate_rows(sheet_name, sheet, mapped, extras, out, str(raw.path))
        typed_keys = typed_ids.get(sheet_name)
        if typed_keys is None and sheet_name in KEY_COLUMNS:
            # Composite keys (risk_of_bias): duplicates of a row with errors are found as for ids.
            typed_keys = _typed_keys(sheet, mapped, KEY_COLUMNS[sheet_name])
        tables[sheet_name] = _check_ids(sheet_name, rows, out, letters[sheet_name], typed_keys)
        if sheet_name == "outcomes":
            broken = broken_rows(sheet, mapped, tables[sheet_name])
    _check_keys(tables, typed_ids, out, letters, broken)
    check_dispersion(tables, out, letters)
    out.fold()
    if "studies" in sheets and not sheets["studies"].rows:
        out.add("studies", None, None, None, "no studies entered: the studies sheet has no rows yet", "note")
    frames = {name: _frame(name, tables.get(name, [])) for name in SHEETS}
    notes = [p for p in out.problems if p.severity == "note"]
    errors = [p for p in out.problems if p.severity == "error"]
    extraction = Extraction(frames, raw.path, raw.sha256, notes=notes, problems=errors)
    return extraction, out.problems


def _describe(sheet_name: str) -> str:
    from evmeta.schema.columns import SHEET_DESCRIPTIONS

    return SHEET_DESCRIPTIONS[sheet_name]


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Problems in sheet order (workbook order, then others), then row, then column."""
    order = {name: i for i, name in enumerate(SHEETS)}
    return sorted(
        problems,
        key=lambda p: (
            order.get(p.sheet, len(order)),
            p.sheet,
            p.row or 0,
            p.column_letter or "",
            p.column or "",
        ),
    )


def read_extraction(path: str | Path, *, strict: bool = True) -> Extraction:
    """Read and validate an extraction workbook (.xlsx) or a folder of CSV files.

    Parameters
    ----------
    path : str or Path
        The workbook, or a folder with one CSV file per sheet (``studies.csv``, ...).
    strict : bool
        If True (default), raise when any error is found. If False, return the rows that
        validated, with the errors on ``Extraction.problems``.

    Returns
    -------
    Extraction

    Raises
    ------
    ExtractionError
        With ``.problems`` listing every error and note, sorted by sheet and row;
        ``.fatal`` is True when the file could not be read as an extraction at all.

    Examples
    --------
    >>> import evmeta as em
    >>> book = em.read_extraction("extraction/example.xlsx")  # doctest: +SKIP
    >>> book.outcomes.shape  # doctest: +SKIP
    """
    extraction, problems = validate_extraction(path)
    problems = sort_problems(problems)
    if extraction is None:
        raise ExtractionError(problems, fatal=True)
    if strict and extraction.problems:
        raise ExtractionError(problems, extraction=extraction)
    extraction.problems = sort_problems(extraction.problems)
    extraction.notes = sort_problems(extraction.notes)
    return extraction
