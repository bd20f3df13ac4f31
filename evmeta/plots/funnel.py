"""Contour-enhanced funnel plot (Peters et al. 2008) with optional trim-and-fill points."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import matplotlib.ticker as ticker
import numpy as np
import numpy.typing as npt
from scipy import stats

from evmeta.errors import PlotError
from evmeta.formatting import percent
from evmeta.plots._style import PALETTE, figure_of, journal_style, new_figure, width_inches
from evmeta.plots._text import minus, number
from evmeta.plots.forest.draw import MEASURE_LABELS

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Shades from the outside in: p < 0.01, 0.01-0.05, 0.05-0.10, p > 0.10 (light: the points stay legible).
BANDS = ((0.01, "0.86"), (0.05, "0.92"), (0.10, "0.97"), (None, "white"))


def funnel_plot(
    result: Any,
    *,
    precision: str = "se",
    trim_fill: Any = None,
    contours: bool = True,
    width: str | float = "single",
    ax: Axes | None = None,
) -> Figure:
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
    yi = np.asarray(result.yi, dtype=float)
    y, ylabel = _vertical_axis(result, precision)
    with journal_style():
        ax = ax if ax is not None else _new_axes(width, trim_fill, contours)
        figure = figure_of(ax)
        top = float(np.max(y)) * 1.08
        grid = np.linspace(0, top, 100)
        handles: list[Artist] = []
        if contours and precision == "se":
            handles += _contours(ax, grid, top, result.estimate)
        estimate = result.estimate
        if precision == "se":
            level = float(result.level)  # metafor's funnel(level = x$level)
            z = float(stats.norm.ppf(0.5 + level / 2))
            (region,) = ax.plot(
                [estimate - z * top, estimate, estimate + z * top],
                [top, 0, top],
                color="0.3",
                lw=0.6,
                ls="--",
                label=f"{percent(level)} pseudo-confidence region",
            )
            handles.append(region)
        handles.append(
            ax.axvline(estimate, color=PALETTE[3], lw=0.8, label=f"pooled estimate ({number(estimate)})")
        )
        ax.axvline(0, color="0.4", lw=0.5)
        handles.append(
            ax.scatter(
                yi, y, s=12, color=PALETTE[0], edgecolor="white", linewidth=0.3, zorder=3, label="comparisons"
            )
        )
        if trim_fill is not None and len(trim_fill.filled) and precision == "se":
            handles += _filled(ax, trim_fill)
        ax.set_ylim(top, 0)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(MEASURE_LABELS.get(getattr(result, "measure", None) or "", "Effect size"))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: minus(f"{v:g}")))
        _legend(figure, handles)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure


def _vertical_axis(result: Any, precision: str) -> tuple[npt.NDArray[np.float64], str]:
    """The funnel's vertical coordinate of each comparison and its axis label."""
    if precision == "se":
        return np.sqrt(result.vi), "Standard error"
    if precision == "sqrt_inv_n":
        frame = result.data
        if not {"n_treat", "n_control"} <= set(frame.columns):
            raise PlotError("precision='sqrt_inv_n' needs n_treat and n_control columns")
        return np.sqrt(1 / (frame["n_treat"] + frame["n_control"]).to_numpy(float)), "sqrt(1 / n)"
    raise PlotError(f"precision must be 'se' or 'sqrt_inv_n', got {precision!r}")


def _new_axes(width: str | float, trim_fill: Any, contours: bool) -> Axes:
    """A figure of the journal width with room below the axes for the legend."""
    narrow = width_inches(width) < 4.5
    entries = 6 + (2 if trim_fill is not None and len(trim_fill.filled) else 0) - (0 if contours else 4)
    columns = 2 if narrow else 3
    legend_in = 0.14 * np.ceil(entries / columns) + 0.12
    height = 2.4 + legend_in
    figure = new_figure(width, height)
    bottom = (legend_in + 0.4) / height
    return figure.add_axes(
        (0.13 if narrow else 0.08, bottom, 0.83 if narrow else 0.88, 1 - bottom - 0.1 / height)
    )


def _filled(ax: Axes, trim_fill: Any) -> list[Artist]:
    """The comparisons trim-and-fill imputed (open circles) and its adjusted estimate."""
    points = ax.scatter(
        trim_fill.filled["yi"],
        np.sqrt(trim_fill.filled["vi"].to_numpy(float)),
        s=12,
        facecolor="white",
        edgecolor=PALETTE[0],
        zorder=3,
        label=f"filled by trim-and-fill (k0 = {trim_fill.k0})",
    )
    line = ax.axvline(
        trim_fill.estimate, color=PALETTE[1], lw=0.8, ls=":", label=f"adjusted estimate ({number(trim_fill.estimate)})"
    )
    return [points, line]


def _legend(figure: Figure, handles: list[Artist]) -> None:
    figure.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=2 if figure.get_figwidth() < 4.5 else 3,
        frameon=False,
        fontsize=6,
        handlelength=1.6,
        columnspacing=1.2,
        labelspacing=0.3,
    )


def _contours(ax: Axes, grid: npt.NDArray[np.float64], top: float, estimate: float) -> list[Artist]:
    """Significance contours around 0 (two-sided): light greys, darkest where p < 0.01;
    every band has a legend swatch (p > 0.10 is white with an outline)."""
    from matplotlib.patches import Patch

    span = stats.norm.ppf(0.995) * top * 1.05 + abs(estimate)
    ax.fill_betweenx(grid, -span, span, color=BANDS[0][1], lw=0, zorder=0)
    for (alpha, _), (_, shade) in itertools.pairwise(BANDS):
        z = stats.norm.ppf(1 - alpha / 2) if alpha is not None else np.inf
        ax.fill_betweenx(grid, -z * grid, z * grid, color=shade, lw=0, zorder=0)
    labels = ["p < 0.01", "0.01 < p < 0.05", "0.05 < p < 0.10", "p > 0.10"]
    return [
        Patch(facecolor=shade, edgecolor="0.55", lw=0.4, label=label)
        for (_, shade), label in zip(BANDS, labels, strict=True)
    ]
