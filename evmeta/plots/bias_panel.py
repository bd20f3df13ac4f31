"""Publication-bias panel: funnel with the ensemble's PET and PEESE lines, the step-function
selection weights, and the model-averaged effect with its component models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
from matplotlib.ticker import NullLocator

from evmeta.plots._style import PALETTE, figure_of, journal_style, new_figure, width_inches

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from evmeta.models.bias.averaging import BiasAveragingResult
    from evmeta.models.bias.selection import SelectionResult

#: An axes box in figure fractions: left, bottom, width, height.
Box = tuple[float, float, float, float]

BIAS_COLOURS = {"none": PALETTE[0], "selection": PALETTE[1], "pet": PALETTE[2], "peese": PALETTE[3]}
BIAS_NAMES = {"none": "no bias", "selection": "selection", "pet": "PET", "peese": "PEESE"}


def _probability(p: float) -> str:
    """A posterior model probability as a reader wants it: never "0.00" or "1.00"."""
    if p < 0.005:
        return "P < 0.01"
    if p > 0.995:
        return "P > 0.99"
    return f"P = {p:.2f}"


def bias_panel(
    averaging: BiasAveragingResult,
    selection: SelectionResult | None = None,
    *,
    width: str | float = "double",
    ax: Sequence[Axes] | None = None,
) -> Figure:
    """Three panels from a ``bias_model_averaging`` result (and a ``selection_model`` result).

    Parameters
    ----------
    averaging : BiasAveragingResult
        Supplies the comparisons (``yi``, ``vi``), the posterior means of mu and of the PET / PEESE
        slopes (effect + heterogeneity models) and the model-averaged estimate.
    selection : SelectionResult, optional
        Its relative selection weights per p-value interval are drawn in the middle panel.
    width : "double", "single" or mm
    ax : sequence of three Axes, optional
        Draw into these (funnel, weights, estimates) instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    with journal_style():
        if ax is None:
            figure, boxes = _layout(width)
            axes = [figure.add_axes(box) for box in boxes]
        else:
            axes = list(ax)
            figure = figure_of(axes[0])
        _funnel(axes[0], averaging)
        _weights(axes[1], selection)
        _components(axes[2], averaging)
        for a in axes:
            for side in ("top", "right"):
                a.spines[side].set_visible(False)
    return figure


def _layout(width: str | float) -> tuple[Figure, list[Box]]:
    """The figure and its three axes boxes: side by side at 180 mm, stacked at 85 mm."""
    inches = width_inches(width)
    if inches > 4.5:
        figure = new_figure(width, 2.4)
        return figure, [(0.06, 0.17, 0.24, 0.72), (0.38, 0.17, 0.22, 0.72), (0.77, 0.17, 0.21, 0.72)]
    # One column: three panels stacked, each 1.6 in tall with room for its title and x label;
    # the last panel's left margin holds the component models' names.
    panel, gap, bottom = 1.6, 0.72, 0.45
    height = bottom + 3 * panel + 2 * gap + 0.3
    figure = new_figure(width, height)
    boxes = []
    for row, left in enumerate((0.55, 0.55, 1.45)):
        y = bottom + (2 - row) * (panel + gap)
        boxes.append((left / inches, y / height, (inches - left - 0.12) / inches, panel / height))
    return figure, boxes


def _funnel(ax: Axes, averaging: BiasAveragingResult) -> None:
    se = np.sqrt(averaging.vi)
    top = float(se.max()) * 1.08
    grid = np.linspace(0, top, 60)
    ax.scatter(averaging.yi, se, s=9, color="0.55", edgecolor="white", linewidth=0.3, zorder=3)
    models = averaging.models.set_index("model")
    for bias, power in (("pet", 1), ("peese", 2)):
        # One row per model name, so .loc gives a Series (pandas types it Series | DataFrame).
        row = cast("pd.Series", models.loc[f"effect/het/{bias}"])
        ax.plot(
            row["mu_mean"] + row["slope_mean"] * grid**power,
            grid,
            color=BIAS_COLOURS[bias],
            lw=1.0,
            label=f"{BIAS_NAMES[bias]} ({_probability(row['posterior_prob'])})",
        )
    ax.axvline(averaging.estimate, color="black", lw=0.8, ls="--", label="model-averaged")
    ax.axvline(0, color="0.6", lw=0.5)
    ax.set_ylim(top, 0)
    ax.set_xlabel("Effect size")
    ax.set_ylabel("Standard error")
    ax.set_title("Funnel with PET / PEESE", loc="left")
    # A white box keeps the legend readable where the lines and the points pass under it.
    ax.legend(
        frameon=True, facecolor="white", edgecolor="none", framealpha=0.9, fontsize=5.5, loc="lower left"
    )


def _weights(ax: Axes, selection: SelectionResult | None) -> None:
    ax.set_title("Selection weights", loc="left")
    if selection is None:
        ax.text(0.5, 0.5, "no selection model", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    edges = np.concatenate([[0.0], selection.steps])
    ax.stairs(selection.delta, edges, color=BIAS_COLOURS["selection"], lw=1.2, baseline=None)
    centres = (edges[:-1] + edges[1:]) / 2
    ax.errorbar(
        centres[1:],
        selection.delta[1:],
        yerr=1.96 * selection.delta_se[1:],
        fmt="o",
        ms=2.5,
        color=BIAS_COLOURS["selection"],
        lw=0.6,
        capsize=1.5,
    )
    for c, k, d in zip(centres, selection.k_per_interval, selection.delta, strict=True):
        ax.annotate(f"k={k}", (c, d), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=5.5)
    ax.axhline(1, color="0.6", lw=0.5, ls=":")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, 1)
    # Plain-text ticks: the symlog axis's own labels are mathtext, which journal_style turns off.
    ax.set_xticks([0, 0.01, 0.1, 1], ["0", "0.01", "0.1", "1"])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(0, 1.3 * max(1.0, float(np.nanmax(selection.delta))))
    ax.set_xlabel(f"one-sided p-value ({selection.alternative})")
    ax.set_ylabel("relative probability of publication")


def _components(ax: Axes, averaging: BiasAveragingResult) -> None:
    rows = averaging.models[averaging.models["effect"] & averaging.models["heterogeneity"]]
    labels = [
        *(
            f"{BIAS_NAMES[b]} ({_probability(p)})"
            for b, p in zip(rows["bias"], rows["posterior_prob"], strict=True)
        ),
        "model-averaged",
    ]
    y = np.arange(len(labels))[::-1]
    ax.scatter(
        rows["mu_mean"],
        y[:-1],
        s=20 + 120 * rows["posterior_prob"].to_numpy(),
        color=[BIAS_COLOURS[b] for b in rows["bias"]],
        zorder=3,
    )
    ax.errorbar(
        [averaging.estimate],
        [y[-1]],
        xerr=[[averaging.estimate - averaging.ci_low], [averaging.ci_high - averaging.estimate]],
        fmt="D",
        color="black",
        ms=4,
        lw=0.8,
        capsize=2,
    )
    ax.axvline(0, color="0.6", lw=0.5)
    ax.set_yticks(y, labels)
    ax.set_xlabel("Effect (posterior mean)")
    ax.set_title("Model-averaged effect", loc="left")
