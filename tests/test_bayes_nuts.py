"""Bayesian engine, sampling path (slow): NUTS against the exact quadrature posterior,
robust and known-covariance models, convergence handling, and interval coverage.

NUTS agreement is judged in Monte Carlo standard errors: a correct sampler's posterior
mean lies within 4 MCSE of the exact value with probability > 0.9999 per parameter.
Draws are small (500 per chain) to keep the tests short; the assertions scale with them.
"""

from __future__ import annotations

import json
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import evmeta as em
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
REF = json.loads((ROOT / "tests" / "reference" / "metafor_reference.json").read_text())
BCG = pd.DataFrame(REF["bcg"])


def _within_mcse(nuts, exact, limit=4.0):
    dataset = az.convert_to_dataset({"beta": nuts.beta_draws, "tau": nuts.tau_draws})
    mcse = np.concatenate([az.mcse(dataset)["beta"].values, az.mcse(dataset)["tau"].values])
    ours, theirs = nuts.summary().table, exact.summary().table
    difference = ours["estimate"].to_numpy() - theirs["estimate"].to_numpy()
    z = difference / mcse
    assert np.all(np.abs(z) < limit), dict(zip(theirs.index, np.round(z, 2), strict=True))
    sd_ratio = ours["posterior_sd"].to_numpy() / theirs["posterior_sd"].to_numpy()
    assert np.all(np.abs(sd_ratio - 1) < 0.15), sd_ratio


def test_nuts_matches_quadrature_one_level_meta_regression():
    kwargs = dict(mods="~ ablat", seed=11, progress=False)
    exact = em.bayesian_meta_analysis(BCG, **kwargs)
    nuts = em.bayesian_meta_analysis(BCG, method="nuts", draws=1000, tune=1000, **kwargs)
    assert nuts.method_used == "nuts" and nuts.converged
    _within_mcse(nuts, exact)


def test_nuts_matches_quadrature_three_level_with_moderators():
    book = em.read_extraction(ROOT / "extraction" / "example.xlsx")
    table = em.build_comparisons(book).table
    kwargs = dict(
        mods="~ isolation_method + quality_score",
        random=["study_id", "experiment_id"],
        seed=5,
        progress=False,
    )
    exact = em.bayesian_meta_analysis(table, **kwargs)
    assert exact.method_used == "quadrature"
    nuts = em.bayesian_meta_analysis(table, method="nuts", draws=1000, tune=1000, **kwargs)
    assert nuts.converged, nuts.diagnostics
    _within_mcse(nuts, exact)
    # Shrunken estimates from both paths agree (both draw the random effects exactly).
    difference = np.abs(nuts.study_estimates()["estimate"] - exact.study_estimates()["estimate"])
    assert difference.max() < 0.1


def test_student_t_and_known_covariance_need_nuts():
    robust = em.bayesian_meta_analysis(
        BCG, likelihood="student_t", draws=1000, tune=1000, seed=3, progress=False
    )
    assert robust.method_used == "nuts" and robust.converged
    assert "nu" in robust.idata.posterior and "u_comparison" in robust.idata.posterior
    assert robust.priors["nu"].startswith("exponential")
    normal = em.bayesian_meta_analysis(BCG, seed=3)
    assert (
        abs(
            robust.summary().table.loc["intercept", "estimate"]
            - normal.summary().table.loc["intercept", "estimate"]
        )
        < 0.2
    )
    # A diagonal known covariance reproduces the vi model.
    with_v = em.bayesian_meta_analysis(
        BCG, V=np.diag(BCG["vi"]), draws=1000, tune=1000, seed=4, progress=False
    )
    assert with_v.method_used == "nuts"
    _within_mcse(with_v, normal)


