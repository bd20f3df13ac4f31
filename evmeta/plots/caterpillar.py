"""Caterpillar plot: every comparison's effect size with its confidence interval (at the model's level),
sorted by size, and the pooled mean with its confidence and prediction intervals beneath
(the compact forest plot orchaRd and metafor users draw when k is too large for labels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from evmeta.errors import FigureError
from evmeta.formatting import percent
from evmeta.models.base.inference import critical_value
from evmeta.plots._style import PALETTE, figure_of, journal_style, new_figure, width_inches
from evmeta.plots.forest.draw import MEASURE_LABELS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Height per comparison (inches) and the tallest figure drawn on one page.
ROW_INCHES = 0.035
MAX_HEIGHT = 9.0


def caterpillar_plot(
    fit: Any, *, width: str | float = "single", level: float | None = None, ax: Axes | None = None
) -> Figure:
    """Draw the caterpillar plot of a fitted model without moderators.

    Parameters
    ----------
    fit : MetaResult or MultilevelResult
        The pooled model; its stored ``yi``/``vi`` are drawn.
    width : {"single", "double"} or float
        85 mm, 180 mm, or a width in mm.
    level : float, optional
        Level of the comparisons' intervals; default the model's ``level`` (the pooled
        intervals always use the model's level).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not fit.model.intercept_only:
        raise FigureError("the caterpillar plot draws a model without moderators (one pooled mean)")
    yi, vi = np.asarray(fit.yi, float), np.asarray(fit.vi, float)
    order = np.argsort(yi, kind="stable")
    level = float(fit.level if level is None else level)
    crit = critical_value(level, None)
    half = crit * np.sqrt(vi[order])
    pooled = fit.predict().iloc[0]
    k = len(yi)
    with journal_style():
        if ax is None:
            height = min(MAX_HEIGHT, ROW_INCHES * k + 1.0)
            figure = new_figure(width, height)
            left = 0.7 / width_inches(width)  # room for the "pooled" tick and the axis label
            ax = figure.add_axes((left, 0.45 / height, 0.97 - left, 1 - 0.85 / height))
        rows = np.arange(k)
        ax.hlines(rows, yi[order] - half, yi[order] + half, color="0.55", lw=0.5)
        ax.scatter(yi[order], rows, s=4, color=PALETTE[0], lw=0, zorder=3)
        bottom = k + 1.5
        ax.plot([pooled["pi_low"], pooled["pi_high"]], [bottom, bottom], color="0.15", lw=0.8)
        ax.plot(
            [pooled["ci_low"], pooled["ci_high"]],
            [bottom, bottom],
            color="0.15",
            lw=3.0,
            solid_capstyle="butt",
        )
        ax.plot(pooled["pred"], bottom, marker="D", ms=4.5, color=PALETTE[1], mec="0.1", mew=0.6, zorder=4)
        ax.axvline(pooled["pred"], color=PALETTE[1], lw=0.5, ls=":", zorder=1)
        ax.axvline(0, color="0.4", lw=0.5, zorder=0)
        ax.set_yticks([bottom], ["pooled"])
        ax.set_ylim(bottom + 1.5, -1)
        ax.set_ylabel(f"comparisons (k = {k}), sorted by effect size")
        ax.set_xlabel(MEASURE_LABELS.get(getattr(fit, "measure", None) or "", "Effect size"))
        ax.set_title(f"Comparisons with {percent(level)} CI\npooled mean: {percent(fit.level)} CI (thick), PI (thin)", fontsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure_of(ax)
