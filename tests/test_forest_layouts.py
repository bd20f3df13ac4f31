"""Journal forest layouts (issue 27 item 4): RevMan 5 and JAMA looks, risk-of-bias dots, the
dose column, three-level studies with indented comparisons, small data, and the spec keys.

The RevMan statistics lines are checked against the DerSimonian-Laird formulas computed here
from yi and vi (Q, tau², I², Z and its p-value; DerSimonian & Laird 1986, Higgins & Thompson
2002), to 1e-9 before rounding, so the printed text must equal RevMan's rounding of them.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from scipy import stats

import evmeta as em
from evmeta.analysis.figure_jobs import forest_layout
from evmeta.analysis.spec import parse_spec
from evmeta.errors import PlotError, SpecError
from evmeta.plots import forest_plot
from evmeta.plots.forest.journal import (
    JAMA_DARK,
    REVMAN_SQUARE,
    ROB_COLOURS,
    dose_long,
    revman_p,
    scientific_unicode,
)
from evmeta.results import AnalysisModels
from tests.test_figure_layout import layout_problems

ROB = {
    "rob_sequence_generation": ["low", "high", "unclear", None, "low", "low"],
    "rob_blinding_assessor": ["high", "high", "low", "low", None, "unclear"],
}


def _frame(k: int = 6, means: bool = True, rob: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "yi": rng.normal(0.6, 0.4, 6),
            "vi": rng.uniform(0.05, 0.3, 6),
            "study_id": ["A", "A", "B", "C", "D", "D"],
            "comparison_id": [f"c{i}" for i in range(6)],
            "first_author": ["Li", "Li", "Wu", "Xu", "Ng", "Ng"],
            "year": [2019, 2019, 2020, 2021, 2022, 2022],
            "label": ["Li 2019, UC", "Li 2019, SEC", "Wu 2020", "Xu 2021", "Ng 2022, low", "Ng 2022, high"],
            "n_treat": [6, 8, 8, 5, 5, 7.0],
            "n_control": [6, 4, 4, 5, 5, 3.5],
            "mean_treat": [3.1, 2.2, 4.0, 1.1, 2.5, 3.3],
            "sd_treat": [1.0, 0.8, 1.2, 0.5, 0.7, 0.9],
            "mean_control": [2.0, 1.5, 3.0, 0.8, 2.0, 2.5],
            "sd_control": [1.0, 0.9, 1.1, 0.6, 0.8, 1.0],
            "dose_particles_per_kg": [1.3e10, 2e9, np.nan, np.nan, np.nan, np.nan],
            "dose_ug_protein_per_kg": [np.nan, np.nan, 100.0, 1500.0, np.nan, np.nan],
            "isolation_method": ["UC", "SEC", "UC", "SEC", "UC", "SEC"],
            "measure": "SMD",
            **ROB,
        }
    ).iloc[:k]
    if not means:
        frame = frame.drop(columns=["mean_treat", "sd_treat", "mean_control", "sd_control"])
    if not rob:
        frame = frame.drop(columns=list(ROB))
    return frame


def _texts(figure) -> list[str]:
    return [t.get_text() for t in figure.axes[0].texts]


def _gid_texts(figure, gid: str) -> list[str]:
    return [t.get_text() for t in figure.axes[0].texts if t.get_gid() == gid]


def _dl(frame: pd.DataFrame) -> dict[str, float]:
    """DerSimonian-Laird random-effects statistics from the formulas."""
    y, v = frame["yi"].to_numpy(), frame["vi"].to_numpy()
    w = 1 / v
    fixed = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - fixed) ** 2))
    df = len(y) - 1
    tau2 = max(0.0, (q - df) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    ws = 1 / (v + tau2)
    mu = np.sum(ws * y) / np.sum(ws)
    z = mu * np.sqrt(np.sum(ws))
    return {
        "q": q,
        "df": df,
        "q_p": float(stats.chi2.sf(q, df)),
        "tau2": tau2,
        "i2": max(0.0, (q - df) / q) * 100,
        "z": float(z),
        "p": float(2 * stats.norm.sf(abs(z))),
    }


def test_revman_p_values_are_rounded_as_revman_prints_them():
    assert revman_p(0.4321) == "P = 0.43"
    assert revman_p(0.0094) == "P = 0.009"
    assert revman_p(0.00023) == "P = 0.0002"
    assert revman_p(3e-7) == "P < 0.00001"
    assert revman_p(float("nan")) == "P not applicable"


def test_revman_heterogeneity_and_overall_effect_lines_equal_the_fit():
    frame = _frame()
    fit = em.meta_analysis(frame, method="DL")
    ref = _dl(frame)
    for name, value in [("q", fit.q), ("tau2", fit.tau2), ("i2", fit.i2), ("z", fit.stat), ("p", fit.pvalue)]:
        assert value == pytest.approx(ref[name], rel=1e-9, abs=1e-12), name
    figure = forest_plot(fit, layout="revman")
    lines = _gid_texts(figure, "stat-line")
    heterogeneity = (
        f"Heterogeneity: Tau² = {ref['tau2']:.2f}; Chi² = {ref['q']:.2f}, df = {ref['df']} "
        f"({revman_p(ref['q_p'])}); I² = {ref['i2']:.0f}%"
    )
    assert heterogeneity in lines
    assert f"Test for overall effect: Z = {abs(ref['z']):.2f} ({revman_p(ref['p'])})" in lines
    texts = _texts(figure)
    for header in ("Study or Subgroup", "Experimental", "Control", "Mean", "SD", "Total", "Weight"):
        assert header in texts, header
    assert "Std. Mean Difference\nIV, Random, 95% CI" in texts
    assert "Favours [control]" in texts and "Favours [experimental]" in texts
    # Total row: summed animals and 100% weight; weights as RevMan (one decimal, percent).
    assert "39" in texts and "27.5" in texts and "100.0%" in texts
    assert f"{fit.weights[0]:.1f}%" in texts
    assert not layout_problems(figure)


def test_revman_colours_green_squares_black_diamond_sized_by_weight():
    fit = em.meta_analysis(_frame())
    axes = forest_plot(fit, layout="revman").axes[0]
    squares = [a for a in axes.lines if a.get_gid() == "square"]
    assert len(squares) == 6
    assert {to_hex(s.get_color()) for s in squares} == {REVMAN_SQUARE.lower()}
    sizes = np.array([s.get_markersize() for s in squares])
    assert np.argmax(sizes) == int(np.argmax(fit.weights))  # largest weight, largest square
    diamonds = [p for p in axes.patches if isinstance(p, Polygon) and p.get_gid() == "diamond"]
    assert len(diamonds) == 1 and to_hex(diamonds[0].get_facecolor()) == "#000000"


def test_revman_subgroups_have_subtotals_and_the_test_for_differences():
    frame = _frame()
    fit = em.meta_analysis(frame)
    sub = em.subgroup_analysis(frame, "isolation_method")
    figure = forest_plot(fit, subgroups=sub, layout="revman")
    texts = _texts(figure)
    assert texts.count("Subtotal (95% CI)") == 2 and "Total (95% CI)" in texts
    lines = _gid_texts(figure, "stat-line")
    assert sum(t.startswith("Heterogeneity: Tau²") for t in lines) == 3  # two subgroups, the total
    for level, part in sub.fits.items():
        assert f"Test for overall effect: Z = {abs(part.stat):.2f} ({revman_p(part.pvalue)})" in lines, level
    q = sub.q_between
    assert any(t.startswith(f"Test for subgroup differences: Chi² = {q:.2f}, df = 1") for t in lines)


def test_missing_means_drop_those_columns_with_a_note():
    figure = forest_plot(em.meta_analysis(_frame(means=False)), layout="revman")
    texts = _texts(figure)
    assert "Mean" not in texts and "SD" not in texts and "Total" in texts
    assert any("Means and SDs: not in the comparisons table" in t for t in texts)


def test_rob_dots_count_colours_and_legend():
    frame = _frame()
    figure = forest_plot(em.meta_analysis(frame), layout="revman", rob=True)
    axes = figure.axes[0]
    dots = [a for a in axes.lines if isinstance(a, Line2D) and str(a.get_gid()).startswith("rob:")]
    judged = sum(v is not None for values in ROB.values() for v in values)
    assert len(dots) == judged == 10
    for dot in dots:
        _, column, value = dot.get_gid().split(":")
        assert column in ROB and to_hex(dot.get_color()) == ROB_COLOURS[value].lower()
    by_value = pd.Series([d.get_gid().split(":")[2] for d in dots]).value_counts()
    assert by_value.to_dict() == {"low": 5, "high": 3, "unclear": 2}
    symbols = [t.get_text() for t in axes.texts if t.get_text() in {"+", "−", "?"}]
    assert len(symbols) == judged
    legend = _gid_texts(figure, "rob-legend")
    assert legend == ["(A) Sequence generation (selection bias)", "(B) Blinding (detection bias)"]
    # A list of items: only those (prefix optional).
    one = forest_plot(em.meta_analysis(frame), layout="jama", rob=["blinding_assessor"])
    assert len([a for a in one.axes[0].lines if str(a.get_gid()).startswith("rob:")]) == 5


def test_rob_without_judgements_or_unknown_items_is_a_plot_error():
    fit = em.meta_analysis(_frame(rob=False))
    with pytest.raises(PlotError, match="no risk-of-bias judgements"):
        forest_plot(fit, layout="revman", rob=True)
    with pytest.raises(PlotError, match="not a SYRCLE item; items: rob_sequence_generation"):
        forest_plot(em.meta_analysis(_frame()), layout="revman", rob=["blinding"])
    with pytest.raises(PlotError, match="journal layouts"):
        forest_plot(fit, rob=True)
    with pytest.raises(PlotError, match="layouts: evmeta, revman, jama"):
        forest_plot(fit, layout="lancet")


def test_dose_column_in_words_and_superscripts():
    assert scientific_unicode(1.3e10) == "1.3 × 10¹⁰"
    assert scientific_unicode(2e-4) == "2.0 × 10⁻⁴"
    assert scientific_unicode(9.96e9) == "1.0 × 10¹⁰"
    row = pd.Series({"dose_particles_per_kg": 1.3e10})
    assert dose_long(row) == "1.3 × 10¹⁰ particles/kg"
    assert dose_long(pd.Series({"dose_ug_protein_per_kg": 1500.0})) == "1.5 mg/kg"
    assert dose_long(pd.Series({"dose_cell_equivalents_per_kg": 2e6})) == "2.0 × 10⁶ cell equivalents/kg"
    assert dose_long(pd.Series(dtype=object)) == "–"
    figure = forest_plot(em.meta_analysis(_frame(means=False)), layout="jama", dose=True)
    texts = [t.replace("\n", " ") for t in _texts(figure)]  # a long dose: number, then unit
    assert "Dose" in texts and "1.3 × 10¹⁰ particles/kg" in texts and "100 µg/kg" in texts


def test_jama_one_font_one_dark_colour_bold_headers():
    fit = em.meta_analysis(_frame())
    figure = forest_plot(fit, layout="jama")
    axes = figure.axes[0]
    assert {t.get_fontfamily()[0] for t in axes.texts} == {"sans-serif"}
    assert all("Mono" not in t.get_fontname() for t in axes.texts)
    intervals = [a for a in axes.lines if len(a.get_xdata()) == 2 and a.get_ydata()[0] == a.get_ydata()[1]]
    squares = [a for a in axes.lines if a.get_gid() == "square"]
    colours = {to_hex(a.get_color()) for a in squares} | {
        to_hex(a.get_color()) for a in intervals if a.get_linewidth() == 0.7
    }
    assert colours == {JAMA_DARK.lower()}
    assert not axes.xaxis.get_gridlines() or not any(g.get_visible() for g in axes.xaxis.get_gridlines())
    bold = {t.get_text() for t in axes.texts if t.get_fontweight() == "bold"}
    assert {"Source", "SMD (95% CI)", "Overall (95% CI)"} <= bold
    first = fit.estimate, fit.ci_low, fit.ci_high
    assert f"{first[0]:.2f} ({first[1]:.2f} to {first[2]:.2f})".replace("-", "−") in _texts(figure)
    assert "Favours [control]" in bold and "Favours [experimental]" in bold
    # Weights optional.
    assert "Weight,\n%" in _texts(figure)
    assert "Weight,\n%" not in _texts(forest_plot(fit, layout="jama", show_weights=False))


def test_multilevel_studies_head_their_indented_comparisons():
    frame = _frame()
    fit = em.multilevel_meta_analysis(frame, random=["study_id", "comparison_id"])
    figure = forest_plot(fit, layout="revman")
    texts = {t.get_text(): t for t in figure.axes[0].texts}
    for study in ("Li 2019", "Ng 2022"):
        assert texts[study].get_fontweight() == "bold"
    for arm in ("UC", "SEC", "low", "high"):
        assert texts[arm].get_position()[0] > texts["Li 2019"].get_position()[0]  # indented
    assert "Wu 2020" in texts and texts["Wu 2020"].get_fontweight() != "bold"  # one comparison: one row
    lines = _gid_texts(figure, "stat-line")
    assert any(
        re.match(r"Heterogeneity: Tau²\[study_id\] = [\d.]+, Tau²\[comparison_id\] = [\d.]+; Chi² = ", t)
        for t in lines
    )
    assert "Std. Mean Difference\nIV, Multilevel, 95% CI" in texts


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("layout", ["revman", "jama"])
def test_small_data_draw_a_figure(k, layout):
    frame = _frame(k, means=k != 2)
    obj = frame if k == 1 else em.meta_analysis(frame)
    figure = forest_plot(obj, layout=layout, rob=True, dose=True, width="single")
    texts = _texts(figure)
    assert len([a for a in figure.axes[0].lines if a.get_gid() == "square"]) == k
    if k > 1:
        assert any(t.startswith("Heterogeneity: Tau²") for t in texts)


def test_default_layout_is_unchanged():
    fit = em.meta_analysis(_frame())
    assert _texts(forest_plot(fit)) == _texts(forest_plot(fit, layout="evmeta"))


def _run(figures: dict):
    spec = parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, "figures": figures})
    return SimpleNamespace(spec=spec, models=AnalysisModels(), notes=[])


def test_spec_keys_reach_the_forest_keywords():
    words = {"treatment": "MSC-EVs", "treated": "EV"}  # the spec's [analysis] intervention
    assert forest_layout(_run({}), _frame()) == {"layout": "evmeta", **words}
    run = _run({"forest_layout": "revman", "forest_rob": True, "forest_dose": True})
    assert forest_layout(run, _frame()) == {"layout": "revman", "dose": True, "rob": True, **words}
    empty = _run({"forest_layout": "jama", "forest_rob": True})
    assert forest_layout(empty, _frame(rob=False)) == {"layout": "jama", "dose": False, **words}
    assert empty.notes == [
        "forest plot: drawn without risk-of-bias dots (forest_rob = true), because no risk-of-bias "
        "judgements are entered."
    ]
    with pytest.raises(SpecError, match="forest_rob"):
        _run({"forest_rob": True})
    with pytest.raises(SpecError, match="forest_layout"):
        _run({"forest_layout": "lancet"})
