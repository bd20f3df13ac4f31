"""Journal forest layouts: RevMan 5 and JAMA looks, risk-of-bias dots and a dose column.

``forest_plot(..., layout="revman" | "jama")`` draws the rows collected by
:mod:`evmeta.plots.forest` (the same estimates, intervals, weights and subgroup fits as the
default layout) in the look a journal or a Cochrane-style review expects:

* ``revman``: Study or Subgroup | Experimental Mean SD Total | Control Mean SD Total |
  Weight | "Std. Mean Difference IV, Random, 95% CI" as text and as a panel; green squares
  sized by weight, black diamonds, the heterogeneity line and the test for overall effect
  under each total, worded and rounded as RevMan 5 prints them (Cochrane Handbook,
  Deeks, Higgins & Altman 2023, ch. 10; RevMan 5.4 User Guide);
* ``jama``: one sans font, no gridlines, squares and intervals in one dark colour, bold
  column headers, an "estimate (95% CI)" text column, favours captions under the axis.

Both take risk-of-bias dots (SYRCLE items, Hooijmans et al. 2014: green + low, red − high,
yellow ? unclear, with a legend of the items) and a dose column (harmonized per-kg dose,
e.g. ``1.3 × 10¹⁰ particles/kg``). A multilevel (three-level) result draws each study as a
heading with its comparisons indented under it. A journal layout is one page (no split).

Modules: ``setup`` (the plot's rows, options and header words), ``lines`` (the lines top to
bottom and their cells), ``columns`` (which columns, how wide), ``wording`` (numbers and
statistics lines as RevMan and JAMA print them), ``dose_column``, ``rob_dots`` and
``figure`` (:class:`JournalForest`: the drawing).

Lengths are inches; y runs downwards, one Axes spans the figure.
"""

from __future__ import annotations

from evmeta.plots.forest.journal.dose_column import DOSE_UNITS, dose_long, scientific_unicode, split_unit
from evmeta.plots.forest.journal.figure import JAMA_DARK, REVMAN_SQUARE, JournalForest
from evmeta.plots.forest.journal.rob_dots import ROB_COLOURS, ROB_SYMBOLS, rob_items, rob_value
from evmeta.plots.forest.journal.setup import LAYOUTS, MEASURE_NAMES
from evmeta.plots.forest.journal.wording import (
    heterogeneity_line,
    jama_interval,
    overall_effect_line,
    revman_interval,
    revman_p,
    subgroup_difference_line,
)

__all__ = [
    "DOSE_UNITS",
    "JAMA_DARK",
    "LAYOUTS",
    "MEASURE_NAMES",
    "REVMAN_SQUARE",
    "ROB_COLOURS",
    "ROB_SYMBOLS",
    "JournalForest",
    "dose_long",
    "heterogeneity_line",
    "jama_interval",
    "overall_effect_line",
    "revman_interval",
    "revman_p",
    "rob_items",
    "rob_value",
    "scientific_unicode",
    "split_unit",
    "subgroup_difference_line",
]
