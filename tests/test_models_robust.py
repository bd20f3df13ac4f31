"""Cluster-robust inference (CR2, Satterthwaite df, HTZ) against clubSandwich, and the
result protocol: immutable results that refit on their stored inputs.

References: ``htz_threelevel`` and ``htz_bcg`` in tests/reference/metafor_reference.json,
written by tests/reference/metafor_reference.R with clubSandwich's ``Wald_test(test =
"HTZ")``, ``coef_test(test = "Satterthwaite")`` and ``linear_contrast``. Tolerance 1e-6
relative (sigma2 from rma.mv agree to ~1e-8, see test_models_other.py).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import evmeta as em
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "metafor_reference.json").read_text())
BCG = pd.DataFrame(REF["bcg"])
K11 = pd.DataFrame(REF["konstantopoulos"]).assign(y2=lambda d: d["year"] - 2000)
TOL = dict(rtol=1e-6, atol=1e-10)


def test_htz_omnibus_test_matches_clubsandwich_three_level():
    ref = REF["htz_threelevel"]
    fit = em.multilevel_meta_analysis(K11, random=["district", "school"], mods="~ y2 + I(y2**2)").robust()
    np.testing.assert_allclose(
        [fit.qm, fit.qm_df[1], fit.qm_pvalue], [ref["F"], ref["df_denom"], ref["p"]], **TOL
    )
    assert fit.qm_df[0] == ref["df_num"] == 2
    np.testing.assert_allclose(fit.coefficients["se"], ref["se"], **TOL)
    np.testing.assert_allclose(fit.coefficients["df"], ref["df"], **TOL)
    one = em.multilevel_meta_analysis(K11, random=["district", "school"], mods="~ y2", robust=True)
    np.testing.assert_allclose(
        [one.qm, one.qm_df[1], one.qm_pvalue], [ref["F1"], ref["df_denom1"], ref["p1"]], **TOL
    )


def test_htz_and_cr2_match_clubsandwich_for_rma_uni():
    ref = REF["htz_bcg"]
    fit = em.meta_analysis(BCG, mods="~ ablat + year").robust()
    np.testing.assert_allclose(
        [fit.qm, fit.qm_df[1], fit.qm_pvalue], [ref["F"], ref["df_denom"], ref["p"]], **TOL
    )
    np.testing.assert_allclose(fit.coefficients["se"], ref["se"], **TOL)
    np.testing.assert_allclose(fit.coefficients["df"], ref["df"], **TOL)
    np.testing.assert_allclose(fit.coefficients["pvalue"], ref["pval"], rtol=1e-5)


def test_robust_predict_uses_cr2_and_satterthwaite_df():
    """Regression: predict() of a robust fit used the normal and the model-based covariance."""
    ref = REF["htz_threelevel"]
    model = em.multilevel_meta_analysis(K11, random=["district", "school"], mods="~ y2 + I(y2**2)")
    robust = model.robust()
    pred = robust.predict(ref["newx"], level=0.9)
    np.testing.assert_allclose(pred["se"], ref["lc_se"], **TOL)
    np.testing.assert_allclose(pred["df"], ref["lc_df"], **TOL)
    np.testing.assert_allclose(pred["ci_low"], ref["lc_lower"], **TOL)
    np.testing.assert_allclose(pred["ci_high"], ref["lc_upper"], **TOL)
    # The robust intervals are wider than the model-based normal ones would be with the same SE.
    normal = pred["pred"] + stats.norm.ppf(0.95) * pred["se"]
    assert (pred["ci_high"] > normal + 1e-3).all()
    # robust() returns a new result: the model-based fit is unchanged.
    assert model.robust_cov is None and model.inference == "model"
    # Robustness is an inference setting, separate from the test.
    assert robust.test == "z" and robust.inference == "CR2" and robust.is_robust
    assert "df" not in model.predict(ref["newx"]).columns


def test_results_are_immutable():
    fit = em.meta_analysis(BCG)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.estimate = 0.0
    bayes = em.bayesian_meta_analysis(BCG, seed=1, draws=200, chains=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bayes.seed = 2


def test_refit_uses_the_stored_inputs_not_the_frame_columns():
    """Regression: arrays passed as yi/vi were lost and refit() read the frame's own yi."""
    frame = BCG.assign(yi=BCG["yi"] + 1.0)  # a decoy column named yi
    fit = em.meta_analysis(frame, BCG["yi"].to_numpy(), BCG["vi"].to_numpy())
    reference = em.meta_analysis(BCG)
    assert fit.estimate == pytest.approx(reference.estimate, abs=1e-12)
    assert fit.refit().estimate == pytest.approx(reference.estimate, abs=1e-12)
    assert fit.refit(method="DL").estimate == pytest.approx(
        em.meta_analysis(BCG, method="DL").estimate, abs=1e-12
    )
    loo = fit.leave_one_out()
    np.testing.assert_allclose(loo["estimate"], reference.leave_one_out()["estimate"], atol=1e-12)
    keep = np.arange(len(BCG)) < 8
    part = fit.refit(rows=keep)
    assert part.estimate == pytest.approx(em.meta_analysis(BCG[keep]).estimate, abs=1e-12)
    with pytest.raises(em.ModelError, match="fitted from arrays"):
        fit.refit(BCG)
    assert np.array_equal(fit.yi, BCG["yi"].to_numpy()) and fit.X.shape == (13, 1)
    assert fit.method == "REML" and fit.test == "z" and fit.data is not None


