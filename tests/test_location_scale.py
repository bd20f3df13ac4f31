"""Location-scale models and the heteroscedasticity test against metafor 3.8.1
(tests/reference/location_scale.json, from tests/reference/location_scale.R on
dat.bangertdrowns2004), plus small-data behaviour and a coverage simulation.

Tolerances: 1e-5 absolute on estimates (location and scale coefficients, tau^2, log
likelihoods, LRT) and 1e-3 relative on SEs (the task's parity bounds). metafor maximizes
with a quasi-Newton optimizer (BFGS, reltol 1e-14) and evmeta with Newton-Raphson to 1e-10,
so the two optima differ by ~5e-6 at most on these data; SEs come from the observed
information in both (metafor by numerical differentiation, evmeta analytically).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.models.frequentist.heterogeneity_test import heterogeneity_test
from evmeta.models.frequentist.location_scale import LocationScaleResult, location_scale_analysis
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "location_scale.json").read_text())
DATA = pd.DataFrame(REF["data"])
EST = dict(atol=1e-5, rtol=0)
SE = dict(rtol=1e-3)
CASES = {
    "categorical": dict(scale="~ meta", mods=None),
    "continuous": dict(scale="~ log_ni", mods="~ imag"),
}


def _fit(case: str, method: str) -> LocationScaleResult:
    return em.meta_analysis(DATA, method=method, **CASES[case])


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize("case", list(CASES))
def test_location_scale_matches_metafor(case, method):
    ref = REF["fits"][f"{case}_{method}"]
    fit = _fit(case, method)
    scale = fit.scale_coef_table()
    np.testing.assert_allclose(fit.coefficients["estimate"], ref["beta"], **EST)
    np.testing.assert_allclose(fit.coefficients["se"], ref["se"], **SE)
    np.testing.assert_allclose(scale["estimate"], ref["alpha"], **EST)
    np.testing.assert_allclose(scale["se"], ref["se_alpha"], **SE)
    np.testing.assert_allclose(scale["ci_low"], ref["ci_lb_alpha"], atol=1e-4)  # 1.96 x (SE diff)
    np.testing.assert_allclose(scale["ci_high"], ref["ci_ub_alpha"], atol=1e-4)
    np.testing.assert_allclose(scale["pvalue"], ref["pval_alpha"], rtol=1e-3)
    np.testing.assert_allclose(fit.va.ravel(order="F"), ref["va"], rtol=2e-3)
    np.testing.assert_allclose(fit.tau2_rows, ref["tau2"], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(fit.log_likelihood, ref["loglik"], **EST)
    np.testing.assert_allclose(fit.log_likelihood_null, ref["loglik_null"], **EST)
    np.testing.assert_allclose(fit.aic, ref["aic"], **EST)
    np.testing.assert_allclose(fit.bic, ref["bic"], **EST)
    np.testing.assert_allclose(fit.lrt, ref["lrt"], **EST)
    np.testing.assert_allclose(fit.lrt_pvalue, ref["lrt_pval"], rtol=1e-4)
    np.testing.assert_allclose(fit.qs, ref["QS"], rtol=2e-3)
    np.testing.assert_allclose(fit.qm, ref["QM"], rtol=1e-4)


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize("case", list(CASES))
def test_tau2_at_and_prediction_intervals_match_metafor(case, method):
    ref = REF["fits"][f"{case}_{method}"]
    fit = _fit(case, method)
    if case == "categorical":
        newscale = pd.DataFrame({"meta": ["no", "yes"]})
        pred = fit.predict(newscale=newscale)
    else:
        newscale = np.array(ref["newscale"])
        pred = fit.predict([0, 1], newscale=newscale)
    at = fit.tau2_at(newscale)
    np.testing.assert_allclose(at["tau2"], ref["tau2_at"], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(at["se"], ref["log_tau2_at_se"], **SE)
    np.testing.assert_allclose(at["ci_low"], ref["tau2_at_lb"], rtol=2e-3)
    np.testing.assert_allclose(at["ci_high"], ref["tau2_at_ub"], rtol=2e-3)
    np.testing.assert_allclose(pred["pred"], ref["pred"], **EST)
    np.testing.assert_allclose(pred["pi_low"], ref["pi_lb"], **EST)
    np.testing.assert_allclose(pred["pi_high"], ref["pi_ub"], **EST)


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_score_and_likelihood_ratio_tests_match_reference(method):
    ref = REF["score"][method]
    test = heterogeneity_test(DATA, by="meta", method=method)
    # The reference score is a central finite difference (h = 1e-4) of metafor's
    # log-likelihood: its truncation error is O(h^2) ~ 1e-8, far inside 1e-5.
    np.testing.assert_allclose(test.score, ref["stat"], rtol=1e-5)
    np.testing.assert_allclose(test.score_pvalue, ref["pval"], rtol=1e-5)
    np.testing.assert_allclose(test.tau2_null, ref["tau2_null"], rtol=1e-6)
    np.testing.assert_allclose(test.lrt, REF["fits"][f"categorical_{method}"]["lrt"], **EST)
    frame = test.to_frame()
    assert list(frame["test"]) == ["likelihood ratio", "score"]
    assert "Score test" in str(test.summary())


def test_heterogeneity_table_gives_tau_and_prediction_interval_per_level():
    fit = _fit("categorical", "REML")
    table = fit.heterogeneity_table().set_index("meta")
    ref = REF["fits"]["categorical_REML"]
    np.testing.assert_allclose(table.loc[["no", "yes"], "tau2"], ref["tau2_at"], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(table.loc[["no", "yes"], "pi_low"], ref["pi_lb"], **EST)
    assert table["k"].sum() == fit.k
    assert set(fit.heterogeneity) == {"tau[no]", "tau[yes]"}


def test_protocol_methods_and_threshold_probability():
    fit = _fit("continuous", "REML")
    assert fit.frozen and fit.k == len(DATA) and fit.level == 0.95
    assert list(fit.coef_table(0.9).index) == ["intercept", "imag"]
    wide, narrow = fit.scale_coef_table(0.95), fit.scale_coef_table(0.5)
    assert (narrow["ci_high"] - narrow["ci_low"] < wide["ci_high"] - wide["ci_low"]).all()
    out = fit.predict([0, 1], newscale=[np.log(50), np.log(200)], threshold=0.5)
    # P(theta_new > c) from the prediction distribution N(pred, se^2 + tau2).
    from scipy import stats

    expected = stats.norm.sf(0.5, out["pred"], np.sqrt(out["se"] ** 2 + out["tau2"]))
    np.testing.assert_allclose(out["p_true_above"], expected, rtol=1e-12)
    frame = fit.to_frame()
    assert set(frame["part"]) == {"location", "scale"}
    assert fit.to_dict()["scale"] == "~ log_ni"
    assert "Location-scale model" in str(fit.summary())
    with pytest.raises(TypeError, match="prob"):  # one word for the level: level=
        fit.predict(prob=0.9)


def test_small_and_degenerate_data_give_sentences():
    tiny = pd.DataFrame({"yi": [0.1, 0.5, 0.3, 0.9], "vi": [0.1, 0.1, 0.2, 0.1], "g": ["a", "b", "b", "b"]})
    with pytest.raises(em.ModelError, match="level 'a' with 1 comparison"):
        em.meta_analysis(tiny, scale="~ g")
    with pytest.raises(em.ModelError, match="at least 4 comparisons"):
        em.meta_analysis(tiny.iloc[1:].assign(g=["a", "b", "b"]).iloc[:3], scale="~ yi")
    with pytest.raises(em.ModelError, match="ML or REML"):
        em.meta_analysis(DATA, scale="~ meta", method="DL")
    with pytest.raises(em.ModelError, match="z tests"):
        em.meta_analysis(DATA, scale="~ meta", test="knha")
    # A level whose effects agree far better than their sampling error: tau^2 -> 0 there.
    flat = pd.DataFrame(
        {
            "yi": [0.50, 0.51, 0.49, 0.50, -1.0, 1.5, 0.2, 2.0],
            "vi": [0.05] * 8,
            "g": ["a"] * 4 + ["b"] * 4,
        }
    )
    fit = em.meta_analysis(flat, mods="~ g", scale="~ g", method="ML")
    assert fit.notes and "boundary" in fit.notes[0]
    assert fit.scale_coef_table()["se"].isna().all()  # both coefficients involve level a
    at = fit.tau2_at(pd.DataFrame({"g": ["a", "b"]}))
    assert np.isnan(at["ci_high"].iloc[0]) and at["tau2"].iloc[0] < 1e-8
    # Level b's tau^2 stays identified; with its own mean, its ML estimate is that of b alone.
    alone = em.meta_analysis(flat[flat["g"] == "b"], method="ML")
    assert at["tau2"].iloc[1] == pytest.approx(alone.tau2, rel=1e-6)
    assert 0 < at["ci_low"].iloc[1] < at["tau2"].iloc[1] < at["ci_high"].iloc[1] < np.inf
    assert np.isfinite(fit.lrt) and fit.lrt > 0
    assert np.all(np.isfinite(fit.coefficients["se"])) and fit.coefficients["se"].iloc[0] > 0


def _coverage(n_sets: int, seed: int, method: str) -> np.ndarray:
    """Share of 95% Wald intervals covering the true (alpha_0, alpha_1); fits whose tau^2
    reached the boundary (interval not reported) count as misses."""
    rng = np.random.default_rng(seed)
    k = 40
    alpha = np.array([np.log(0.1), np.log(3.0)])
    g = np.repeat(["SEC", "UC"], k // 2)
    tau2 = np.exp(alpha[0] + alpha[1] * (g == "UC"))
    hits = np.zeros(2)
    for _ in range(n_sets):
        vi = rng.uniform(0.02, 0.1, k)
        yi = 0.3 + rng.normal(0, np.sqrt(tau2)) + rng.normal(0, np.sqrt(vi))
        fit = location_scale_analysis(pd.DataFrame({"yi": yi, "vi": vi, "g": g}), scale="~ g", method=method)
        table = fit.scale_coef_table()
        hits += ((table["ci_low"] <= alpha) & (alpha <= table["ci_high"])).to_numpy()
    return hits / n_sets


def test_scale_coefficients_are_recovered_fast():
    # 60 data sets: the binomial SD of a 95% coverage is 2.8 points, so 85-100% is a
    # 3.5-SD band; a biased SE (e.g. expected instead of observed information with a
    # wrong factor 2) lands far outside it.
    coverage = _coverage(60, seed=11, method="REML")
    assert np.all((coverage >= 0.85) & (coverage <= 1.0)), coverage


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ML", "REML"])
def test_scale_coefficients_are_recovered(method):
    coverage = _coverage(250, seed=2024, method=method)
    assert np.all((coverage >= 0.90) & (coverage <= 0.99)), coverage
