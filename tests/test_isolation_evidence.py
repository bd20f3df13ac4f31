"""Within- vs between-study isolation-method contrasts: metafor rma.mv parity on the centred
moderators (tests/reference/isolation_reference.R) and recovery of the simulated truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.errors import ModelError
from evmeta.models.isolation_evidence import centred_moderators

HERE = Path(__file__).parent
ROOT = HERE.parent
REFERENCE = json.loads((HERE / "reference" / "isolation_reference.json").read_text())
FRAME = pd.read_csv(HERE / "data" / "isolation" / "example_comparisons.csv")
# 1e-5 relative: REML optimum of both engines is converged to about 1e-8 (rel.tol 1e-10 in R).
REL = 1e-5


@pytest.fixture(scope="module")
def evidence():
    return em.models.isolation_method_evidence(FRAME, reference="UC").set_index("method")


def test_parity_with_rma_mv(evidence):
    fit = evidence.attrs["fit"]
    assert np.allclose(fit.sigma2, REFERENCE["sigma2"], rtol=1e-4)
    for method, ref in REFERENCE["contrasts"].items():
        for key in (
            "within_estimate",
            "within_se",
            "between_estimate",
            "between_se",
            "difference",
            "difference_pvalue",
        ):
            if key in ref:
                assert evidence.loc[method, key] == pytest.approx(ref[key], rel=REL, abs=1e-7), (method, key)


def test_within_recovers_truth_between_is_confounded(evidence):
    truth = json.loads((ROOT / "extraction" / "example_truth.json").read_text())
    true_contrast = truth["isolation_effects"]["precipitation"] - truth["isolation_effects"]["UC"]
    row = evidence.loc["precipitation"]
    assert row["within_ci_low"] <= true_contrast <= row["within_ci_high"]
    assert not row["between_ci_low"] <= true_contrast <= row["between_ci_high"]
    assert row["between_estimate"] > row["within_estimate"]  # the confounder favours precipitation
    assert row["difference_pvalue"] < 0.05
    assert row["k_within_studies"] >= truth["n_head_to_head"]


def test_centred_moderators_split_the_dummy():
    frame = pd.DataFrame(
        {"study_id": ["a", "a", "b", "c", "c"], "isolation_method": ["UC", "SEC", "SEC", "UC", "UC"]}
    )
    out, columns = centred_moderators(frame, "UC")
    within, between = columns["SEC"]
    assert np.allclose(out[between], [0.5, 0.5, 1.0, 0.0, 0.0])
    assert np.allclose(out[within] + out[between], (frame["isolation_method"] == "SEC").astype(float))
    single, _ = centred_moderators(frame[frame.study_id != "a"], "UC")[1]["SEC"]
    assert single == ""  # never compared within a study: not identified


def test_columns_and_counts(evidence):
    expected = [
        "within_estimate",
        "within_ci_low",
        "within_ci_high",
        "k_within_studies",
        "between_estimate",
        "between_ci_low",
        "between_ci_high",
        "difference_pvalue",
    ]
    assert all(c in evidence.columns for c in expected)
    heads = FRAME.groupby("study_id")["isolation_method"].agg(lambda m: ("SEC" in set(m)) and len(set(m)) > 1)
    assert evidence.loc["SEC", "k_within_studies"] == heads.sum()


def test_bad_input():
    with pytest.raises(ModelError, match="reference"):
        em.models.isolation_method_evidence(FRAME, reference="ultrasound")
    with pytest.raises(ModelError, match="missing column"):
        em.models.isolation_method_evidence(FRAME.drop(columns="experiment_id"))


def test_isolation_figure(evidence):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from evmeta.plots.isolation_evidence import isolation_evidence_plot

    figure = isolation_evidence_plot(evidence, truth={"SEC": 0.5, "precipitation": -0.5})
    ax = figure.axes[0]
    assert len(ax.get_yticklabels()) == len(evidence)
    assert "precipitation (k within" in ax.get_yticklabels()[-1].get_text()
    host = Figure()
    assert isolation_evidence_plot(evidence, ax=host.add_subplot()) is host


def test_a_refused_fit_names_methods_not_internal_columns():
    """Issue 29: 'between_0' never reaches the user; the message names the method's contrast."""
    from evmeta.models.isolation_evidence import _readable

    columns = {"SEC": ("within_0", "between_0"), "precipitation": ("", "between_1")}
    text = _readable(
        "the design is rank-deficient: between_0 and between_1 are collinear (within_0)", columns
    )
    assert "between_0" not in text and "within_0" not in text and "between_1" not in text
    assert "the between-study SEC contrast" in text and "the within-study SEC contrast" in text
    assert "the between-study precipitation contrast" in text
