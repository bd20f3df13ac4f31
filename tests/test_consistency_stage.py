"""The consistency stage of ``evmeta run`` (evmeta.analysis.consistency): the location-scale
model of ``[frequentist] scale``, threshold probabilities, the multilevel heterogeneity
table, the CSV files and the report section, on a small run built from real data
(dat.konstantopoulos2011, tests/reference/multilevel_heterogeneity.json, with districts as
studies, schools as experiments and an isolation-method label assigned by study year)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.analysis.consistency import TITLE, consistency, threshold_sentences
from evmeta.analysis.spec import FiguresSection, FrequentistSection
from evmeta.report.sections import render_sections
from evmeta.results import AnalysisModels
from evmeta.run_tables import RunTables
from tests.conftest import ROOT

DATA = pd.DataFrame(
    json.loads((ROOT / "tests" / "reference" / "multilevel_heterogeneity.json").read_text())["data"]
)


@pytest.fixture(autouse=True)
def _few_bootstrap_refits(monkeypatch):
    monkeypatch.setattr("evmeta.analysis.consistency.N_BOOT", 30)  # the interval machinery, quickly


def _table() -> pd.DataFrame:
    table = DATA.rename(columns={"district": "study_id", "school": "experiment_id"}).copy()
    table["experiment_id"] = table["study_id"].astype(str) + "-" + table["experiment_id"].astype(str)
    table["isolation_method"] = np.where(
        table["year"] < 1980, "UC", np.where(table["year"] < 1990, "SEC", "precipitation")
    )
    table["measure"] = "SMD"
    return table


def _run(tmp_path, **frequentist):
    table = _table()
    spec = SimpleNamespace(
        frequentist=FrequentistSection(**frequentist), figures=FiguresSection(formats=["svg"])
    )
    run = SimpleNamespace(
        spec=spec,
        output=tmp_path,
        models=AnalysisModels(),
        tables=RunTables(),
        notes=[],
        files=[],
        report_sections=[],
        figures={},
    )
    run.models = AnalysisModels(
        random_effects=em.meta_analysis(table, test="knha"),
        multilevel=em.multilevel_meta_analysis(table, random=["study_id", "experiment_id"]),
        multilevel_regression=em.multilevel_meta_analysis(
            table, random=["study_id", "experiment_id"], mods="~ isolation_method"
        ),
    )
    return run, table


def test_stage_fits_writes_and_renders_the_consistency_section(tmp_path):
    run, table = _run(tmp_path, scale="~ isolation_method", thresholds=[0, 0.5], method="REML")
    consistency(run, table)
    # The stage records typed tables; the pipeline writes them (consistency.csv, ...) at the end.
    files = dict(run.tables.csv_files())
    assert {"consistency.csv", "thresholds.csv", "heterogeneity_levels.csv"} <= set(files)
    levels = run.tables.consistency
    assert set(levels["label"]) == {"UC", "SEC", "precipitation"} and levels["k"].sum() == len(table)
    fit = run.models.location_scale
    np.testing.assert_allclose(
        levels.sort_values("label")["tau2"], fit.heterogeneity_table().sort_values("label")["tau2"]
    )
    probabilities = run.tables.thresholds
    assert set(probabilities["model"]) == {"random_effects", "location_scale"}
    assert len(probabilities) == 2 * (1 + 3)
    multilevel = run.tables.heterogeneity_levels
    assert list(multilevel["level"]) == ["study_id", "experiment_id", "total"]
    assert multilevel["r2_marginal"].notna().sum() == 1
    assert (multilevel["i2_ci_low"] <= multilevel["i2_ratio"] + 1e-9).all()
    [section] = run.report_sections
    assert section.title == TITLE
    [rendered] = render_sections(run)
    html = rendered["html"]
    assert "Between-study SD (τ) by isolation_method" in html and "likelihood-ratio test p" in html
    assert "of a true effect above 0.5 SD" in html and "of a true benefit (effect above 0)" in html
    assert "Heterogeneity per level of the multilevel model" in html and "30 refits" in html
    assert html.count("<svg") == 2 and "Orchard plot by isolation_method" in html
    contrasts = run.tables.bayes_tau_contrasts
    assert len(contrasts) == 2 and contrasts["p_tau_less"].between(0, 1).all() and "P(τ_level" in html
    assert (tmp_path / "orchard.svg").exists() and (tmp_path / "caterpillar.svg").exists()


def test_without_scale_the_section_says_how_to_ask_for_it(tmp_path):
    run, table = _run(tmp_path, thresholds=[0.2])
    consistency(run, table)
    assert run.models.location_scale is None
    html = render_sections(run)[0]["html"]
    assert 'scale = "~ isolation_method"' in html
    assert "above 0.2 SD" in html


def test_a_scale_model_that_cannot_be_fitted_becomes_a_note(tmp_path):
    run, table = _run(tmp_path, scale="~ isolation_method", method="DL")
    table = table.assign(isolation_method=np.where(np.arange(len(table)) == 0, "single", "UC"))
    consistency(run, table)
    assert any("location-scale model: not fitted" in n and "1 comparison" in n for n in run.notes)
    assert "1 comparison" in render_sections(run)[0]["html"]


def test_threshold_sentences_read_as_the_issue_asks():
    frame = pd.DataFrame(
        {
            "group": ["SEC", "SEC"],
            "threshold": [0.0, 0.5],
            "p_true_above": [0.999, 0.84],
            "share_true_above": [0.999, 0.86],
            "model": ["location_scale"] * 2,
        }
    )
    [sentence] = threshold_sentences(frame, "SMD")
    assert sentence == (
        "A new comparable comparison with SEC has a probability of > 99% of a true benefit (effect above 0) "
        "and 84% of a true effect above 0.5 SD (location-scale model)."
    )


def test_spec_accepts_scale_and_thresholds():
    section = FrequentistSection(scale="~ isolation_method", thresholds=[0, 0.5])
    assert section.scale == "~ isolation_method" and section.thresholds == [0.0, 0.5]
    with pytest.raises(ValueError):
        FrequentistSection(thresholds=["big"])
