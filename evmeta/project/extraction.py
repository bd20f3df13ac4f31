"""Extraction workbooks into a project: each import a version, each changed cell a row.

``import_extraction`` validates the workbook with :func:`evmeta.schema.validation.validate.read_extraction`
(an invalid workbook is refused with its problems, nothing stored), keeps a copy as
``extraction/v<NNN>.xlsx`` and stores, in one transaction, the version and every cell that
differs from the previous version. A cell is named by sheet, row key (the row's id: the
first column, ``study_id`` + ``experiment_id`` on ``risk_of_bias``) and column, so a row
moved or re-sorted in the workbook is not a change; values are compared as text. The state
of version N is the fold of the changes of versions 1..N (:func:`cells_at`), which is how
``cell_history`` answers "who changed this cell, when, from what".
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evmeta.project.errors import ProjectError
from evmeta.project.project import Project, current_user

#: Sheets that are documentation, not data (never versioned).
SKIP_SHEETS = frozenset({"README", "vocabulary"})
#: Sheets whose rows are identified by their first two columns.
TWO_KEY_SHEETS = frozenset({"risk_of_bias"})

CellKey = tuple[str, str, str]  # (sheet, row key, column)


@dataclass
class ExtractionImport:
    """What ``import_extraction`` stored (``version`` None when the file was already held;
    ``path`` is then the stored copy of the earlier import)."""

    version: int | None
    path: Path
    n_studies: int
    changed: int
    added: int
    removed: int
    already_imported: str = ""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def workbook_cells(path: str | Path) -> dict[CellKey, tuple[str, int]]:
    """Every non-empty data cell of a workbook: (sheet, row key, column) -> (text, Excel row)."""
    from evmeta.sheets.reader import read_raw

    raw = read_raw(path)
    out: dict[CellKey, tuple[str, int]] = {}
    for name, sheet in raw.sheets.items():
        if name in SKIP_SHEETS:
            continue
        width = 2 if name in TWO_KEY_SHEETS else 1
        seen: dict[str, int] = {}
        for excel_row, cells in sheet.rows:
            parts = [_text(c.value) or "" for c in cells[:width]]
            key = " / ".join(parts) if any(parts) else f"row {excel_row}"
            seen[key] = seen.get(key, 0) + 1
            key = key if seen[key] == 1 else f"{key} #{seen[key]}"
            for column, cell in zip(sheet.header, cells, strict=False):
                text = _text(cell.value)
                if column and text is not None:
                    out[(name, key, column)] = (text, excel_row)
    return out


def cells_at(session: Any, version: int | None = None) -> dict[CellKey, str]:
    """The cells of a version (default the newest), folded from the stored changes."""
    from sqlalchemy import select

    from evmeta.project.models import CellChange, ExtractionVersion

    query = select(CellChange).join(ExtractionVersion).order_by(ExtractionVersion.version, CellChange.id)
    if version is not None:
        query = query.where(ExtractionVersion.version <= version)
    state: dict[CellKey, str] = {}
    for change in session.scalars(query):
        key = (change.sheet, change.row_key, change.column_name)
        if change.new_value is None:
            state.pop(key, None)
        else:
            state[key] = change.new_value
    return state


def _changes(before: dict[CellKey, str], after: dict[CellKey, tuple[str, int]]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key, (None, None))
        if old != new[0]:
            sheet, row_key, column = key
            rows.append(
                {"sheet": sheet, "row_key": row_key, "column_name": column, "excel_row": new[1],
                 "old_value": old, "new_value": new[0]}
            )  # fmt: skip
    return rows


def _latest(session: Any) -> Any:
    from sqlalchemy import select

    from evmeta.project.models import ExtractionVersion

    return session.scalars(select(ExtractionVersion).order_by(ExtractionVersion.version.desc())).first()


def import_extraction(project: Project, path: str | Path) -> ExtractionImport:
    """Import an extraction workbook as the next version (see the module docstring).

    Raises
    ------
    ExtractionError
        The workbook does not validate (its problems name sheet, row and column).
    """
    from evmeta.schema.validation.validate import read_extraction

    path = Path(path)
    extraction = read_extraction(path)
    with project.engine.connect() as connection:
        from sqlalchemy.orm import Session

        latest = _latest(Session(bind=connection))
    if latest is not None and latest.sha256 == extraction.sha256:
        return ExtractionImport(
            None, project.path("extraction", latest.stored_path), len(extraction.studies), 0, 0, 0,
            f"already imported as version {latest.version} on {latest.imported_at:%Y-%m-%d}",
        )  # fmt: skip
    after = workbook_cells(path)
    staged = project.path("extraction", f".incoming_{extraction.sha256[:12]}{path.suffix.lower()}")
    shutil.copyfile(path, staged)

    def work(session: Any) -> ExtractionImport:
        return _store_version(session, project, path, staged, extraction, after)

    try:
        return project.transaction(work, what=f"importing the extraction workbook {path.name}")
    finally:
        staged.unlink(missing_ok=True)


def _store_version(session, project, path, staged, extraction, after) -> ExtractionImport:
    from sqlalchemy import func, insert, select

    from evmeta.project.models import CellChange, ExtractionVersion, SearchExport

    latest = _latest(session)
    number = 1 if latest is None else latest.version + 1
    target = project.path("extraction", f"v{number:03d}{staged.suffix}")
    if target.exists():
        raise ProjectError(f"{target} exists but the database holds no version {number}; move it away first")
    changes = _changes(cells_at(session), after)
    version = ExtractionVersion(
        version=number, file_name=path.name, sha256=extraction.sha256, stored_path=target.name,
        imported_by=current_user(), n_studies=len(extraction.studies), n_cells_changed=len(changes),
        searches_through=session.execute(select(func.max(SearchExport.id))).scalar_one() or 0,
    )  # fmt: skip
    session.add(version)
    session.flush()
    if changes:  # a re-saved workbook can differ in bytes only; an empty executemany would insert a blank row
        session.execute(insert(CellChange), [{"version_id": version.id, **c} for c in changes])
    shutil.copyfile(staged, target)  # last step: a failed transaction leaves no version file
    added = sum(c["old_value"] is None for c in changes)
    removed = sum(c["new_value"] is None for c in changes)
    return ExtractionImport(
        number, target, len(extraction.studies), len(changes) - added - removed, added, removed
    )


def cell_history(project: Project, sheet: str, row_key: str, column: str) -> list[dict[str, Any]]:
    """Every stored value of one cell, oldest first: version, date, who, old and new value."""
    from sqlalchemy import select

    from evmeta.project.models import CellChange, ExtractionVersion

    query = (
        select(ExtractionVersion.version, ExtractionVersion.imported_at, ExtractionVersion.imported_by,
               CellChange.old_value, CellChange.new_value)
        .join(ExtractionVersion)
        .where(CellChange.sheet == sheet, CellChange.row_key == row_key, CellChange.column_name == column)
        .order_by(ExtractionVersion.version)
    )  # fmt: skip
    with project.engine.connect() as connection:
        return [row._asdict() for row in connection.execute(query)]


__all__ = ["ExtractionImport", "cell_history", "cells_at", "import_extraction", "workbook_cells"]
