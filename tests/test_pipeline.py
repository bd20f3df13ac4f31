"""evmeta run on the example: every output file, provenance, row accounting, recovery."""

from __future__ import annotations

import hashlib
import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from tests.conftest import EXAMPLE, ROOT

EXPECTED = [
    "comparisons.csv",
    "exclusions.csv",
    "results.csv",
    "heterogeneity.csv",
    "posterior.nc",
    "report.html",
    "provenance.json",
    "certainty.csv",
    "summary_of_findings.docx",
    *[
        f"{name}.{ext}"
        for name in ["funnel", "dose_response", "moderators", "posterior", "bias_panel", "isolation_evidence"]
        for ext in ["pdf", "svg", "png"]
    ],
    # The 68 studies' traffic light continues on a second page.
    "risk_of_bias.pdf",
    "risk_of_bias_1.svg",
    "risk_of_bias_2.png",
    # The forest plot is taller than a journal page: one multi-page PDF, numbered PNG/SVG.
    "forest.pdf",
    "forest_1.svg",
    "forest_2.svg",
    "forest_1.png",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return em.run_analysis(ROOT / "analyses" / "example.toml", output=out, quiet=True)


def test_every_output_is_written(run):
    missing = [name for name in EXPECTED if not (run.output / name).exists()]
    assert not missing


def test_every_derived_table_is_written_as_its_csv(run):
    """Each typed table of the run is ``<field>.csv`` in the report folder (CSV keeps codes)."""
    written = dict(run.tables.csv_files())
    for name in ["comparisons.csv", "bias.csv", "sensitivity.csv", "subgroup_tests.csv",
                 "isolation_evidence.csv", "bayes_factors.csv", "bayes_contrasts_isolation_method.csv",
                 "preclinical_prior_sensitivity.csv", "selection_weights.csv", "certainty.csv"]:  # fmt: skip
        assert name in written, name
    for name, frame in written.items():
        path = run.output / name
        assert path in run.files, name
        assert len(pd.read_csv(path)) == len(frame), name
    assert pd.read_csv(run.output / "bias.csv")["test"].tolist() == run.tables.bias["test"].tolist()


def test_report_names_every_included_study_and_states_recovery(run):
    text = (run.output / "report.html").read_text()
    table = pd.read_csv(run.output / "comparisons.csv")
    for study in table["study_id"].unique():
        assert f"({study})" in text, study
    # Since issue 16 the example contains labs whose milder injury models travel with the
    # precipitation method, so the between-study Bayesian contrasts need not all cover the truth;
    # the report states the coverage and shows the within-study evidence that does recover it.
    assert "lie within their 95% credible intervals" in text
    assert "Isolation methods: within- versus between-study evidence" in text
    assert "Trust the within-study estimate" in text
    covered = run.recovery.set_index("parameter")["covered"]
    assert covered.sum() >= len(covered) - 2
    assert not covered["isolation_method[T.precipitation]"]  # the contrast the lab confounds
    evidence = run.tables.isolation_evidence.set_index("method")
    within = evidence.loc["precipitation", ["within_ci_low", "within_ci_high"]]
    assert within.iloc[0] <= -0.5 <= within.iloc[1]  # the within-study contrast recovers it
    assert "SEC minus UC" in text and "P(&gt; 0)" in text
    # Self-contained: figures inline, nothing fetched from the network.
    assert "<svg" in text
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', text)


def test_provenance(run):
    provenance = json.loads((run.output / "provenance.json").read_text())
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert provenance["inputs"][str(EXAMPLE.resolve())] == digest
    assert provenance["seeds"]["bayesian"] == 20241126
    assert {"evmeta", "numpy", "pymc"} <= set(provenance["versions"])
    assert provenance["started"] < provenance["finished"]
    assert provenance["spec"]["analysis"]["name"] == "example"
    # The Bayesian model's engine and accuracy (computed in the posterior.nc worker, adopted here).
    bayesian = provenance["bayesian"]
    assert bayesian["method"] == "quadrature" and bayesian["sampler"].startswith("exact quadrature")
    assert bayesian["diagnostics"]["grid_error"] == run.models.bayesian.diagnostics["grid_error"]
    assert 0 <= bayesian["diagnostics"]["grid_error"] < 1e-4


def test_every_outcome_row_is_accounted_for(run):
    book = em.read_extraction(EXAMPLE)
    table = pd.read_csv(run.output / "comparisons.csv")
    exclusions = pd.read_csv(run.output / "exclusions.csv")
    used = set(table["treat_outcome_row"]) | set(table["control_outcome_row"])
    logged = set(exclusions["row"])
    assert used | logged == set(book.outcomes["_row"])
    assert not used & logged


def test_results_and_posterior(run):
    results = pd.read_csv(run.output / "results.csv")
    assert {"random_effects", "meta_regression", "multilevel_regression", "bayesian"} <= set(results["model"])
    import arviz as az

    idata = az.from_netcdf(run.output / "posterior.nc")
    assert "beta" in idata.posterior and "log_likelihood" in idata.groups()


def test_cli_run_errors(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text('[analysis]\nname = "bad"\nextraction = "missing/nothing.xlsx"\n')
    result = runner.invoke(app, ["run", str(bad), "--quiet"])
    assert result.exit_code == 2 and "does not exist" in result.output
    bad.write_text(f'[analysis]\nname = "bad"\nextraction = "{EXAMPLE}"\n[frequentist]\nmethod = "XX"\n')
    result = runner.invoke(app, ["run", str(bad), "--quiet"])
    assert result.exit_code == 2 and "valid choices" in result.output


def test_filters_keep_every_row_accounted_for(tmp_path):
    spec = tmp_path / "filtered.toml"
    spec.write_text(
        f'[analysis]\nname = "filtered"\nextraction = "{EXAMPLE}"\n'
        '[comparisons]\noutcomes = ["serum creatinine", "infarct volume", "infarct size"]\n'
        '[filters]\nspecies = ["rat"]\nmin_quality_score = 0.3\n'
        "[bayesian]\nenabled = false\n[sensitivity]\nleave_one_out = false\nnmd_vs_smd = false\n"
        '[figures]\nformats = ["svg"]\n'
    )
    run = em.run_analysis(spec, output=tmp_path / "out", quiet=True)
    table = pd.read_csv(run.output / "comparisons.csv")
    exclusions = pd.read_csv(run.output / "exclusions.csv")
    assert set(table["species"]) == {"rat"} and (table["quality_score"] >= 0.3).all()
    reasons = exclusions["reason"]
    assert reasons.str.startswith("filter: species not in ['rat']").any()
    assert reasons.str.startswith("filter: quality_score < 0.3").any()
    assert reasons.str.startswith("control row of comparisons removed by filter").any()
    book = em.read_extraction(EXAMPLE)
    used = set(table["treat_outcome_row"]) | set(table["control_outcome_row"])
    logged = set(exclusions["row"])
    assert used | logged == set(book.outcomes["_row"]) and not used & logged


RIC = ROOT / "tests/data/ric/ric_infarct_volume_wide.csv"
RIC_MAP = ROOT / "extraction/maps/ric_infarct_volume.toml"
RAW_EXCEPTION = re.compile(r"\('[^']*'\)\s*$|Traceback|KeyError|\bnan\b")


def test_plain_spec_on_a_real_table_gives_a_complete_report(tmp_path):
    """Only [analysis] and [comparisons], on an imported real table of another intervention
    (remote ischemic conditioning: the map says preparation_kind = "non_ev") with no risk of
    bias entered: forest plot (ungrouped), funnel, multilevel and Bayesian models, report; the
    MSC-EV-only moderators are left out with one note each in plain sentences."""
    from evmeta.schema.wide_import import import_wide

    import_wide(RIC, RIC_MAP, tmp_path / "ric.xlsx")
    spec = tmp_path / "plain.toml"
    spec.write_text('[analysis]\nname = "plain"\nextraction = "ric.xlsx"\n[comparisons]\nmeasure = "SMD"\n')
    run = em.run_analysis(spec, output=tmp_path / "out", quiet=True)
    assert run.models.random_effects.k == 102
    for model in ["multilevel", "bayesian"]:
        assert getattr(run.models, model) is not None, run.notes
    for figure in ["forest", "funnel", "posterior"]:
        # One page, or numbered pages when the figure is taller than a journal page.
        pages = [run.output / f"{figure}.svg", run.output / f"{figure}_1.svg"]
        assert any(page.exists() for page in pages), run.notes
    assert (run.output / "report.html").exists()
    notes = " ".join(run.notes)
    no_ev = "because the extraction has no EV preparations (preparation_kind = non_ev)"
    assert f"subgroups by isolation_method: not analysed, {no_ev}." in notes
    assert "meta-regression: not fitted, because its moderator(s) 'isolation_method', 'quality_score'" in notes
    assert f"Bayesian model: moderator(s) 'isolation_method', 'quality_score' left out, {no_ev}." in notes
    for note in run.notes:
        assert not RAW_EXCEPTION.search(note), note
    html = (run.output / "report.html").read_text()
    assert "not drawn ('" not in html and "not fitted ('" not in html
    assert "<em>not fitted</em>" not in html  # a model not fitted always says why


def test_sensitivity_tables_share_the_filters(tmp_path):
    """NMD vs SMD is built by the same function as the main analysis: [filters] apply to it."""
    spec = tmp_path / "nmd.toml"
    spec.write_text(
        f'[analysis]\nname = "nmd"\nextraction = "{EXAMPLE}"\n'
        '[comparisons]\noutcomes = ["serum creatinine", "infarct volume", "infarct size"]\n'
        '[filters]\nspecies = ["rat"]\n[moderators]\nisolation_method = "UC"\n'
        "[bayesian]\nenabled = false\n[sensitivity]\nleave_one_out = false\n"
        '[figures]\nformats = ["svg"]\n'
    )
    run = em.run_analysis(spec, output=tmp_path / "out", quiet=True)
    rows = run.tables.sensitivity.set_index("analysis")
    main_k = int(rows.loc["main analysis", "k"])
    nmd = rows[rows.index.str.startswith("measure by the NMD rule")]
    assert len(nmd) == 1
    book = em.read_extraction(EXAMPLE)
    unfiltered = em.build_comparisons(
        book, "NMD_or_SMD", outcome=["serum creatinine", "infarct volume", "infarct size"]
    )
    rat = unfiltered.table[unfiltered.table["species"] == "rat"]
    assert int(nmd["k"].iloc[0]) == len(rat) < len(unfiltered.table)
    assert main_k >= int(nmd["k"].iloc[0])


def test_keep_is_refused_by_run_while_controls_are_shared(tmp_path):
    spec = tmp_path / "keep.toml"
    spec.write_text(
        f'[analysis]\nname = "keep"\nextraction = "{EXAMPLE}"\n[comparisons]\nshared_control = "keep"\n'
    )
    with pytest.raises(
        em.SpecError, match=r"shared_control = 'keep'.*count the control animals more than once"
    ):
        em.run_analysis(spec, output=tmp_path / "out", quiet=True)
    result = CliRunner().invoke(app, ["run", str(spec), "--quiet"])
    assert result.exit_code == 2 and "shared_control_covariance" in result.output


def test_usable_moderators_drop_what_the_data_cannot_estimate():
    import numpy as np

    from evmeta.analysis.table import usable_moderators

    table = pd.DataFrame({"a": ["UC", "UC"], "b": [0.0, 0.0], "c": [np.nan, np.nan], "d": [1.0, 2.0]})
    formula, notes = usable_moderators(table, "~ a + b + c + d + np.log(d)", "model")
    assert formula == "~ d + np.log(d)"
    assert notes == [
        "model: moderator 'a' left out, because every comparison has the same value ('UC'), so its effect cannot be estimated.",
        "model: moderator 'b' left out, because every comparison has the same value (0), so its effect cannot be estimated.",
        "model: moderator 'c' left out, because no comparison has a value for it.",
    ]
    assert usable_moderators(table, "~ a", "model")[0] is None
