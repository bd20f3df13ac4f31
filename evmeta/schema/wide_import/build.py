"""The row import itself: a table and its map to workbook rows (no file written), every table
row either imported or logged with its reason.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from evmeta.schema.wide_import.experiments import _experiment, _group_key
from evmeta.schema.wide_import.log import LOG_COLUMNS, _log, _unread_columns
from evmeta.schema.wide_import.moderators import _type_moderators
from evmeta.schema.wide_import.placeholders import _mark_placeholders, _placeholder_notes, _placeholders
from evmeta.schema.wide_import.result import WideImport
from evmeta.schema.wide_import.risk_of_bias import _rob_rows
from evmeta.schema.wide_import.rows import _read_rows
from evmeta.schema.wide_import.studies import _study_rows
from evmeta.schema.wide_map import WideMap
from evmeta.sheets.reader import RawSheet


def _build(
    rows: list[dict[str, Any]],
    unusable: list[tuple[dict[str, Any], str, bool]],
    wide_map: WideMap,
) -> tuple[dict[str, list[dict]], list[dict], list[str]]:
    """Workbook rows for the usable table rows: one experiment per shared control arm.

    Rows that cannot be used but whose control values equal those of an imported control
    arm count among the arms sharing it (its n is restored from all of them) and are named
    in that control row's notes and, as ``control_outcome_id``, in their log row.
    """
    fill = _placeholders(wide_map)
    notes = _placeholder_notes(fill, rows)
    data: dict[str, list[dict[str, Any]]] = {
        s: [] for s in ("preparations", "experiments", "arms", "outcomes")
    }
    data["studies"] = _study_rows(rows, fill, notes)
    log: list[dict[str, Any]] = []
    preps: dict[tuple, str] = {}
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[_group_key(row, wide_map.control_n_is_split)].append(
            {**fill, **{k: v for k, v in row.items() if v is not None}}
        )
    left_out: dict[tuple, list[tuple[dict[str, Any], str]]] = defaultdict(list)
    for row, reason, control_readable in unusable:
        key = _group_key(row, wide_map.control_n_is_split) if control_readable else None
        if key in groups:
            left_out[key].append((row, reason))
        else:
            log.append(_log(row, "skipped", reason))
    experiments_per_study: dict[str, int] = defaultdict(int)
    for key, members in groups.items():
        study = members[0]["study_id"]
        experiments_per_study[study] += 1
        exp = f"{study}-E{experiments_per_study[study]}"
        log.extend(_experiment(members, left_out[key], exp, wide_map, data, preps))
    _mark_placeholders(data, fill)
    imported = [member for members in groups.values() for member in members]
    data["risk_of_bias"] = _rob_rows(imported, wide_map, notes)
    return data, log, notes


def wide_to_sheets(table: RawSheet, wide_map: WideMap) -> WideImport:
    """Map a table to workbook rows (no file written); see :func:`import_wide`."""
    rows, unusable = _read_rows(table, wide_map)
    data, log_rows, notes = _build(rows, unusable, wide_map)
    kinds = _type_moderators(data["arms"], list(wide_map.moderators), notes)
    log = pd.DataFrame(log_rows, columns=LOG_COLUMNS).sort_values("table_row", kind="stable")
    unread = pd.DataFrame(_unread_columns(table, wide_map), columns=LOG_COLUMNS)
    log = pd.concat([log, unread], ignore_index=True) if len(unread) else log.reset_index(drop=True)
    return WideImport(data, log.astype({"table_row": "Int64"}), notes, moderators=kinds)
