"""Journal forest layouts: RevMan 5 and JAMA looks, risk-of-bias dots and a dose column.

``forest_plot(..., layout="revman" | "jama")`` draws the rows collected by
:mod:`evmeta.plots.forest` (the same estimates, intervals, weights and subgroup fits as the
default layout) in the look a journal or a Cochrane-style review expects:

* ``revman``: Study or Subgroup | Experimental Mean SD Total | Control Mean SD Total |
  Weight | "Std. Mean Difference IV, Random, 95% CI" as text and as a panel; green squares
  sized by weight, black diamonds, the heterogeneity line and the test for overall effect
  under each total, worded and rounded as RevMan 5 prints them (Cochrane Handbook,
  Deeks, Higgins & Altman 2023, ch. 10; RevMan 5.4 User Guide);
* ``jama``: one sans font, no gridlines, squares and intervals in one dark colour, bold
  column headers, an "estimate (95% CI)" text column, favours captions under the axis.

Both take risk-of-bias dots (SYRCLE items, Hooijmans et al. 2014: green + low, red − high,
yellow ? unclear, with a legend of the items) and a dose column (harmonized per-kg dose,
e.g. ``1.3 × 10¹⁰ particles/kg``). A multilevel (three-level) result draws each study as a
heading with its comparisons indented under it. A journal layout is one page (no split).

Lengths are inches; y runs downwards, one Axes spans the figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.errors import PlotError
from evmeta.formatting import power_of_ten
from evmeta.plots._style import figure_of, new_figure
from evmeta.plots._text import minus, study_labels, text_width_pt, wrap
from evmeta.plots.forest.draw import REFERENCE_WEIGHT_NOTE
from evmeta.plots.forest.layout import REFERENCE_WEIGHT_MARK, reference_mark

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LAYOUTS = ("evmeta", "revman", "jama")
PT = 1 / 72
PAD = 0.05  # gap between columns (inches)
#: RevMan's colours: green squares, black diamonds and lines.
REVMAN_SQUARE = "#3C9B3C"
#: JAMA: squares, intervals and diamonds in one dark colour.
JAMA_DARK = "#1F3A5F"
ROB_COLOURS = {"low": "#1A9850", "unclear": "#F2C500", "high": "#D73027"}
ROB_SYMBOLS = {"low": "+", "unclear": "?", "high": "−"}
MEASURE_NAMES = {
    "SMD": "Std. Mean Difference",
    "MD": "Mean Difference",
    "ROM": "Log Ratio of Means",
    "NMD": "Normalized Mean Difference",
    "OR": "Log Odds Ratio",
    "RR": "Log Risk Ratio",
    "RD": "Risk Difference",
}
SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


# --------------------------------------------------------------------------- numbers as RevMan


def revman_p(p: float) -> str:
    """A p-value as RevMan 5 prints it: ``P = 0.43``, ``P = 0.009``, ``P = 0.0002``,
    ``P < 0.00001`` (two decimals from 0.01 on, else down to the first significant digit)."""
    if not np.isfinite(p):
        return "P not applicable"
    if p < 0.00001:
        return "P < 0.00001"
    if p >= 0.01:
        return f"P = {p:.2f}"
    decimals = int(-np.floor(np.log10(p)))
    return f"P = {p:.{decimals}f}"


def _fixed(value: float, decimals: int = 2) -> str:
    return minus(f"{value:.{decimals}f}")


def revman_interval(est: float, lo: float, hi: float) -> str:
    """``0.45 [−0.12, 1.02]``: two decimals, true minus signs."""
    return f"{_fixed(est)} [{_fixed(lo)}, {_fixed(hi)}]"


def jama_interval(est: float, lo: float, hi: float) -> str:
    """``0.45 (−0.12 to 1.02)``: JAMA words the interval with 'to'."""
    return f"{_fixed(est)} ({_fixed(lo)} to {_fixed(hi)})"


def heterogeneity_line(fit: Any) -> str:
    """``Heterogeneity: Tau² = 0.12; Chi² = 15.23, df = 5 (P = 0.009); I² = 67%``.

    Tau² is the fit's between-comparison variance (a multilevel fit names each variance
    component); Chi² is Cochran's Q on ``q_df`` degrees of freedom; I² the fit's percent.
    A fit on one comparison: 'Not applicable', as RevMan prints it.
    """
    if getattr(fit, "k", 0) < 2 or not hasattr(fit, "q"):
        return "Heterogeneity: Not applicable"
    if hasattr(fit, "sigma2"):
        taus = ", ".join(f"Tau²[{n}] = {s:.2f}" for n, s in zip(fit.random, fit.sigma2, strict=True))
    elif str(getattr(fit, "method", "")).upper() in {"EE", "FE", "CE"}:
        taus = ""
    else:
        taus = f"Tau² = {fit.tau2:.2f}"
    chi = f"Chi² = {fit.q:.2f}, df = {fit.q_df} ({revman_p(fit.q_pvalue)}); I² = {fit.i2:.0f}%"
    return "Heterogeneity: " + (f"{taus}; " if taus else "") + chi


def overall_effect_line(fit: Any) -> str:
    """``Test for overall effect: Z = 2.34 (P = 0.02)`` (RevMan prints |Z|); a t-based
    test (Knapp-Hartung, t, CR2) is named t."""
    name = "Z" if getattr(fit, "test", "z") == "z" and not getattr(fit, "is_robust", False) else "t"
    return f"Test for overall effect: {name} = {abs(fit.stat):.2f} ({revman_p(fit.pvalue)})"


def subgroup_difference_line(subgroups: Any) -> str:
    """``Test for subgroup differences: Chi² = 1.23, df = 2 (P = 0.54), I² = 0%`` (the Q
    between subgroups with their own tau²; I² = (Q − df)/Q, as RevMan)."""
    q, df = float(subgroups.q_between), int(subgroups.q_between_df)
    i2 = max(0.0, (q - df) / q * 100) if q > 0 else 0.0
    return (
        f"Test for subgroup differences: Chi² = {q:.2f}, df = {df} "
        f"({revman_p(subgroups.q_between_pvalue)}), I² = {i2:.1f}%"
    )


#: 1.3e10 -> ``1.3 × 10¹⁰`` (the formatter of every particle count, in evmeta.formatting).
scientific_unicode = power_of_ten


def dose_long(row: pd.Series) -> str:
    """The harmonized per-kg dose in words: protein (µg/kg or mg/kg), else particles, else
    cell equivalents, else the dose as reported, else an en dash; ``†`` marks a dose per kg
    only through the species' reference body weight."""
    protein = row.get("dose_ug_protein_per_kg", np.nan)
    if pd.notna(protein):
        text = f"{protein / 1000:.3g} mg/kg" if protein >= 1000 else f"{protein:.3g} µg/kg"
        return text + reference_mark(row, "dose_ug_protein_per_kg")
    for key, unit in [
        ("dose_particles_per_kg", "particles/kg"),
        ("dose_cell_equivalents_per_kg", "cell equivalents/kg"),
    ]:
        value = row.get(key, np.nan)
        if pd.notna(value) and value > 0:
            return f"{scientific_unicode(float(value))} {unit}{reference_mark(row, key)}"
    reported = row.get("dose_reported")
    return str(reported) if isinstance(reported, str) and reported.strip() else "–"


