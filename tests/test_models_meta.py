"""meta_analysis against metafor (tests/reference/metafor_reference.json).

Tolerances: relative 1e-6 on estimates, SEs and tau^2, 1e-5 on p-values. Both programs
solve the same equations; the reference was produced with metafor's iterative
thresholds at 1e-12, so the remaining differences are floating-point and root-finding
noise far below 1e-6. p-values get 1e-5 because small tail probabilities amplify
relative differences in their statistics.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import evmeta as em
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "metafor_reference.json").read_text())
BCG = pd.DataFrame(REF["bcg"])
EST = dict(rtol=1e-6, atol=1e-10)
PVAL = dict(rtol=1e-5, atol=1e-12)
METHODS = ["EE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB"]


def _check(fit, ref, intercept_only):
    co = fit.coefficients
    np.testing.assert_allclose(co["estimate"], ref["beta"], **EST)
    np.testing.assert_allclose(co["se"], ref["se"], **EST)
    np.testing.assert_allclose(co["stat"], ref["zval"], **EST)
    np.testing.assert_allclose(co["ci_low"], ref["ci_lb"], **EST)
    np.testing.assert_allclose(co["ci_high"], ref["ci_ub"], **EST)
    np.testing.assert_allclose(co["pvalue"], ref["pval"], **PVAL)
    np.testing.assert_allclose(fit.tau2, ref["tau2"], **EST)
    if ref["se_tau2"] is not None:
        np.testing.assert_allclose(fit.tau2_se, ref["se_tau2"], **EST)
    for ours, theirs in [
        ("i2", "I2"),
        ("h2", "H2"),
        ("q", "QE"),
        ("qm", "QM"),
        ("log_likelihood", "loglik"),
        ("aic", "aic"),
        ("bic", "bic"),
    ]:
        np.testing.assert_allclose(getattr(fit, ours), ref[theirs], **EST, err_msg=ours)
    np.testing.assert_allclose(fit.q_pvalue, ref["QEp"], **PVAL)
    np.testing.assert_allclose(fit.qm_pvalue, ref["QMp"], **PVAL)
    np.testing.assert_allclose(fit.weights, ref["weights"], **EST)
    if ref["R2"] is not None:
        np.testing.assert_allclose(fit.r2, ref["R2"], rtol=1e-6, atol=1e-8)
    if intercept_only and ref["pi_lb"] is not None:  # metafor gives no prediction interval for EE models
        np.testing.assert_allclose([fit.pi_low, fit.pi_high], [ref["pi_lb"], ref["pi_ub"]], **EST)
    if intercept_only and ref["pi_lb"] is None:
        assert (fit.pi_low, fit.pi_high) == pytest.approx((fit.ci_low, fit.ci_high))


@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("method", METHODS)
def test_intercept_only_matches_metafor(method, test):
    fit = em.meta_analysis(BCG, method=method, test=test)
    _check(fit, REF["intercept"][f"{method}_{test}"], intercept_only=True)
    assert fit.k == 13 and fit.q_df == 12


@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("kind", "mods"), [("cont", "~ ablat + year"), ("cat", "~ alloc")])
def test_meta_regression_matches_metafor(kind, mods, method, test):
    fit = em.meta_analysis(BCG, mods=mods, method=method, test=test)
    _check(fit, REF["metareg"][f"{kind}_{method}_{test}"], intercept_only=False)
    if test == "knha":
        assert fit.qm_df == (fit.p - 1, fit.k - fit.p)


def test_categorical_contrasts_and_order():
    fit = em.meta_analysis(BCG, mods="~ alloc")
    # Reference level is the first sorted level ("alternate"); intercept first.
    assert list(fit.coefficients.index) == ["intercept", "alloc[T.random]", "alloc[T.systematic]"]
    ordered = BCG.assign(alloc=pd.Categorical(BCG["alloc"], categories=["random", "alternate", "systematic"]))
    refit = em.meta_analysis(ordered, mods="~ alloc")
    assert list(refit.coefficients.index) == ["intercept", "alloc[T.alternate]", "alloc[T.systematic]"]
    assert refit.tau2 == pytest.approx(fit.tau2, rel=1e-9)


def test_predict_with_newmods():
    fit = em.meta_analysis(BCG, mods="~ ablat + year")
    ref = REF["predict_newmods"]
    got = fit.predict([[20, 1960], [50, 1975]])
    for ours, theirs in [
        ("pred", "pred"),
        ("se", "se"),
        ("ci_low", "ci_lb"),
        ("ci_high", "ci_ub"),
        ("pi_low", "pi_lb"),
        ("pi_high", "pi_ub"),
    ]:
        np.testing.assert_allclose(got[ours], ref[theirs], **EST)
    by_frame = fit.predict(pd.DataFrame({"ablat": [20, 50], "year": [1960, 1975]}))
    np.testing.assert_allclose(by_frame["pred"], ref["pred"], **EST)


def test_q_profile_interval():
    fit = em.meta_analysis(BCG)
    ci = fit.confint()
    ref = REF["confint_tau2"]
    for ours, theirs in [("tau2", "tau2"), ("tau", "tau"), ("i2", "I2"), ("h2", "H2")]:
        np.testing.assert_allclose(ci.loc[ours].to_numpy(dtype=float), ref[theirs], **EST)
    mods = em.meta_analysis(BCG, mods="~ ablat").confint()
    np.testing.assert_allclose(
        mods.loc["tau2"].to_numpy(dtype=float), REF["confint_tau2_mods"]["tau2"], **EST
    )


def test_leave_one_out_and_influence():
    fit = em.meta_analysis(BCG)
    loo = fit.leave_one_out()
    ref = REF["leave1out"]
    for ours, theirs in [
        ("estimate", "estimate"),
        ("se", "se"),
        ("ci_low", "ci_lb"),
        ("q", "Q"),
        ("tau2", "tau2"),
        ("i2", "I2"),
    ]:
        np.testing.assert_allclose(loo[ours], ref[theirs], **EST)
    np.testing.assert_allclose(loo["pvalue"], ref["pval"], **PVAL)
    inf = fit.influence()
    ref = REF["influence"]
    for ours, theirs in [
        ("rstudent", "rstudent"),
        ("dffits", "dffits"),
        ("cook_d", "cook_d"),
        ("cov_r", "cov_r"),
        ("tau2_del", "tau2_del"),
        ("q_del", "QE_del"),
        ("hat", "hat"),
        ("weight", "weight"),
    ]:
        np.testing.assert_allclose(inf[ours], ref[theirs], **EST, err_msg=ours)
    inf = em.meta_analysis(BCG, mods="~ ablat").influence()
    for ours, theirs in [
        ("rstudent", "rstudent"),
        ("dffits", "dffits"),
        ("cook_d", "cook_d"),
        ("cov_r", "cov_r"),
        ("hat", "hat"),
    ]:
        np.testing.assert_allclose(inf[ours], REF["influence_mods"][theirs], **EST, err_msg=ours)
    with pytest.raises(em.ModelError, match="without moderators"):
        em.meta_analysis(BCG, mods="~ ablat").leave_one_out()


def test_statsmodels_combine_effects_cross_check():
    """DL and PM against statsmodels' independent implementation."""
    from statsmodels.stats.meta_analysis import combine_effects

    for method, sm_method in [("DL", "dl"), ("PM", "iterated")]:
        fit = em.meta_analysis(BCG, method=method)
        other = combine_effects(BCG["yi"].to_numpy(), BCG["vi"].to_numpy(), method_re=sm_method)
        assert fit.estimate == pytest.approx(other.mean_effect_re, rel=1e-6)
        assert fit.tau2 == pytest.approx(other.tau2, rel=1e-5)


