"""results.csv (tidy: one row per model x term) and heterogeneity.csv, and the report's
text: integers as integers, p < 0.001, captions, Methods in words, Bayes-factor notes,
small-study summary beside the main result, µg, seeds, optional sections."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.report.results import HETEROGENEITY_COLUMNS, RESULT_COLUMNS
from evmeta.report.sections import ReportSection
from evmeta.report.tables import format_cell, html_table
from evmeta.run_tables import RunTables
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
    main = run.models.random_effects
    row = results[results["model"] == "random_effects"].iloc[0]
    assert row["term"] == "intercept" and row["k"] == main.k and row["test"] == "knha"
    assert row["estimate"] == pytest.approx(main.estimate, abs=1e-12)
    assert row["p"] == pytest.approx(main.pvalue, rel=1e-9)
    # The intercept-only multilevel model uses the robust (CR2) test the spec asks for.
    assert set(results.loc[results["model"].str.startswith("multilevel"), "test"]) == {"CR2"}
    subgroup = results[results["model"] == "subgroup:isolation_method"]
    assert set(subgroup["term"]) == {
        f"isolation_method = {v}" for v in run.tables.pooled["isolation_method"].unique()
    }
    assert subgroup["k"].sum() == main.k
    bayes = results[results["model"] == "bayesian"]
    assert set(bayes["term"]) == set(run.models.bayesian.names) and (bayes["test"] == "posterior").all()


def test_every_results_row_names_its_test(run):
    results = pd.read_csv(run.output / "results.csv")
    assert results["test"].notna().all(), results.loc[results["test"].isna(), "model"].unique()
    # The selection model's coefficients are Wald z tests (SEs from its likelihood).
    assert set(results.loc[results["model"] == "selection_model", "test"]) == {"z"}


def test_heterogeneity_csv(run):
    table = pd.read_csv(run.output / "heterogeneity.csv")
    assert list(table.columns) == HETEROGENEITY_COLUMNS
    main = run.models.random_effects
    row = table[table["model"] == "random_effects"].iloc[0]
    assert (row["tau2"], row["tau"], row["i2"], row["q"], row["q_df"]) == pytest.approx(
        (main.tau2, np.sqrt(main.tau2), main.i2, main.q, main.q_df)
    )
    multilevel = table[table["model"] == "multilevel"]
    assert list(multilevel["component"]) == ["study_id", "experiment_id"]


def test_heterogeneity_csv_has_the_bayesian_taus(run):
    table = pd.read_csv(run.output / "heterogeneity.csv")
    bayes = run.models.bayesian
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
    assert format_cell("estimate", -0.00213) == "\u22122.13 × 10⁻³"  # a power of ten, as printed
    assert format_cell("dose", 1.3e10) == "1.30 × 10¹⁰"
    assert format_cell("disease_model", "focal_cerebral_ischemia") == "focal cerebral ischaemia"
    assert format_cell("isolation_method", "TFF+SEC") == "TFF+SEC"
    assert format_cell("reason", "implies 2e+09 particles") == "implies 2 × 10⁹ particles"
    assert format_cell("posterior_prob", 1e-9) == "< 0.001" and format_cell("prior_prob", 0.03125) == "0.031"
    assert format_cell("posterior_prob", 0.99995) == "> 0.999"
    assert format_cell("difference_pvalue", 0.0004) == "< 0.001"
    renamed = html_table(
        pd.DataFrame({"difference_pvalue": [0.2, 0.0001]}),
        headings={"difference_pvalue": "p (x)"},
        level=0.95,
    )
    assert "<th>p (x)</th>" in renamed and "<td>&lt; 0.001</td>" in renamed
    frame = pd.DataFrame(
        {"term": ["a", "b"], "k": [17.0, 17.0], "estimate": [0.1, 0.2], "method": ["REML"] * 2}
    )
    out = html_table(frame, level=0.95)
    assert "Same on every row" in out and "<th>method</th>" not in out and 'class="scroll"' in out


def test_table_interval_headings_follow_the_level():
    frame = pd.DataFrame(
        {"estimate": [0.1], "ci_low": [0.0], "ci_high": [0.2], "pi_low": [-1.0], "pi_high": [1.2]}
    )
    ninety = html_table(frame, level=0.9)
    assert "<th>90% CI low</th>" in ninety and "<th>90% PI high</th>" in ninety and "95%" not in ninety
    credible = html_table(frame, level=0.975, interval="CrI")
    assert "<th>97.5% CrI high</th>" in credible and "<th>97.5% PI low</th>" in credible
    with pytest.raises(TypeError):  # no default level: a table cannot claim 95% by omission
        html_table(frame)  # type: ignore[call-arg]


def test_report_text(run):
    text = (run.output / "report.html").read_text()
    body = re.sub(r"<svg.*?</svg>", "", text, flags=re.DOTALL)
    assert "17.000" not in body and "<td>17.0</td>" not in body
    assert "p &lt; 0.001" in body
    figures = re.findall(r"<figure id=", body)
    assert len(figures) == len(run.figures) and body.count("<figcaption>") == len(figures)
    methods = body[body.index('<h2 id="methods">Methods</h2>') : body.index('<h2 id="forest-plot">Forest plot</h2>')]
    assert "[T." not in methods and "~" not in methods and "isolation_method" not in methods
    assert "normal prior with mean 0 and standard deviation 2.5" in methods
    assert "no Monte Carlo error" in methods and "R-hat" not in methods
    key = body[body.index('<div class="key">') : body.index('<h2 id="methods">Methods</h2>')]
    assert "Small-study effects" in key and "PET-PEESE" in key
    assert " ug " not in body and "ug protein" not in body.replace("µg protein", "")
    assert "{'bayesian'" not in body and "bayesian 20241126" in body


def _body(run) -> str:
    return re.sub(r"<svg.*?</svg>", "", (run.output / "report.html").read_text(), flags=re.DOTALL)


def test_bayes_factor_disagreement_is_explained(run):
    """The example has BF₁₀ < 1/3 for the isolation method while the subgroup test under
    separate τ², meta-regression coefficients and some credible intervals find an effect
    (the common-τ² subgroup test alone does not): the report must explain it."""
    body = _body(run)
    bf = run.tables.bayes_factors.set_index("term").loc["isolation_method", "bf10"]
    subgroups = run.models.subgroups["isolation_method"]
    assert bf < 1 / 3 and subgroups.q_between_pvalue < 0.05 <= subgroups.q_between_common_pvalue
    notes = [n for n in re.findall(r'<p class="key">(.*?)</p>', body, flags=re.DOTALL) if "Lindley" in n]
    assert len(notes) == 1 and "For isolation method" in notes[0] and "Savage-Dickey" in notes[0]
    assert "separate τ²" in notes[0] and "credible interval of TFF+SEC minus UC" in notes[0]
    assert "quality score" not in notes[0]  # BF₁₀ and p agree there


def _stub_run(bf10: float, lower: float, upper: float, p_separate: float, p_common: float):
    from types import SimpleNamespace

    bayes = SimpleNamespace(
        priors={"method[T.b]": "normal(0, 2.5)", "tau[study_id]": "halfnormal(2)"},
        model=SimpleNamespace(term_columns={"intercept": [0], "method": [1]}),
        level=0.95,
    )
    subgroups = SimpleNamespace(q_between_pvalue=p_separate, q_between_common_pvalue=p_common)
    return SimpleNamespace(
        models=SimpleNamespace(
            bayesian=bayes, subgroups={"method": subgroups}, meta_regression=None, multilevel_regression=None
        ),
        tables=RunTables(
            bayes_factors=pd.DataFrame({"term": ["method"], "bf10": [bf10]}),
            bayes_contrasts={
                "method": pd.DataFrame({"level": ["b"], "versus": ["a"], "ci_low": [lower], "ci_high": [upper]})
            },
        ),
    )


def test_bayes_factor_note_rule():
    from evmeta.report.interpret import bayes_factor_notes

    # Against an effect, while only the credible interval (no p-value) finds one.
    notes = bayes_factor_notes(_stub_run(0.1, 0.2, 1.0, 0.3, 0.4))
    assert len(notes) == 1 and "Lindley" in notes[0] and "credible interval of b minus a" in notes[0]
    # Against an effect, while only the separate-τ² subgroup test finds one.
    notes = bayes_factor_notes(_stub_run(0.1, -0.2, 1.0, 0.01, 0.4))
    assert len(notes) == 1 and "separate τ² (p = 0.01)" in notes[0]
    # For an effect, while nothing else finds one; and no note where all agree.
    assert "favours an effect" in bayes_factor_notes(_stub_run(10.0, -0.2, 1.0, 0.3, 0.4))[0]
    assert bayes_factor_notes(_stub_run(0.1, -0.2, 1.0, 0.3, 0.4)) == []
    assert bayes_factor_notes(_stub_run(10.0, 0.2, 1.0, 0.01, 0.02)) == []


def test_bias_section_uses_the_report_tables(run):
    """Selection weights, the 16 models, the prior sensitivity and the isolation evidence:
    readable headings, a true minus, probabilities never printed '0.000'."""
    body = _body(run)
    section = body[body.index('<h2 id="publication-bias">Publication bias') : body.index('<h2 id="sensitivity">Sensitivity analyses</h2>')]
    assert 'class="dataframe' not in section and section.count('<div class="scroll">') == 4
    for code in ["log_marginal_likelihood", "prior_prob", "posterior_prob", "mu_mean", "tau_prior", "ci_low"]:
        assert code not in section, code
    headings = re.findall(r"<th>(.*?)</th>", section)
    assert not [h for h in headings if "_" in h or h in {"delta", "bias", "priors"}], headings
    assert "log marginal likelihood" in headings and "posterior probability" in headings
    assert "p (within vs between)" in headings and "95% CrI low" in headings
    cells = re.findall(r"<td>(.*?)</td>", section)
    assert not [c for c in cells if re.fullmatch(r"-[\d.]+.*|0\.000|1\.000", c)]
    assert "&lt; 0.001" in cells and any(c.startswith("\u2212") for c in cells)
    assert "X2(" not in section and "χ²(1)" in section


def test_report_has_no_source_paths(run):
    body = _body(run)
    assert not re.search(r"evmeta/[\w/]+\.py", body)
    prior = body[body.index("Sensitivity to the heterogeneity prior") :][:1500]
    assert "log-normal(0, 0.5)" in prior and "Vesterinen" in prior and "median τ 1 SMD" in prior


def test_recovery_table_uses_readable_terms(run):
    body = _body(run)
    table = body[body.index("<h3>Recovery of the simulated truth</h3>") :]
    table = table[: table.index("</table>")]
    assert "[T." not in table and "isolation_method" not in table and "quality_score" not in table
    assert "<td>Isolation method: SEC vs UC</td>" in table and "<td>Quality score (per unit)</td>" in table


def test_single_column_figures_are_marked_single(run):
    from evmeta.report.svg import is_single_column, svg_width_mm

    text = (run.output / "report.html").read_text()
    tags = dict(re.findall(r'<figure id="([\w-]+)"([^>]*)>', text))
    assert tags["isolation-evidence"] == ' class="single"' and tags["forest"] == ""
    for name, paths in run.figures.items():
        single = is_single_column(paths)
        assert (tags[name.replace("_", "-")] == ' class="single"') == single, name
        svg = next(p for p in sorted(paths) if p.suffix == ".svg")
        assert single == (svg_width_mm(svg) == pytest.approx(85.0, abs=0.5))


def test_report_states_the_quadrature_grid_error(run):
    from evmeta.plots._text import scientific

    body = _body(run)
    error = run.models.bayesian.diagnostics["grid_error"]
    assert 0 <= error < 1e-4
    section = body[body.index('<h2 id="bayesian">Bayesian hierarchical meta-regression</h2>') :][:800]
    assert (
        f"largest change of any reported summary on a grid of twice the density: {scientific(error, 1)}"
        in section
    )
    assert "twice the density" in body[body.index('<h2 id="methods">Methods</h2>') : body.index('<h2 id="forest-plot">Forest plot</h2>')]
    assert "may be inaccurate" not in body  # below the limit: no warning


def test_a_large_grid_error_is_a_note_and_a_warning():
    from types import SimpleNamespace

    from evmeta.analysis.stages import bayesian_diagnostics
    from evmeta.report.html import _grid_error

    bayes = SimpleNamespace(
        method_used="quadrature",
        diagnostics={"grid_error": 3.2e-3, "sampler": "exact quadrature", "max_r_hat": 1.0},
    )
    run = SimpleNamespace(models=SimpleNamespace(bayesian=bayes), notes=[])
    recorded = bayesian_diagnostics(run)
    assert recorded == {
        "method": "quadrature",
        "sampler": "exact quadrature",
        "diagnostics": {"grid_error": 3.2e-3},
    }
    assert (
        len(run.notes) == 1 and "3.2e\u221203" in run.notes[0] and "inaccurate to that degree" in run.notes[0]
    )
    assert _grid_error(bayes) == {"text": "3.2e\u221203", "large": True, "limit": "0.0001"}
    bayes.diagnostics["grid_error"] = 5e-6
    run.notes.clear()
    bayesian_diagnostics(run)
    assert run.notes == [] and not _grid_error(bayes)["large"]


def test_optional_sections_render_from_their_own_partial(run, tmp_path):
    import jinja2

    from evmeta.report.sections import render_sections

    loader = jinja2.DictLoader(
        {"extra.html.j2": "<p>{{ context.sentence }}</p>{{ table(context.frame)|safe }}"}
    )
    section = ReportSection(
        "extra",
        "An extra section",
        "extra.html.j2",
        {"sentence": "Hello", "frame": pd.DataFrame({"k": [3.0, 4.0]})},
    )
    # The run is frozen: a run with one more section is a new value.
    rendered = render_sections(dataclasses.replace(run, report_sections=(section,)), loader=loader)
    assert rendered[0]["title"] == "An extra section"
    assert "<p>Hello</p>" in rendered[0]["html"] and "<td>3</td>" in rendered[0]["html"]
