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
    *[
        f"{name}.{ext}"
        for name in ["funnel", "risk_of_bias", "dose_response", "moderators", "posterior"]
        for ext in ["pdf", "svg", "png"]
    ],
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


def test_report_names_every_included_study_and_states_recovery(run):
    text = (run.output / "report.html").read_text()
    table = pd.read_csv(run.output / "comparisons.csv")
    for study in table["study_id"].unique():
        assert f"({study})" in text, study
    assert "the model recovers the simulated truth" in text
    assert run.recovery["covered"].all()
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