def test_arrays_and_comparisons_inputs():
    a = em.meta_analysis(yi=BCG["yi"].to_numpy(), vi=BCG["vi"].to_numpy())
    b = em.meta_analysis(BCG, "yi", "vi")
    assert a.estimate == b.estimate and a.fingerprint == b.fingerprint
    book = em.read_extraction(ROOT / "extraction" / "example.xlsx")
    comparisons = em.build_comparisons(book)
    fit = em.meta_analysis(comparisons, mods="~ isolation_method + quality_score")
    assert fit.k == len(comparisons.table) and fit.measure == "SMD"
    assert fit.coefficients.index[-1] == "quality_score"


def test_errors_are_model_errors_naming_rows():
    with pytest.raises(em.ModelError, match="at least 2"):
        em.meta_analysis(yi=[0.1], vi=[0.1])
    bad = BCG.copy()
    bad.loc[3, "vi"] = -1
    with pytest.raises(em.ModelError, match=r"positive.*row\(s\): 3"):
        em.meta_analysis(bad)
    bad.loc[3, "vi"] = np.nan
    with pytest.raises(em.ModelError, match="missing"):
        em.meta_analysis(bad)
    with pytest.raises(em.ModelError, match="single value"):
        em.meta_analysis(BCG.assign(one="x"), mods="~ one")
    with pytest.raises(em.ModelError, match="rank deficient"):
        em.meta_analysis(BCG.assign(lat2=BCG["ablat"] * 2), mods="~ ablat + lat2")
    with pytest.raises(em.ModelError, match="unknown moderator"):
        em.meta_analysis(BCG, mods="~ nothing")
    with pytest.raises(em.ModelError, match="valid methods"):
        em.meta_analysis(BCG, method="XX")


