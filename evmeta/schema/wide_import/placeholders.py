"""Placeholders: the values written where neither the table nor the map gives a required
field, the note asking the reviewer to replace them, and the remark on each row that holds one.

A table of another intervention (every row ``preparation_kind = non_ev``) gets no note for
the EV-only fields (isolation method, MSC tissue source): their placeholders only let the
workbook validate, and evmeta leaves those fields blank for a non-EV preparation
(:mod:`evmeta.schema.preparation_kind`), so there is nothing to replace.
"""

from __future__ import annotations

from typing import Any

from evmeta.schema.preparation_kind import EV_ONLY_COLUMNS, is_ev_kind
from evmeta.schema.wide_map import EXPERIMENT_FIELDS, OUTCOME_FIELDS, PREP_FIELDS, WideMap

#: Values written where the table and the map give none for a required field.
PLACEHOLDERS = {
    "year": 2000,
    "species": "rat",
    "disease_model": "other",
    "outcome": "unnamed outcome",
    "higher_is_better": "yes",
    "isolation_method": "UC",
    "msc_tissue_source": "other",
}


def _placeholders(wide_map: WideMap) -> dict[str, Any]:
    """Required fields neither mapped nor given as constants -> the value written instead."""
    given = set(wide_map.columns) | set(wide_map.constants)
    return {f: v for f, v in PLACEHOLDERS.items() if f not in given}


def _placeholder_notes(fill: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """One note per placeholder field (the year has its own, from the studies rows), none for
    an EV-only field when every usable row is a non-EV preparation."""
    non_ev = bool(rows) and not any(is_ev_kind(row.get("preparation_kind")) for row in rows)
    return [
        f"{name} is not in the table: every row has the placeholder {value!r}; replace it in the workbook"
        for name, value in fill.items()
        if name != "year" and not (non_ev and name in EV_ONLY_COLUMNS)
    ]


def _mark_placeholders(data: dict[str, list[dict[str, Any]]], fill: dict[str, Any]) -> None:
    """Say in each row's notes which of its values are placeholders."""
    where = {"experiments": EXPERIMENT_FIELDS, "outcomes": OUTCOME_FIELDS, "preparations": PREP_FIELDS}
    for sheet, fields in where.items():
        names = [f for f in fields if f in fill]
        if not names:
            continue
        remark = f"placeholder (not in the table): {', '.join(names)}"
        for row in data[sheet]:
            row["notes"] = f"{row['notes']}; {remark}" if row.get("notes") else remark
