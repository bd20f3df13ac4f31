"""Step-function selection models against metafor 3.8 selmodel (tests/reference/selmodel_reference.R)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.errors import ModelError
from evmeta.models.base.protocol import Summary
from evmeta.models.bias.step_likelihood import interval_probabilities, normalize_steps, step_loglik

REFERENCE = json.loads((Path(__file__).parent / "reference" / "selmodel_reference.json").read_text())
# 1e-4 relative: the parity target; metafor's optimum (optim, reltol 1e-14) and Hessian
# (numDeriv, Richardson) are both accurate to about 1e-6, so 1e-4 leaves room for neither to drift.
REL = 1e-4
CASES = [
    (ds, name) for ds in ("hackshaw1998", "baskerville2012", "cart_volume") for name in REFERENCE[ds]["cases"]
]


def _frame(ds: str) -> pd.DataFrame:
    data = REFERENCE[ds]
    frame = pd.DataFrame({"yi": data["yi"], "vi": data["vi"]})
    for column in ("design", "year", "blind"):
        if column in data:
            frame[column] = data[column]
    return frame


def _close(actual, expected, floor=1e-3):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert np.all(np.abs(actual - expected) <= REL * np.maximum(np.abs(expected), floor)), (actual, expected)


@pytest.mark.parametrize(("ds", "name"), CASES)
def test_selmodel_parity(ds, name):
    case = REFERENCE[ds]["cases"][name]
    fit = em.meta_analysis(_frame(ds), mods=case["mods"] or None)
    steps = tuple(np.atleast_1d(case["steps_in"]))
    sel = em.models.selection_model(fit, steps=steps, alternative=case["alternative"])
    _close(sel.coefficients["estimate"], case["beta"])
    _close(sel.coefficients["se"], case["se"])
    _close(sel.coefficients["ci_low"], case["ci_lb"])
    _close(sel.coefficients["ci_high"], case["ci_ub"])
    _close(sel.tau2, case["tau2"])
    _close(sel.tau2_se, case["se_tau2"])
    _close(sel.delta, case["delta"])
    _close(sel.delta_se[1:], case["se_delta"][1:])
    _close(sel.log_likelihood, case["ll"])
    _close(sel.log_likelihood_unadjusted, case["ll0"])
    _close(sel.lrt, case["LRT"])
    _close(sel.lrt_pvalue, case["LRTp"])
    assert sel.lrt_df == case["LRTdf"]
    assert list(sel.k_per_interval) == case["k_per_interval"]
    assert sel.estimate == sel.coefficients["estimate"].iloc[0] and sel.delta[0] == 1.0


def test_interval_probabilities_sum_to_one_and_match_integration():
    from scipy import integrate, stats

    steps = normalize_steps([0.025, 0.5])
    vi = np.array([0.04, 0.2])
    for alternative in ("greater", "less", "two.sided"):
        probs = interval_probabilities(np.array([0.3, -0.1]), vi + 0.05, vi, steps, alternative)
        assert np.allclose(probs.sum(axis=1), 1)
        # brute force: integrate the normal density over the y-values whose p-value is in interval 0
        se, sd = np.sqrt(vi[0]), np.sqrt(vi[0] + 0.05)
        cut = se * stats.norm.isf(0.025 / (2 if alternative == "two.sided" else 1))
        dens = stats.norm(0.3, sd).pdf
        upper = integrate.quad(dens, cut, np.inf)[0]
        lower = integrate.quad(dens, -np.inf, -cut)[0]
        expected = {"greater": upper, "less": lower, "two.sided": upper + lower}[alternative]
        assert probs[0, 0] == pytest.approx(expected, rel=1e-8)


def test_no_selection_reduces_to_the_normal_likelihood():
    yi = np.array([0.1, 0.5, 0.9, 1.4])
    vi = np.array([0.1, 0.2, 0.05, 0.3])
    X = np.ones((4, 1))
    ll = step_loglik(np.array([0.6]), 0.1, np.ones(2), yi, vi, X, normalize_steps([0.05]))
    expected = np.sum(-0.5 * np.log(2 * np.pi * (vi + 0.1)) - 0.5 * (yi - 0.6) ** 2 / (vi + 0.1))
    assert ll == pytest.approx(expected, rel=1e-12)


def test_result_protocol():
    fit = em.meta_analysis(_frame("baskerville2012"))
    sel = em.models.selection_model(fit)
    summary = sel.summary()
    assert isinstance(summary, Summary)
    assert "selection model" in str(summary) and "0.025 < p <= 1" in str(summary)
    np.testing.assert_allclose(
        summary.table.loc["intercept", ["estimate", "se", "ci_low", "ci_high"]].to_numpy(float),
        [sel.estimate, sel.se, sel.ci_low, sel.ci_high],
        rtol=1e-12,
    )
    narrow = sel.summary(0.5).table.loc["intercept"]
    assert sel.ci_low < narrow["ci_low"] < sel.estimate < narrow["ci_high"] < sel.ci_high
    frame = sel.to_frame()
    assert list(frame["term"]) == ["intercept"] and frame["model"].iloc[0] == "selection_model"
    out = sel.to_dict()
    assert out["delta"][0] == 1.0 and json.dumps(out)


def test_bad_input_is_reported():
    fit = em.meta_analysis(_frame("baskerville2012"))
    with pytest.raises(ModelError, match="steps"):
        em.models.selection_model(fit, steps=(1.5,))
    with pytest.raises(ModelError, match="alternative"):
        em.models.selection_model(fit, alternative="up")
    with pytest.raises(ModelError, match="no p-values in interval"):
        em.models.selection_model(fit, steps=(1e-12,))
    with pytest.raises(ModelError, match="meta_analysis result"):
        em.models.selection_model(object())