def test_bayes_refit_and_prior_sensitivity_use_the_stored_inputs():
    frame = BCG.assign(yi=BCG["yi"] + 1.0)
    fit = em.bayesian_meta_analysis(frame, BCG["yi"].to_numpy(), BCG["vi"].to_numpy(), seed=1)
    reference = em.bayesian_meta_analysis(BCG, seed=1)
    base = reference.summary().table["estimate"]
    np.testing.assert_allclose(fit.refit().summary().table["estimate"], base, atol=1e-12)
    table = fit.prior_sensitivity({"same": {}})
    same = table[table["alternative"] == "same"].set_index("parameter")["estimate"]
    np.testing.assert_allclose(same.to_numpy(), base.to_numpy(), atol=1e-12)


def test_summary_protocol_is_the_same_for_both_engines():
    freq = em.meta_analysis(BCG, mods="~ ablat")
    bayes = em.bayesian_meta_analysis(BCG, mods="~ ablat", seed=1)
    for fit, spread in ((freq, "se"), (bayes, "posterior_sd")):  # a posterior SD says so
        summary = fit.summary(0.9)
        assert list(summary.table.columns[:4]) == ["estimate", spread, "ci_low", "ci_high"]
        assert list(summary.table.index) == ["intercept", "ablat", "tau[comparison]"]
        assert "ablat" in str(summary)
        assert list(fit.coef_table().index) == ["intercept", "ablat"]
        prediction = fit.predict(newmods=[[10.0]], level=0.8)
        assert list(prediction.columns[:6]) == ["pred", spread, "ci_low", "ci_high", "pi_low", "pi_high"]
        assert fit.summary(90).table.equals(summary.table)  # a percent reads as 0.90
    # A narrower level gives a narrower interval.
    wide, narrow = freq.coef_table(0.95).loc["ablat"], freq.coef_table(0.5).loc["ablat"]
    assert narrow["ci_high"] - narrow["ci_low"] < wide["ci_high"] - wide["ci_low"]
    z = stats.norm.ppf(0.75)
    assert narrow["ci_high"] == pytest.approx(narrow["estimate"] + z * narrow["se"], rel=1e-12)
    b90 = bayes.coef_table(0.9).loc["ablat"]
    b95 = bayes.coef_table(level=0.95).loc["ablat"]
    assert b95["ci_low"] < b90["ci_low"] < b90["ci_high"] < b95["ci_high"]
    # Heterogeneity names agree across summary, priors and InferenceData (tau by level).
    assert "tau[comparison]" in bayes.priors
    assert list(bayes.idata.posterior["tau"].coords["level"].values) == ["comparison"]


def test_inference_data_labels_random_effects_by_group_ids():
    fit = em.bayesian_meta_analysis(K11, random=["district", "school"], seed=1, draws=100, chains=2)
    assert fit.tau_names == ["tau[district]", "tau[school]"]
    assert list(fit.summary().table.index[-2:]) == fit.tau_names
    effects = fit.idata.posterior["u_district"]
    assert effects.dims == ("chain", "draw", "district")
    assert list(effects.coords["district"].values) == [str(d) for d in pd.unique(K11["district"])]
