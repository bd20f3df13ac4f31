"""`evmeta update DIR --search NEW...`: new exports in, a screening workbook of the new works out.

``update_searches`` imports the exports (:func:`evmeta.project.searches.import_searches`),
writes ``screening/deduplicated_<n>.csv`` and ``screening/screening_<n>.xlsx`` with only the
new unique records (:func:`evmeta.project.screening.write_new_records_sheet`; ``<n>`` is the
id of the import's last export, so sheets never collide) and notes the sheet on the exports.
An export already held, or one whose records are all duplicates, writes no sheet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evmeta.project.project import Project
from evmeta.project.searches import SearchUpdate, import_searches


@dataclass
class SearchStep:
    """An import and the screening files it wrote (None when nothing was new)."""

    update: SearchUpdate
    deduplicated: Path | None
    sheet: Path | None


def update_searches(
    project: Project, paths: Sequence[str | Path], *, searched_on: dt.date | None = None, force: bool = False
) -> SearchStep:
    """Import ``paths`` and write the screening workbook of the new unique records."""
    from sqlalchemy import func, select, update

    from evmeta.project.models import SearchExport
    from evmeta.project.screening import write_new_records_sheet

    result = import_searches(project, paths, searched_on=searched_on)
    if result.new_records.empty:
        return SearchStep(result, None, None)
    with project.engine.connect() as connection:
        number = connection.execute(select(func.max(SearchExport.id))).scalar_one()
    written = write_new_records_sheet(project, result.new_records, number, force=force)
    if written is None:
        return SearchStep(result, None, None)
    table, sheet = written
    names = [e.file_name for e in result.exports if not e.already_held]

    def note(session) -> None:
        session.execute(
            update(SearchExport)
            .where(SearchExport.file_name.in_(names), SearchExport.screening_sheet.is_(None))
            .values(screening_sheet=str(sheet.relative_to(project.folder)))
        )

    project.transaction(note, what="noting the screening sheet")
    return SearchStep(result, table, sheet)


__all__ = ["SearchStep", "update_searches"]
