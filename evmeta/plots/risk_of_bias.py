"""SYRCLE risk-of-bias figures: summary bars per item and a traffic-light grid per study."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evmeta.data import load_csv
from evmeta.errors import PlotError
from evmeta.plots._style import journal_style, new_figure

COLOURS = {"low": "#1A9850", "unclear": "#FEE08B", "high": "#D73027"}
SYMBOLS = {"low": "+", "unclear": "?", "high": "−"}


def _items() -> list[tuple[str, str]]:
    return [(r["column"], f"{r['item']}. {r['domain']} ({r['bias']})") for r in load_csv("syrcle_items.csv")]


def _table(data: Any) -> pd.DataFrame:
    frame = getattr(data, "table", data)
    if hasattr(data, "risk_of_bias") and hasattr(data, "studies"):
        frame = data.risk_of_bias.merge(
            data.studies[["study_id", "first_author", "year"]], on="study_id", how="left"
        )
        frame["label"] = frame["first_author"].astype(str) + " " + frame["year"].astype(str)
    frame = frame.copy()
    if "label" not in frame.columns:
        frame["label"] = frame["study_id"].astype(str)
    if "study_id" in frame.columns:
        frame["label"] = (
            frame.groupby("study_id")["label"].transform("first").str.replace(r",.*$", "", regex=True)
        )
        frame = frame.drop_duplicates("study_id")
    return frame


def risk_of_bias_plot(data: Any, *, kind: str = "both", width: str | float = "double", ax: Any = None):
    """Risk-of-bias figure from an Extraction, Comparisons or a table with the ``rob_*`` columns.

    ``kind``: ``summary`` (stacked bars: share of studies judged low / unclear / high per
    item), ``traffic_light`` (one row per study, one circle per item) or ``both``.
    """
    items = _items()
    frame = _table(data)
    missing = [c for c, _ in items if c not in frame.columns]
    if missing:
        raise PlotError(f"no risk-of-bias columns {', '.join(missing)} in these data")
    n = len(frame)
    with journal_style():
        summary_h = 0.16 * len(items) + 0.6
        light_h = 0.13 * n + 1.3
        height = {"summary": summary_h, "traffic_light": light_h, "both": summary_h + light_h}[kind]
        if ax is None:
            figure = new_figure(width, height)
        else:
            figure = ax.figure
        if kind in {"summary", "both"}:
            axis = (
                ax
                if (ax is not None and kind == "summary")
                else figure.add_axes(
                    (0.42, 1 - (summary_h - 0.25) / height, 0.53, (summary_h - 0.55) / height)
                )
            )
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
            axis.set_yticks(range(len(items)), [label for _, label in items])
            axis.invert_yaxis()
            axis.set_xlim(0, 100)
            axis.set_xlabel(f"Studies (%), n = {n}")
            axis.legend(ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=6)
            for side in ("top", "right"):
                axis.spines[side].set_visible(False)
        if kind in {"traffic_light", "both"}:
            axis = (
                ax
                if (ax is not None and kind == "traffic_light")
                else figure.add_axes((0.25, 0.02 + 0.5 / height, 0.7, (light_h - 1.1) / height))
            )
            for row, (_, record) in enumerate(frame.iterrows()):
                for column_index, (column, _) in enumerate(items):
                    judgement = record[column] if isinstance(record[column], str) else "unclear"
                    axis.scatter(
                        column_index, row, s=42, color=COLOURS.get(judgement, "0.8"), edgecolor="0.3", lw=0.3
                    )
                    axis.text(
                        column_index, row, SYMBOLS.get(judgement, ""), ha="center", va="center", fontsize=6
                    )
            axis.set_yticks(range(n), frame["label"].tolist())
            axis.set_xticks(range(len(items)), [str(i + 1) for i in range(len(items))])
            axis.set_xlim(-0.6, len(items) - 0.4)
            axis.set_ylim(n - 0.5, -0.5)
            axis.set_xlabel("SYRCLE item")
            axis.tick_params(length=0)
            for side in axis.spines.values():
                side.set_visible(False)
    return figure
