"""The studies sheet rows of an import: one per study id, the first author and year taken
from the table (a year read from the author text, else a placeholder, with a note).
"""

from __future__ import annotations

import re
from typing import Any

from evmeta.schema.wide_import.placeholders import PLACEHOLDERS
from evmeta.schema.wide_map import STUDY_FIELDS

_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")  # from 1900, as studies.year (columns.YEAR_MIN)


def _study_rows(rows: list[dict[str, Any]], fill: dict[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    studies: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["study_id"] in studies:
            continue
        study = {f: row.get(f) for f in STUDY_FIELDS}
        remarks = []
        if study["first_author"] is None:
            study["first_author"] = row["study_id"]
            remarks.append("first_author is the study id (not in the table)")
        if study["year"] is None:
            found = _YEAR.search(str(row.get("first_author") or ""))
            study["year"] = int(found.group(1)) if found else fill.get("year", PLACEHOLDERS["year"])
            remarks.append("year read from first_author" if found else "year is a placeholder: fill it in")
        study["notes"] = "; ".join(remarks) or None
        studies[row["study_id"]] = study
    if any(s["notes"] and "placeholder" in s["notes"] for s in studies.values()):
        notes.append("studies: year is a placeholder (2000) where the table gives none; fill it in")
    return list(studies.values())