DOSE_UNITS = ("cell equivalents/kg", "particles/kg", "µg/kg", "mg/kg")


def split_unit(text: str) -> tuple[str, str]:
    """'1.3 × 10¹⁰ particles/kg' -> ('1.3 × 10¹⁰', 'particles/kg'); ('text', '') without a unit
    (a ``†`` stays with the unit)."""
    mark = REFERENCE_WEIGHT_MARK if text.endswith(REFERENCE_WEIGHT_MARK) else ""
    bare = text.removesuffix(mark)
    for unit in DOSE_UNITS:
        if bare.endswith(" " + unit):
            return bare[: -len(unit) - 1], unit + mark
    return text, ""


# --------------------------------------------------------------------------- risk of bias


def rob_items(rob: Any, rows: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The risk-of-bias columns to draw: (column, letter, legend text) per SYRCLE item.

    ``rob=True``: every SYRCLE item the table has; a list: those items, by column name
    (``rob_sequence_generation``) or without the ``rob_`` prefix. Raises PlotError naming
    the valid items for an unknown one, and when the table has no judgements at all.
    """
    from evmeta.data import load_csv

    items = load_csv("syrcle_items.csv")
    by_column = {r["column"]: r for r in items}
    if rob is True:
        wanted = [c for c in by_column if c in rows.columns]
    else:
        if isinstance(rob, str):
            rob = [rob]
        wanted = []
        for name in rob:
            column = name if str(name).startswith("rob_") else f"rob_{name}"
            if column not in by_column:
                raise PlotError(f"rob: {name!r} is not a SYRCLE item; items: {', '.join(by_column)}")
            wanted.append(column)
    present = [c for c in wanted if c in rows.columns and rows[c].notna().any()]
    if not present:
        raise PlotError(
            "rob=True but the comparisons carry no risk-of-bias judgements (no rob_* columns with "
            "values); enter the SYRCLE judgements in the risk_of_bias sheet, or draw without rob"
        )
    letters = "ABCDEFGHIJ"
    return [
        (c, letters[i], f"({letters[i]}) {by_column[c]['domain'].capitalize()} ({by_column[c]['bias']} bias)")
        for i, c in enumerate(present)
    ]


def rob_value(value: Any) -> str | None:
    text = str(value).strip().lower() if isinstance(value, str) else None
    return text if text in ROB_COLOURS else None


# --------------------------------------------------------------------------- layout


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


@dataclass
class _Column:
    key: str
    header: str
    width: float
    x: float = 0.0  # right edge for numbers, left edge for the label
    super_header: str | None = None


def _has(rows: pd.DataFrame, column: str) -> bool:
    return column in rows.columns and bool(pd.to_numeric(rows[column], errors="coerce").notna().any())


def _num(value: Any, decimals: int | None = None) -> str:
    value = pd.to_numeric(value, errors="coerce")
    if pd.isna(value):
        return ""
    if decimals is None:
        return minus(f"{value:.3g}") if abs(value) < 1000 else minus(f"{value:.0f}")
    return minus(f"{value:.{decimals}f}")


def _n(value: Any) -> str:
    value = pd.to_numeric(value, errors="coerce")
    if pd.isna(value):
        return ""
    return f"{round(float(value), 1):g}"


class JournalForest:
    """One journal-layout forest plot: collects the lines, sizes the columns, draws."""

    def __init__(
        self,
        result: Any,
        data: Any,
        subgroups: Any,
        fits: dict[Any, Any] | None,
        layout: str,
        *,
        rob: Any,
        dose: bool,
        show_weights: bool,
        width_in: float,
        title: str | None,
        treatment: str | None = None,
    ) -> None:
        from evmeta.plots.forest.draw import limits

        # RevMan's placeholders unless the treatment is named ("Favours rapamycin").
        self.favours = (
            ("Favours [control]", "Favours [experimental]")
            if treatment is None
            else ("Favours control", f"Favours {treatment}")
        )

        self.result, self.data, self.subgroups, self.fits = result, data, subgroups, fits or {}
        self.layout, self.dose, self.title = layout, dose, title
        self.width = width_in
        self.font = 7.0 if width_in > 4.5 else 6.0
        self.rows = pd.concat([g.rows for g in data.groups])
        self.rob = rob_items(rob, self.rows) if rob else []
        self.weights = show_weights and bool(self.rows["_weight"].notna().any())
        self.limits = limits(data)
        self.notes: list[str] = []
        self.multilevel = self._is_multilevel()
        self.level = data.level

    # -- what is drawn

    def _is_multilevel(self) -> bool:
        from evmeta.models.frequentist.multilevel import MultilevelResult

        return isinstance(self.result, MultilevelResult) and "study_id" in self.rows.columns

    def method_caption(self) -> str:
        """``IV, Random, 95% CI`` (RevMan's statistical method line)."""
        from evmeta.models.frequentist.multilevel import MultilevelResult

        method = str(getattr(self.result, "method", "")).upper()
        if isinstance(self.result, MultilevelResult):
            model = "Multilevel"
        elif method in {"EE", "FE", "CE"}:
            model = "Fixed"
        elif self.data.interval == "CrI":
            model = "Bayesian"
        else:
            model = "Random"
        return f"IV, {model}, {self.level * 100:.4g}% {self.data.interval}"

    def measure_name(self) -> str:
        measure = self.data.measure or ""
        return MEASURE_NAMES.get(measure, measure or "Effect size")

    def columns(self) -> list[_Column]:
        rows, cols = self.rows, []
        means = all(_has(rows, c) for c in ("mean_treat", "sd_treat", "mean_control", "sd_control"))
        totals = _has(rows, "n_treat") and _has(rows, "n_control")
        if self.layout == "revman":
            if not means:
                self.notes.append("Means and SDs: not in the comparisons table; those columns are omitted.")
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
        if self.dose:
            cols.append(_Column("dose", "Dose", 0))
            if any(dose_long(r).endswith(REFERENCE_WEIGHT_MARK) for _, r in rows.iterrows()):
                self.notes.append(REFERENCE_WEIGHT_NOTE)
        if self.weights and self.layout == "revman":
            cols.append(_Column("weight", "Weight", 0))
        name = self.measure_name()
        if self.layout == "revman":
            cols.append(_Column("est", f"{name}\n{self.method_caption()}", 0))
        else:
            short = self.data.measure or "Estimate"
            cols.append(_Column("est", f"{short} ({self.level * 100:.4g}% {self.data.interval})", 0))
            if self.weights:
                cols.append(_Column("weight", "Weight,\n%", 0))
        return cols

    def interval_text(self, est: float, lo: float, hi: float) -> str:
        return (revman_interval if self.layout == "revman" else jama_interval)(est, lo, hi)

    def weight_text(self, value: float) -> str:
        if pd.isna(value):
            return ""
        return f"{value:.1f}%" if self.layout == "revman" else f"{value:.1f}"

    def study_cells(self, record: pd.Series) -> dict[str, str]:
        cells = {
            "est": self.interval_text(record["_est"], record["_lo"], record["_hi"]),
            "weight": self.weight_text(record.get("_weight", np.nan)),
            "dose": dose_long(record),
        }
        for arm in ("treat", "control"):
            cells[f"mean_{arm}"] = _num(record.get(f"mean_{arm}"))
            cells[f"sd_{arm}"] = _num(record.get(f"sd_{arm}"))
            cells[f"n_{arm}"] = _n(record.get(f"n_{arm}"))
        return cells

    def total_cells(self, rows: pd.DataFrame, pooled: Any, weight: float) -> dict[str, str]:
        cells = {"est": self.interval_text(pooled.estimate, pooled.ci_low, pooled.ci_high)}
        cells["weight"] = self.weight_text(weight) if self.weights else ""
        for arm in ("treat", "control"):
            if f"n_{arm}" in rows.columns:
                cells[f"n_{arm}"] = _n(pd.to_numeric(rows[f"n_{arm}"], errors="coerce").sum(min_count=1))
        return cells

    def _stat_lines(self, fit: Any, pooled: Any) -> list[str]:
        if fit is not None and hasattr(fit, "q") and hasattr(fit, "stat"):
            return [heterogeneity_line(fit), overall_effect_line(fit)]
        return [pooled.note] if pooled is not None and pooled.note else []

    def lines(self) -> list[_Line]:
        out: list[_Line] = []
        total_word = "Total" if self.layout == "revman" else "Overall"
        for group in self.data.groups:
            if group.name is not None:
                out.append(_Line("group", [group.title or str(group.name)], bold=True))
            out += self._study_lines(group.rows)
            if group.pooled is not None:
                fit = self.fits.get(group.name)
                weight = float(np.nansum(group.rows["_weight"]))
                label = f"Subtotal ({self.level * 100:.4g}% {self.data.interval})"
                out.append(
                    _Line(
                        "pooled",
                        [label],
                        pooled=group.pooled,
                        bold=True,
                        cells=self.total_cells(group.rows, group.pooled, weight),
                    )
                )
                out += [_Line("note", [text]) for text in self._stat_lines(fit, group.pooled)]
            if group.name is not None:
                out.append(_Line("blank", [""]))
        if self.data.overall is not None:
            label = f"{total_word} ({self.level * 100:.4g}% {self.data.interval})"
            out.append(
                _Line(
                    "overall",
                    [label],
                    pooled=self.data.overall,
                    bold=True,
                    cells=self.total_cells(self.rows, self.data.overall, 100.0),
                )
            )
            out += [_Line("note", [text]) for text in self._stat_lines(self.result, self.data.overall)]
            if self.subgroups is not None and hasattr(self.subgroups, "q_between"):
                out.append(_Line("note", [subgroup_difference_line(self.subgroups)]))
        return out

    def _study_lines(self, rows: pd.DataFrame) -> list[_Line]:
        if not self.multilevel or not {"first_author", "year"} <= set(rows.columns):
            return [
                _Line("study", [str(r["_label"])], record=r, cells=self.study_cells(r))
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
                out.append(_Line("study", [str(r["_label"])], record=r, cells=self.study_cells(r)))
                continue
            out.append(_Line("heading", [name], bold=True))
            for _, r in part.iterrows():
                label = str(r["_label"])
                rest = label[len(name) :].lstrip(" ,;") if label.startswith(name) else label
                out.append(_Line("study", [rest or label], record=r, cells=self.study_cells(r), indent=True))
        return out

    # -- geometry

    def layout_columns(self, lines: list[_Line]) -> tuple[list[_Column], float, tuple[float, float], float]:
        font = self.font
        cols = self.columns()
        for col in cols:
            head = max(text_width_pt(h, font, bold=True) for h in col.header.split("\n"))
            cells = [text_width_pt(line.cells.get(col.key, ""), font, bold=line.bold) for line in lines]
            col.width = max([head, *cells]) * PT + PAD
        rob_w = 0.15 * len(self.rob)
        panel_min = (0.2 if self.width > 4.5 else 0.3) * self.width
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
        fixed = sum(c.width for c in cols) + rob_w + 0.15
        # A long dose ('1.3 × 10¹⁰ cell equivalents/kg') takes two lines: number, then unit.
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
            if fixed + panel_min + min(1.0, label_natural) <= self.width:
                break
            gone = [c for c in cols if c.key in keys]
            if gone:
                for c in gone:
                    cols.remove(c)
                fixed -= sum(c.width for c in gone)
                self.notes.append(f"Columns omitted at this width: {what} (draw width='double').")
        for side in ("Experimental", "Control"):
            # The spanning header ('Experimental' over Mean SD Total) fits over its columns.
            part = [c for c in cols if c.super_header == side]
            need = text_width_pt(side, font, bold=True) * PT + PAD - sum(c.width for c in part)
            if part and need > 0:
                part[0].width += need
                fixed += need
        label_w = max(0.7, min(label_natural, 2.4, self.width - fixed - panel_min))
        x = 0.05 + label_w
        for col in cols:
            x += col.width
            col.x = x
        panel = (x + 0.1, self.width - rob_w - 0.1)
        if panel[1] - panel[0] < 0.6:
            raise PlotError(
                f"forest_plot(layout={self.layout!r}): the columns need more than the figure width "
                f"({self.width * 25.4:.0f} mm); draw width='double' or leave out rob/dose"
            )
        return cols, label_w, panel, rob_w

    def line_height(self, n: int) -> float:
        return (n * 1.2 * self.font + 0.5 * self.font) * PT

    # -- drawing

    def draw(self, ax: Axes | None = None) -> Figure:
        lines = self.lines()
        cols, label_w, panel, rob_w = self.layout_columns(lines)
        font, small = self.font, self.font - 0.5
        for line in lines:
            if line.kind in {"note"}:
                line.label = wrap(line.label[0], (self.width - 0.15) / PT, small)
            elif line.kind not in {"blank"}:
                width = (label_w - PAD - (0.14 if line.indent else 0)) / PT
                line.label = wrap(
                    line.label[0],
                    width if line.kind != "group" else (self.width - 0.15) / PT,
                    font,
                    bold=line.bold,
                )
            n_lines = max([len(line.label)] + [cell.count("\n") + 1 for cell in line.cells.values()])
            line.height = self.line_height(n_lines) * (0.5 if line.kind == "blank" else 1)
            if line.kind == "note":
                line.height = (len(line.label) * 1.2 * small + 0.3 * small) * PT
        legend = [text for _, _, text in self.rob]
        foot = [
            part
            for text in [*self.data.footer, *self.notes]
            for part in wrap(minus(text), (self.width - 0.15) / PT, small)
        ]
        top = 0.06 + (self.line_height(1) * 1.5 if self.title else 0)
        header_h = self.line_height(3 if self.layout == "revman" else 2)
        axis_h = self.axis_lines() * self.line_height(1) + 0.12
        notes_h = (len(foot) + (len(legend) + 1 if legend else 0)) * 1.25 * small * PT + 0.1
        body_h = sum(line.height for line in lines)
        height = top + header_h + body_h + axis_h + notes_h
        if ax is None:
            figure = new_figure(self.width * 25.4, height)
            axes = figure.add_axes((0, 0, 1, 1))
        else:
            axes, figure = ax, figure_of(ax)
        axes.set_axis_off()
        axes.set_xlim(0, self.width)
        axes.set_ylim(height, 0)
        self.axes, self.panel = axes, panel
        if self.title:
            axes.text(0.05, top / 2 + 0.03, self.title, fontsize=font + 1.5, fontweight="bold", va="center")
        self._header(cols, panel, rob_w, top, header_h)
        y = top + header_h
        plotted: list[tuple[float, float]] = []
        for line in lines:
            centre = y + line.height / 2
            self._line(line, cols, centre)
            if line.kind in {"study", "pooled", "overall", "heading"}:
                plotted.append((y, y + line.height))
            y += line.height
        if plotted:
            axes.plot(
                [self.x_of(0.0)] * 2,
                [plotted[0][0], plotted[-1][1]],
                color="0.0" if self.layout == "revman" else "0.35",
                lw=0.6,
                zorder=1,
            )
        y = self._axis(y + 0.04)
        for text in foot:
            axes.text(0.05, y, minus(text), fontsize=small, va="top", color="0.25")
            y += 1.25 * small * PT
        if legend:
            axes.text(0.05, y, "Risk of bias legend", fontsize=small, va="top", fontweight="bold")
            y += 1.25 * small * PT
            for text in legend:
                axes.text(0.05, y, text, fontsize=small, va="top", gid="rob-legend")
                y += 1.25 * small * PT
        return figure

    def x_of(self, value: float) -> float:
        lo, hi = self.limits
        return float(
            self.panel[0] + (np.clip(value, lo, hi) - lo) / (hi - lo) * (self.panel[1] - self.panel[0])
        )

    def _header(
        self, cols: list[_Column], panel: tuple[float, float], rob_w: float, top: float, header_h: float
    ) -> None:
        axes, font = self.axes, self.font
        bold: dict[str, Any] = {"fontsize": font, "fontweight": "bold", "va": "bottom", "linespacing": 1.1}
        base = top + header_h - 0.04
        label = "Study or Subgroup" if self.layout == "revman" else "Source"
        axes.text(0.05, base, label, ha="left", **bold)
        spans: dict[str, list[float]] = {}
        for col in cols:
            axes.text(col.x - PAD / 2, base, col.header, ha="right", **bold)
            if col.super_header:
                spans.setdefault(col.super_header, []).extend([col.x - col.width, col.x])
        for name, xs in spans.items():
            axes.text((min(xs) + max(xs)) / 2, base - self.line_height(1), name, ha="center", **bold)
        if self.layout == "revman":
            head = f"{self.measure_name()}\n{self.method_caption()}"
            axes.text((panel[0] + panel[1]) / 2, base, head, ha="center", **bold)
        for i, (_, letter, _) in enumerate(self.rob):
            axes.text(panel[1] + 0.1 + 0.15 * i + 0.075, base, letter, ha="center", **bold)
        if self.rob:
            axes.text(self.width - 0.05, base - self.line_height(1), "Risk of Bias", ha="right", **bold)
        rule = "0.0" if self.layout == "revman" else "0.3"
        axes.plot([0.05, self.width - 0.05], [top + header_h] * 2, color=rule, lw=0.6)

    def _line(self, line: _Line, cols: list[_Column], y: float) -> None:
        axes, font = self.axes, self.font
        style: dict[str, Any] = {"fontsize": font, "va": "center"}  # Text keywords
        if line.kind == "blank":
            return
        if line.kind == "note":
            axes.text(
                0.05,
                y,
                minus("\n".join(line.label)),
                fontsize=font - 0.5,
                va="center",
                linespacing=1.2,
                gid="stat-line",
            )
            return
        weight = "bold" if line.bold else "normal"
        x = 0.05 + (0.14 if line.indent else 0)
        axes.text(x, y, "\n".join(line.label), fontweight=weight, linespacing=1.2, **style)
        for col in cols:
            text = line.cells.get(col.key, "")
            if text:
                axes.text(col.x - PAD / 2, y, text, ha="right", fontweight=weight, **style)
        if line.kind == "study":
            self._square(line.record, y)
            self._rob_dots(line.record, y)
        elif line.kind in {"pooled", "overall"}:
            self._diamond(line.pooled, y)

    def _colours(self) -> tuple[str, str]:
        """(square, line/diamond) colours of the layout."""
        return (REVMAN_SQUARE, "black") if self.layout == "revman" else (JAMA_DARK, JAMA_DARK)

    def _square(self, record: pd.Series, y: float) -> None:
        square, line = self._colours()
        lo, hi = self.limits
        self.axes.plot(
            [self.x_of(record["_lo"]), self.x_of(record["_hi"])], [y, y], color=line, lw=0.7, zorder=2
        )
        for end, marker, edge in [(record["_lo"], "<", lo), (record["_hi"], ">", hi)]:
            if (end < edge) if marker == "<" else (end > edge):
                self.axes.plot(self.x_of(edge), y, marker=marker, color=line, ms=3, zorder=3)
        weights = self.rows["_weight"]
        wmax = float(np.nanmax(weights)) if weights.notna().any() else np.nan
        w = record.get("_weight", np.nan)
        size = 2.0 + 5.0 * np.sqrt(w / wmax) if np.isfinite(wmax) and pd.notna(w) else 3.5
        if lo <= record["_est"] <= hi:
            self.axes.plot(
                self.x_of(record["_est"]),
                y,
                marker="s",
                ms=size,
                color=square,
                mec="none",
                zorder=3,
                gid="square",
            )

    def _diamond(self, pooled: Any, y: float) -> None:
        from matplotlib.patches import Polygon

        _, colour = self._colours()
        half = 0.36 * self.line_height(1)
        corners = [
            (self.x_of(pooled.ci_low), y),
            (self.x_of(pooled.estimate), y - half),
            (self.x_of(pooled.ci_high), y),
            (self.x_of(pooled.estimate), y + half),
        ]
        self.axes.add_patch(
            Polygon(corners, closed=True, facecolor=colour, edgecolor=colour, zorder=3, gid="diamond")
        )

    def _rob_dots(self, record: pd.Series, y: float) -> None:
        for i, (column, _, _) in enumerate(self.rob):
            value = rob_value(record.get(column))
            if value is None:
                continue  # not judged: no dot
            x = self.panel[1] + 0.1 + 0.15 * i + 0.075
            self.axes.plot(
                x,
                y,
                marker="o",
                ms=6.5,
                color=ROB_COLOURS[value],
                mec="none",
                zorder=3,
                gid=f"rob:{column}:{value}",
            )
            self.axes.text(
                x,
                y,
                ROB_SYMBOLS[value],
                ha="center",
                va="center",
                fontsize=self.font - 0.5,
                fontweight="bold",
                color="black" if value == "unclear" else "white",
            )

    def _axis(self, y: float) -> float:
        import matplotlib.ticker as ticker

        axes, font = self.axes, self.font
        lo, hi = self.limits
        line = self.line_height(1)
        axes.plot([self.panel[0], self.panel[1]], [y, y], color="0.0", lw=0.6)
        narrow = self.panel[1] - self.panel[0] < 2.0
        for tick in ticker.MaxNLocator(nbins=4 if narrow else 6).tick_values(lo, hi):
            if lo <= tick <= hi:
                axes.plot([self.x_of(tick)] * 2, [y, y + 0.04], color="0.0", lw=0.6)
                axes.text(
                    self.x_of(tick),
                    y + 0.04 + line / 2,
                    minus(f"{tick:g}"),
                    ha="center",
                    fontsize=font,
                    va="center",
                )
        left_text, right_text = self.favours
        left_w = text_width_pt(left_text, font, bold=True) * PT + 0.1
        right_w = text_width_pt(right_text, font, bold=True) * PT + 0.1
        zero = float(np.clip(self.x_of(0.0), left_w, self.width - right_w))
        y_caption = y + 0.04 + 1.5 * line
        small = font - 0.5
        weight = "bold" if self.layout == "jama" else "normal"
        axes.text(
            zero - 0.05,
            y_caption,
            left_text,
            ha="right",
            va="center",
            fontsize=small,
            fontweight=weight,
            gid="favours",
        )
        axes.text(
            zero + 0.05,
            y_caption,
            right_text,
            ha="left",
            va="center",
            fontsize=small,
            fontweight=weight,
            gid="favours",
        )
        if self.layout == "jama":
            axes.text(
                (self.panel[0] + self.panel[1]) / 2,
                y_caption + line,
                f"{self.measure_name()} ({self.level * 100:.4g}% {self.data.interval})",
                ha="center",
                va="center",
                fontsize=small,
            )
        return y + 0.12 + self.axis_lines() * line

    def axis_lines(self) -> float:
        # ticks, favours captions, and (JAMA) the measure under them
        return 3.1 if self.layout == "jama" else 2.1
