"""SYRCLE risk-of-bias figures: summary bars per item and a traffic-light grid per study."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.data import load_csv
from evmeta.errors import PlotError
from evmeta.plots._style import FONT_FAMILY, FigurePages, figure_of, journal_style, new_figure
from evmeta.plots._text import study_labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.path import Path as MarkerPath

#: SYRCLE items: (column, "number. domain (bias)").
Items = list[tuple[str, str]]

COLOURS = {"low": "#1A9850", "unclear": "#FEE08B", "high": "#D73027"}
SYMBOLS = {"low": "+", "unclear": "?", "high": "−"}


def _items() -> Items:
    return [(r["column"], f"{r['item']}. {r['domain']} ({r['bias']})") for r in load_csv("syrcle_items.csv")]


def _table(data: Any) -> pd.DataFrame:
    """One row per study (per experiment only where a study's experiments were judged
    differently), labelled 'Author Year' with a/b suffixes for namesakes."""
    frame: pd.DataFrame = getattr(data, "table", data)
    if hasattr(data, "risk_of_bias") and hasattr(data, "studies"):
        frame = data.risk_of_bias.merge(
            data.studies[["study_id", "first_author", "year"]], on="study_id", how="left"
        )
    frame = frame.copy()
    if {"first_author", "year", "study_id"} <= set(frame.columns):
        frame["label"] = study_labels(frame).to_numpy()
    elif "label" not in frame.columns:
        frame["label"] = frame["study_id"].astype(str)
    if "study_id" not in frame.columns:
        return frame
    items = [c for c, _ in _items() if c in frame.columns]
    # One row per distinct set of judgements within a study; a study judged differently
    # in its experiments keeps one row per experiment, tagged with the experiment.
    judged = frame.drop_duplicates(["study_id", *items]).copy()
    if "experiment_id" in judged.columns:
        several = judged["study_id"].duplicated(keep=False).to_numpy()
        judged.loc[several, "label"] = [
            f"{label} ({str(experiment).rsplit('-', 1)[-1]})"
            for label, experiment in zip(
                judged["label"][several], judged["experiment_id"][several], strict=True
            )
        ]
    return judged.sort_values("label", kind="stable").reset_index(drop=True)


def risk_of_bias_plot(
    data: Any, *, kind: str = "both", width: str | float = "double", ax: Axes | None = None
) -> Figure | FigurePages:
    """Risk-of-bias figure from an Extraction, Comparisons or a table with the ``rob_*`` columns.

    ``kind``: ``summary`` (stacked bars: share of studies judged low / unclear / high per
    item), ``traffic_light`` (one row per study, one circle per item) or ``both``. A traffic
    light too long for one 240 mm page continues on further pages (a :class:`FigurePages`;
    the summary, over every study, stays on the first).
    """
    items = _items()
    frame = _table(data)
    missing = [c for c, _ in items if c not in frame.columns]
    if missing:
        raise PlotError(f"no risk-of-bias columns {', '.join(missing)} in these data")
    summary_in = 0.16 * len(items) + 0.75  # bars, x label, legend above
    if ax is not None or kind == "summary":
        return _page(frame, frame, items, kind, width, ax, summary_in)
    first = int((PAGE_IN - summary_in - 0.15 - 0.6) / MIN_PITCH_IN) if kind == "both" else ROWS_PER_PAGE
    if len(frame) <= first:
        return _page(frame, frame, items, kind, width, ax, summary_in)
    # As few pages as fit, with the studies spread evenly (no page of a few orphan rows).
    count = 1 + -(-(len(frame) - first) // ROWS_PER_PAGE)
    head = min(first, -(-len(frame) // count))
    rest = len(frame) - head
    per_page = -(-rest // -(-rest // ROWS_PER_PAGE))
    pages = [_page(frame, frame.iloc[:head], items, kind, width, None, summary_in)]
    for start in range(head, len(frame), per_page):
        chunk = frame.iloc[start : start + per_page]
        pages.append(_page(frame, chunk, items, "traffic_light", width, None, summary_in))
    return FigurePages(pages)


#: Page height (240 mm) and the smallest row pitch that keeps 7 pt study labels apart, in inches.
PAGE_IN = 240 / 25.4
MIN_PITCH_IN = 0.1
#: Traffic-light rows on a page without the summary.
ROWS_PER_PAGE = int((PAGE_IN - 0.6) / MIN_PITCH_IN)


def _page(
    summary_frame: pd.DataFrame,
    frame: pd.DataFrame,
    items: Items,
    kind: str,
    width: str | float,
    ax: Axes | None,
    summary_in: float,
) -> Figure:
    """One figure: the summary bars over ``summary_frame`` and/or the traffic light of ``frame``."""
    n = len(frame)
    above = summary_in + 0.15 if kind == "both" else 0.0
    pitch = min(0.15, max(MIN_PITCH_IN, (PAGE_IN - above - 0.6) / max(n, 1)))  # fit a 240 mm page
    light_in = pitch * n + 0.6
    heights = {"summary": summary_in, "traffic_light": light_in, "both": summary_in + light_in + 0.15}
    height = heights[kind]
    with journal_style():
        figure = new_figure(width, height) if ax is None else figure_of(ax)
        narrow = figure.get_figwidth() <= 4.5
        left = 0.42 if not narrow else 0.5
        if narrow:  # the bias domain in brackets does not fit a single column
            items = [(c, label.split(" (")[0]) for c, label in items]
        if kind in {"summary", "both"}:
            box = (left, 1 - (summary_in - 0.2) / height, 0.95 - left, (summary_in - 0.75) / height)
            axis = ax if (ax is not None and kind == "summary") else figure.add_axes(box)
            _summary(axis, summary_frame, items, len(summary_frame))
        if kind in {"traffic_light", "both"}:
            light_left = left if not narrow else 0.3
            box = (light_left, 0.4 / height, 0.95 - light_left, (pitch * n) / height)
            axis = ax if (ax is not None and kind == "traffic_light") else figure.add_axes(box)
            _traffic_light(axis, frame, items, n)
    return figure


def _summary(axis: Axes, frame: pd.DataFrame, items: Items, n: int) -> None:
    left = np.zeros(len(items))
    for level in ("low", "unclear", "high"):
        shares = np.array([np.mean(frame[c] == level) * 100 for c, _ in items])
        axis.barh(
            range(len(items)),
            shares,
            left=left,
            color=COLOURS[level],
            edgecolor="white",
            lw=0.4,
            label=f"{level} risk",
        )
        left += shares
    axis.set_yticks(range(len(items)), [label for _, label in items], fontsize=6)
    axis.invert_yaxis()
    axis.set_xlim(0, 100)
    axis.set_xlabel(f"Studies (%), n = {n}", fontsize=6.5, labelpad=1)
    axis.tick_params(labelsize=6)
    axis.legend(
        ncols=3,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        fontsize=6,
        handlelength=1.2,
        columnspacing=0.8,
    )
    for side in ("top", "right"):
        axis.spines[side].set_visible(False)


def _symbol_marker(judgement: str) -> tuple[str | MarkerPath, float, float]:
    """Marker, size (pt²) and line width of a judgement's symbol inside its circle: the
    plus and minus are line markers, the question mark the glyph's outline, centred."""
    if judgement == "low":
        return "+", 12, 0.7
    if judgement == "high":
        return "_", 12, 0.7
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as MarkerPath
    from matplotlib.textpath import TextPath

    glyph = TextPath((0, 0), "?", size=1, prop=FontProperties(family=FONT_FAMILY, weight="bold"))
    box = glyph.get_extents()
    centred = MarkerPath(glyph.vertices - [box.x0 + box.width / 2, box.y0 + box.height / 2], glyph.codes)
    return centred, 9, 0.0


