"""Prior against posterior for the random-effect SDs and the moderator coefficients."""

from __future__ import annotations

from typing import Any

import numpy as np

from evmeta.plots._style import PALETTE, journal_style, new_figure


def posterior_plot(result: Any, *, term: str | None = None, width: str | float = "double", ax: Any = None):
    """One panel per tau and per coefficient of ``term`` (e.g. ``isolation_method``):
    prior density (dashed) and posterior density (filled).

    Densities come from the result (:meth:`BayesResult.density`: exact under quadrature, a
    kernel estimate of the draws under NUTS) and the priors it records.
    """
    summary = result.summary().table
    names = list(result.tau_names)
    if term:
        names += [result.names[c] for c in result.model.term_columns.get(term, [])]
    n = len(names)
    per_row = 3
    rows = int(np.ceil(n / per_row))
    with journal_style():
        figure = new_figure(width, 1.5 * rows + 0.3) if ax is None else ax.figure
        for index, name in enumerate(names):
            axis = ax if (ax is not None and n == 1) else figure.add_subplot(rows, per_row, index + 1)
            row = summary.loc[name]
            mean, sd = row["estimate"], row["se"]
            low = max(0.0, mean - 4.5 * sd) if name.startswith("tau") else mean - 4.5 * sd
            grid = np.linspace(low, mean + 4.5 * sd, 300)
            posterior = result.density(name, grid)
            axis.fill_between(grid, posterior, color=PALETTE[0], alpha=0.3, lw=0)
            axis.plot(grid, posterior, color=PALETTE[0], lw=1.0)
            axis.plot(grid, result.prior_density(name, grid), color="0.35", ls="--", lw=0.8)
            axis.axvline(0, color="0.6", lw=0.4)
            axis.set_title(name, fontsize=7)
            axis.set_yticks([])
            axis.set_ylim(bottom=0)
            for side in ("top", "right", "left"):
                axis.spines[side].set_visible(False)
        figure.subplots_adjust(hspace=0.75, wspace=0.25, left=0.04, right=0.98, top=0.9, bottom=0.14)
        figure.text(0.5, 0.01, "dashed: prior   filled: posterior", ha="center", fontsize=6)
    return figure
