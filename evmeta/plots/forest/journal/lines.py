"""The lines of a journal forest plot, top to bottom: group headings, comparisons (a
multilevel result's studies as headings with their comparisons indented), subtotals and
the total with their statistics lines, and the text of each line's cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evmeta.plots._text import study_labels
from evmeta.plots.forest.journal.dose_column import dose_long
from evmeta.plots.forest.journal.setup import JournalSetup
from evmeta.plots.forest.journal.wording import (
    _n,
    _num,
    heterogeneity_line,
    overall_effect_line,
    subgroup_difference_line,
)


@dataclass
class _Line:
    kind: str  # group, study, heading, pooled, overall, note, blank
    label: list[str]
    record: Any = None
    pooled: Any = None
    cells: dict[str, str] = field(default_factory=dict)
    indent: bool = False
    bold: bool = False
    height: float = 0.0


def journal_lines(plot: JournalSetup) -> list[_Line]:
    """The plot's lines, top to bottom: per group a heading, its comparisons, the subtotal and
    its statistics lines; then the total, its lines and the test for subgroup differences."""
    out: list[_Line] = []
    total_word = "Total" if plot.layout == "revman" else "Overall"
    for group in plot.data.groups:
        if group.name is not None:
            out.append(_Line("group", [group.title or str(group.name)], bold=True))
        out += _study_lines(plot, group.rows)
        if group.pooled is not None:
            fit = plot.fits.get(group.name)
            weight = float(np.nansum(group.rows["_weight"]))
            label = f"Subtotal ({plot.level * 100:.4g}% {plot.data.interval})"
            out.append(
                _Line(
                    "pooled",
                    [label],
                    pooled=group.pooled,
                    bold=True,
                    cells=total_cells(plot, group.rows, group.pooled, weight),
                )
            )
            out += [_Line("note", [text]) for text in _stat_lines(fit, group.pooled)]
        if group.name is not None:
            out.append(_Line("blank", [""]))
    if plot.data.overall is not None:
        label = f"{total_word} ({plot.level * 100:.4g}% {plot.data.interval})"
        out.append(
            _Line(
                "overall",
                [label],
                pooled=plot.data.overall,
                bold=True,
                cells=total_cells(plot, plot.rows, plot.data.overall, 100.0),
            )
        )
        out += [_Line("note", [text]) for text in _stat_lines(plot.result, plot.data.overall)]
        if plot.subgroups is not None and hasattr(plot.subgroups, "q_between"):
            out.append(_Line("note", [subgroup_difference_line(plot.subgroups)]))
    return out


def _study_lines(plot: JournalSetup, rows: pd.DataFrame) -> list[_Line]:
    if not plot.multilevel or not {"first_author", "year"} <= set(rows.columns):
        return [
            _Line("study", [str(r["_label"])], record=r, cells=study_cells(plot, r))
            for _, r in rows.iterrows()
        ]
    # Three-level model: each study a heading, its comparisons indented under it.
    out = []
    studies = study_labels(rows)
    for sid in pd.unique(rows["study_id"]):
        part = rows[rows["study_id"] == sid]
        name = str(studies[part.index[0]])
        if len(part) == 1:
            r = part.iloc[0]
            out.append(_Line("study", [str(r["_label"])], record=r, cells=study_cells(plot, r)))
            continue
        out.append(_Line("heading", [name], bold=True))
        for _, r in part.iterrows():
            label = str(r["_label"])
            rest = label[len(name) :].lstrip(" ,;") if label.startswith(name) else label
            out.append(_Line("study", [rest or label], record=r, cells=study_cells(plot, r), indent=True))
    return out


def study_cells(plot: JournalSetup, record: pd.Series) -> dict[str, str]:
    """The text of a comparison's cells: its interval, weight, dose and arm statistics."""
    cells = {
        "est": plot.interval_text(record["_est"], record["_lo"], record["_hi"]),
        "weight": plot.weight_text(record.get("_weight", np.nan)),
        "dose": dose_long(record),
    }
    for arm in ("treat", "control"):
        cells[f"mean_{arm}"] = _num(record.get(f"mean_{arm}"))
        cells[f"sd_{arm}"] = _num(record.get(f"sd_{arm}"))
        cells[f"n_{arm}"] = _n(record.get(f"n_{arm}"))
    return cells


def total_cells(plot: JournalSetup, rows: pd.DataFrame, pooled: Any, weight: float) -> dict[str, str]:
    """The text of a subtotal's or the total's cells: the pooled interval, weight and arm totals."""
    cells = {"est": plot.interval_text(pooled.estimate, pooled.ci_low, pooled.ci_high)}
    cells["weight"] = plot.weight_text(weight) if plot.weights else ""
    for arm in ("treat", "control"):
        if f"n_{arm}" in rows.columns:
            cells[f"n_{arm}"] = _n(pd.to_numeric(rows[f"n_{arm}"], errors="coerce").sum(min_count=1))
    return cells


def _stat_lines(fit: Any, pooled: Any) -> list[str]:
    """The heterogeneity and overall-effect lines under a total (else the pooled estimate's note)."""
    if fit is not None and hasattr(fit, "q") and hasattr(fit, "stat"):
        return [heterogeneity_line(fit), overall_effect_line(fit)]
    return [pooled.note] if pooled is not None and pooled.note else []
