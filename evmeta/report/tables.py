"""HTML tables for the report that fit the page: readable column names, integers as
integers, p-values as journals print them, columns that are the same on every row stated
once above the table, and a scroll box (inside the page) for whatever is still wide."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from evmeta.formatting import minus, percent, power_of_ten, printed_powers
from evmeta.schema.vocabulary import display_label, vocabulary_of

INTEGER_COLUMNS = {"k", "q_df", "q_between_df", "k0", "row", "divergences"}
ROUNDED_COLUMNS = {"ess_bulk", "ess_tail"}  # effective sample sizes: whole draws
#: Probabilities that are not p-values (posterior model probabilities, P(> 0)).
PROBABILITY_COLUMNS = {"prior_prob", "posterior_prob", "p_gt_0"}
HEADINGS = {
    "tau2": "τ²",
    "i2": "I² (%)",
    "q": "Q",
    "q_pvalue": "p (Q)",
    "pvalue": "p",
    "pvalue_bonferroni": "p (Bonferroni)",
    "se": "SE",
    "posterior_sd": "posterior SD",
    "sd": "SD",
    "bf10": "BF₁₀",
    "bf01": "BF₀₁",
    "log_bf10": "log BF₁₀",
    "p_gt_0": "P(> 0)",
    "r_hat": "R-hat",
    "ess_bulk": "bulk ESS",
    "ess_tail": "tail ESS",
    "prior_prob": "prior probability",
    "posterior_prob": "posterior probability",
    "log_marginal_likelihood": "log marginal likelihood",
}


def interval_headings(level: float, interval: str = "CI") -> dict[str, str]:
    """Headings of the interval columns at ``level``: ``ci_low`` -> "90% CI low" (``interval``
    "CrI" for credible intervals), ``pi_low`` -> "90% PI low"."""
    shown = percent(level)
    return {
        "ci_low": f"{shown} {interval} low",
        "ci_high": f"{shown} {interval} high",
        "pi_low": f"{shown} PI low",
        "pi_high": f"{shown} PI high",
    }


def format_p_value(p: float) -> str:
    """'< 0.001', else three decimals."""
    if p is None or not np.isfinite(p):
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def format_probability(p: float) -> str:
    """'< 0.001' and '> 0.999' at the ends (never '0.000' or '1.000'), else three decimals."""
    if p is None or not np.isfinite(p):
        return ""
    if p < 0.001:
        return "< 0.001"
    return "> 0.999" if p > 0.999 else f"{p:.3f}"


def _is_p(column: str) -> bool:
    name = column.lower()
    return (
        name in {"p", "pvalue", "q_pvalue", "p_value"}
        or name.startswith(("pvalue", "p (", "q_between_p"))
        or name.endswith("_pvalue")
    )


def format_cell(column: str, value: Any, digits: int = 2) -> str:
    """One cell: integers without decimals, p-values, numbers with a true minus sign."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "" if value is None or np.isnan(value) else ("∞" if value > 0 else "−∞")
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return minus(str(int(value)))
    if isinstance(value, (float, np.floating)):
        if _is_p(column):
            return format_p_value(float(value))
        if column in PROBABILITY_COLUMNS:
            return format_probability(float(value))
        if column in ROUNDED_COLUMNS:
            return f"{value:.0f}"
        if column in INTEGER_COLUMNS and float(value).is_integer():
            return minus(str(int(value)))
        number = float(value)
        if abs(number) >= 1e5 or (0 < abs(number) < 10 ** (-digits)):
            return power_of_ten(number, 3)  # 1.30 × 10¹⁰, as a particle count is printed
        return minus(f"{value:.{digits}f}")
    if isinstance(value, str) and vocabulary_of(column):
        return display_label(value, column)  # a vocabulary code in words
    return printed_powers(str(value))  # '2e+09 particles' in a note -> '2 × 10⁹ particles'


def html_table(
    frame: pd.DataFrame | None,
    digits: int = 2,
    max_rows: int | None = None,
    constant_note: bool = True,
    caption: str | None = None,
    headings: dict[str, str] | None = None,
    *,
    level: float,
    interval: str = "CI",
) -> str:
    """A scrollable, readable HTML table (escaped), constant columns stated once above it.

    Parameters
    ----------
    frame : DataFrame or None
        Cells are formatted by their column's (code) name, see :func:`format_cell`.
    digits : int
        Decimals of plain numbers.
    max_rows : int, optional
        Show only the first rows (the note says how many the CSV files hold).
    constant_note : bool
        State columns that are the same on every row once above the table.
    caption : str, optional
        A caption above the table.
    headings : dict, optional
        Column headings for this table, over :data:`HEADINGS` (cells are still formatted by
        the code name, so a renamed p-value column keeps its p-value format).
    level : float
        Level of the table's intervals (the result's ``level``, 0.95 for 95%); no default, so
        a table cannot print "95%" over intervals at another level.
    interval : str
        ``"CI"`` (confidence) or ``"CrI"`` (credible) in the interval headings.

    Returns
    -------
    str
        HTML.
    """
    if frame is None or len(frame) == 0:
        return "<p><em>none</em></p>"
    names = {**HEADINGS, **interval_headings(level, interval), **(headings or {})}
    shown = frame.reset_index(drop=True)
    notes = []
    if constant_note and len(shown) > 1:
        for column in list(shown.columns):
            values = shown[column].dropna()
            if len(values) == len(shown) and values.astype(str).nunique() == 1 and column not in {"estimate"}:
                notes.append(
                    f"{names.get(column, column).replace('_', ' ')}: {format_cell(column, values.iloc[0], digits)}"
                )
                shown = shown.drop(columns=column)
    total = len(shown)
    if max_rows is not None:
        shown = shown.head(max_rows)
    head = "".join(f"<th>{html.escape(names.get(c, str(c).replace('_', ' ')))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(format_cell(c, row[c], digits))}</td>" for c in shown.columns)
        + "</tr>"
        for _, row in shown.iterrows()
    )
    out = ""
    if caption:
        out += f'<p class="caption">{html.escape(caption)}</p>'
    if notes:
        out += '<p class="small">Same on every row: ' + html.escape("; ".join(notes)) + ".</p>"
    out += f'<div class="scroll"><table class="table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    if max_rows is not None and total > max_rows:
        out += f"<p><em>first {max_rows} of {total} rows; all in the CSV files</em></p>"
    return out
