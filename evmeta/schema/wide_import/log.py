"""The import log: one row per table row (imported or skipped, with its reason) and per
table column the map does not read, and the skipped rows' reasons folded to one line per
root cause.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pandas as pd

from evmeta.schema.wide_import.table_cells import _raw_text, _text
from evmeta.schema.wide_map import WideMap
from evmeta.sheets.raw import column_letter
from evmeta.sheets.reader import RawSheet

#: Columns of the import log (:attr:`WideImport.log`, ``<name>.import_log.csv``).
LOG_COLUMNS = [
    "table_row",
    "study_id",
    "status",
    "treat_outcome_id",
    "control_outcome_id",
    "column",
    "reason",
]


def cause(reason: str) -> str:
    """The root cause of a reason: the reason without the value or row it names
    (``treat_n: expected a number, got '1905-07-11'`` -> ``treat_n: expected a number``)."""
    text = re.sub(r",? got .*$", "", reason)
    return re.sub(r"table rows? [\d, ]+", "table row ...", text).strip()


def fold_reasons(skipped: pd.DataFrame) -> list[str]:
    """One line per root cause of the skipped rows, with a count: the first row's reason,
    then "... and N more rows with the same cause" (a date-formatted year column gives one
    line, not thousands)."""
    lines = []
    groups: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    for row, reason in zip(skipped["table_row"], skipped["reason"], strict=True):
        groups[cause(str(reason))].append((row, str(reason)))
    for members in sorted(groups.values(), key=len, reverse=True):
        (row, reason), more = members[0], len(members) - 1
        line = f"  {len(members):>5}  {reason}"
        if more:
            line += (
                f" (table row {row}) ... and {more:,} more row{'s' if more > 1 else ''} with the same cause"
            )
        lines.append(line)
    return lines


def _log(row: dict[str, Any], status: str, reason: str, treat: str = "", control: str = "") -> dict[str, Any]:
    study = row.get("study_id")
    return {
        "table_row": row["_table_row"],
        "study_id": None if study is None else _text(study),
        "status": status,
        "treat_outcome_id": treat,
        "control_outcome_id": control,
        "column": "",
        "reason": reason,
    }


def _unread_columns(table: RawSheet, wide_map: WideMap) -> list[dict[str, Any]]:
    """Log rows for the table columns the map does not read (not a field, moderator or
    risk-of-bias item): "not imported", with the column's letter."""
    read = wide_map.headers()
    out = []
    for i, header in enumerate(table.header):
        if header in read:
            continue
        filled = sum(1 for _, cells in table.rows if i < len(cells) and _raw_text(cells[i]) is not None)
        name = header or f"(no header, column {column_letter(i)})"
        if not header and not filled:
            continue
        out.append(
            {
                "table_row": None,
                "study_id": None,
                "status": "not imported",
                "treat_outcome_id": "",
                "control_outcome_id": "",
                "column": name,
                "reason": f"column {column_letter(i)} ({filled} non-empty cells) is not in the map "
                "([columns], [moderators] or [risk_of_bias])",
            }
        )
    return out
