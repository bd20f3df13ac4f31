"""Checks across the cells of a row and notes on what the reader saw: schedules filled from
the dose text, consistency rules between columns, and hidden rows, columns and sheets."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from evmeta.errors import DoseError
from evmeta.schema.cells import show
from evmeta.schema.columns import column_map
from evmeta.schema.doses.text import read_dose_text
from evmeta.schema.validation.collector import _Collector, _row_ranges
from evmeta.schema.validation.pairing import check_control_arms
from evmeta.schema.validation.suggest import did_you_mean
from evmeta.sheets.reader import RawSheet, column_letter


def _snake(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).strip().casefold()).strip("_")


def _fill_dose_schedules(
    tables: dict[str, list[dict[str, Any]]], out: _Collector, letters: dict[str, dict[str, str]]
) -> None:
    """Fill empty ``n_doses`` / ``dose_interval_days`` from the schedule ``dose_text`` prints.

    A filled cell gets a note; a typed value that disagrees with the text is an error on
    that cell and the arm is left out. Texts that are not a readable dose are left to the
    dose harmonizer, which logs why.
    """
    specs = column_map("arms")
    keep: list[dict[str, Any]] = []
    for arm in tables.get("arms", []):
        text = arm.get("dose_text")
        try:
            reading = read_dose_text(text) if isinstance(text, str) and text.strip() else None
            if reading is not None and reading.agent is not None:
                reading = None  # the schedule printed is the agent's, not the EVs'
        except DoseError:
            reading = None
        ok = True
        printed: tuple[tuple[str, float | None], ...] = (
            ("n_doses", reading.n_doses if reading is not None else None),
            ("dose_interval_days", reading.interval_days if reading is not None else None),
        )
        for column, found in printed:
            spec, given, letter = specs[column], arm.get(column), letters["arms"].get(column)
            low = -math.inf if spec.minimum is None else spec.minimum
            high = math.inf if spec.maximum is None else spec.maximum
            if found is None or not low <= found <= high:
                continue
            if given is None:
                arm[column] = int(found) if spec.kind == "int" else float(found)
                note = f"filled from dose_text {text!r}: {found:g}"
                out.add("arms", arm["_row"], column, None, note, "note", letter)
            elif not math.isclose(float(given), float(found), rel_tol=1e-9):
                message = f"{show(given)} disagrees with dose_text {text!r}, which gives {found:g}; correct one of them"
                out.add("arms", arm["_row"], column, given, message, letter=letter)
                ok = False
        if ok:
            keep.append(arm)
    if "arms" in tables:
        tables["arms"] = keep


def _check_consistency(
    tables: dict[str, list[dict[str, Any]]],
    out: _Collector,
    letters: dict[str, dict[str, str]],
    typed_ids: dict[str, dict[str, list[int]]] | None = None,
) -> None:
    experiments = {r["experiment_id"]: r for r in tables.get("experiments", [])}
    preparations = {r["prep_id"]: r for r in tables.get("preparations", [])}
    keep_arms = []
    for arm in tables.get("arms", []):
        prep = preparations.get(arm.get("prep_id"))
        exp = experiments.get(arm["experiment_id"])
        if prep and exp and prep["study_id"] != exp["study_id"]:
            out.add(
                "arms",
                arm["_row"],
                "prep_id",
                arm["prep_id"],
                f"preparation belongs to study {prep['study_id']!r} but the experiment to {exp['study_id']!r}",
                letter=letters["arms"].get("prep_id"),
            )
            continue
        keep_arms.append(arm)
    if "arms" in tables:
        tables["arms"] = keep_arms
    check_control_arms(tables, out, letters)
    arms = {r["arm_id"]: r for r in tables.get("arms", [])}
    keep_outcomes = []
    for outcome in tables.get("outcomes", []):
        measured = arms.get(outcome["arm_id"])
        typed_rows = (typed_ids or {}).get("arms", {}).get(outcome["arm_id"], [])
        if measured is None and len(typed_rows) == 1:
            out.depend("outcomes", outcome["_row"], "arms", typed_rows[0])
            continue
        if measured is None:
            out.add(
                "outcomes",
                outcome["_row"],
                "arm_id",
                outcome["arm_id"],
                "refers to an arm that has errors",
                letter=letters["outcomes"].get("arm_id"),
            )
            continue
        if measured["experiment_id"] != outcome["experiment_id"]:
            out.add(
                "outcomes",
                outcome["_row"],
                "arm_id",
                outcome["arm_id"],
                f"arm belongs to experiment {measured['experiment_id']!r}, not {outcome['experiment_id']!r}"
                + did_you_mean(
                    outcome["arm_id"],
                    [a for a, r in arms.items() if r["experiment_id"] == outcome["experiment_id"]],
                ),
                letter=letters["outcomes"].get("arm_id"),
            )
            continue
        keep_outcomes.append(outcome)
    if "outcomes" in tables:
        tables["outcomes"] = keep_outcomes
    roles: dict[str, set[str]] = defaultdict(set)
    for arm in arms.values():
        roles[arm["experiment_id"]].add(arm["role"])
    with_outcomes = {o["experiment_id"] for o in keep_outcomes}
    for exp_id in sorted(with_outcomes):
        if "vehicle_control" not in roles[exp_id]:
            exp = experiments[exp_id]
            out.add(
                "experiments",
                exp["_row"],
                "experiment_id",
                exp_id,
                "experiment has outcomes but no vehicle_control arm to compare the EV arms with",
                letter=letters["experiments"].get("experiment_id"),
            )


def _note_hidden(sheets: dict[str, RawSheet], out: _Collector) -> None:
    """A note for every hidden sheet, hidden data row and hidden column that is analysed."""
    for sheet in sheets.values():
        if sheet.hidden and sheet.rows:
            out.add(
                sheet.name,
                None,
                None,
                None,
                f"sheet {sheet.name!r} is hidden in the workbook; its {len(sheet.rows)} row(s) were read",
                "note",
            )
        if sheet.hidden_rows:
            out.add(
                sheet.name,
                None,
                None,
                None,
                f"{len(sheet.hidden_rows)} hidden row(s) were read: rows {_row_ranges(sheet.hidden_rows)}",
                "note",
            )
        for index in sheet.hidden_columns:
            header = sheet.header[index] if index < len(sheet.header) else ""
            if header:
                out.add(
                    sheet.name,
                    1,
                    _snake(header) or None,
                    header,
                    f"column {header!r} is hidden in the workbook; it was read",
                    "note",
                    column_letter(index),
                )
