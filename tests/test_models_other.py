"""Subgroups, multilevel models (with CR2) and bias diagnostics against metafor/clubSandwich.

Tolerances as in test_models_meta.py, except variance components of rma.mv: metafor
maximizes the likelihood with a general-purpose optimizer (nlminb, rel.tol 1e-12 here)
while evmeta uses Fisher scoring to 1e-10, so sigma2 agree to about 1e-8; 1e-6 is used.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import evmeta as em
from evmeta.models.base.protocol import Summary
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "metafor_reference.json").read_text())
BCG = pd.DataFrame(REF["bcg"])
K11 = pd.DataFrame(REF["konstantopoulos"]).assign(yr=lambda d: d["year"] - 2000)
EST = dict(rtol=1e-6, atol=1e-10)
PVAL = dict(rtol=1e-5, atol=1e-12)


def test_subgroup_tests_match_metafor():
    result = em.subgroup_analysis(BCG, "alloc")
    ref = REF["subgroup"]
    for level, group in ref["groups"].items():
        row = result.table.loc[level]
        np.testing.assert_allclose(
            [row["estimate"], row["se"], row["tau2"], row["q"], row["i2"]],
            [group["beta"], group["se"], group["tau2"], group["QE"], group["I2"]],
            **EST,
        )
    np.testing.assert_allclose(result.q_between, ref["Qb_separate"], **EST)
    np.testing.assert_allclose(result.q_between_pvalue, ref["Qb_separate_p"], **PVAL)
    np.testing.assert_allclose(result.q_between_common, ref["Qb_common"], **EST)
    np.testing.assert_allclose(result.q_between_common_pvalue, ref["Qb_common_p"], **PVAL)
    np.testing.assert_allclose(result.tau2_common, ref["tau2_common"], **EST)
    np.testing.assert_allclose(
        [result.q_total, result.q_within], [ref["QE_fixed_total"], ref["QE_fixed_within"]], **EST
    )
    assert result.q_between_fixed == pytest.approx(ref["QE_fixed_total"] - ref["QE_fixed_within"])
    assert len(result.to_frame()) == 3


def test_subgroup_summary_is_the_common_summary():
    result = em.subgroup_analysis(BCG, "alloc")
    summary = result.summary()
    assert isinstance(summary, Summary) and summary.level == 0.95
    assert list(summary.table.columns[:4]) == ["estimate", "se", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(summary.table[result.table.columns], result.table)
    text = str(summary)
    assert text.startswith("Subgroup analysis by alloc") and "Q(2) = 1.861" in text and "systematic" in text
    narrow = result.summary(0.5).table
    for level, fit in result.fits.items():
        row = fit.coef_table(0.5).iloc[0]
        np.testing.assert_allclose(narrow.loc[level, ["ci_low", "ci_high"]], row[["ci_low", "ci_high"]])
        assert narrow.loc[level, "pi_low"] > result.table.loc[level, "pi_low"]
    assert "Partition of Q" in str(result)  # print(result) prints the summary


def test_adjust_pvalues():
    np.testing.assert_allclose(em.models.adjust_pvalues([0.01, 0.04, 0.5]), [0.03, 0.12, 1.0])
    np.testing.assert_allclose(em.models.adjust_pvalues([0.01, 0.04, 0.5], "holm"), [0.03, 0.08, 0.5])


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_three_level_matches_rma_mv(method):
    fit = em.multilevel_meta_analysis(K11, random=["district", "school"], method=method)
    ref = REF[f"threelevel_{method}"]
    np.testing.assert_allclose(fit.sigma2, ref["sigma2"], **EST)
    for ours, theirs in [
        ("estimate", "beta"),
        ("se", "se"),
        ("ci_low", "ci_lb"),
        ("ci_high", "ci_ub"),
        ("log_likelihood", "loglik"),
        ("aic", "aic"),
        ("bic", "bic"),
        ("q", "QE"),
        ("pi_low", "pi_lb"),
        ("pi_high", "pi_ub"),
    ]:
        np.testing.assert_allclose(getattr(fit, ours), ref[theirs], **EST, err_msg=ours)
    np.testing.assert_allclose(fit.pvalue, ref["pval"], **PVAL)
    np.testing.assert_allclose(fit.i2_levels, ref["I2"], **EST)
    assert fit.n_groups == [11, 56]


def test_three_level_meta_regression_and_cr2():
    ref = REF["threelevel_mods"]
    fit = em.multilevel_meta_analysis(K11, random=["district", "school"], mods="~ yr")
    np.testing.assert_allclose(fit.coefficients["estimate"], ref["beta"], **EST)
    np.testing.assert_allclose(fit.coefficients["se"], ref["se"], **EST)
    np.testing.assert_allclose(fit.sigma2, ref["sigma2"], **EST)
    np.testing.assert_allclose([fit.qm, fit.qm_pvalue], [ref["QM"], ref["QMp"]], **EST)
    t_fit = em.multilevel_meta_analysis(K11, random=["district", "school"], mods="~ yr", test="t")
    np.testing.assert_allclose(t_fit.coefficients["pvalue"], ref["knha_pval"], **PVAL)
    robust = em.multilevel_meta_analysis(K11, random=["district", "school"], mods="~ yr", robust=True)
    np.testing.assert_allclose(robust.coefficients["se"], ref["robust_se"], **EST)
    np.testing.assert_allclose(robust.coefficients["df"], ref["robust_df"], **EST)
    np.testing.assert_allclose(robust.coefficients["pvalue"], ref["robust_pval"], **PVAL)


def test_multilevel_with_known_covariance_equals_diagonal_case():
    # A diagonal V reproduces the vi fit; a shared-control covariance changes it.
    V = np.diag(K11["vi"].to_numpy())
    a = em.multilevel_meta_analysis(K11, random=["district", "school"], V=V)
    b = em.multilevel_meta_analysis(K11, random=["district", "school"])
    np.testing.assert_allclose(a.sigma2, b.sigma2, rtol=1e-8)
    same_district = K11["district"].to_numpy()[:, None] == K11["district"].to_numpy()[None, :]
    V2 = V + 0.5 * K11["vi"].min() * same_district * (1 - np.eye(len(K11)))
    c = em.multilevel_meta_analysis(K11, random=["district", "school"], V=V2)
    assert c.sigma2[0] < b.sigma2[0]
    with pytest.raises(em.ModelError, match="block diagonal"):
        em.multilevel_meta_analysis(K11, random=["district", "school"], V=V + 0.001)
    with pytest.raises(em.ModelError, match="positive definite"):
        em.multilevel_meta_analysis(
            K11, random=["district", "school"], V=V + 10 * same_district * (1 - np.eye(len(K11)))
        )


def test_multilevel_equals_two_level_model_with_one_level():
    """One random level with one row per group is the ordinary random-effects model."""
    frame = BCG.assign(study=np.arange(len(BCG)))
    ml = em.multilevel_meta_analysis(frame, random=["study"])
    uni = em.meta_analysis(BCG)
    assert ml.sigma2[0] == pytest.approx(uni.tau2, rel=1e-8)
    assert ml.estimate == pytest.approx(uni.estimate, rel=1e-8)
    assert ml.log_likelihood == pytest.approx(uni.log_likelihood, rel=1e-8)


def test_regtest_matches_metafor():
    fit = em.meta_analysis(BCG)
    ref = REF["regtest"]
    egger = em.models.egger_test(fit)
    np.testing.assert_allclose([egger.stat, egger.limit_estimate], [ref["zval"], ref["est"]], **EST)
    np.testing.assert_allclose(egger.pvalue, ref["pval"], **PVAL)
    classic = em.models.egger_test(fit, model="lm")
    np.testing.assert_allclose([classic.stat, classic.limit_estimate], [ref["lm_zval"], ref["lm_est"]], **EST)
    np.testing.assert_allclose(classic.pvalue, ref["lm_pval"], **PVAL)
    assert classic.df == ref["lm_dfs"]
    by_n = em.models.egger_test(fit, predictor="sqrt_inv_n", ni="ni")
    np.testing.assert_allclose([by_n.stat, by_n.limit_estimate], [ref["n_zval"], ref["n_est"]], **EST)


@pytest.mark.parametrize("estimator", ["L0", "R0"])
def test_trim_and_fill_matches_metafor(estimator):
    fit = em.meta_analysis(pd.DataFrame(REF["hackshaw"]))
    result = em.models.trim_and_fill(fit, estimator)
    ref = REF[f"trimfill_{estimator}"]
    assert (result.k0, result.side) == (ref["k0"], ref["side"])
    np.testing.assert_allclose(
        [result.estimate, result.se, result.ci_low, result.ci_high, result.tau2],
        [ref["beta"], ref["se"], ref["ci_lb"], ref["ci_ub"], ref["tau2"]],
        **EST,
    )
    np.testing.assert_allclose(np.sort(result.filled["yi"]), np.sort(ref["filled_yi"]), **EST)
    bcg = em.models.trim_and_fill(em.meta_analysis(BCG))
    assert (bcg.k0, bcg.side) == (REF["trimfill_bcg"]["k0"], REF["trimfill_bcg"]["side"])
    np.testing.assert_allclose(bcg.estimate, REF["trimfill_bcg"]["beta"], **EST)


def test_small_study_results_follow_the_protocol():
    """Egger, trim-and-fill and PET-PEESE: summary() is the common Summary, its table repeats
    the stored estimates and intervals, level narrows them, to_frame() has its rows."""
    fit = em.meta_analysis(BCG, test="knha")
    egger, filled, pp = em.models.egger_test(fit), em.models.trim_and_fill(fit), em.models.pet_peese(fit)
    for result, row, stored in [
        (egger, "limit estimate", (egger.limit_estimate, egger.limit_ci_low, egger.limit_ci_high)),
        (filled, "intercept", (filled.estimate, filled.ci_low, filled.ci_high)),
        (pp, pp.selected, (pp.estimate, pp.ci_low, pp.ci_high)),
    ]:
        summary = result.summary()
        assert isinstance(summary, Summary)
        assert list(summary.table.columns[:4]) == ["estimate", "se", "ci_low", "ci_high"]
        columns = ["estimate", "ci_low", "ci_high"]
        np.testing.assert_allclose(summary.table.loc[row, columns].to_numpy(float), stored, rtol=1e-10)
        narrow = result.summary(level=0.5).table.loc[row]
        assert stored[1] < narrow["ci_low"] < stored[0] < narrow["ci_high"] < stored[2]
        assert len(result.to_frame()) == len(summary.table)
    slope = egger.summary().table.loc["sei"]
    assert (slope["stat"], slope["pvalue"]) == (pytest.approx(egger.stat), pytest.approx(egger.pvalue))
    assert str(egger.summary()).startswith("Regression test for funnel plot asymmetry")


def test_cumulative_and_pet_peese():
    fit = em.meta_analysis(BCG)
    cumulative = em.models.cumulative_meta_analysis(fit, order="year")
    ref = REF["cumulative"]
    np.testing.assert_allclose(cumulative["estimate"], ref["estimate"], **EST)
    np.testing.assert_allclose(cumulative["tau2"], ref["tau2"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(cumulative["ci_low"], ref["ci_lb"], **EST)
    result = em.models.pet_peese(fit)
    classic = em.models.egger_test(fit, model="lm")
    # PET is the classic Egger regression: its intercept is the lm limit estimate.
    assert result.pet_estimate == pytest.approx(classic.limit_estimate, rel=1e-10)
    # PET p-value from an independent weighted least-squares fit (t with k - 2 df).
    y, v = BCG["yi"].to_numpy(), BCG["vi"].to_numpy()
    X = np.column_stack([np.ones_like(v), np.sqrt(v)])
    w = 1 / v
    xtwx_inv = np.linalg.inv((X * w[:, None]).T @ X)
    beta = xtwx_inv @ ((X * w[:, None]).T @ y)
    sigma2 = np.sum(w * (y - X @ beta) ** 2) / (len(y) - 2)
    t = beta[0] / np.sqrt(sigma2 * xtwx_inv[0, 0])
    pvalue = 2 * stats.t.sf(abs(t), len(y) - 2)
    assert result.pet_pvalue == pytest.approx(pvalue, rel=1e-10)
    expected = "PEESE" if pvalue < 0.10 else "PET"
    assert result.selected == expected
    assert result.estimate == (result.peese_estimate if expected == "PEESE" else result.pet_estimate)
