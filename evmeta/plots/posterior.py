"""Prior against posterior for every model term: the intercept, each coefficient and each
random-effect standard deviation, with readable names and the reference level."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from evmeta.plots._style import PALETTE, figure_of, journal_style, new_figure, width_inches
from evmeta.plots._text import minus, wrap
from evmeta.schema.vocabulary import display_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from evmeta.models.bayes.result import BayesResult

LEVEL_NAMES = {
    "study_id": "between studies",
    "experiment_id": "between experiments (within studies)",
    "comparison": "between comparisons",
}


def _reference_levels(result: BayesResult) -> dict[str, str]:
    """Reference (omitted) level of each categorical term of the model."""
    out = {}
    frame = result.model.frame
    for term, columns in result.model.term_columns.items():
        prefix = f"{term}[T."
        names = [result.names[c] for c in columns]
        if term in frame.columns and names and all(n.startswith(prefix) for n in names):
            values = frame[term]
            levels = (
                list(map(str, values.cat.categories))
                if isinstance(values.dtype, pd.CategoricalDtype)
                else sorted(values.dropna().astype(str).unique())
            )
            shown = {n[len(prefix) : -1] for n in names}
            missing = [lv for lv in levels if lv not in shown]
            if missing:
                out[term] = missing[0]
    return out


def readable_name(name: str, references: dict[str, str]) -> str:
    """'isolation_method[T.SEC]' -> 'Isolation method: SEC vs UC'; 'tau[study_id]' ->
    'τ between studies'; 'intercept' -> 'Intercept (UC, other terms at 0)'."""
    if name == "tau":
        return "τ between comparisons"
    if name.startswith("tau[") and name.endswith("]"):
        level = name[4:-1]
        return f"τ {LEVEL_NAMES.get(level, level.replace('_', ' '))}"
    if name == "intercept":
        at = ", ".join(display_label(v, term) for term, v in references.items())
        return f"Intercept ({at}; other terms at 0)" if at else "Intercept"
    if "[T." in name and name.endswith("]"):
        term, level = name[:-1].split("[T.", 1)
        reference = references.get(term)
        title = term.replace("_", " ").capitalize()
        level = display_label(level, term)
        return f"{title}: {level} vs {display_label(reference, term)}" if reference else f"{title}: {level}"
    return f"{name.replace('_', ' ').capitalize()} (per unit)"


def posterior_plot(
    result: BayesResult, *, term: str | None = None, width: str | float = "double", ax: Axes | None = None
) -> Figure:
    """One panel per model term (intercept, every coefficient, every tau): prior density
    (dashed) and posterior density (filled), x axis labelled with the effect measure.

    ``term`` (e.g. ``"isolation_method"``) restricts the coefficients to that term's (the
    intercept and the taus are always shown). Densities come from the result
    (:meth:`BayesResult.density`: exact under quadrature, a kernel estimate of the draws
    under NUTS) and the priors it records.
    """
    summary = result.summary().table
    references = _reference_levels(result)
    columns = (
        result.model.term_columns.get(term, [])
        if term
        else [c for t, cs in result.model.term_columns.items() if t != "intercept" for c in cs]
    )
    coefficients = [result.names[c] for c in columns]
    intercept = [n for n in result.names if n == "intercept"]
    names = [*intercept, *[n for n in coefficients if n != "intercept"], *list(result.tau_names)]
    if term is None:
        names = [*intercept, *[n for n in result.names if n != "intercept"], *list(result.tau_names)]
    measure = getattr(result, "measure", None) or "effect"
    n = len(names)
    per_row = 3 if width_inches(width) > 4.5 else 2
    in_cell = n % per_row != 0  # the legend takes the first free cell, else a strip below
    rows = int(np.ceil(n / per_row))
    with journal_style():
        height = 1.45 * rows + (0.1 if in_cell else 0.3)
        figure = new_figure(width, height) if ax is None else figure_of(ax)
        if ax is None:
            bottom = (0.4 if in_cell else 0.62) / height
            figure.subplots_adjust(
                hspace=1.1, wspace=0.18, left=0.03, right=0.97, top=1 - 0.32 / height, bottom=bottom
            )
        for index, name in enumerate(names):
            axis = ax if (ax is not None and n == 1) else figure.add_subplot(rows, per_row, index + 1)
            row = cast("pd.Series", summary.loc[name])  # term names are unique: one row each
            _panel(axis, result, row, name, readable_name(name, references), measure)
        if ax is None:
            from matplotlib.lines import Line2D
            from matplotlib.patches import Patch

            handles = [
                Patch(facecolor=PALETTE[0], alpha=0.3, edgecolor=PALETTE[0], label="posterior"),
                Line2D([], [], color="0.35", ls="--", lw=0.8, label="prior"),
            ]
            if in_cell:
                legend = figure.add_subplot(rows, per_row, n + 1)
                legend.set_axis_off()
                legend.legend(handles=handles, loc="center", frameon=False, fontsize=6.5)
            else:
                figure.legend(handles=handles, loc="lower center", ncols=2, frameon=False, fontsize=6.5)
    return figure


def _panel(axis: Axes, result: BayesResult, row: pd.Series, name: str, title: str, measure: str) -> None:
    import matplotlib.ticker as ticker

    panel_pt = axis.get_position().width * figure_of(axis).get_figwidth() * 72
    is_tau = name.startswith("tau")
    spread = row["posterior_sd"]
    low = max(0.0, row["estimate"] - 4.5 * spread) if is_tau else row["estimate"] - 4.5 * spread
    grid = np.linspace(low, row["estimate"] + 4.5 * spread, 300)
    posterior = result.density(name, grid)
    axis.fill_between(grid, posterior, color=PALETTE[0], alpha=0.3, lw=0)
    axis.plot(grid, posterior, color=PALETTE[0], lw=1.0)
    axis.plot(grid, result.prior_density(name, grid), color="0.35", ls="--", lw=0.8)
    if grid[0] < 0 < grid[-1]:
        axis.axvline(0, color="0.6", lw=0.4)
    axis.set_title("\n".join(wrap(title, panel_pt, 6.5)), fontsize=6.5, linespacing=1.1)
    axis.set_xlabel(f"SD ({measure})" if is_tau else f"Coefficient ({measure})", fontsize=6, labelpad=1)
    axis.tick_params(labelsize=6, pad=1)
    axis.xaxis.set_major_locator(ticker.MaxNLocator(4))
    axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: minus(f"{v:g}")))
    axis.set_yticks([])
    axis.set_ylim(bottom=0)
    for side in ("top", "right", "left"):
        axis.spines[side].set_visible(False)
