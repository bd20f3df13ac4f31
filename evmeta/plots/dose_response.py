"""Dose-response bubble plot: effect against log10 dose with the meta-regression line."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import PlotError
from evmeta.plots._style import PALETTE, journal_style, new_figure
from evmeta.plots.forest import MEASURE_LABELS


def dose_response_plot(
    result: Any,
    *,
    x: str = "log10_dose_ug_protein_per_kg",
    color_by: str | None = "isolation_method",
    width: str | float = "single",
    ax: Any = None,
):
    """Effect sizes against ``x`` (bubble area by weight, colour by ``color_by``), with the
    fitted meta-regression line and its 95% confidence band.

    ``result`` is a MetaResult whose moderators include ``x``; other moderators are held
    at their most common level (categorical) or mean (numeric) for the line.
    """
    frame = result.data
    if x not in frame.columns:
        raise PlotError(f"{x!r} is not a column of the model's data")
    values = frame[x].to_numpy(float)
    grid = np.linspace(np.nanmin(values), np.nanmax(values), 100)
    newdata = pd.DataFrame({x: grid})
    for column in frame.columns:
        if column != x and result.model.formula and column in result.model.formula:
            series = frame[column]
            newdata[column] = (
                series.mode().iloc[0] if not pd.api.types.is_numeric_dtype(series) else series.mean()
            )
    line = result.predict(newdata) if result.model.formula and x in result.model.formula else None
    with journal_style():
        if ax is None:
            figure = new_figure(width, 2.6)
            ax = figure.add_axes((0.15, 0.17, 0.52 if color_by else 0.8, 0.76))
        figure = ax.figure
        sizes = 8 + 120 * result.weights / np.max(result.weights)
        if color_by and color_by in frame.columns:
            for index, (level, part) in enumerate(frame.groupby(color_by, sort=True)):
                take = frame.index.get_indexer(part.index)
                ax.scatter(
                    values[take],
                    result.yi[take],
                    s=sizes[take],
                    color=PALETTE[index % len(PALETTE)],
                    alpha=0.75,
                    edgecolor="white",
                    lw=0.3,
                    label=str(level),
                )
            ax.legend(
                title=color_by.replace("_", " "),
                loc="center left",
                bbox_to_anchor=(1.02, 0.5),
                frameon=False,
                fontsize=6,
                title_fontsize=6,
                markerscale=0.6,
            )
        else:
            ax.scatter(values, result.yi, s=sizes, color=PALETTE[0], alpha=0.75, edgecolor="white", lw=0.3)
        if line is not None:
            ax.fill_between(grid, line["ci_low"], line["ci_high"], color="0.6", alpha=0.3, lw=0)
            ax.plot(grid, line["pred"], color="0.1", lw=1.0)
        ax.axhline(0, color="0.4", lw=0.5)
        ax.set_xlabel(
            x.replace("log10_dose_", "log10 dose (")
            .replace("_per_", " per ")
            .replace("ug_protein", "µg protein")
            + (")" if x.startswith("log10_dose_") else "")
        )
        ax.set_ylabel(MEASURE_LABELS.get(getattr(result, "measure", None) or "", "Effect size"))
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure
