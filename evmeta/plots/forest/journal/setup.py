"""The state of one journal-layout forest plot (:class:`JournalSetup`): the rows collected by
:mod:`evmeta.plots.forest`, the layout and options, and the measure, method and interval
words of its headers. Lengths are inches.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from evmeta.plots.forest.journal.rob_dots import rob_items
from evmeta.plots.forest.journal.wording import jama_interval, revman_interval

#: The forest layouts: evmeta's own (:mod:`evmeta.plots.forest.draw`) and the journal ones.
LAYOUTS = ("evmeta", "revman", "jama")
PT = 1 / 72
PAD = 0.05  # gap between columns (inches)
#: The measure as RevMan names it in the estimate column's header.
MEASURE_NAMES = {
    "SMD": "Std. Mean Difference",
    "MD": "Mean Difference",
    "ROM": "Log Ratio of Means",
    "NMD": "Normalized Mean Difference",
    "OR": "Log Odds Ratio",
    "RR": "Log Risk Ratio",
    "RD": "Risk Difference",
}


class JournalSetup:
    """What one journal-layout forest plot shows: its rows (all groups), layout, options,
    font and axis limits, with the words and sizes every part of the drawing uses."""

    def __init__(
        self,
        result: Any,
        data: Any,
        subgroups: Any,
        fits: dict[Any, Any] | None,
        layout: str,
        *,
        rob: Any,
        dose: bool,
        show_weights: bool,
        width_in: float,
        title: str | None,
        treatment: str | None = None,
    ) -> None:
        from evmeta.plots.forest.draw import limits

        # RevMan's placeholders unless the treatment is named ("Favours rapamycin").
        self.favours = (
            ("Favours [control]", "Favours [experimental]")
            if treatment is None
            else ("Favours control", f"Favours {treatment}")
        )

        self.result, self.data, self.subgroups, self.fits = result, data, subgroups, fits or {}
        self.layout, self.dose, self.title = layout, dose, title
        self.width = width_in
        self.font = 7.0 if width_in > 4.5 else 6.0
        self.rows = pd.concat([g.rows for g in data.groups])
        self.rob = rob_items(rob, self.rows) if rob else []
        self.weights = show_weights and bool(self.rows["_weight"].notna().any())
        self.limits = limits(data)
        self.notes: list[str] = []
        self.multilevel = self._is_multilevel()
        self.level = data.level

    def _is_multilevel(self) -> bool:
        from evmeta.models.frequentist.multilevel import MultilevelResult

        return isinstance(self.result, MultilevelResult) and "study_id" in self.rows.columns

    def method_caption(self) -> str:
        """``IV, Random, 95% CI`` (RevMan's statistical method line)."""
        from evmeta.models.frequentist.multilevel import MultilevelResult

        method = str(getattr(self.result, "method", "")).upper()
        if isinstance(self.result, MultilevelResult):
            model = "Multilevel"
        elif method in {"EE", "FE", "CE"}:
            model = "Fixed"
        elif self.data.interval == "CrI":
            model = "Bayesian"
        else:
            model = "Random"
        return f"IV, {model}, {self.level * 100:.4g}% {self.data.interval}"

    def measure_name(self) -> str:
        measure = self.data.measure or ""
        return MEASURE_NAMES.get(measure, measure or "Effect size")

    def interval_text(self, est: float, lo: float, hi: float) -> str:
        return (revman_interval if self.layout == "revman" else jama_interval)(est, lo, hi)

    def weight_text(self, value: float) -> str:
        if pd.isna(value):
            return ""
        return f"{value:.1f}%" if self.layout == "revman" else f"{value:.1f}"

    def line_height(self, n: int) -> float:
        return (n * 1.2 * self.font + 0.5 * self.font) * PT
