"""Multilevel Egger test and PET-PEESE (evmeta.models.bias.multilevel_small_study) against
metafor's rma.mv with the precision term as moderator (tests/reference/multilevel_small_study.json
from tests/reference/multilevel_small_study.R on dat.konstantopoulos2011).

Tolerance: 1e-5 relative on coefficients and SEs; metafor stops at rel.tol 1e-10 and the
variance components agree to ~1e-7, far inside it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.models.bias.multilevel_small_study import effective_sample_size, multilevel_small_study
from evmeta.results import AnalysisModels
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "multilevel_small_study.json").read_text())
K11 = pd.DataFrame(
    json.loads((ROOT / "tests" / "reference" / "multilevel_heterogeneity.json").read_text())["data"]
)
RANDOM = ["district", "school"]


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_pet_and_peese_match_rma_mv(method):
    ref = REF[method]
    fit = em.multilevel_meta_analysis(K11, random=RANDOM, method=method)
    result = multilevel_small_study(fit, predictor="sei")
    np.testing.assert_allclose(result.pet.coefficients["estimate"], ref["pet_beta"], rtol=1e-5)
    np.testing.assert_allclose(result.pet.coefficients["se"], ref["pet_se"], rtol=1e-5)
    np.testing.assert_allclose(result.pet.sigma2, ref["pet_sigma2"], rtol=1e-5)
    np.testing.assert_allclose(result.peese.coefficients["estimate"], ref["peese_beta"], rtol=1e-5)
    np.testing.assert_allclose(result.slope_pvalue, ref["pet_pval"][1], rtol=1e-5)
    # PET's intercept p = 0.026 < 0.10, so PEESE's intercept is the bias-corrected mean.
    assert result.selected == "PEESE"
    assert result.estimate == pytest.approx(ref["peese_beta"][0], rel=1e-5)
    assert result.ci_low == pytest.approx(ref["peese_ci_lb"][0], rel=1e-5)
    assert result.ci_high == pytest.approx(ref["peese_ci_ub"][0], rel=1e-5)
    assert "Multilevel Egger test" in str(result.summary())
    assert result.to_frame()["selected"].iloc[0] == "PEESE"


def test_sqrt_inv_n_uses_the_effective_sample_size():
    frame = K11.assign(n_treat=20 + np.arange(len(K11)) % 7, n_control=15 + np.arange(len(K11)) % 5)
    n_tilde = effective_sample_size(frame)
    np.testing.assert_allclose(
        n_tilde, frame["n_treat"] * frame["n_control"] / (frame["n_treat"] + frame["n_control"])
    )
    fit = em.multilevel_meta_analysis(frame, random=RANDOM)
    result = multilevel_small_study(fit, predictor="sqrt_inv_n")
    direct = em.multilevel_meta_analysis(frame.assign(p=np.sqrt(1 / n_tilde)), random=RANDOM, mods="~ p")
    assert result.pet_estimate == pytest.approx(direct.coefficients.loc["intercept", "estimate"], rel=1e-10)
    assert result.slope == pytest.approx(direct.coefficients.loc["p", "estimate"], rel=1e-10)


def test_moderators_are_kept_and_errors_are_sentences():
    frame = K11.assign(yr=K11["year"] - 2000)
    fit = em.multilevel_meta_analysis(frame, random=RANDOM, mods="~ yr")
    result = multilevel_small_study(fit, predictor="sei")
    assert list(result.pet.coefficients.index) == ["intercept", "yr", "pet_precision_term"]
    with pytest.raises(em.ModelError, match="n_treat and n_control"):
        multilevel_small_study(fit, predictor="sqrt_inv_n")
    with pytest.raises(em.ModelError, match="predictor must be"):
        multilevel_small_study(fit, predictor="ni")


def test_bias_table_gets_the_multilevel_rows_and_a_note_when_n_is_missing():
    from types import SimpleNamespace

    from evmeta.analysis.multilevel_bias import extend_bias_table
    from evmeta.run_tables import RunTables

    fit = em.multilevel_meta_analysis(K11, random=RANDOM)
    run = SimpleNamespace(
        models=AnalysisModels(multilevel=fit), tables=RunTables(bias=pd.DataFrame([{"test": "Egger"}])), notes=[]
    )
    extend_bias_table(run)
    table = run.tables.bias
    assert len(table) == 2 and table["test"].iloc[1].startswith("Multilevel Egger / PET-PEESE, predictor sei")
    assert table["estimate"].iloc[1] == pytest.approx(REF["REML"]["peese_beta"][0], rel=1e-5)
    assert any("sqrt_inv_n" in note and "n_treat" in note for note in run.notes)
