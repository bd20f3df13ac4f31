"""``[comparisons] combine_outcomes`` and ``correlation`` in ``evmeta run``
(evmeta.analysis.correlated): the spec keys, the combination against metafor's aggregate on
real data (dat.ishak2007 as comparisons), V for the multilevel models, the sweep over the
assumed correlation, correlation_sensitivity.csv and the report section."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.analysis.correlated import (
    combine_outcomes,
    combined_exclusions,
    correlated_effects,
    correlation_settings,
)
from evmeta.analysis.spec import parse_spec
from evmeta.errors import SpecError
from evmeta.harmonize.assumed_covariance import sampling_covariance
from evmeta.report.sections import render_sections
from evmeta.run_tables import RunTables
from tests.conftest import DATA, ROOT

REFERENCE = json.loads((ROOT / "tests/reference/aggregate_vcalc.json").read_text())


def _spec(**comparisons):
    return parse_spec(
        {
            "analysis": {"name": "t", "extraction": "x.xlsx"},
            "comparisons": comparisons,
            "frequentist": {"multilevel": ["study_id", "experiment_id"]},
        }
    )


def _ishak_comparisons() -> pd.DataFrame:
    """dat.ishak2007 as a comparison table: a study is one experiment with one treated arm,
    its follow-ups (time 1-4) are time points of one outcome."""
    d = pd.read_csv(DATA / "correlated/ishak2007_long.csv")
    return pd.DataFrame(
        {
            "study_id": d["study"],
            "experiment_id": d["study"] + "-E1",
            "arm_id": d["study"] + "-A1",
            "comparison_id": d["study"] + "-t" + d["time"].astype(str),
            "outcome": "UPDRS motor",
            "timepoint": d["time"].astype(float) * 7,  # one time unit = one week
            "measure": "MD",
            "yi": d["yi"],
            "vi": d["vi"],
            "treat_outcome_row": np.arange(len(d)) + 2,
            "treat_outcome_id": d["study"] + "-t" + d["time"].astype(str),
        }
    )


def _run(tmp_path, spec):
    return SimpleNamespace(
        spec=spec, output=tmp_path, models={}, tables=RunTables(), notes=[], files=[], report_sections=[]
    )


def test_spec_keys_and_refusals():
    spec = _spec(combine_outcomes={"by": ["study_id", "experiment_id"], "rho": 0.6}, correlation={"phi": 0.9})
    assert spec.comparisons.combine_outcomes.rho == 0.6
    assert spec.comparisons.correlation.rho == 0.5 and spec.comparisons.correlation.phi == 0.9
    assert _spec(combine_outcomes={}).comparisons.combine_outcomes.by == [
        "study_id",
        "experiment_id",
        "arm_id",
    ]
    with pytest.raises(SpecError, match="rho = 1 makes the effects of a group perfectly correlated"):
        _spec(combine_outcomes={"rho": 1})
    with pytest.raises(
        SpecError,
        match=r"unknown key 'comparisons.correlation.rh'; valid keys in "
        r"\[comparisons.correlation\]: rho, phi",
    ):
        _spec(correlation={"rh": 0.5})
    with pytest.raises(SpecError, match="sweep must be in"):
        _spec(correlation={"sensitivity": [0.5, 1.0]})


def test_combination_matches_metafor_aggregate():
    """Compound symmetry, rho = 0.6: metafor aggregate(dat.ishak2007, cluster = study, rho = 0.6);
    closed form, 1e-8 relative."""
    spec = _spec(combine_outcomes={"by": ["study_id"], "rho": 0.6})
    combined = combine_outcomes(_ishak_comparisons(), spec.comparisons.combine_outcomes)
    ref = pd.DataFrame(REFERENCE["ishak"]["aggregate_cs_rho06"]).set_index("cluster")
    t = combined.table.set_index("study_id").loc[ref.index]
    np.testing.assert_allclose(t["yi"], ref["yi"], rtol=1e-8)
    np.testing.assert_allclose(t["vi"], ref["vi"], rtol=1e-8)
    assert t["timepoint"].isna().sum() == 23  # varied: kept as a column, missing there
    assert combined.dropped_columns["timepoint"] == 23


def test_combination_with_phi_matches_struct_car():
    """phi = 0.9 per week (time points a week apart): metafor aggregate(struct = "CAR")."""
    spec = _spec(combine_outcomes={"by": ["study_id"], "phi": 0.9, "time_unit": "weeks"})
    combined = combine_outcomes(_ishak_comparisons(), spec.comparisons.combine_outcomes)
    ref = pd.DataFrame(REFERENCE["ishak"]["aggregate_car_phi09"]).set_index("cluster")
    np.testing.assert_allclose(
        combined.table.set_index("study_id").loc[ref.index, "yi"], ref["yi"], rtol=1e-8
    )


def test_missing_by_column_and_exclusion_rows():
    table = _ishak_comparisons()
    with pytest.raises(SpecError, match="cohort not a column"):
        combine_outcomes(table, _spec(combine_outcomes={"by": ["cohort"]}).comparisons.combine_outcomes)
    table.loc[0, "yi"] = np.nan
    combined = combine_outcomes(table, _spec(combine_outcomes={}).comparisons.combine_outcomes)
    log = combined_exclusions(combined)
    assert list(log["row"]) == [2]
    assert log["reason"].iloc[0] == "[comparisons] combine_outcomes: not combined: no effect size (yi)"


def test_sweep_refits_the_main_model_and_reports(tmp_path):
    table = _ishak_comparisons()
    spec = _spec(combine_outcomes={"by": ["study_id"], "rho": 0.5, "sensitivity": [0.0, 0.5, 0.9]})
    combined = combine_outcomes(table, spec.comparisons.combine_outcomes)
    run = _run(tmp_path, spec)
    correlated_effects(run, SimpleNamespace(table=combined.table, combined=combined, uncombined=table))
    frame = run.tables.correlation_sensitivity  # written as correlation_sensitivity.csv by the pipeline
    assert list(frame["rho"]) == [0.0, 0.5, 0.9] and list(frame["used"]) == [False, True, False]
    # rho = 0 is inverse-variance pooling within studies, then the random-effects model.
    independent = em.harmonize.aggregate_comparisons(table, "study_id", rho=0.0)
    main = em.meta_analysis(independent.table, method="REML", test="knha")
    assert frame["estimate"].iloc[0] == pytest.approx(main.estimate, rel=1e-10)
    assert frame["k"].iloc[0] == 46
    [rendered] = render_sections(run)
    assert "nested comparisons; 82 comparisons into 46" in rendered["html"]
    assert "correlation_sensitivity.csv" in rendered["html"]


def test_correlation_gives_V_and_its_sweep(tmp_path):
    table = _ishak_comparisons()
    spec = _spec(correlation={"rho": 0.5, "phi": 0.9, "sensitivity": [0.0, 0.3]})
    run = _run(tmp_path, spec)
    V = correlation_settings(run, table)["V"]
    expected = sampling_covariance(table.assign(t=table["timepoint"] / 7), "experiment_id", time="t", phi=0.9)
    np.testing.assert_allclose(V, expected, rtol=1e-12)
    np.testing.assert_allclose(V, np.array(REFERENCE["ishak"]["V_phi09"]), rtol=1e-8, atol=1e-14)
    correlated_effects(run, SimpleNamespace(table=table, combined=None, uncombined=None))
    frame = run.tables.correlation_sensitivity
    assert list(frame["rho"]) == [0.0, 0.3, 0.5] and frame["used"].tolist() == [False, False, True]
    fit = em.multilevel_meta_analysis(table, random=["study_id", "experiment_id"], V=V, test="t")
    assert frame["estimate"].iloc[2] == pytest.approx(fit.estimate, rel=1e-10)


def test_correlation_that_cannot_be_built_is_a_note(tmp_path):
    table = _ishak_comparisons().assign(timepoint=np.nan)
    run = _run(tmp_path, _spec(correlation={"phi": 0.9}))
    assert correlation_settings(run, table) == {}
    assert "have no time point" in run.notes[0] and "assume independent" in run.notes[0]