def test_more_than_two_levels_uses_nuts():
    """Three random levels (beyond the sampling error) go to NUTS and recover their SDs."""
    rng = np.random.default_rng(8)
    rows = []
    for study in range(30):
        u = rng.normal(0, 0.5)
        for experiment in range(3):
            w = rng.normal(0, 0.3)
            for comparison in range(4):
                v = rng.uniform(0.02, 0.08)
                rows.append(
                    {
                        "study": study,
                        "experiment": experiment,
                        "comparison": comparison,
                        "vi": v,
                        "yi": 1.0 + u + w + rng.normal(0, 0.2) + rng.normal(0, np.sqrt(v)),
                    }
                )
    data = pd.DataFrame(rows)
    fit = em.bayesian_meta_analysis(
        data, random=["study", "experiment", "comparison"], draws=1000, tune=1000, seed=2, progress=False
    )
    assert fit.method_used == "nuts" and fit.converged, fit.diagnostics
    summary = fit.summary().table
    assert list(summary.index[-3:]) == ["tau[study]", "tau[experiment]", "tau[comparison]"]
    for name, value in [("tau[study]", 0.5), ("tau[experiment]", 0.3), ("tau[comparison]", 0.2)]:
        assert summary.loc[name, "ci_low"] <= value <= summary.loc[name, "ci_high"], name
    assert len(fit.idata.posterior["u_experiment"].coords["experiment"]) == 90


def test_poor_convergence_is_flagged_after_a_retry():
    with pytest.warns(em.ConvergenceWarning, match="did not converge"):
        fit = em.bayesian_meta_analysis(
            BCG, method="nuts", draws=15, tune=5, chains=2, seed=1, progress=False
        )
    assert not fit.converged
    assert fit.settings["attempts"] == 2 and fit.settings["target_accept"] == 0.99
    assert "NOT CONVERGED" in str(fit.summary())


def _simulate(rng, truth):
    rows = []
    for study in range(25):
        u = rng.normal(0, truth["tau_study"])
        method = rng.choice(["A", "B", "C"])
        quality = rng.uniform(0, 1)
        for experiment in range(rng.integers(1, 3)):
            w = rng.normal(0, truth["tau_experiment"])
            for _ in range(rng.integers(1, 4)):
                v = rng.uniform(0.1, 0.5)
                mean = (
                    truth["intercept"]
                    + truth["B"] * (method == "B")
                    + truth["C"] * (method == "C")
                    + truth["quality"] * quality
                )
                rows.append(
                    {
                        "study": study,
                        "experiment": experiment,
                        "method": method,
                        "quality": quality,
                        "vi": v,
                        "yi": mean + u + w + rng.normal(0, np.sqrt(v)),
                    }
                )
    return pd.DataFrame(rows)


def test_interval_coverage_over_simulated_data_sets():
    """95% intervals of the three-level meta-regression cover the truth at about 95%."""
    truth = {"intercept": 1.5, "B": 0.6, "C": -0.4, "quality": 1.0, "tau_study": 0.4, "tau_experiment": 0.3}
    names = {
        "intercept": "intercept",
        "B": "method[T.B]",
        "C": "method[T.C]",
        "quality": "quality",
        "tau_study": "tau[study]",
        "tau_experiment": "tau[experiment]",
    }
    rng = np.random.default_rng(2024)
    hits = {key: 0 for key in truth}
    n_sets = 60
    for _ in range(n_sets):
        data = _simulate(rng, truth)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            summary = (
                em.bayesian_meta_analysis(
                    data,
                    mods="~ method + quality",
                    random=["study", "experiment"],
                    draws=200,
                    chains=2,
                    seed=1,
                )
                .summary()
                .table
            )
        for key, name in names.items():
            hits[key] += summary.loc[name, "ci_low"] <= truth[key] <= summary.loc[name, "ci_high"]
    coefficient_rate = sum(hits[k] for k in ["intercept", "B", "C", "quality"]) / (4 * n_sets)
    # 240 intervals: nominal 0.95, binomial SD 0.014; the bounds are about 3.5 SD wide.
    assert 0.90 <= coefficient_rate <= 0.995, hits
    for key in ["tau_study", "tau_experiment"]:
        assert hits[key] / n_sets >= 0.80, hits
