"""Orchard plot (Nakagawa et al. 2021): per level of a moderator, every comparison as a
point sized by precision, the model's mean with its confidence interval (thick) and
prediction interval (thin), both at the model's level,, and k (number of studies).

Works with a location-scale model (each level's prediction interval uses its own tau^2,
which is what shows whether one isolation method gives more consistent effects), a
meta-regression or multilevel meta-regression whose moderators are ``by`` alone, or a
subgroup analysis.

Reference: Nakagawa S, Lagisz M, O'Dea RE, et al. (2021). The orchard plot: cultivating a
forest plot for use in ecology, evolution, and beyond. Res Synth Methods 12:4-12.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.errors import FigureError
from evmeta.formatting import percent
from evmeta.plots._style import PALETTE, figure_of, journal_style, new_figure, width_inches
from evmeta.plots._text import wrap
from evmeta.plots.forest.draw import MEASURE_LABELS
from evmeta.schema.vocabulary import display_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def orchard_rows(fit: Any, by: str | None = None) -> pd.DataFrame:
    """Per level of ``by``: ``level``, ``k``, ``n_studies``, ``pred``, ``ci_low``,
    ``ci_high``, ``pi_low``, ``pi_high`` (the numbers the orchard plot draws)."""
    fits = getattr(fit, "fits", None)
    if isinstance(fits, dict):  # subgroup analysis
        by = fit.by
        data = fit.overall.data
        rows = {level: part.predict().iloc[0] for level, part in fits.items()}
    else:
        data = fit.data
        by = by or _single_moderator(fit)
        if by not in data.columns:
            raise FigureError(f"the model's data have no column {by!r} for the orchard plot")
        rows = {}
        for level in pd.unique(data[by]):
            first = data.index[data[by] == level][0]
            rows[level] = fit.predict(data.loc[[first]]).iloc[0]
    out = []
    for level, row in rows.items():
        part = data[data[by] == level]
        studies = part["study_id"].nunique() if "study_id" in part.columns else len(part)
        out.append({"level": level, "k": len(part), "n_studies": studies, **{c: row[c] for c in _COLUMNS}})
    return pd.DataFrame(out)


_COLUMNS = ("pred", "ci_low", "ci_high", "pi_low", "pi_high")


def _single_moderator(fit: Any) -> str:
    """The one categorical moderator of the location part (or of the scale part)."""
    for model in (getattr(fit, "model", None), getattr(fit, "scale_model", None)):
        terms = [t for t in (model.term_columns if model is not None else {}) if t != "intercept"]
        if model is not None and len(terms) == 1 and terms[0] in model.frame.columns:
            return str(terms[0])
    raise FigureError("give by= (a column): the orchard plot draws one categorical moderator")


def orchard_plot(
    fit: Any, by: str | None = None, *, width: str | float = "single", ax: Axes | None = None, seed: int = 1
) -> Figure:
    """Draw the orchard plot of ``fit`` by ``by`` (see the module docstring).

    Parameters
    ----------
    fit : LocationScaleResult, MetaResult, MultilevelResult or SubgroupResult
    by : str, optional
        The moderator column (default: the model's only moderator).
    width : {"single", "double"} or float
        85 mm, 180 mm, or a width in mm.
    seed : int
        Seed of the vertical jitter of the points.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = orchard_rows(fit, by)
    data = fit.overall.data if hasattr(fit, "overall") else fit.data
    by = fit.by if hasattr(fit, "overall") else (by or _single_moderator(fit))
    measure = getattr(getattr(fit, "overall", fit), "measure", None)
    rng = np.random.default_rng(seed)
    with journal_style():
        if ax is None:
            height = 0.45 * len(rows) + 0.95
            figure = new_figure(width, height)
            left = 0.95 / width_inches(width)  # level names such as "precipitation"
            right = 0.7 / width_inches(width)  # "k = 123 (45)"
            ax = figure.add_axes((left, 0.5 / height, 1 - left - right, 1 - 0.95 / height))
        for i, (_, row) in enumerate(rows.iterrows()):
            _draw_level(ax, i, row, data[data[by] == row["level"]], PALETTE[i % len(PALETTE)], rng)
        ax.axvline(0, color="0.4", lw=0.5, zorder=0)
        room = ax.get_position().x0 * figure_of(ax).get_figwidth() * 72 - 6  # points left of the axes
        names = ["\n".join(wrap(display_label(v, by), room, 7)) for v in rows["level"]]
        ax.set_yticks(range(len(rows)), names)
        ax.set_ylim(len(rows) - 0.5, -0.6)
        ax.set_xlabel(MEASURE_LABELS.get(measure or "", "Effect size"))
        level = getattr(getattr(fit, "overall", fit), "level", 0.95)  # orchard_rows predicts at it
        ax.set_title(f"{by.replace('_', ' ')}\nmean, {percent(level)} CI (thick), {percent(level)} PI (thin)", fontsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure_of(ax)


def _draw_level(
    ax: Axes, y: int, row: pd.Series, part: pd.DataFrame, colour: str, rng: np.random.Generator
) -> None:
    precision = 1 / np.sqrt(part["vi"].to_numpy(float))
    jitter = rng.uniform(-0.28, 0.28, size=len(part))
    ax.scatter(part["yi"], y + jitter, s=3 + 22 * precision / precision.max(), color=colour, alpha=0.4, lw=0)
    ax.plot([row["pi_low"], row["pi_high"]], [y, y], color="0.15", lw=0.8)
    ax.plot([row["ci_low"], row["ci_high"]], [y, y], color="0.15", lw=3.0, solid_capstyle="butt")
    ax.plot(row["pred"], y, marker="o", ms=5, color=colour, mec="0.1", mew=0.6)
    label = f"k = {int(row['k'])} ({int(row['n_studies'])})"
    ax.text(1.01, y, label, transform=ax.get_yaxis_transform(), va="center", fontsize=6)