def test_result_surface():
    fit = em.meta_analysis(BCG, mods="~ ablat")
    text = str(fit.summary())
    assert "tau^2" in text and "ablat" in text
    frame = fit.to_frame()
    assert list(frame["term"]) == ["intercept", "ablat"] and (frame["k"] == 13).all()
    as_dict = fit.to_dict()
    assert as_dict["coefficients"][1]["term"] == "ablat" and "numpy" in as_dict["versions"]
    json.dumps(as_dict)


def test_knha_uses_t_distribution():
    fit = em.meta_analysis(BCG, test="knha")
    crit = stats.t.ppf(0.975, fit.k - 1)
    assert fit.ci_high - fit.estimate == pytest.approx(crit * fit.se)


def test_fast_design_path_equals_formulaic():
    """The fast path for ``~ a + b`` builds exactly formulaic's matrix, names and terms."""
    from evmeta.models.base.design import _formulaic_design, design_matrix

    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=30),
            "n": rng.integers(0, 5, size=30),
            "g": rng.choice(["UC", "SEC", "TFF+SEC", "precipitation"], size=30),
            "c": pd.Categorical(rng.choice(["b", "a", "c"], size=30), categories=["c", "b", "a"]),
        }
    )
    for formula in ["~ x", "~ g", "~ x + g + c + n", "~ c + x"]:
        X, names, terms, spec = design_matrix(frame, formula)
        assert type(spec).__name__ == "SimpleSpec", formula  # the fast path was taken
        X_ref, names_ref, terms_ref, spec_ref = _formulaic_design(formula, frame)
        assert names == names_ref and terms == terms_ref, formula
        np.testing.assert_array_equal(X, X_ref)
        new = frame.iloc[[3, 0, 7]]
        np.testing.assert_array_equal(spec.get_model_matrix(new), np.asarray(spec_ref.get_model_matrix(new)))
    # Anything else goes to formulaic.
    _, names, _, spec = design_matrix(frame, "~ x + I(x**2)")
    assert type(spec).__name__ != "SimpleSpec" and names[-1] == "I(x ** 2)"
    fit = em.meta_analysis(BCG.assign(g=np.where(BCG["ablat"] > 30, "far", "near")), mods="~ g")
    with pytest.raises(em.ModelError, match="unknown level"):
        fit.predict(pd.DataFrame({"g": ["middle"]}))
