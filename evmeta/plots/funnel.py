"""Contour-enhanced funnel plot (Peters et al. 2008) with optional trim-and-fill points."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from evmeta.errors import PlotError
from evmeta.plots._style import PALETTE, journal_style, new_figure
from evmeta.plots.forest import MEASURE_LABELS

CONTOURS = ((0.10, "0.95"), (0.05, "0.85"), (0.01, "0.72"))


def funnel_plot(
    result: Any,
    *,
    precision: str = "se",
    trim_fill: Any = None,
    contours: bool = True,
    width: str | float = "single",
    ax: Any = None,
):
    """Funnel plot of a fitted model (MetaResult or MultilevelResult).

    Parameters
    ----------
    precision : {"se", "sqrt_inv_n"}
        Vertical axis: the standard error, or sqrt(1/n) with n the animals in both arms
        (advised for SMD, whose SE depends on the effect: Zwetsloot et al. 2017).
    trim_fill : TrimFillResult, optional
        Adds the filled comparisons as open circles and the adjusted estimate.
    contours : bool
        Shade the regions where a comparison is significant at 10%, 5% and 1% (two-sided,
        around 0); only with ``precision="se"``.
    """
    frame = result.data
    yi = np.asarray(result.yi, dtype=float)
    if precision == "se":
        y = np.sqrt(result.vi)
        ylabel = "Standard error"
    elif precision == "sqrt_inv_n":
        if not {"n_treat", "n_control"} <= set(frame.columns):
            raise PlotError("precision='sqrt_inv_n' needs n_treat and n_control columns")
        y = np.sqrt(1 / (frame["n_treat"] + frame["n_control"]).to_numpy(float))
        ylabel = "sqrt(1 / n)"
    else:
        raise PlotError(f"precision must be 'se' or 'sqrt_inv_n', got {precision!r}")
    with journal_style():
        if ax is None:
            figure = new_figure(width, 2.6)
            ax = figure.add_axes((0.14, 0.16, 0.5, 0.78))
        figure = ax.figure
        top = float(np.max(y)) * 1.08
        grid = np.linspace(0, top, 100)
        if contours and precision == "se":
            # Darkest outside (p < 0.01), lighter towards the centre, white where p > 0.10.
            span = stats.norm.ppf(0.995) * top * 1.05
            ax.fill_betweenx(
                grid,
                -span - abs(result.estimate),
                span + abs(result.estimate),
                color="0.62",
                lw=0,
                zorder=0,
                label="p < 0.01",
            )
            for (alpha, shade), label in zip(
                [(0.01, "0.78"), (0.05, "0.90"), (0.10, "white")],
                ["0.01 < p < 0.05", "0.05 < p < 0.10", "p > 0.10"],
                strict=True,
            ):
                z = stats.norm.ppf(1 - alpha / 2)
                ax.fill_betweenx(grid, -z * grid, z * grid, color=shade, lw=0, zorder=0, label=label)
        estimate = result.estimate
        if precision == "se":
            ax.plot(
                [estimate - 1.96 * top, estimate, estimate + 1.96 * top],
                [top, 0, top],
                color="0.3",
                lw=0.6,
                ls="--",
            )
        ax.axvline(estimate, color=PALETTE[3], lw=0.8)
        ax.axvline(0, color="0.4", lw=0.5)
        ax.scatter(
            yi, y, s=12, color=PALETTE[0], edgecolor="white", linewidth=0.3, zorder=3, label="comparisons"
        )
        if trim_fill is not None and len(trim_fill.filled):
            filled_y = np.sqrt(trim_fill.filled["vi"].to_numpy(float)) if precision == "se" else None
            if filled_y is not None:
                ax.scatter(
                    trim_fill.filled["yi"],
                    filled_y,
                    s=12,
                    facecolor="white",
                    edgecolor=PALETTE[0],
                    zorder=3,
                    label=f"filled (k0 = {trim_fill.k0})",
                )
                ax.axvline(trim_fill.estimate, color=PALETTE[1], lw=0.8, ls=":", label="adjusted estimate")
        ax.set_ylim(top, 0)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(MEASURE_LABELS.get(getattr(result, "measure", None) or "", "Effect size"))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure
