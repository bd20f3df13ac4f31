"""Specification curve (Simonsohn, Simmons & Nelson 2020, Nature Human Behaviour 4:1208).

Top panel: the pooled estimate of every fitted specification, ordered from smallest to
largest, with its 95% interval; colour says whether the interval excludes zero (and on
which side). Bottom panel: one row per value of each crossed choice, with a mark under
every specification that uses it, so a reader sees which choices sit at either end of the
curve. The figure only draws the rows of ``multiverse.csv``; it computes no statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import PlotError
from evmeta.plots._style import journal_style, new_figure, width_inches
from evmeta.plots._text import text_width_pt, wrap

COLOURS = {1: "#0072B2", -1: "#D55E00", 0: "#8C8C8C"}  # Okabe-Ito blue, vermillion; grey
LABELS = {1: "interval above 0", -1: "interval below 0", 0: "interval includes 0"}
ROW_IN = 0.105  # height of one indicator row (inches)


def _choices(results: pd.DataFrame) -> list[str]:
    columns = list(results.columns)
    if "spec_id" in columns and "k" in columns:
        return columns[columns.index("spec_id") + 1 : columns.index("k")]
    raise PlotError("results need the columns of multiverse.csv (spec_id, the choices, k, ...)")


def _rows(results: pd.DataFrame, ok: pd.DataFrame, choices: list[str]) -> list[tuple[str, str, Any]]:
    """(choice, value, used) per indicator row; values in the order of the multiverse."""
    ordered = results.sort_values("spec_id") if "spec_id" in results else results
    rows = []
    for key in choices:
        for value in dict.fromkeys(ordered[key].astype(str)):
            rows.append((key, value, ok[key].astype(str) == value))
    return rows


def specification_curve_plot(
    results: pd.DataFrame,
    choices: list[str] | None = None,
    *,
    width: str | float = "double",
    title: str | None = None,
):
    """Draw the specification curve of a multiverse.

    Parameters
    ----------
    results : DataFrame
        ``multiverse.csv`` (or ``MultiverseRun.results``): ``spec_id``, one column per
        choice, ``estimate``, ``ci_low``, ``ci_high``, ``status``, ``measure_used``.
    choices : list of str, optional
        Choice columns for the indicator panel (default: the columns between ``spec_id``
        and ``k``).
    width : {"double", "single"} or float
        Journal width (or mm).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    choices = list(choices) if choices is not None else _choices(results)
    ok = results[results["status"] == "ok"]
    if ok.empty:
        raise PlotError("no fitted specification to draw")
    ok = ok.sort_values(["estimate", "spec_id"], kind="stable").reset_index(drop=True)
    rank = np.arange(1, len(ok) + 1)
    side = np.where(ok["ci_low"] > 0, 1, np.where(ok["ci_high"] < 0, -1, 0))
    rows = _rows(results, ok, choices)
    figure_pt = width_inches(width) * 72
    narrow = figure_pt < 4.5 * 72
    size = 6.0 if narrow else 7.0
    labels = _row_labels(rows, short=narrow)
    # The left margin holds the longest row label, the tick pad and the curve's y label.
    left = (max(text_width_pt(label, size) for label in labels) + 30) / figure_pt
    heading = title or f"Specification curve: {len(ok)} fitted of {len(results)} specifications"
    heading_lines = wrap(heading, (0.98 - left) * figure_pt, 8)
    curve_in, bottom_in = 2.2, ROW_IN * len(rows) + 0.35
    top_in = 0.12 + 0.15 * len(heading_lines)
    with journal_style():
        figure = new_figure(width, curve_in + bottom_in + 0.2 + top_in)
        grid = figure.add_gridspec(2, 1, height_ratios=[curve_in, bottom_in], hspace=0.06)
        top = figure.add_subplot(grid[0])
        bottom = figure.add_subplot(grid[1], sharex=top)
        _draw_curve(top, ok, rank, side, narrow)
        _draw_indicators(bottom, rows, labels, rank, side, size)
        measures = ", ".join(sorted(ok["measure_used"].astype(str).unique())) if "measure_used" in ok else ""
        top.set_ylabel(
            f"Pooled estimate{f' ({measures})' if measures else ''}\nwith 95% interval", fontsize=size
        )
        top.set_title("\n".join(heading_lines), loc="left")
        height = figure.get_figheight()
        figure.subplots_adjust(left=left, right=0.98, top=1 - top_in / height, bottom=0.35 / height)
    return figure


def _row_labels(rows: list, *, short: bool) -> list[str]:
    """'key: value' on a choice's first row, the value alone below it; at one column width
    the key loses its section prefix ('comparisons.measure' -> 'measure')."""
    labels, previous = [], None
    for key, value, _ in rows:
        name = key.rsplit(".", 1)[-1] if short else key
        labels.append(f"{name}: {value}" if key != previous else value)
        previous = key
    return labels


def _draw_curve(ax, ok: pd.DataFrame, rank: np.ndarray, side: np.ndarray, narrow: bool = False) -> None:
    from matplotlib.collections import LineCollection

    thin = 0.4 if len(ok) > 200 else 0.8
    for value in (0, -1, 1):
        chosen = side == value
        if not chosen.any():
            continue
        segments = np.stack(
            [
                np.column_stack([rank[chosen], ok["ci_low"][chosen]]),
                np.column_stack([rank[chosen], ok["ci_high"][chosen]]),
            ],
            axis=1,
        )
        ax.add_collection(LineCollection(segments, colors=COLOURS[value], linewidths=thin, alpha=0.35))
        ax.scatter(
            rank[chosen],
            ok["estimate"][chosen],
            s=4 if len(ok) > 200 else 9,
            color=COLOURS[value],
            label=LABELS[value],
            zorder=3,
            linewidths=0,
        )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axhline(float(np.median(ok["estimate"])), color="black", linewidth=0.6, linestyle=":", label="median")
    ax.set_xlim(0.5, len(ok) + 0.5)
    low, high = float(ok["ci_low"].min()), float(ok["ci_high"].max())
    pad = 0.05 * (high - low if high > low else 1.0)
    ax.set_ylim(min(low, 0) - pad, max(high, 0) + pad)
    ax.legend(
        loc="upper left",
        frameon=False,
        ncols=2 if narrow else 4,
        handletextpad=0.3,
        columnspacing=1.0,
        fontsize=6 if narrow else 7,
    )
    ax.tick_params(labelbottom=False)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)


def _draw_indicators(
    ax, rows: list, labels: list[str], rank: np.ndarray, side: np.ndarray, size: float
) -> None:
    marker = 3 if len(rank) > 200 else 6
    previous = None
    for position, (key, _value, used) in enumerate(rows):
        y = -position
        used = np.asarray(used)
        ax.scatter(
            rank[used],
            np.full(used.sum(), y),
            s=marker,
            marker="s",
            linewidths=0,
            color=[COLOURS[v] for v in side[used]],
        )
        if previous is not None and key != previous:
            ax.axhline(y + 0.5, color="#BBBBBB", linewidth=0.4)
        previous = key
    ax.set_yticks([-i for i in range(len(rows))], labels, fontsize=size)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    ax.set_xlabel("Specification (ordered by estimate)")
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)


__all__ = ["specification_curve_plot"]
