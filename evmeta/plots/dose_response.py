"""Dose-response bubble plot: effect against dose (log scale, labelled in doses) with the
meta-regression line, or a dose-response curve with its confidence and prediction bands and
human-equivalent dose axes on top."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evmeta.errors import PlotError
from evmeta.formatting import SUPERSCRIPTS, percent, power_of_ten
from evmeta.plots._style import figure_of, journal_style, new_figure, width_inches
from evmeta.plots._text import minus, wrap
from evmeta.plots.forest.draw import MEASURE_LABELS
from evmeta.schema.vocabulary import display_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure

#: A fitted line: the x grid (log10 dose) and the predictions over it (``pred``, ``ci_low``,
#: ``ci_high``, and ``pi_low``/``pi_high`` for a dose-response curve).
Line = tuple[npt.NDArray[np.float64], pd.DataFrame]

#: Okabe-Ito colours in an order that keeps neighbours apart (no two blues next to each other).
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#000000", "#56B4E9", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
UNITS = {
    "log10_dose_ug_protein_per_kg": "Dose (µg protein per kg, log scale)",
    "log10_dose_particles_per_kg": "Dose (particles per kg, log scale)",
    "log10_dose_cell_equivalents_per_kg": "Dose (cell equivalents per kg, log scale)",
    "log10_dose_hed_ug_protein_per_kg": "Human-equivalent dose (µg protein per kg, log scale)",
    "log10_dose_hed_particles_per_kg": "Human-equivalent dose (particles per kg, log scale)",
    **{
        f"log10_dose_{prefix}{quantity}_per_{per}": f"{label} ({unit} per {per}, log scale)"
        for prefix, label, pers in (("", "Dose", ("kg", "animal")), ("total_", "Cumulative dose", ("kg",)))
        for quantity, unit in (("ug_protein", "µg protein"), ("particles", "particles"),
                               ("cell_equivalents", "cell equivalents"))
        for per in pers
    },
}


def _dose_label(value: float, _pos: Any = None) -> str:
    """A tick at log10 dose ``value`` written as the dose itself: 0.1, 1, 1000, then powers of
    ten as printed (``10⁵``, ``2 × 10¹⁰``)."""
    dose = 10**value
    if 1e-3 <= dose < 1e5:
        return f"{dose:g}"
    if abs(value - round(value)) < 1e-9:
        return f"10{str(round(value)).translate(SUPERSCRIPTS)}"
    return power_of_ten(dose, 1)


def dose_response_plot(
    result: Any,
    *,
    x: str = "log10_dose_ug_protein_per_kg",
    color_by: str | None = "isolation_method",
    width: str | float = "single",
    total: int | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Effect sizes against dose (bubble area proportional to the comparison's weight, colour
    and marker by ``color_by``), with the fitted meta-regression line and its confidence band (at the fit's level).

    ``result`` is a MetaResult whose moderators include ``x`` (a log10 dose), or a
    DoseResponseResult (its fitted curve with the confidence band, dark, and prediction
    band, light; ``x`` is then its dose column, and one human-equivalent dose axis per
    species is drawn on top where ``dose_hed_*`` columns give the conversion); the axis is
    labelled in doses. ``total``: the number of comparisons of the whole analysis, so the
    figure says how many of them had a convertible dose ('38 of 69 comparisons'). Other
    moderators are held at their most common level (categorical) or mean (numeric) for the line.
    """
    import matplotlib.ticker as ticker

    from evmeta.models.dose_response.result import DoseResponseResult

    curve = isinstance(result, DoseResponseResult)
    frame, x, values, line, shifts = _inputs(result, x, curve)
    top = 0.32 * len(shifts)  # inches for the human-equivalent axes
    with journal_style():
        if ax is None:
            narrow = width_inches(width) < 4.5
            height = (3.4 if narrow else 2.8) + top
            figure = new_figure(width, height)
            bottom = (1.15 if narrow else 0.95) / height
            ax = figure.add_axes(
                (0.14 if narrow else 0.08, bottom, 0.83 if narrow else 0.9, 1 - bottom - (0.36 + top) / height)
            )
        figure = figure_of(ax)
        weights = np.asarray(result.weights, float)
        sizes = 8 + 120 * weights / np.max(weights)
        handles: list[PathCollection] = []
        groups = (
            frame.groupby(color_by, sort=True, observed=True)
            if color_by in frame.columns
            else [("all", frame)]
        )
        for index, (level, part) in enumerate(groups):
            take = frame.index.get_indexer(part.index)
            handles.append(
                ax.scatter(
                    values[take],
                    result.yi[take],
                    s=sizes[take],
                    color=COLOURS[index % len(COLOURS)],
                    marker=MARKERS[index % len(MARKERS)],
                    alpha=0.8,
                    edgecolor="white",
                    lw=0.3,
                    label=display_label(level, color_by),
                )
            )
        marked = _mark_reference_weight(ax, frame, x, values, result.yi, sizes)
        _draw_line(ax, line, curve)
        ax.axhline(0, color="0.4", lw=0.5)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(_dose_label))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: minus(f"{v:g}")))
        ax.set_xlabel(UNITS.get(x, x.replace("_", " ")))
        ax.set_ylabel(MEASURE_LABELS.get(getattr(result, "measure", None) or "", "Effect size"), fontsize=6.5)
        shown = f"{len(frame)} of {total} comparisons" if total else f"{len(frame)} comparisons"
        title = f"{shown} have a dose in these units; bubble area proportional to weight"
        if marked:
            title += f"; ringed ({marked}): {REFERENCE_WEIGHT_WORDS}"
        if curve:
            title = f"{title}; {result.model} curve, {percent(result.level)} confidence and prediction bands"
            _human_axes(ax, shifts, UNITS.get(x, "").removeprefix("Dose (").split(",")[0])
        room = ax.get_position().width * figure.get_figwidth() * 72
        ax.set_title("\n".join(wrap(title, room, 6.5)), fontsize=6.5, loc="left", linespacing=1.1, pad=3 + 72 * top)
        _legends(figure, handles, weights, color_by, marked)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure


#: What a ringed bubble means (a per-animal dose divided by the species' reference weight).
REFERENCE_WEIGHT_WORDS = "dose computed from the species' reference body weight (none reported)"


def _mark_reference_weight(
    ax: Axes, frame: pd.DataFrame, x: str, values: npt.NDArray[np.float64], yi: npt.ArrayLike, sizes: npt.ArrayLike
) -> int:
    """A dark ring around every comparison whose dose was computed with the species'
    reference body weight (:func:`~evmeta.harmonize.arm_doses.from_reference_weight`);
    returns how many."""
    from evmeta.harmonize.arm_doses import from_reference_weight

    marked = from_reference_weight(frame, x).to_numpy()
    if marked.any():
        ax.scatter(
            values[marked],
            np.asarray(yi, float)[marked],
            s=np.asarray(sizes)[marked],
            facecolors="none",
            edgecolors="0.1",
            lw=0.6,
            zorder=3,
            label="_reference weight",
        )
    return int(marked.sum())


def _line(result: Any, frame: pd.DataFrame, x: str, values: npt.NDArray[np.float64]) -> Line | None:
    if not (result.model.formula and x in result.model.formula):
        return None
    grid = np.linspace(np.nanmin(values), np.nanmax(values), 100)
    newdata = pd.DataFrame({x: grid})
    for column in frame.columns:
        if column != x and column in result.model.formula:
            series = frame[column]
            newdata[column] = (
                series.mode().iloc[0] if not pd.api.types.is_numeric_dtype(series) else series.mean()
            )
    return grid, result.predict(newdata)


def _inputs(
    result: Any, x: str, curve: bool
) -> tuple[pd.DataFrame, str, npt.NDArray[np.float64], Line | None, pd.Series]:
    """(rows, x column, its values, the line, human-equivalent shifts) for the figure."""
    frame = result.data
    if curve:
        x = f"log10_{result.dose}"
        frame = frame.assign(**{x: np.log10(frame["dose"].to_numpy(float))})
    if x not in frame.columns:
        raise PlotError(f"{x!r} is not a column of the model's data")
    values = frame[x].to_numpy(float)
    line = _curve(result) if curve else _line(result, frame, x, values)
    shifts = _human_shifts(frame, result.dose) if curve else pd.Series(dtype=float)
    return frame, x, values, line, shifts


def _draw_line(ax: Axes, line: Line | None, curve: bool) -> None:
    """The fitted line with its confidence band (and, for a curve, its prediction band)."""
    if line is None:
        return
    if curve:
        ax.fill_between(line[0], line[1]["pi_low"], line[1]["pi_high"], color="0.85", alpha=0.4, lw=0)
    ax.fill_between(line[0], line[1]["ci_low"], line[1]["ci_high"], color="0.6", alpha=0.3, lw=0)
    ax.plot(line[0], line[1]["pred"], color="0.1", lw=1.0)


