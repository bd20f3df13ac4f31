"""Multilevel I^2 (ratio and matrix methods), CVH, M and marginal/conditional R^2 against
values computed in R from metafor's rma.mv fits by the published formulas
(tests/reference/multilevel_heterogeneity.json, from tests/reference/multilevel_heterogeneity.R
on dat.konstantopoulos2011).

Tolerances: the variance components agree with metafor to ~1e-7 relative (metafor's
optimizer stops at rel.tol 1e-10), and I^2 is a smooth function of them, so 1e-4 absolute
on I^2 in percent and 1e-5 relative on CVH, M and R^2.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.models.frequentist.multilevel_heterogeneity import fit_components
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "multilevel_heterogeneity.json").read_text())
DATA = pd.DataFrame(REF["data"]).assign(yr=lambda d: d["year"] - 2000)
RANDOM = ["district", "school"]


def _fit(key: str, method: str):
    mods = "~ yr" if key == "year" else None
    return em.multilevel_meta_analysis(DATA, random=RANDOM, mods=mods, method=method)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("key", ["intercept", "year"])
def test_i2_both_methods_cvh_and_m_match_reference(key, method):
    ref = REF[f"{key}_{method}"]
    fit = _fit(key, method)
    for name in ("ratio", "matrix"):
        table = em.models.multilevel_i2(fit, method=name)
        assert list(table["level"]) == [*RANDOM, "total"]
        expected = [*ref[f"i2_{name}"], ref[f"i2_{name}_total"]]
        np.testing.assert_allclose(table["i2"], expected, atol=1e-4)
    table = em.models.multilevel_i2(fit)
    np.testing.assert_allclose(table["cvh"], [*ref["cvh"], ref["cvh_total"]], rtol=1e-5)
    np.testing.assert_allclose(table["m"], [*ref["m"], ref["m_total"]], rtol=1e-5)
    # The matrix method is the I^2 the multilevel fit already reports.
    np.testing.assert_allclose(
        em.models.multilevel_i2(fit, "matrix")["i2"].iloc[:-1], fit.i2_levels, rtol=1e-10
    )


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_marginal_and_conditional_r2_match_reference(method):
    ref = REF[f"year_{method}"]
    r2 = em.models.multilevel_r2(_fit("year", method))
    np.testing.assert_allclose(r2["r2_marginal"], ref["r2_marginal"], rtol=1e-5)
    np.testing.assert_allclose(r2["r2_conditional"], ref["r2_conditional"], rtol=1e-5)
    table = _fit("year", method).heterogeneity_table()
    total = table.set_index("level").loc["total"]
    np.testing.assert_allclose(total["r2_marginal"], ref["r2_marginal"], rtol=1e-5)
    np.testing.assert_allclose(
        total[["i2_ratio", "i2_matrix"]], [ref["i2_ratio_total"], ref["i2_matrix_total"]], atol=1e-4
    )


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_bootstrap_refitter_reproduces_the_fitted_components(method):
    fit = _fit("year", method)
    codes = [np.unique(c, return_inverse=True)[1] for c in fit.level_codes]
    G = np.stack([(c[:, None] == c[None, :]).astype(float) for c in codes])
    sigma2, beta, converged = fit_components(
        fit.yi, fit.X, np.diag(fit.vi), G, np.array([0.01, 0.01]), method == "REML"
    )
    assert converged
    np.testing.assert_allclose(sigma2, fit.sigma2, rtol=1e-6)
    np.testing.assert_allclose(beta, fit.coefficients["estimate"], rtol=1e-6)


def test_bootstrap_intervals_are_reproducible_and_bracket_the_estimate():
    fit = _fit("intercept", "REML")
    a = em.models.multilevel_i2(fit, ci=True, n_boot=40, seed=3)
    b = em.models.multilevel_i2(fit, ci=True, n_boot=40, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert (a["n_boot"] == 40).all()
    assert ((a["i2_ci_low"] >= 0) & (a["i2_ci_high"] <= 100)).all()
    assert (a["i2_ci_low"] < a["i2_ci_high"]).all()
    total = a.set_index("level").loc["total"]
    assert total["i2_ci_low"] <= total["i2"] <= total["i2_ci_high"]


def test_errors_are_sentences():
    single = em.meta_analysis(DATA)
    with pytest.raises(em.ModelError, match="multilevel model"):
        em.models.multilevel_i2(single)
    with pytest.raises(em.ModelError, match="ratio, matrix"):
        em.models.multilevel_i2(_fit("intercept", "REML"), method="other")


def test_weights_by_type_match_metafor_and_rowsums_reproduce_the_mean():
    from evmeta.models.frequentist.multilevel_weights import multilevel_weights

    ref = REF["weights"]
    fit = _fit("intercept", "REML")
    np.testing.assert_allclose(multilevel_weights(fit, "diagonal"), ref["diagonal"], rtol=1e-5)
    rowsum = multilevel_weights(fit, "rowsum")
    np.testing.assert_allclose(rowsum, ref["rowsum"], rtol=1e-5)
    assert np.sum(rowsum * fit.yi) / np.sum(rowsum) == pytest.approx(fit.estimate, rel=1e-10)
    assert np.sum(fit.weights * fit.yi) / 100 != pytest.approx(fit.estimate, rel=1e-3)  # diagonal ones do not
    with pytest.raises(em.ModelError, match="without moderators"):
        multilevel_weights(_fit("year", "REML"), "rowsum")
    with pytest.raises(em.ModelError, match="type must be"):
        multilevel_weights(fit, "matrix")
