"""Within- versus between-study isolation-method contrasts, side by side per method."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evmeta.plots._style import PALETTE, figure_of, journal_style, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def isolation_evidence_plot(
    evidence: pd.DataFrame,
    *,
    truth: dict[str, float] | None = None,
    width: str | float = "single",
    ax: Axes | None = None,
) -> Figure:
    """Dot-and-whisker plot of ``isolation_method_evidence`` rows.

    Parameters
    ----------
    evidence : DataFrame
        The result of ``isolation_method_evidence`` (one row per method vs the reference).
    truth : dict, optional
        Known true contrasts per method (simulated data), drawn as crosses.
    width : "double", "single" or mm
    ax : Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    frame = evidence.reset_index() if "method" not in evidence.columns else evidence
    with journal_style():
        if ax is None:
            height = 0.7 + 0.32 * len(frame)
            figure = new_figure(width, height)
            ax = figure.add_axes((0.46, 0.45 / height, 0.51, 1 - 0.55 / height))
        figure = figure_of(ax)
        y = np.arange(len(frame))[::-1].astype(float)
        for part, offset, colour, marker in (
            ("within", 0.15, PALETTE[0], "o"),
            ("between", -0.15, PALETTE[1], "s"),
        ):
            est = frame[f"{part}_estimate"].to_numpy(float)
            low, high = frame[f"{part}_ci_low"].to_numpy(float), frame[f"{part}_ci_high"].to_numpy(float)
            ax.errorbar(
                est,
                y + offset,
                xerr=[est - low, high - est],
                fmt=marker,
                ms=3.5,
                color=colour,
                lw=0.8,
                capsize=1.5,
                label=f"{part}-study",
            )
        if truth:
            known = [truth.get(m, np.nan) for m in frame["method"]]
            ax.scatter(known, y, marker="x", color="black", s=18, zorder=4, label="true contrast")
        labels = [
            f"{m} (k within = {k})" for m, k in zip(frame["method"], frame["k_within_studies"], strict=True)
        ]
        ax.set_yticks(y, labels)
        ax.axvline(0, color="0.6", lw=0.5)
        reference = frame["reference"].iloc[0] if "reference" in frame.columns else "reference"
        ax.set_xlabel(f"Difference in SMD vs {reference}")
        ax.legend(frameon=False, fontsize=6, loc="best")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure
