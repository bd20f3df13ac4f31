"""SYRCLE judgements named under ``[risk_of_bias]``: the table's words read through
``[risk_of_bias.values]`` and written as risk_of_bias sheet rows (one per study where its
rows agree, else one per experiment with the most severe judgement kept).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evmeta.errors import SpecError
from evmeta.schema.wide_map import SYRCLE_ITEMS, WideMap

_SEVERITY = {"low": 0, "unclear": 1, "high": 2}


def _judgements(members: list[dict[str, Any]], wide_map: WideMap) -> list[dict[str, str | None]]:
    """Each imported row's SYRCLE judgements; a word the map cannot read is an error listing
    every (item, word) once, with its rows, so that one unknown word is one line."""
    unknown: dict[tuple[str, str], list[int]] = defaultdict(list)
    out = []
    for member in members:
        judged: dict[str, str | None] = {}
        for item, word in member.get("_rob", {}).items():
            judged[item] = None if word is None else wide_map.rob_values.get(word.casefold())
            if word is not None and judged[item] is None:
                unknown[(item, word)].append(member["_table_row"])
        out.append(judged)
    if unknown:
        lines = [
            f"risk_of_bias.{item} (column {wide_map.risk_of_bias[item]!r}): {word!r} in {len(rows)} row(s) "
            f"(table row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''})"
            for (item, word), rows in unknown.items()
        ]
        raise SpecError(
            "risk-of-bias judgements the map cannot read:\n  "
            + "\n  ".join(lines)
            + f'\nadd each word to [risk_of_bias.values] as low, high or unclear, e.g. "{next(iter(unknown))[1]}" = "unclear"'
        )
    return out


def _rob_rows(members: list[dict[str, Any]], wide_map: WideMap, notes: list[str]) -> list[dict[str, Any]]:
    """risk_of_bias sheet rows: one per study when its rows agree on every item, else one
    per experiment; rows of one experiment that disagree get the most severe judgement
    (high > unclear > low), with a note."""
    if not wide_map.risk_of_bias:
        return []
    judgements = _judgements(members, wide_map)
    by_study: dict[str, list[tuple[dict[str, Any], dict[str, str | None]]]] = defaultdict(list)
    for member, judged in zip(members, judgements, strict=True):
        by_study[member["study_id"]].append((member, judged))
    rows: list[dict[str, Any]] = []
    conflicts = 0
    for study, entries in by_study.items():
        if all(all(v is None for v in judged.values()) for _, judged in entries):
            continue
        agree = all(len({j[item] for _, j in entries if j[item]}) <= 1 for item in wide_map.risk_of_bias)
        units: dict[str | None, list] = defaultdict(list)
        for member, judged in entries:
            units[None if agree else member["_experiment"]].append((member, judged))
        for experiment, unit in units.items():
            row: dict[str, Any] = {"study_id": study, "experiment_id": experiment}
            remarks = []
            for item in SYRCLE_ITEMS:
                words = {j.get(item) for _, j in unit} - {None}
                row[item] = max(words, key=_SEVERITY.__getitem__) if words else None
                if len(words) > 1:
                    remarks.append(
                        f"{item}: table rows give {', '.join(sorted(words))}; the most severe is kept"
                    )
            table_rows = ", ".join(str(m["_table_row"]) for m, _ in unit)
            row["notes"] = "; ".join([f"imported from table row(s) {table_rows}", *remarks])
            conflicts += bool(remarks)
            rows.append(row)
    if conflicts:
        notes.append(
            f"risk_of_bias: in {conflicts} experiment(s) the table rows disagree on an item; the most "
            "severe judgement is kept (the row's notes say which)"
        )
    return rows
