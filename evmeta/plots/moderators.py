"""Moderator (orchard-style) plot: every comparison as a point, per subgroup its estimate
with the confidence interval (thick) and the prediction interval (thin) at the fit's level."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from evmeta.formatting import percent
from evmeta.plots._style import PALETTE, figure_of, journal_style, new_figure
from evmeta.plots._text import wrap
from evmeta.plots.forest.draw import MEASURE_LABELS
from evmeta.schema.vocabulary import display_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def moderator_plot(
    subgroups: Any, *, width: str | float = "single", ax: Axes | None = None, seed: int = 1
) -> Figure:
    """Orchard-style plot of a SubgroupResult (:func:`evmeta.subgroup_analysis`)."""
    table = subgroups.table
    data = subgroups.overall.data
    by = subgroups.by
    rng = np.random.default_rng(seed)
    with journal_style():
        if ax is None:
            height = 0.42 * len(table) + 0.75
            figure = new_figure(width, height)
            ax = figure.add_axes((0.26, 0.5 / height, 0.6, 1 - 0.75 / height))
        figure = figure_of(ax)
        for row, (level, stats) in enumerate(table.iterrows()):
            colour = PALETTE[row % len(PALETTE)]
            part = data[data[by] == level]
            precision = 1 / np.sqrt(part["vi"].to_numpy(float))
            jitter = rng.uniform(-0.25, 0.25, size=len(part))
            ax.scatter(
                part["yi"],
                row + jitter,
                s=4 + 20 * precision / precision.max(),
                color=colour,
                alpha=0.45,
                lw=0,
            )
            ax.plot([stats["pi_low"], stats["pi_high"]], [row, row], color="0.15", lw=0.8)
            ax.plot(
                [stats["ci_low"], stats["ci_high"]], [row, row], color="0.15", lw=3.0, solid_capstyle="butt"
            )
            ax.plot(stats["estimate"], row, marker="o", ms=5, color=colour, mec="0.1", mew=0.6)
            ax.text(
                1.01,
                row,
                f"k = {int(stats['k'])}",
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=6,
            )
        ax.axvline(0, color="0.4", lw=0.5)
        room = ax.get_position().x0 * figure.get_figwidth() * 72 - 6  # points left of the axes
        names = ["\n".join(wrap(display_label(i, by), room, 7)) for i in table.index]
        ax.set_yticks(range(len(table)), names)
        ax.set_ylim(len(table) - 0.5, -0.5)
        ax.set_xlabel(MEASURE_LABELS.get(getattr(subgroups.overall, "measure", None) or "", "Effect size"))
        level = getattr(subgroups.overall, "level", 0.95)  # the intervals drawn are at the fit's level
        ax.set_title(f"{by.replace('_', ' ')}: estimate, {percent(level)} CI (thick), PI (thin)", fontsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure
