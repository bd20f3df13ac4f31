"""Forest plot draws, never fits (issue 21 item 5, issue 22 item 2): the subgroup fits it is
given, every interval, header and footnote at the result's level, a diamond wider than the
comparisons' intervals clipped with arrows, and the run's choice of grouping."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from scipy import stats

import evmeta as em
from evmeta.analysis.figure_jobs import forest_grouping
from evmeta.analysis.spec import FOREST_GROUP_MIN, parse_spec
from evmeta.errors import PlotError
from evmeta.plots import forest_plot
from evmeta.results import AnalysisModels
from tests.test_figure_layout import pages_of


def _texts(figure) -> list[str]:
    return [t.get_text().replace("\n", " ") for page in pages_of(figure) for t in page.axes[0].texts]


def _frame(sizes=(2, 4)) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    k = sum(sizes)
    return pd.DataFrame(
        {
            "yi": rng.normal(0.8, 0.3, k),
            "vi": rng.uniform(0.08, 0.2, k),
            "label": [f"Study {i}" for i in range(k)],
            "group": np.repeat(["A", "B"], sizes),
            "measure": "SMD",
        }
    )


def test_a_90_percent_fit_says_90_percent_everywhere():
    frame = _frame()
    fit = em.meta_analysis(frame, test="knha", level=0.9)
    texts = _texts(forest_plot(fit, subgroups=em.subgroup_analysis(frame, "group", test="knha", level=0.9)))
    assert "Estimate [90% CI]" in texts
    assert any(t.startswith("90% prediction interval") for t in texts)
    assert any(t.startswith("Intervals: 90% confidence intervals") for t in texts)
    assert not any("95" in t for t in texts), [t for t in texts if "95" in t]
    # Each comparison's interval is its own 90% Wald interval (z = 1.645, not 1.96).
    z = stats.norm.ppf(0.95)
    row = frame.iloc[0]
    lo, hi = row.yi - z * np.sqrt(row.vi), row.yi + z * np.sqrt(row.vi)
    assert any(t.endswith(f"[{lo:.2f}, {hi:.2f}]".replace("-", "−")) for t in texts)
    # The diamond is the fit's own 90% interval.
    assert any(t.endswith(f"[{fit.ci_low:.2f}, {fit.ci_high:.2f}]".replace("-", "−")) for t in texts)


def test_the_plot_fits_no_subgroups_itself():
    frame = _frame()
    fit = em.meta_analysis(frame)
    grouped = _texts(forest_plot(fit, by="group"))
    assert "A" in grouped and "B" in grouped
    assert not any(t.startswith(("Subtotal", "Test for subgroup")) for t in grouped)
    other = em.subgroup_analysis(_frame((3, 3)), "group")  # fitted on other rows
    with pytest.raises(PlotError, match="fit the subgroups on the same comparisons"):
        forest_plot(fit, subgroups=other)


def test_k2_knapp_hartung_diamond_is_clipped_with_arrows():
    """A k = 2 subgroup under Knapp-Hartung has a t(1) interval (12.7 x its SE): the axis
    stays where the comparisons are and the diamond ends in arrows."""
    frame = _frame()
    subgroups = em.subgroup_analysis(frame, "group", test="knha")
    wide = subgroups.fits["A"]
    assert wide.ci_high - wide.ci_low > 4 * (frame["yi"].max() - frame["yi"].min())
    figure = forest_plot(em.meta_analysis(frame, test="knha"), subgroups=subgroups)
    axes = figure.axes[0]
    ticks = [  # the axis's tick labels: centred numbers (weights and estimates are right-aligned)
        float(t.get_text().replace("−", "-"))
        for t in axes.texts
        if t.get_ha() == "center" and _is_number(t.get_text())
    ]
    assert len(ticks) >= 3
    reach = (
        (frame["yi"] - 1.96 * np.sqrt(frame["vi"])).min(),
        (frame["yi"] + 1.96 * np.sqrt(frame["vi"])).max(),
    )
    assert min(ticks) >= reach[0] - 1 and max(ticks) <= reach[1] + 1  # no -20 to 20 axis
    diamonds = [p for p in axes.patches if isinstance(p, Polygon)]
    assert len(diamonds) == 3  # two subgroups and the overall
    arrows = [line for line in axes.lines if isinstance(line, Line2D) and line.get_marker() in ("<", ">")]
    assert len(arrows) >= 2  # both ends of the k = 2 diamond
    assert any(
        t.startswith("Arrows: a pooled or prediction interval runs past the axis") for t in _texts(figure)
    )
    # The numbers still say the whole interval.
    texts = _texts(figure)
    assert any(t.endswith(f"[{wide.ci_low:.2f}, {wide.ci_high:.2f}]".replace("-", "−")) for t in texts)


def _is_number(text: str) -> bool:
    try:
        float(text.replace("−", "-"))
    except ValueError:
        return False
    return True


def _run(forest_by, table: pd.DataFrame):
    data = {"analysis": {"name": "x", "extraction": "e.xlsx"}}
    if forest_by is not ...:
        data["figures"] = {"forest_by": forest_by}
    return SimpleNamespace(spec=parse_spec(data), models=AnalysisModels(), notes=[])


@pytest.mark.parametrize("off", ["none", "", False, "None"])
def test_forest_by_none_turns_grouping_off(off):
    assert (
        parse_spec(
            {"analysis": {"name": "x", "extraction": "e"}, "figures": {"forest_by": off}}
        ).figures.forest_by
        is None
    )


def test_default_grouping_needs_ten_comparisons():
    assert parse_spec({"analysis": {"name": "x", "extraction": "e"}}).figures.forest_by == "auto"
    small = _frame((3, 3)).rename(columns={"group": "isolation_method"})
    assert forest_grouping(_run(..., small), small) == (None, None)
    sizes = (FOREST_GROUP_MIN // 2, FOREST_GROUP_MIN - FOREST_GROUP_MIN // 2)
    large = _frame(sizes).rename(columns={"group": "isolation_method"})
    by, fits = forest_grouping(_run(..., large), large)
    assert by == "isolation_method" and set(fits.fits) == {"A", "B"}


def test_unfittable_grouping_gives_the_ungrouped_forest_and_a_note():
    table = _frame((1, 5)).rename(columns={"group": "isolation_method"})  # one level has one row
    run = _run("isolation_method", table)
    assert forest_grouping(run, table) == (None, None)
    assert run.notes and run.notes[0].startswith("forest plot: drawn without subgroups by isolation_method")
