"""shared_control_covariance: metafor vcalc parity, rma.mv parity with V, Monte Carlo checks
of the SMD and binary formulas, coverage of a model using V, and the build_comparisons
"keep" path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.harmonize.covariance import shared_control_covariance
from evmeta.models import multilevel_meta_analysis
from tests.conftest import EXAMPLE, ROOT

REFERENCE = json.loads((ROOT / "tests/reference/shared_control_reference.json").read_text())


def _fixture_table(measure: str) -> pd.DataFrame:
    d = pd.DataFrame(REFERENCE["data"])
    sd_t, sd_c = (d["s"], d["s"]) if measure == "MD" else (d["cv"] * d["m_t"], d["cv"] * d["m_c"])
    es = em.effect_size(measure, m1i=d["m_t"], sd1i=sd_t, n1i=d["n_t"], m2i=d["m_c"], sd2i=sd_c, n2i=d["n_c"])
    return pd.DataFrame(
        {
            "study_id": d["study"],
            "comparison_id": d["arm"],
            "control_group_id": d["control"],
            "measure": measure,
            "yi": es["yi"],
            "vi": es["vi"],
            "n_treat": d["n_t"].astype(float),
            "n_control": d["n_c"].astype(float),
            "sd_treat": sd_t,
            "sd_control": sd_c,
            "mean_control": d["m_c"],
        }
    )


@pytest.mark.parametrize("measure", ["MD", "ROM"])
def test_matches_metafor_vcalc(measure):
    """Equal SDs (MD) or equal CVs (ROM) within a study: Gleser-Olkin equals vcalc exactly.
    Tolerance 1e-12: the same closed form in floating point."""
    table = _fixture_table(measure)
    np.testing.assert_allclose(table["yi"], REFERENCE[measure]["yi"], rtol=1e-12)
    V = shared_control_covariance(table)
    np.testing.assert_allclose(V, np.array(REFERENCE[measure]["V"]), rtol=1e-12, atol=1e-15)
    assert V[0, 5] == 0.0  # different studies are independent


def test_multilevel_with_V_matches_rma_mv():
    """rma.mv(yi, V, random = ~ 1 | study): estimate, SE and sigma^2 to 1e-6 (REML optimiser)."""
    table = _fixture_table("MD")
    fit = multilevel_meta_analysis(table, random=["study_id"], V=shared_control_covariance(table))
    ref = REFERENCE["MD_rma_mv"]
    assert fit.estimate == pytest.approx(ref["estimate"], rel=1e-6)
    assert fit.se == pytest.approx(ref["se"], rel=1e-6)
    assert fit.tau2 == pytest.approx(ref["sigma2"], rel=1e-5)


def test_smd_covariance_by_simulation():
    """Empirical covariance of Hedges' g for two arms sharing a control, 40,000 draws,
    against the formula; 5% relative tolerance (Monte Carlo SE about 1.5%). The d_i d_j
    term is about 25% of the covariance here, so dropping it fails the test."""
    rng = np.random.default_rng(12)
    reps, n_c, n1, n2, d1, d2 = 40_000, 30, 25, 35, 1.5, 1.2
    control = rng.normal(0.0, 1.0, (reps, n_c))
    arm1, arm2 = rng.normal(d1, 1.0, (reps, n1)), rng.normal(d2, 1.0, (reps, n2))

    def g(arm, n):
        return em.effect_size(
            "SMD",
            m1i=arm.mean(1),
            sd1i=arm.std(1, ddof=1),
            n1i=np.full(reps, n),
            m2i=control.mean(1),
            sd2i=control.std(1, ddof=1),
            n2i=np.full(reps, n_c),
        )["yi"].to_numpy()

    g1, g2 = g(arm1, n1), g(arm2, n2)
    empirical = np.cov(g1, g2)[0, 1]
    table = pd.DataFrame(
        {
            "yi": [d1, d2],
            "vi": [1.0, 1.0],
            "measure": "SMD",
            "control_group_id": "c",
            "n_treat": [n1, n2],
            "n_control": [n_c, n_c],
        }
    )
    formula = shared_control_covariance(table)[0, 1]
    assert formula == pytest.approx(1 / n_c + d1 * d2 * n_c / (2 * (n1 + n_c) * (n2 + n_c)))
    assert empirical == pytest.approx(formula, rel=0.05)
    assert abs(empirical - 1 / n_c) > 0.1 * formula


@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_binary_covariance_by_simulation(measure):
    """Shared control events: empirical covariance of the log OR / log RR / RD, 40,000 draws,
    10% relative tolerance (large arms, so the delta method holds and zero cells are rare)."""
    rng = np.random.default_rng(7)
    reps, n = 40_000, 200
    c = rng.binomial(n, 0.4, reps)
    a1, a2 = rng.binomial(n, 0.25, reps), rng.binomial(n, 0.3, reps)

    def y(a):
        return em.effect_size(measure, ai=a, n1i=np.full(reps, n), ci=c, n2i=np.full(reps, n))["yi"]

    empirical = np.cov(y(a1), y(a2))[0, 1]
    table = pd.DataFrame(
        {
            "yi": [0.0, 0.0],
            "vi": [1.0, 1.0],
            "measure": measure,
            "control_group_id": "c",
            "events_control": [0.4 * n] * 2,
            "total_control": [float(n)] * 2,
        }
    )
    assert empirical == pytest.approx(shared_control_covariance(table)[0, 1], rel=0.10)


def test_coverage_of_multilevel_model_with_V():
    """Simulated multiple-treatment studies (MD, 3 arms sharing a control, between-study SD
    0.5, known sampling variances as in the usual simulation design): the 95% interval of a
    model using V covers the true effect in 92-97% of 300 data sets (Monte Carlo SE 1.3%;
    z intervals with 12 studies run slightly below 95%), and sigma^2 is not inflated the way
    it is when the shared control is ignored."""
    rng = np.random.default_rng(2026)
    mu, tau, sigma, n_t, n_c, arms, studies, reps = 1.0, 0.5, 2.0, 8, 8, 3, 12, 300
    covered, sigma2_v, sigma2_naive = 0, [], []
    for _ in range(reps):
        rows = []
        for s in range(studies):
            u = rng.normal(0, tau)
            control = rng.normal(0, sigma, n_c).mean()
            for _arm in range(arms):
                rows.append((f"S{s}", f"S{s}-C", rng.normal(mu + u, sigma, n_t).mean() - control))
        t = pd.DataFrame(rows, columns=["study_id", "control_group_id", "yi"]).assign(
            vi=sigma**2 / n_t + sigma**2 / n_c, measure="MD", sd_control=sigma, n_control=float(n_c)
        )
        fit = multilevel_meta_analysis(t, random=["study_id"], V=shared_control_covariance(t))
        covered += fit.ci_low <= mu <= fit.ci_high
        sigma2_v.append(fit.tau2)
        sigma2_naive.append(multilevel_meta_analysis(t, random=["study_id"]).tau2)
    assert 0.92 <= covered / reps <= 0.97
    # REML truncated at 0 is biased up a little; ignoring V adds part of the control variance.
    assert np.mean(sigma2_v) == pytest.approx(tau**2, abs=0.08)
    assert np.mean(sigma2_naive) - np.mean(sigma2_v) > 0.15


def test_keep_on_the_example_workbook():
    book = em.read_extraction(EXAMPLE)
    kept = em.build_comparisons(book, "SMD", shared_control="keep").table
    V = shared_control_covariance(kept)
    np.testing.assert_allclose(np.diag(V), kept["vi"])
    shared = kept["control_group_id"].duplicated(keep=False)
    assert shared.any(), "the example has shared controls"
    assert np.all(np.linalg.eigvalsh(V) > 0)
    fit = multilevel_meta_analysis(kept, random=["study_id", "experiment_id"], V=V)
    assert np.isfinite(fit.estimate)
    split = em.build_comparisons(book, "SMD").table
    with pytest.raises(ValueError, match="shared_control='keep'"):
        shared_control_covariance(split)


def _exact_posterior_of_mu(table, V, prior_sd, tau_scale):
    """Posterior mean and SD of mu in y ~ N(mu 1, V + tau^2 Z Z'), mu ~ N(0, prior_sd^2),
    tau ~ halfnormal(tau_scale): mu integrated analytically given tau, tau on a fine grid."""
    y = table["yi"].to_numpy()
    Z = pd.get_dummies(table["study_id"]).to_numpy(dtype=float)
    one = np.ones(len(y))
    taus = np.linspace(1e-6, 6 * tau_scale, 6000)
    log_w, means, variances = [], [], []
    for tau in taus:
        sigma = V + tau**2 * Z @ Z.T
        inv = np.linalg.inv(sigma)
        precision = 1 / prior_sd**2 + one @ inv @ one
        means.append((one @ inv @ y) / precision)
        variances.append(1 / precision)
        marginal = sigma + prior_sd**2 * np.outer(one, one)
        _, logdet = np.linalg.slogdet(marginal)
        log_w.append(-0.5 * (logdet + y @ np.linalg.solve(marginal, y)) - 0.5 * (tau / tau_scale) ** 2)
    w = np.exp(np.array(log_w) - max(log_w))
    w /= w.sum()
    mean = float(w @ np.array(means))
    sd = float(np.sqrt(w @ np.array(variances) + w @ (np.array(means) - mean) ** 2))
    return mean, sd


@pytest.mark.slow
def test_bayesian_model_uses_V():
    """NUTS with the known covariance V (vcalc fixture, MD): the posterior mean and SD of the
    pooled effect match the exact posterior (1-D quadrature over tau) within 0.15 posterior
    SD (about 3 Monte Carlo SEs at 4 x 1,000 draws) and 15%; the same model without V differs."""
    table = _fixture_table("MD")
    V = shared_control_covariance(table)
    priors = {"intercept": "normal(0, 50)", "tau": "halfnormal(0.5)"}
    fit = em.bayesian_meta_analysis(
        table,
        random=["study_id"],
        V=V,
        priors=priors,
        method="nuts",
        draws=1000,
        tune=1000,
        chains=4,
        seed=3,
        progress=False,
    )
    mean, sd = _exact_posterior_of_mu(table, V, 50.0, 0.5)
    naive, _ = _exact_posterior_of_mu(table, np.diag(np.diag(V)), 50.0, 0.5)
    got = fit.summary().table.loc["intercept"]
    assert got["estimate"] == pytest.approx(mean, abs=0.15 * sd)
    assert got["posterior_sd"] == pytest.approx(sd, rel=0.15)
    assert abs(naive - mean) > 0.8 * sd  # so the first assert fails if V is ignored