def _curve(result: Any) -> Line:
    """The fitted curve of a DoseResponseResult over the doses studied (log10 dose, frame)."""
    table = result.curve(101)
    return np.log10(table["dose"].to_numpy(float)), table


def _human_shifts(frame: pd.DataFrame, dose: str) -> pd.Series:
    """log10 (human-equivalent / animal dose) per species (FDA Km scaling), from the rows'
    ``dose_hed_*`` column; empty when the dose is already human-equivalent or not per kg."""
    hed = dose.replace("dose_", "dose_hed_", 1)
    if "hed" in dose or hed not in frame.columns or "species" not in frame.columns:
        return pd.Series(dtype=float)
    ratio = pd.Series(np.log10(pd.to_numeric(frame[hed], errors="coerce") / frame["dose"]), index=frame.index)
    return ratio.groupby(frame["species"]).median().dropna()


#: Top-axis ticks: 1, 2 and 5 times the powers of ten.
_NICE = np.outer([1.0, 2.0, 5.0], 10.0 ** np.arange(-12, 19)).ravel()


def _human_axes(ax: Axes, shifts: pd.Series, unit: str) -> None:
    """One top axis per species: the human-equivalent dose of the bottom axis's dose."""
    import matplotlib.ticker as ticker

    height = ax.get_position().height * figure_of(ax).get_figheight()
    for i, (species, shift) in enumerate(shifts.items()):
        where = 1.0 + 0.32 * i / height
        top = ax.secondary_xaxis(where, functions=_shifted(float(shift)))
        top.xaxis.set_major_locator(ticker.FixedLocator(np.log10(_NICE).tolist()))
        top.xaxis.set_major_formatter(ticker.FuncFormatter(_dose_label))
        top.tick_params(labelsize=5.5, pad=1)
        top.set_xlabel(f"Human-equivalent dose from {species} ({unit})", fontsize=5.5, labelpad=1)


def _shifted(shift: float) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The maps to and from a top axis ``shift`` log10 units off the bottom one (matplotlib
    calls them with arrays or scalars of log10 dose, hence Any)."""

    def forward(value: Any) -> Any:
        return value + shift

    def inverse(value: Any) -> Any:
        return value - shift

    return forward, inverse


def _legends(
    figure: Figure,
    handles: list[PathCollection],
    weights: npt.NDArray[np.float64],
    color_by: str | None,
    marked: int = 0,
) -> None:
    """Two legends under the axes: the groups (colour and marker, at one size) on the left,
    with the ring of a dose from a reference body weight when ``marked``, and the bubble
    sizes (weight, %) on the right, each with its own title."""
    from matplotlib.lines import Line2D

    maximum = float(np.max(weights))
    marks = sorted({round(v, 1) for v in (maximum / 4, maximum / 2, maximum)})
    groups = [
        Line2D(
            [],
            [],
            ls="",
            marker=MARKERS[i % len(MARKERS)],
            markersize=4.5,
            color=COLOURS[i % len(COLOURS)],
            alpha=0.8,
            label=handle.get_label(),
        )
        for i, handle in enumerate(handles)
    ]
    if marked:
        groups.append(
            Line2D([], [], ls="", marker="o", markersize=4.5, markerfacecolor="none", markeredgecolor="0.1",
                   markeredgewidth=0.6, label="dose from reference body weight")
        )
    sizes = [
        Line2D(
            [], [], ls="", marker="o", color="0.55", markersize=np.sqrt(8 + 120 * v / maximum), label=f"{v:g}"
        )
        for v in marks
    ]
    narrow = figure.get_figwidth() < 4.5
    common = {"frameon": False, "fontsize": 6, "title_fontsize": 6, "handletextpad": 0.4}
    title = (color_by or "").replace("_", " ").capitalize() or None
    left = figure.legend(
        handles=groups,
        title=title,
        loc="lower left",
        bbox_to_anchor=(0.02, 0.0),
        ncols=2 if narrow else 3,
        columnspacing=1.0,
        labelspacing=0.5,
        **common,
    )
    left.set_alignment("left")  # the title over the entries' left edge (public form of _legend_box.align)
    # Rows at least as tall as the largest bubble, so the bubbles never touch.
    spacing = max(0.5, (float(np.sqrt(128)) + 1.5) / 6 - 1)
    figure.legend(
        handles=sizes,
        title="Weight (%)",
        loc="lower right",
        bbox_to_anchor=(0.98, 0.0),
        ncols=1 if narrow else 3,
        columnspacing=1.2,
        labelspacing=spacing,
        **common,
    )
