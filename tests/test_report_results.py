"""results.csv (tidy: one row per model x term) and heterogeneity.csv, and the report's
text: integers as integers, p < 0.001, captions, Methods in words, Bayes-factor notes,
small-study summary beside the main result, µg, seeds, optional sections."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.report.results import HETEROGENEITY_COLUMNS, RESULT_COLUMNS
from evmeta.report.sections import ReportSection
from evmeta.report.tables import format_cell, html_table
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return em.run_analysis(ROOT / "analyses" / "example.toml", output=out, quiet=True)


def test_results_csv_is_tidy(run):
    results = pd.read_csv(run.output / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert results["k"].dtype == np.int64
    assert not results["term"].isna().any() and not results.duplicated(["model", "term"]).any()
    main = run.models["random_effects"]
    row = results[results["model"] == "random_effects"].iloc[0]
    assert row["term"] == "intercept" and row["k"] == main.k and row["test"] == "knha"
    assert row["estimate"] == pytest.approx(main.estimate, abs=1e-12)
    assert row["p"] == pytest.approx(main.pvalue, rel=1e-9)
    # The intercept-only multilevel model uses the robust (CR2) test the spec asks for.
    assert set(results.loc[results["model"].str.startswith("multilevel"), "test"]) == {"CR2"}
    subgroup = results[results["model"] == "subgroup:isolation_method"]
    assert set(subgroup["term"]) == {
        f"isolation_method = {v}" for v in run.tables["comparisons"]["isolation_method"].unique()
    }
    assert subgroup["k"].sum() == main.k
    bayes = results[results["model"] == "bayesian"]
    assert set(bayes["term"]) == set(run.models["bayesian"].names) and (bayes["test"] == "posterior").all()


def test_every_results_row_names_its_test(run):
    results = pd.read_csv(run.output / "results.csv")
    assert results["test"].notna().all(), results.loc[results["test"].isna(), "model"].unique()
    # The selection model's coefficients are Wald z tests (SEs from its likelihood).
    assert set(results.loc[results["model"] == "selection_model", "test"]) == {"z"}


def test_heterogeneity_csv(run):
    table = pd.read_csv(run.output / "heterogeneity.csv")
    assert list(table.columns) == HETEROGENEITY_COLUMNS
    main = run.models["random_effects"]
    row = table[table["model"] == "random_effects"].iloc[0]
    assert (row["tau2"], row["tau"], row["i2"], row["q"], row["q_df"]) == pytest.approx(
        (main.tau2, np.sqrt(main.tau2), main.i2, main.q, main.q_df)
    )
    multilevel = table[table["model"] == "multilevel"]
    assert list(multilevel["component"]) == ["study_id", "experiment_id"]


def test_heterogeneity_csv_has_the_bayesian_taus(run):
    table = pd.read_csv(run.output / "heterogeneity.csv")
    bayes = run.models["bayesian"]
    rows = table[table["model"] == "bayesian"].set_index("component")
    assert list(rows.index) == bayes.levels == ["study_id", "experiment_id"]
    summary = bayes.summary().table
    for level, name in zip(bayes.levels, bayes.tau_names, strict=True):
        expected = summary.loc[name, ["estimate", "ci_low", "ci_high"]].to_numpy(float)
        got = rows.loc[level, ["tau", "tau_ci_low", "tau_ci_high"]].to_numpy(float)
        assert got == pytest.approx(expected, rel=1e-9)
        assert got[1] < got[0] < got[2] and rows.loc[level, "k"] == bayes.k
    # Posterior summaries of tau, not of tau²: no tau2, I² or Q is claimed for them.
    assert rows[["tau2", "i2", "q"]].isna().all().all()


def test_cells_and_tables():
    assert format_cell("k", 17.0) == "17"
    assert format_cell("pvalue", 0.0) == "< 0.001" and format_cell("p", 0.0312) == "0.031"
    assert format_cell("estimate", -0.5) == "\u22120.50"
    frame = pd.DataFrame(
        {"term": ["a", "b"], "k": [17.0, 17.0], "estimate": [0.1, 0.2], "method": ["REML"] * 2}
    )
    out = html_table(frame)
    assert "Same on every row" in out and "<th>method</th>" not in out and 'class="scroll"' in out


def test_report_text(run):
    text = (run.output / "report.html").read_text()
    body = re.sub(r"<svg.*?</svg>", "", text, flags=re.DOTALL)
    assert "17.000" not in body and "<td>17.0</td>" not in body
    assert "p &lt; 0.001" in body
    figures = re.findall(r"<figure id=", body)
    assert len(figures) == len(run.figures) and body.count("<figcaption>") == len(figures)
    methods = body[body.index("<h2>Methods</h2>") : body.index("<h2>Forest plot</h2>")]
    assert "[T." not in methods and "~" not in methods and "isolation_method" not in methods
    assert "normal prior with mean 0 and standard deviation 2.5" in methods
    assert "no Monte Carlo error" in methods and "R-hat" not in methods
    key = body[body.index('<div class="key">') : body.index("<h2>Methods</h2>")]
    assert "Small-study effects" in key and "PET-PEESE" in key
    assert " ug " not in body and "ug protein" not in body.replace("µg protein", "")
    assert "{'bayesian'" not in body and "bayesian 20241126" in body


def test_bayes_factor_disagreement_is_explained(run):
    body = (run.output / "report.html").read_text()
    factors = run.tables["bayes_factors"].set_index("term")
    tests = run.tables["subgroup_tests"].set_index("by")
    bf, p = factors.loc["isolation_method", "bf10"], tests.loc["isolation_method", "pvalue"]
    if bf < 1 / 3 and p < 0.05:
        assert "Lindley" in body and "Savage-Dickey" in body
    else:
        assert "Lindley" not in body


def test_optional_sections_render_from_their_own_partial(run, tmp_path):
    import jinja2

    from evmeta.report.sections import render_sections

    loader = jinja2.DictLoader(
        {"extra.html.j2": "<p>{{ context.sentence }}</p>{{ table(context.frame)|safe }}"}
    )
    run.report_sections = [
        ReportSection(
            "extra",
            "An extra section",
            "extra.html.j2",
            {"sentence": "Hello", "frame": pd.DataFrame({"k": [3.0, 4.0]})},
        )
    ]
    try:
        rendered = render_sections(run, loader=loader)
    finally:
        run.report_sections = []
    assert rendered[0]["title"] == "An extra section"
    assert "<p>Hello</p>" in rendered[0]["html"] and "<td>3</td>" in rendered[0]["html"]