def _traffic_light(axis: Axes, frame: pd.DataFrame, items: Items, n: int) -> None:
    # One marker collection per judgement (not one per cell): a 68-study grid is 680 cells.
    columns = [column for column, _ in items]
    judgements = frame[columns].where(frame[columns].map(lambda v: isinstance(v, str)), "unclear")
    grid = judgements.to_numpy(dtype=object)
    rows, cols = np.indices(grid.shape)
    for judgement in pd.unique(grid.ravel()):
        cell = grid == judgement
        axis.scatter(
            cols[cell], rows[cell], s=30, color=COLOURS.get(judgement, "0.8"), edgecolor="0.3", lw=0.3
        )
        if judgement in SYMBOLS:
            marker, size, width = _symbol_marker(judgement)
            axis.scatter(cols[cell], rows[cell], s=size, marker=marker, color="black", lw=width)
    axis.set_yticks(range(n), frame["label"].tolist(), fontsize=6)
    axis.set_xticks(range(len(items)), [str(i + 1) for i in range(len(items))], fontsize=6)
    axis.set_xlim(-0.6, len(items) - 0.4)
    axis.set_ylim(n - 0.5, -0.5)
    axis.set_xlabel("SYRCLE item\n(+ low, ? unclear, − high risk of bias)", fontsize=6.5, labelpad=1)
    axis.tick_params(length=0, pad=1)
    for side in axis.spines.values():
        side.set_visible(False)
