"""Forest plot drawing: the rows of :mod:`evmeta.plots.forest.layout` onto one page each.

Every page is a Figure with one Axes spanning it, measured in inches (x to the right,
y downwards), so texts, squares and diamonds sit exactly where the layout put them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.plots._style import PALETTE, FigurePages, figure_of, new_figure
from evmeta.plots._text import minus
from evmeta.plots.forest.layout import (
    PT,
    Geometry,
    Row,
    column_titles,
    geometry,
    interval,
    paginate,
    study_row,
    text_row,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Axis position (inches across the page) of an effect size (clipped to the axis limits).
XOf = Callable[[float], float]
# ``data`` below is evmeta.plots.forest._ForestData, typed Any: the package imports this
# module, and tests/test_architecture.py counts a TYPE_CHECKING import back as a cycle.

PLOTTED = {"study", "pooled", "overall", "prediction"}
MEASURE_LABELS = {
    "SMD": "Standardized mean difference (Hedges' g)",
    "MD": "Mean difference",
    "ROM": "Log ratio of means",
    "NMD": "Normalized mean difference (%)",
    "OR": "Log odds ratio",
    "RR": "Log risk ratio",
    "RD": "Risk difference",
}


def _pooled(data: Any) -> list[Any]:
    return [g.pooled for g in data.groups if g.pooled] + ([data.overall] if data.overall else [])


def limits(data: Any) -> tuple[float, float]:
    """The effect axis: every estimate, most interval ends (3rd-97th percentile), and the
    diamonds and prediction interval as far as the comparisons' intervals reach. A pooled
    interval wider than every comparison's (a k = 2 subgroup under Knapp-Hartung: a t
    quantile on 1 df) is clipped with arrows instead of shrinking every row to pixels."""
    all_rows = pd.concat([g.rows for g in data.groups])
    values = [0.0, *all_rows["_est"].to_numpy(float)]
    values += list(np.nanpercentile(all_rows["_lo"], [3])) + list(np.nanpercentile(all_rows["_hi"], [97]))
    reach = (min(0.0, float(np.nanmin(all_rows["_lo"]))), max(0.0, float(np.nanmax(all_rows["_hi"]))))
    for p in _pooled(data):
        ends = [p.ci_low, p.ci_high] + ([p.pi_low, p.pi_high] if np.isfinite(p.pi_low) else [])
        values += [float(np.clip(v, *reach)) for v in ends if np.isfinite(v)]
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.06 * (hi - lo if hi > lo else 1.0)
    return lo - pad, hi + pad


def clipped(data: Any, axis: tuple[float, float]) -> bool:
    """Whether a diamond or the prediction interval runs past the axis (drawn with arrows)."""
    lo, hi = axis
    for p in _pooled(data):
        ends = [p.ci_low, p.ci_high] + ([p.pi_low, p.pi_high] if np.isfinite(p.pi_low) else [])
        if any(v < lo or v > hi for v in ends if np.isfinite(v)):
            return True
    return False


def _right_columns(show_weights: bool, grouped: bool, narrow: bool, header: str) -> list[tuple[str, str]]:
    right = [("est", header)]
    if show_weights and grouped and narrow:
        right.append(("weight_both", "Weight %\nall (group)"))
    elif show_weights:
        right.append(("weight", "Weight\n% overall" if grouped else "Weight\n%"))
        if grouped:
            right.append(("weight_group", "Weight\n% in group"))
    return right


#: Footnote of a dose marked † (:data:`~evmeta.plots.forest.layout.REFERENCE_WEIGHT_MARK`).
REFERENCE_WEIGHT_NOTE = (
    "† Dose per kg computed from the species' reference body weight (the study reported the dose per "
    "animal and no body weight)."
)
#: Dose units the dose column abbreviates: footnote key -> what it stands for.
DOSE_ABBREVIATIONS = {"p": "p = particles", "CE": "CE = cell equivalents"}


def footnotes(keys: frozenset[str], grouped: bool, weights: bool, treated: str = "EV") -> list[str]:
    """Footnotes for what a page's cells mark or abbreviate (``keys``: see
    :func:`~evmeta.plots.forest.layout.note_keys`), and for the weight columns."""
    notes = []
    if "split" in keys:
        notes.append(
            f"* Control group shared by several {treated} arms: its animals are divided among the "
            "comparisons that use it (n to one decimal)."
        )
    used = [text for key, text in DOSE_ABBREVIATIONS.items() if key in keys]
    if used:
        notes.append("Dose per kg body weight: " + "; ".join(used) + " (where protein was not reported).")
    if "reference_weight" in keys:
        notes.append(REFERENCE_WEIGHT_NOTE)
    if weights and grouped:
        notes.append("Weights: percent of the overall model, and percent within the subgroup.")
    return notes


def build_rows(data: Any, geo: Geometry, show_prediction: bool) -> tuple[list[Row], list[Row]]:
    """Body rows (groups, comparisons, diamonds) and trailer rows (overall heterogeneity,
    subgroup test) that go under the axis of the last page; footnotes are per page."""
    body: list[Row] = []
    for group in data.groups:
        name = None if group.name is None else (group.title or str(group.name))
        if name is not None:
            body.append(text_row("group", name, name, geo, full_width=True, bold=True))
        for _, record in group.rows.iterrows():
            body.append(study_row(record, geo))
        if group.pooled is not None:
            label = f"{group.pooled.label} (k = {len(group.rows)})"
            body.append(text_row("pooled", group, label, geo))
            body.append(text_row("note", None, group.pooled.note, geo, full_width=True))
        for row in body:
            row.group = name if row.group is None else row.group
        if name is not None:
            body.append(Row("blank", None, {}, geo.row_height(1) / 2))
    trailer: list[Row] = []
    if data.overall is not None:
        body.append(text_row("overall", data.overall, data.overall.label, geo, bold=True))
        if show_prediction and np.isfinite(data.overall.pi_low):
            body.append(
                text_row("prediction", data.overall, f"{data.level * 100:.4g}% prediction interval", geo)
            )
        trailer.append(text_row("note", None, data.overall.note, geo, full_width=True))
    for line in data.footer:
        trailer.append(text_row("note", None, line, geo, full_width=True))
    return body, trailer


def draw_pages(
    data: Any,
    columns: tuple[str, ...],
    show_weights: bool,
    show_prediction: bool,
    title: str | None,
    width_in: float,
    max_height: float | None,
    ax: Axes | None,
) -> Figure | FigurePages:
    """Lay the plot out once and draw it on as many pages as it needs."""
    all_rows = pd.concat([g.rows for g in data.groups])
    grouped = any(g.name is not None for g in data.groups)
    header = f"Estimate [{data.level * 100:.4g}% {data.interval}]"
    right = _right_columns(show_weights, grouped, width_in <= 4.5, header)
    geo, columns = geometry(all_rows, columns, right, width_in, limits(data), column_titles(data.treated))
    if clipped(data, geo.limits):
        data.footer = [
            *data.footer,
            "Arrows: a pooled or prediction interval runs past the axis; its limits are in the numbers.",
        ]
    body, trailer = build_rows(data, geo, show_prediction)
    notes_cache: dict[frozenset[str], list[Row]] = {}

    def page_notes(keys: frozenset[str]) -> list[Row]:
        # The footnotes a page needs: its rows' marks and abbreviations, and the weights.
        if keys not in notes_cache:
            lines = footnotes(keys, grouped, show_weights, data.treated)
            notes_cache[keys] = [text_row("note", None, line, geo, full_width=True) for line in lines]
        return notes_cache[keys]

    header_lines = 2 if any("\n" in h for _, _, h in geo.right) else 1
    header_row = Row("header", None, {}, geo.row_height(header_lines))
    top = 0.06 + (geo.row_height(1) * 1.6 if title else 0)
    axis_block = 0.12 + 3 * geo.row_height(1)
    trailer_h = sum(r.height for r in trailer)
    room = None if ax is not None or max_height is None else max_height - top - axis_block
    pages = paginate(body, header_row, geo, room, trailer_h, lambda keys: sum(r.height for r in page_notes(keys)))
    max_weight = float(np.nanmax(all_rows["_weight"])) if all_rows["_weight"].notna().any() else np.nan
    figures = []
    for number_, rows in enumerate(pages, start=1):
        last = number_ == len(pages)
        under = [*(trailer if last else []), *page_notes(frozenset().union(*(r.notes for r in rows)))]
        height = top + sum(r.height for r in rows) + axis_block + sum(r.height for r in under)
        if ax is None:
            figure = new_figure(geo.width * 25.4, height)
            axes = figure.add_axes((0, 0, 1, 1))
        else:
            axes, figure = ax, figure_of(ax)
        page_title = title if len(pages) == 1 or not title else f"{title} ({number_} of {len(pages)})"
        _draw_page(axes, geo, rows, under, page_title, top, height, data, max_weight)
        figures.append(figure)
    return figures[0] if len(figures) == 1 else FigurePages(figures)


def _text(
    axes: Axes, x: float, y: float, lines: list[str], geo: Geometry, size: float | None = None, **kwargs: Any
) -> None:
    if lines:
        axes.text(x, y, "\n".join(lines), fontsize=size or geo.font, va="center", linespacing=1.2, **kwargs)


def _draw_page(
    axes: Axes,
    geo: Geometry,
    rows: list[Row],
    trailer: list[Row],
    title: str | None,
    top: float,
    height: float,
    data: Any,
    max_weight: float,
) -> None:
    axes.set_axis_off()
    axes.set_xlim(0, geo.width)
    axes.set_ylim(height, 0)
    lo, hi = geo.limits

    def x_of(value: float) -> float:
        return float(geo.panel[0] + (np.clip(value, lo, hi) - lo) / (hi - lo) * (geo.panel[1] - geo.panel[0]))

    if title:
        _text(axes, 0.05, top / 2 + 0.03, [title], geo, size=geo.font + 1.5, fontweight="bold")
    y, spans = top, []
    for row in rows:
        centre = y + row.height / 2
        if row.kind in PLOTTED:
            spans.append((y, y + row.height, row.kind))
        _draw_row(axes, geo, row, centre, x_of, max_weight)
        y += row.height
    _vertical_lines(axes, spans, x_of(0.0), None if data.overall is None else x_of(data.overall.estimate))
    y = _draw_axis(axes, geo, y + 0.04, x_of, data.measure, data.treatment)
    for row in trailer:
        _text(
            axes,
            0.05,
            y + row.height / 2,
            row.cells["left"],
            geo,
            size=geo.font - 0.5,
            color="0.25",
        )
        y += row.height


def _vertical_lines(
    axes: Axes, spans: list[tuple[float, float, str]], zero_x: float, overall_x: float | None
) -> None:
    """The no-effect line and the overall estimate's dashed line, over plotted rows only
    (so they never strike through notes or headings)."""
    runs: list[list[float]] = []
    for y0, y1, _kind in spans:
        if runs and abs(runs[-1][1] - y0) < 1e-9:
            runs[-1][1] = y1
        else:
            runs.append([y0, y1])
    for y0, y1 in runs:
        axes.plot([zero_x] * 2, [y0, y1], color="0.45", lw=0.6, zorder=1)
        if overall_x is not None:
            axes.plot([overall_x] * 2, [y0, y1], color=PALETTE[3], lw=0.6, ls=(0, (2, 2)), zorder=1)


def _draw_row(axes: Axes, geo: Geometry, row: Row, y: float, x_of: XOf, max_weight: float) -> None:
    font: dict[str, Any] = {"fontsize": geo.font, "va": "center"}  # Text keywords (untyped in matplotlib)
    numbers = {"ha": "right", **font}  # right-aligned; DejaVu Sans has tabular (equal-width) digits
    if row.kind == "header":
        for column, x0, _ in geo.left:
            axes.text(x0, y, geo.titles.get(column, column), fontweight="bold", **font)
        for _, edge, header in geo.right:
            axes.text(edge, y, header, fontweight="bold", ha="right", linespacing=1.1, **font)
        axes.plot([0.05, geo.width - 0.05], [y + row.height / 2] * 2, color="0.2", lw=0.6)
    elif row.kind == "group":
        _text(axes, 0.05, y, row.cells["left"], geo, fontweight="bold")
    elif row.kind == "study":
        _draw_study(axes, geo, row, y, x_of, max_weight)
    elif row.kind in {"pooled", "overall"}:
        pooled = row.item.pooled if row.kind == "pooled" else row.item
        colour = PALETTE[3] if row.kind == "overall" else "0.3"
        half = min(0.38 * geo.row_height(1), row.height * 0.4)
        corners = [
            (x_of(pooled.ci_low), y),
            (x_of(pooled.estimate), y - half),
            (x_of(pooled.ci_high), y),
            (x_of(pooled.estimate), y + half),
        ]
        from matplotlib.patches import Polygon

        axes.add_patch(Polygon(corners, closed=True, facecolor=colour, edgecolor=colour, zorder=3))
        _clip_arrows(axes, geo, pooled.ci_low, pooled.ci_high, y, x_of, colour)
        weight = "bold" if row.kind == "overall" else "normal"
        _text(axes, 0.05, y, row.cells["left"], geo, fontweight=weight)
        edges = {name: edge for name, edge, _ in geo.right}
        axes.text(
            edges["est"],
            y,
            interval(pooled.estimate, pooled.ci_low, pooled.ci_high),
            fontweight=weight,
            **numbers,
        )
        if row.kind == "pooled":
            share = float(np.nansum(row.item.rows["_weight"]))
            _weights(axes, edges, y, share, 100.0, font)
        elif row.kind == "overall":
            _weights(axes, edges, y, 100.0, np.nan, {**font, "fontweight": "bold"})
    elif row.kind == "prediction":
        pooled = row.item
        axes.plot(
            [x_of(pooled.pi_low), x_of(pooled.pi_high)],
            [y, y],
            color=PALETTE[3],
            lw=1.6,
            solid_capstyle="butt",
            zorder=2,
        )
        for end in (pooled.pi_low, pooled.pi_high):
            if geo.limits[0] <= end <= geo.limits[1]:
                axes.plot(
                    [x_of(end)] * 2, [y - 0.3 * row.height, y + 0.3 * row.height], color=PALETTE[3], lw=0.8
                )
        _clip_arrows(axes, geo, pooled.pi_low, pooled.pi_high, y, x_of, PALETTE[3])
        _text(axes, 0.05, y, row.cells["left"], geo)
        text = f"[{minus(f'{pooled.pi_low:.2f}')}, {minus(f'{pooled.pi_high:.2f}')}]"
        axes.text(geo.right[0][1], y, text, **numbers)
    elif row.kind == "note":
        _text(axes, 0.05, y, row.cells["left"], geo, size=geo.font - 0.5, color="0.25")


def _clip_arrows(
    axes: Axes, geo: Geometry, low: float, high: float, y: float, x_of: XOf, colour: str
) -> None:
    """An arrow at each axis end that the interval [low, high] runs past."""
    lo, hi = geo.limits
    if low < lo:
        axes.plot(x_of(lo), y, marker="<", color=colour, ms=3.5, zorder=4)
    if high > hi:
        axes.plot(x_of(hi), y, marker=">", color=colour, ms=3.5, zorder=4)


def _draw_study(axes: Axes, geo: Geometry, row: Row, y: float, x_of: XOf, max_weight: float) -> None:
    record = row.item
    for column, x0, _ in geo.left:
        _text(axes, x0, y, row.cells.get(column, []), geo)
    lo, hi = geo.limits
    est, lo_ci, hi_ci = record["_est"], record["_lo"], record["_hi"]
    shrunk = "_shrunk" in record.index and pd.notna(record.get("_shrunk"))
    line = geo.row_height(1)
    offset = -0.15 * line if shrunk else 0.0
    axes.plot([x_of(lo_ci), x_of(hi_ci)], [y + offset] * 2, color="0.15", lw=0.7, zorder=2)
    if lo_ci < lo:
        axes.plot(x_of(lo), y + offset, marker="<", color="0.15", ms=3, zorder=3)
    if hi_ci > hi:
        axes.plot(x_of(hi), y + offset, marker=">", color="0.15", ms=3, zorder=3)
    size = (
        4.5 * np.sqrt(record["_weight"] / max_weight) + 1.5
        if np.isfinite(max_weight) and pd.notna(record["_weight"])
        else 3.5
    )
    if lo <= est <= hi:
        axes.plot(x_of(est), y + offset, marker="s", ms=size, color=PALETTE[0], mec="none", zorder=3)
    if shrunk:
        axes.plot(
            [x_of(record["_shrunk_lo"]), x_of(record["_shrunk_hi"])],
            [y + 0.2 * line] * 2,
            color=PALETTE[1],
            lw=0.7,
            zorder=2,
        )
        axes.plot(x_of(record["_shrunk"]), y + 0.2 * line, marker="o", ms=2.8, color=PALETTE[1], zorder=3)
    font: dict[str, Any] = {"fontsize": geo.font, "va": "center"}
    edges = {name: edge for name, edge, _ in geo.right}
    axes.text(edges["est"], y, interval(est, lo_ci, hi_ci), ha="right", **font)
    _weights(axes, edges, y, record.get("_weight", np.nan), record.get("_weight_group", np.nan), font)


def _weights(
    axes: Axes, edges: dict[str, float], y: float, overall: float, group: float, font: dict[str, Any]
) -> None:
    """Percent weight in the overall model and within the subgroup (one column or two)."""
    if "weight_both" in edges and pd.notna(overall):
        text = f"{overall:.1f}" + (f" ({group:.1f})" if pd.notna(group) else "")
        axes.text(edges["weight_both"], y, text, ha="right", **font)
    for name, value in [("weight", overall), ("weight_group", group)]:
        if name in edges and pd.notna(value):
            axes.text(edges[name], y, f"{value:.1f}", ha="right", **font)


def _draw_axis(
    axes: Axes, geo: Geometry, y: float, x_of: XOf, measure: str | None, treatment: str = "EVs"
) -> float:
    """The effect axis under the panel; returns the y below it."""
    import matplotlib.ticker as ticker

    lo, hi = geo.limits
    font: dict[str, Any] = {"fontsize": geo.font, "va": "center"}
    line = geo.row_height(1)
    axes.plot([geo.panel[0], geo.panel[1]], [y, y], color="0.1", lw=0.6)
    narrow = geo.panel[1] - geo.panel[0] < 2.0
    for tick in ticker.MaxNLocator(nbins=4 if narrow else 6).tick_values(lo, hi):
        if lo <= tick <= hi:
            axes.plot([x_of(tick)] * 2, [y, y + 0.04], color="0.1", lw=0.6)
            axes.text(x_of(tick), y + 0.04 + line / 2, minus(f"{tick:g}"), ha="center", **font)
    label = MEASURE_LABELS.get(measure or "", measure or "Effect size")
    centre = (geo.panel[0] + geo.panel[1]) / 2
    axes.text(centre, y + 0.04 + 1.5 * line, label, ha="center", **font)
    small = geo.font - 0.5
    left_caption, right_caption = "← favours control", f"favours {treatment} →"
    left_w = _width(left_caption, small) + 0.1
    right_w = _width(right_caption, small) + 0.1
    zero = float(np.clip(x_of(0.0), left_w, geo.width - right_w))
    y_caption = y + 0.04 + 2.5 * line
    axes.text(zero - 0.05, y_caption, left_caption, ha="right", fontsize=small, va="center")
    axes.text(zero + 0.05, y_caption, right_caption, ha="left", fontsize=small, va="center")
    return y + 0.08 + 3 * line


def _width(text: str, size: float) -> float:
    from evmeta.plots._text import text_width_pt

    return text_width_pt(text, size) * PT
