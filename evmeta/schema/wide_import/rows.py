"""Table rows as evmeta fields: each row read to field -> value (statistics as floats, the
moderators and risk-of-bias words raw), or set aside with the reason it cannot be used.
"""

from __future__ import annotations

from typing import Any

from evmeta.errors import SpecError
from evmeta.schema.wide_import.moderators import _moderator
from evmeta.schema.wide_import.table import header_index
from evmeta.schema.wide_import.table_cells import _number, _raw_text, _text, _value, _year
from evmeta.schema.wide_map import ARM_STATISTICS, STATISTICS, WideMap
from evmeta.sheets.reader import RawSheet


def _usable(stats: dict[str, float | None], arm: str, split: bool = False) -> str | None:
    """Why an arm's statistics cannot give an effect size (None when they can).

    An n below 1 is refused (0.4 animals is a typing error, not one animal), except for a
    control n typed already divided among the arms sharing it (``split``).
    """
    if stats["n"] is None:
        return f"{arm} n is missing"
    if stats["n"] <= 0:
        return f"{arm} n must be > 0, got {stats['n']:g}"
    if stats["n"] < 1 and not split:
        return f"{arm} n must be at least 1, got {stats['n']:g}"
    has = {k for k, v in stats.items() if v is not None}
    if not (
        {"mean", "sd"} <= has
        or {"mean", "sem"} <= has
        or {"median", "q1", "q3"} <= has
        or {"events", "total"} <= has
    ):
        return f"{arm} arm has no usable statistic (mean with SD or SEM, median with quartiles, or events with total)"
    return None


def _read_rows(
    table: RawSheet, wide_map: WideMap
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str, bool]]]:
    """Rows as field -> value (statistics as floats), and the rows that cannot be used.

    Returns
    -------
    rows : list of dict
        Usable rows.
    unusable : list of (dict, str, bool)
        Each row that cannot be used, as parsed; the reason (the first problem found); and
        whether its control arm is readable, so that it still counts among the arms sharing
        that control (a control n typed split was divided among all of them).
    """
    headers = header_index(table.header)
    absent = sorted(h for h in wide_map.headers() if h not in headers)
    if absent:
        raise SpecError(
            f"the map names column(s) {absent} that the table does not have; its columns: {', '.join(table.header)}"
        )
    index = {f: headers[h] for f, h in wide_map.columns.items()}
    moderators = {name: [headers[h] for h in hs] for name, hs in wide_map.moderators.items()}
    rob = {item: headers[h] for item, h in wide_map.risk_of_bias.items()}
    rows: list[dict[str, Any]] = []
    unusable: list[tuple[dict[str, Any], str, bool]] = []
    seen: dict[tuple, int] = {}
    for number, cells in table.rows:
        row: dict[str, Any] = dict(wide_map.constants)
        for name, i in index.items():
            row[name] = _value(cells[i] if i < len(cells) else None)
        row["_table_row"] = number
        row["_moderators"] = {name: _moderator(cells, where) for name, where in moderators.items()}
        row["_rob"] = {item: _raw_text(cells[i] if i < len(cells) else None) for item, i in rob.items()}
        row["year"], year_problem = _year(row.get("year"))
        study = row.get("study_id")
        # Every statistic is read (not only up to the first problem): a row whose treatment
        # arm is unusable may still share a control arm with rows that are imported.
        problems: dict[str, str | None] = {"treat": None, "control": None}
        for name in ARM_STATISTICS:
            row[name], why = _number(row.get(name), name)
            if not why and row[name] is not None and name.endswith(("_sd", "_sem")) and row[name] <= 0:
                why = f"{name} must be > 0, got {row[name]:g}"
            arm = name.split("_")[0]
            problems[arm] = problems[arm] or why
        unreadable = problems["treat"] or problems["control"]
        for arm, label in (("treat", "treatment"), ("control", "control")):
            split = arm == "control" and wide_map.control_n_is_split
            stats = {s: row.get(f"{arm}_{s}") for s in STATISTICS}
            problems[arm] = problems[arm] or _usable(stats, label, split)
        has_study = study not in (None, "")
        if has_study:
            row["study_id"] = _text(study)
        reason = (
            ("study id is empty" if not has_study else None)
            or year_problem
            or unreadable
            or problems["treat"]
            or problems["control"]
        )
        signature = (*(str(row.get(name)) for name in index), str(row["_moderators"]), str(row["_rob"]))
        if not reason and signature in seen:
            reason = f"the same values as table row {seen[signature]} (pasted twice?); not imported again"
            unusable.append((row, reason, False))  # never counted twice in a shared control
            continue
        seen.setdefault(signature, number)
        if reason:
            unusable.append((row, reason, has_study and problems["control"] is None))
            continue
        rows.append(row)
    return rows, unusable
