"""Risk-of-bias dots of the journal layouts: the SYRCLE items to draw (Hooijmans et al. 2014)
and one dot per item and comparison, green + low, red − high, yellow ? unclear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from evmeta.errors import PlotError

if TYPE_CHECKING:
    from matplotlib.axes import Axes


ROB_COLOURS = {"low": "#1A9850", "unclear": "#F2C500", "high": "#D73027"}


ROB_SYMBOLS = {"low": "+", "unclear": "?", "high": "−"}


def rob_items(rob: Any, rows: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The risk-of-bias columns to draw: (column, letter, legend text) per SYRCLE item.

    ``rob=True``: every SYRCLE item the table has; a list: those items, by column name
    (``rob_sequence_generation``) or without the ``rob_`` prefix. Raises PlotError naming
    the valid items for an unknown one, and when the table has no judgements at all.
    """
    from evmeta.data import load_csv

    items = load_csv("syrcle_items.csv")
    by_column = {r["column"]: r for r in items}
    if rob is True:
        wanted = [c for c in by_column if c in rows.columns]
    else:
        if isinstance(rob, str):
            rob = [rob]
        wanted = []
        for name in rob:
            column = name if str(name).startswith("rob_") else f"rob_{name}"
            if column not in by_column:
                raise PlotError(f"rob: {name!r} is not a SYRCLE item; items: {', '.join(by_column)}")
            wanted.append(column)
    present = [c for c in wanted if c in rows.columns and rows[c].notna().any()]
    if not present:
        raise PlotError(
            "rob=True but the comparisons carry no risk-of-bias judgements (no rob_* columns with "
            "values); enter the SYRCLE judgements in the risk_of_bias sheet, or draw without rob"
        )
    letters = "ABCDEFGHIJ"
    return [
        (c, letters[i], f"({letters[i]}) {by_column[c]['domain'].capitalize()} ({by_column[c]['bias']} bias)")
        for i, c in enumerate(present)
    ]


def rob_value(value: Any) -> str | None:
    text = str(value).strip().lower() if isinstance(value, str) else None
    return text if text in ROB_COLOURS else None


def draw_rob_dots(
    axes: Axes, rob: list[tuple[str, str, str]], record: pd.Series, x0: float, y: float, font: float
) -> None:
    """One dot per SYRCLE item right of the panel edge ``x0`` (inches): the judgement's colour
    and symbol, none where the item is not judged."""
    for i, (column, _, _) in enumerate(rob):
        value = rob_value(record.get(column))
        if value is None:
            continue  # not judged: no dot
        x = x0 + 0.1 + 0.15 * i + 0.075
        axes.plot(
            x,
            y,
            marker="o",
            ms=6.5,
            color=ROB_COLOURS[value],
            mec="none",
            zorder=3,
            gid=f"rob:{column}:{value}",
        )
        axes.text(
            x,
            y,
            ROB_SYMBOLS[value],
            ha="center",
            va="center",
            fontsize=font - 0.5,
            fontweight="bold",
            color="black" if value == "unclear" else "white",
        )
