"""Specification curve (Simonsohn, Simmons & Nelson 2020, Nature Human Behaviour 4:1208).

Top panel: the pooled estimate of every fitted specification, ordered from smallest to
largest, with its interval (at the multiverse's level); colour says whether the interval excludes zero (and on
which side). Bottom panel: one row per value of each crossed choice, with a mark under
every specification that uses it, so a reader sees which choices sit at either end of the
curve. The figure only draws the rows of ``multiverse.csv``; it computes no statistics.

Estimates of different effect measures (SMD, ROM, NMD) are on different scales, so when
more than one measure is used (``measure_used``) the top panel is split into one panel per
measure, each with its own y axis, median line and label, and the specifications are ordered
by estimate within each measure; the indicator panel below spans all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evmeta.errors import PlotError
from evmeta.formatting import percent
from evmeta.plots._style import journal_style, new_figure, width_inches
from evmeta.plots._text import text_width_pt, wrap

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLOURS = {1: "#0072B2", -1: "#D55E00", 0: "#8C8C8C"}  # Okabe-Ito blue, vermillion; grey
LABELS = {1: "interval above 0", -1: "interval below 0", 0: "interval includes 0"}
ROW_IN = 0.105  # height of one indicator row (inches)
#: One indicator row: the choice, its value, and which fitted specifications use it (bool).
IndicatorRow = tuple[str, str, "pd.Series[bool]"]


def _choices(results: pd.DataFrame) -> list[str]:
    columns = list(results.columns)
    if "spec_id" in columns and "k" in columns:
        return columns[columns.index("spec_id") + 1 : columns.index("k")]
    raise PlotError("results need the columns of multiverse.csv (spec_id, the choices, k, ...)")


def _rows(results: pd.DataFrame, ok: pd.DataFrame, choices: list[str]) -> list[IndicatorRow]:
    """(choice, value, used) per indicator row; values in the order of the multiverse."""
    ordered = results.sort_values("spec_id") if "spec_id" in results else results
    rows: list[IndicatorRow] = []
    for key in choices:
        for value in dict.fromkeys(ordered[key].astype(str)):
            rows.append((key, value, ok[key].astype(str) == value))
    return rows


MEASURE_NAMES = {
    "SMD": "SMD (standardized mean difference)",
    "MD": "MD (mean difference)",
    "ROM": "ROM (log ratio of means)",
    "NMD": "NMD (normalized mean difference, %)",
    "OR": "log odds ratio",
    "RR": "log risk ratio",
    "RD": "risk difference",
}
GAP_IN = 0.42  # between measure panels: room for the y tick labels of the next panel
MIN_SHARE = 0.15  # a measure panel is at least this share of the width, however few its points


def specification_curve_plot(
    results: pd.DataFrame,
    choices: list[str] | None = None,
    *,
    width: str | float = "double",
    title: str | None = None,
    level: float = 0.95,
) -> Figure:
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
    level : float
        Level of the results' intervals (the multiverse fits at the spec's
        ``[frequentist] level``; 0.95 by default), written on the axis label.

    Returns
    -------
    matplotlib.figure.Figure
        With one measure: two axes (curve, indicators). With several measures used: one
        curve axes per measure (in alphabetical order, each titled with its measure) and the
        indicator axes last.
    """
    choices = list(choices) if choices is not None else _choices(results)
    ok = results[results["status"] == "ok"]
    if ok.empty:
        raise PlotError("no fitted specification to draw")
    measure = ok["measure_used"].astype(str) if "measure_used" in ok else pd.Series("", index=ok.index)
    ok = (
        ok.assign(_measure=measure)
        .sort_values(["_measure", "estimate", "spec_id"], kind="stable")
        .reset_index(drop=True)
    )
    groups = [(str(name), len(g)) for name, g in ok.groupby("_measure", sort=False)]
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
    blocks = _blocks(groups, (0.98 - left) * figure_pt / 72)
    x = np.concatenate([start + 0.5 + (np.arange(n) + 0.5) * span / n for start, span, n in blocks])
    several = len(groups) > 1
    entries = len(set(side.tolist())) + 1  # colours used and the median line
    legend_lines = -(-entries // (2 if narrow else 4)) if several else 0
    curve_in, bottom_in = 2.2, ROW_IN * len(rows) + 0.35
    # One figure-level heading and legend above the panels' measure titles when split.
    top_in = (0.26 + 0.15 * legend_lines if several else 0.12) + 0.15 * len(heading_lines)
    with journal_style():
        figure = new_figure(width, curve_in + bottom_in + 0.2 + top_in)
        ratios = [blocks[0][1]]
        for _, span, _ in blocks[1:]:
            ratios += [_gap(blocks), span]  # a narrow empty column between measure panels
        grid = figure.add_gridspec(
            2, len(ratios), height_ratios=[curve_in, bottom_in], width_ratios=ratios, hspace=0.06, wspace=0
        )
        tops = []
        for i, ((name, _), (start, span, n)) in enumerate(zip(groups, blocks, strict=True)):
            ax = figure.add_subplot(grid[0, 2 * i])
            chosen = slice(sum(g[1] for g in groups[:i]), sum(g[1] for g in groups[: i + 1]))
            _draw_curve(ax, ok.iloc[chosen], x[chosen], side[chosen], narrow, legend=not several)
            ax.set_xlim(start + 0.5, start + span + 0.5)
            if several:
                ax.set_xticks([])  # positions are not ranks across the panels
                ax.set_title(f"{_measure_name(name, narrow)}, n = {n}", loc="left", fontsize=size)
            tops.append(ax)
        bottom = figure.add_subplot(grid[1, :])
        _draw_indicators(bottom, rows, labels, x, side, size)
        bottom.set_xlim(0.5, blocks[-1][0] + blocks[-1][1] + 0.5)
        for start, _, _ in blocks[1:]:
            bottom.axvline(start + 0.5 - _gap(blocks) / 2, color="#BBBBBB", linewidth=0.4)
        height = figure.get_figheight()
        if several:
            _label_split_panels(figure, tops, bottom, heading_lines, left, narrow, size, level)
        else:
            measures = groups[0][0]
            tops[0].set_ylabel(
                f"Pooled estimate{f' ({measures})' if measures else ''}\nwith {percent(level)} interval", fontsize=size
            )
            tops[0].set_title("\n".join(heading_lines), loc="left")
        figure.subplots_adjust(left=left, right=0.98, top=1 - top_in / height, bottom=0.35 / height)
    return figure


def _label_split_panels(
    figure: Figure,
    tops: list[Axes],
    bottom: Axes,
    heading_lines: list[str],
    left: float,
    narrow: bool,
    size: float,
    level: float,
) -> None:
    """One heading and one legend above the measure panels, their shared axis labels."""
    height = figure.get_figheight()
    bottom.set_xticks([])  # positions run across blocks; each panel's title gives its n
    bottom.set_xlabel(
        "Ordered by estimate within measure"
        if narrow
        else "Specification (ordered by estimate within each measure)"
    )
    tops[0].set_ylabel(f"Pooled estimate\nwith {percent(level)} interval", fontsize=size)
    figure.text(left, 1 - 0.08 / height, "\n".join(heading_lines), ha="left", va="top", fontsize=8)
    handles: dict[str, Any] = {}
    for ax in tops:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    order = [LABELS[v] for v in (0, -1, 1)] + ["median"]
    figure.legend(
        [handles[k] for k in order if k in handles],
        [k for k in order if k in handles],
        loc="upper left",
        bbox_to_anchor=(left, 1 - (0.1 + 0.15 * len(heading_lines)) / height),
        frameon=False,
        ncols=2 if narrow else 4,
        handletextpad=0.3,
        columnspacing=1.0,
        fontsize=6 if narrow else 7,
        borderaxespad=0,
        borderpad=0,
    )


def _measure_name(measure: str, short: bool) -> str:
    return measure if short else MEASURE_NAMES.get(measure, measure)


def _blocks(groups: list[tuple[str, int]], panels_in: float) -> list[tuple[float, float, int]]:
    """(start, span, n) of each measure's block on the shared x axis, in specification units.

    A block spans ``n`` units (at least ``MIN_SHARE`` of all when split); blocks are
    separated by ``GAP_IN`` inches converted to the same units, so that the curve panels
    (one grid column each, gaps in between) line up with the indicator panel below.
    """
    total = sum(n for _, n in groups)
    spans = [float(max(n, MIN_SHARE * total)) if len(groups) > 1 else float(n) for _, n in groups]
    unit_in = (panels_in - GAP_IN * (len(groups) - 1)) / sum(spans)
    gap = GAP_IN / unit_in
    out, start = [], 0.0
    for (_, n), span in zip(groups, spans, strict=True):
        out.append((start, span, n))
        start += span + gap
    return out


def _gap(blocks: list[tuple[float, float, int]]) -> float:
    return blocks[1][0] - blocks[0][0] - blocks[0][1] if len(blocks) > 1 else 0.0


def _row_labels(rows: list[IndicatorRow], *, short: bool) -> list[str]:
    """'key: value' on a choice's first row, the value alone below it; at one column width
    the key loses its section prefix ('comparisons.measure' -> 'measure')."""
    labels, previous = [], None
    for key, value, _ in rows:
        name = key.rsplit(".", 1)[-1] if short else key
        labels.append(f"{name}: {value}" if key != previous else value)
        previous = key
    return labels


def _draw_curve(
    ax: Axes,
    ok: pd.DataFrame,
    x: npt.NDArray[np.float64],
    side: npt.NDArray[np.int_],
    narrow: bool = False,
    *,
    legend: bool = True,
) -> None:
    """The estimates of one measure at positions ``x``, their intervals, 0 and their median."""
    from matplotlib.collections import LineCollection

    low_values, high_values, estimate = (ok[c].to_numpy() for c in ("ci_low", "ci_high", "estimate"))
    thin = 0.4 if len(ok) > 200 else 0.8
    for value in (0, -1, 1):
        chosen = side == value
        if not chosen.any():
            continue
        segments = np.stack(
            [
                np.column_stack([x[chosen], low_values[chosen]]),
                np.column_stack([x[chosen], high_values[chosen]]),
            ],
            axis=1,
        )
        ax.add_collection(LineCollection(list(segments), colors=COLOURS[value], linewidths=thin, alpha=0.35))
        ax.scatter(
            x[chosen],
            estimate[chosen],
            s=4 if len(ok) > 200 else 9,
            color=COLOURS[value],
            label=LABELS[value],
            zorder=3,
            linewidths=0,
        )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axhline(float(np.median(estimate)), color="black", linewidth=0.6, linestyle=":", label="median")
    low, high = float(low_values.min()), float(high_values.max())
    pad = 0.05 * (high - low if high > low else 1.0)
    ax.set_ylim(min(low, 0) - pad, max(high, 0) + pad)
    if legend:
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
    ax: Axes,
    rows: list[IndicatorRow],
    labels: list[str],
    x: npt.NDArray[np.float64],
    side: npt.NDArray[np.int_],
    size: float,
) -> None:
    marker = 3 if len(x) > 200 else 6
    previous = None
    for position, (key, _value, uses) in enumerate(rows):
        y = -position
        used = np.asarray(uses)
        ax.scatter(
            x[used],
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
