"""The text columns of a journal forest plot: which columns a layout shows (RevMan: Mean, SD,
Total per arm, Weight, the estimate; JAMA: No. per arm, the estimate, Weight) and their
widths at the figure's width, the panel taking what is left.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from evmeta.errors import PlotError
from evmeta.plots._text import text_width_pt
from evmeta.plots.forest.draw import REFERENCE_WEIGHT_NOTE
from evmeta.plots.forest.journal.dose_column import dose_long, split_unit
from evmeta.plots.forest.journal.lines import _Line
from evmeta.plots.forest.journal.setup import PAD, PT, JournalSetup
from evmeta.plots.forest.layout import REFERENCE_WEIGHT_MARK


@dataclass
class _Column:
    key: str
    header: str
    width: float
    x: float = 0.0  # right edge for numbers, left edge for the label
    super_header: str | None = None


def _has(rows: pd.DataFrame, column: str) -> bool:
    return column in rows.columns and bool(pd.to_numeric(rows[column], errors="coerce").notna().any())


def wanted_columns(plot: JournalSetup) -> list[_Column]:
    """The columns of the layout, left to right, for what the table holds (widths unset);
    a column left out for want of data is named in the plot's notes."""
    rows, cols = plot.rows, []
    means = all(_has(rows, c) for c in ("mean_treat", "sd_treat", "mean_control", "sd_control"))
    totals = _has(rows, "n_treat") and _has(rows, "n_control")
    if plot.layout == "revman":
        if not means:
            plot.notes.append("Means and SDs: not in the comparisons table; those columns are omitted.")
        for arm, side in [("treat", "Experimental"), ("control", "Control")]:
            if means:
                cols += [
                    _Column(f"mean_{arm}", "Mean", 0, super_header=side),
                    _Column(f"sd_{arm}", "SD", 0, super_header=side),
                ]
            if totals:
                cols.append(_Column(f"n_{arm}", "Total", 0, super_header=side))
    elif totals:
        cols += [_Column("n_treat", "Experimental,\nNo.", 0), _Column("n_control", "Control,\nNo.", 0)]
    if plot.dose:
        cols.append(_Column("dose", "Dose", 0))
        if any(dose_long(r).endswith(REFERENCE_WEIGHT_MARK) for _, r in rows.iterrows()):
            plot.notes.append(REFERENCE_WEIGHT_NOTE)
    if plot.weights and plot.layout == "revman":
        cols.append(_Column("weight", "Weight", 0))
    name = plot.measure_name()
    if plot.layout == "revman":
        cols.append(_Column("est", f"{name}\n{plot.method_caption()}", 0))
    else:
        short = plot.data.measure or "Estimate"
        cols.append(_Column("est", f"{short} ({plot.level * 100:.4g}% {plot.data.interval})", 0))
        if plot.weights:
            cols.append(_Column("weight", "Weight,\n%", 0))
    return cols


def fit_columns(
    plot: JournalSetup, lines: list[_Line]
) -> tuple[list[_Column], float, tuple[float, float], float]:
    """The columns sized to their text, dropped block by block (each named in a note) where
    the figure is too narrow; the label width, the panel's left and right edges and the
    width of the risk-of-bias dots (inches)."""
    font = plot.font
    cols = wanted_columns(plot)
    for col in cols:
        head = max(text_width_pt(h, font, bold=True) for h in col.header.split("\n"))
        cells = [text_width_pt(line.cells.get(col.key, ""), font, bold=line.bold) for line in lines]
        col.width = max([head, *cells]) * PT + PAD
    rob_w = 0.15 * len(plot.rob)
    panel_min = (0.2 if plot.width > 4.5 else 0.3) * plot.width
    label_natural = (
        max(
            [text_width_pt("Study or Subgroup", font, bold=True)]
            + [
                text_width_pt(t, font, bold=line.bold) + (10 if line.indent else 0)
                for line in lines
                if line.kind not in {"note", "blank"}
                for t in line.label
            ]
        )
        * PT
        + PAD
    )
    _wrap_long_dose(cols, lines, font)
    fixed = sum(c.width for c in cols) + rob_w + 0.15
    # Narrow figures lose the means and SDs, then the dose, the weights and the totals
    # (each named in a note) before the label shrinks below an inch.
    blocks = [
        ("means and SDs", ("mean_treat", "sd_treat", "mean_control", "sd_control")),
        ("dose", ("dose",)),
        ("weights", ("weight",)),
        ("totals", ("n_treat", "n_control")),
    ]
    for what, keys in blocks:
        if fixed + panel_min + min(1.0, label_natural) <= plot.width:
            break
        gone = [c for c in cols if c.key in keys]
        if gone:
            for c in gone:
                cols.remove(c)
            fixed -= sum(c.width for c in gone)
            plot.notes.append(f"Columns omitted at this width: {what} (draw width='double').")
    for side in ("Experimental", "Control"):
        # The spanning header ('Experimental' over Mean SD Total) fits over its columns.
        part = [c for c in cols if c.super_header == side]
        need = text_width_pt(side, font, bold=True) * PT + PAD - sum(c.width for c in part)
        if part and need > 0:
            part[0].width += need
            fixed += need
    label_w = max(0.7, min(label_natural, 2.4, plot.width - fixed - panel_min))
    x = 0.05 + label_w
    for col in cols:
        x += col.width
        col.x = x
    panel = (x + 0.1, plot.width - rob_w - 0.1)
    if panel[1] - panel[0] < 0.6:
        raise PlotError(
            f"forest_plot(layout={plot.layout!r}): the columns need more than the figure width "
            f"({plot.width * 25.4:.0f} mm); draw width='double' or leave out rob/dose"
        )
    return cols, label_w, panel, rob_w


def _wrap_long_dose(cols: list[_Column], lines: list[_Line], font: float) -> None:
    """A long dose ('1.3 × 10¹⁰ cell equivalents/kg') takes two lines: number, then unit."""
    dose = next((c for c in cols if c.key == "dose"), None)
    if dose is not None and dose.width > 1.0:
        pairs = [split_unit(line.cells.get("dose", "")) for line in lines]
        dose.width = (
            max(
                [text_width_pt("Dose", font, bold=True)]
                + [text_width_pt(t, font) for pair in pairs for t in pair]
            )
            * PT
            + PAD
        )
        for line, (number, unit) in zip(lines, pairs, strict=True):
            text = line.cells.get("dose", "")
            if unit and text_width_pt(text, font) * PT + PAD > dose.width:
                line.cells["dose"] = f"{number}\n{unit}"
