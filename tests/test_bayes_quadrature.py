"""Exact quadrature draws and the grid-refinement check.

The reference CDFs are computed here independently, by brute force: the posterior of tau
on a fine grid from dense multivariate-normal densities (coefficients integrated out
analytically under their normal priors), accumulated with the trapezoid rule. Draws are
compared with them by the Kolmogorov-Smirnov test (20,000 draws, fixed seed, reject at
p < 0.01). On a coarse grid of a known density the test separates the exact inverse-CDF
sampler from the old one (nodes picked with Simpson weights as if they were probabilities,
then jittered), which draws adjacent cells at 4/3 and 2/3 of their mass.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import evmeta as em
from evmeta.models.bayes.grid_sampling import quantiles, sample_rows
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "metafor_reference.json").read_text())
BCG = pd.DataFrame(REF["bcg"])
K11 = pd.DataFrame(REF["konstantopoulos"])
PRIORS = {"intercept": "normal(0, 5)", "tau": "halfnormal(2)"}


def _brute_tau_posterior(y: np.ndarray, v: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """p(tau | y) on ``grid`` for y_i ~ N(mu, v_i + tau^2), mu ~ N(0, 5^2), tau ~ HN(2).

    Marginally y ~ N(0, D + 25 11') with D = diag(v + tau^2); its density in closed form
    (Sherman-Morrison and the matrix determinant lemma), checked against scipy at one tau.
    """
    d = v[None, :] + grid[:, None] ** 2
    s1, sy, syy = np.sum(1 / d, axis=1), np.sum(y / d, axis=1), np.sum(y**2 / d, axis=1)
    logdet = np.sum(np.log(d), axis=1) + np.log1p(25 * s1)
    quad = syy - 25 * sy**2 / (1 + 25 * s1)
    log = -0.5 * (logdet + quad + len(y) * np.log(2 * np.pi)) + stats.halfnorm.logpdf(grid, 0, 2)
    check = stats.multivariate_normal(np.zeros(len(y)), np.diag(v + grid[7] ** 2) + 25.0).logpdf(y)
    assert log[7] - stats.halfnorm.logpdf(grid[7], 0, 2) == pytest.approx(check, rel=1e-12)
    density = np.exp(log - log.max())
    return density / np.trapezoid(density, grid)


def _cdf(grid: np.ndarray, density: np.ndarray):
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    cumulative /= cumulative[-1]
    return lambda x: np.interp(x, grid, cumulative)


def test_one_level_draws_follow_the_exact_posterior():
    fit = em.bayesian_meta_analysis(BCG, priors=PRIORS, seed=11, draws=5000, chains=4)
    y, v = BCG["yi"].to_numpy(), BCG["vi"].to_numpy()
    grid = np.linspace(0.0, 3.5, 3501)
    density = _brute_tau_posterior(y, v, grid)
    tau = fit.tau_draws.ravel()
    assert len(tau) == 20_000
    assert stats.kstest(tau, _cdf(grid, density)).pvalue > 0.01
    # mu given tau is normal; its exact marginal CDF is the tau-mixture of those normals.
    precision = np.array([np.sum(1 / (v + t**2)) + 1 / 25 for t in grid])
    means = np.array([np.sum(y / (v + t**2)) for t in grid]) / precision
    mu = fit.beta_draws.ravel()
    weights = density * np.gradient(grid)
    weights /= weights.sum()

    x = np.linspace(mu.min() - 0.1, mu.max() + 0.1, 4001)
    mu_cdf = weights @ stats.norm.cdf((x[None, :] - means[:, None]) * np.sqrt(precision)[:, None])
    assert stats.kstest(mu, lambda q: np.interp(q, x, mu_cdf)).pvalue > 0.01
    # The summaries (quantiles of the interpolated marginal) agree with brute force.
    summary = fit.summary().table.loc["tau[comparison]"]
    exact = np.interp([0.025, 0.975], _cdf(grid, density)(grid), grid)
    np.testing.assert_allclose([summary["ci_low"], summary["ci_high"]], exact, atol=1e-4)


def test_inverse_cdf_sampler_is_exact_where_node_jitter_is_not():
    """Beta(2, 5) known at 41 nodes: the interpolated inverse CDF reproduces it; picking nodes
    by Simpson weight and jittering within the cell (the old sampler) does not."""
    axis = np.linspace(0, 1, 41)
    density = stats.beta(2, 5).pdf(axis)
    rng = np.random.default_rng(5)
    n = 200_000
    exact = sample_rows(axis, density[None, :], np.zeros(n, dtype=np.int64), rng.random(n))
    assert stats.kstest(exact, stats.beta(2, 5).cdf).pvalue > 0.01
    simpson = np.ones(41)
    simpson[1:-1:2], simpson[2:-1:2] = 4, 2
    weights = density * simpson / np.sum(density * simpson)
    step = axis[1] - axis[0]
    jittered = np.clip(axis[rng.choice(41, size=n, p=weights)] + rng.uniform(-step / 2, step / 2, n), 0, 1)
    assert stats.kstest(jittered, stats.beta(2, 5).cdf).pvalue < 1e-6


def _two_level_data(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for study in range(6):
        u = rng.normal(0, 0.5)
        for experiment in range(rng.integers(1, 4)):
            w = rng.normal(0, 0.3)
            for _ in range(rng.integers(1, 3)):
                v = rng.uniform(0.05, 0.3)
                rows.append(
                    {
                        "study": f"S{study}",
                        "experiment": f"E{experiment}",
                        "vi": v,
                        "yi": 0.8 + u + w + rng.normal(0, np.sqrt(v)),
                    }
                )
    return pd.DataFrame(rows)


def test_two_level_draws_follow_the_exact_marginals():
    data = _two_level_data()
    priors = {"intercept": "normal(0, 5)", "tau": "halfnormal(1)"}
    fit = em.bayesian_meta_analysis(
        data, random=["study", "experiment"], priors=priors, seed=3, draws=5000, chains=4
    )
    y, v = data["yi"].to_numpy(), data["vi"].to_numpy()
    same_study = (data["study"].to_numpy()[:, None] == data["study"].to_numpy()[None, :]).astype(float)
    key = (data["study"] + "/" + data["experiment"]).to_numpy()
    same_experiment = (key[:, None] == key[None, :]).astype(float)
    axis = np.linspace(0.0, 3.0, 241)
    log = np.empty((len(axis), len(axis)))
    for i, ts in enumerate(axis):  # dense k x k algebra, one row of the grid at a time
        cov = (
            np.diag(v)[None]
            + ts**2 * same_study[None]
            + axis[:, None, None] ** 2 * same_experiment[None]
            + 25.0
        )
        _, logdet = np.linalg.slogdet(cov)
        quad = np.einsum(
            "i,gi->g", y, np.linalg.solve(cov, np.broadcast_to(y, (len(axis), len(y)))[..., None])[..., 0]
        )
        log[i] = -0.5 * (logdet + quad + len(y) * np.log(2 * np.pi))
    check = np.diag(v) + axis[3] ** 2 * same_study + axis[5] ** 2 * same_experiment + 25.0
    assert log[3, 5] == pytest.approx(stats.multivariate_normal(np.zeros(len(y)), check).logpdf(y), rel=1e-10)
    log += stats.halfnorm.logpdf(axis, 0, 1)[:, None] + stats.halfnorm.logpdf(axis, 0, 1)[None, :]
    joint = np.exp(log - log.max())
    for level, marginal in enumerate([np.trapezoid(joint, axis, axis=1), np.trapezoid(joint, axis, axis=0)]):
        draws = fit.tau_draws[..., level].ravel()
        assert stats.kstest(draws, _cdf(axis, marginal)).pvalue > 0.01, fit.tau_names[level]


@pytest.mark.parametrize(
    "data, settings",
    [
        (BCG, {}),
        (BCG, {"mods": "~ ablat + year"}),
        (K11, {"random": ["district", "school"]}),
        (_two_level_data(), {"random": ["study", "experiment"]}),
    ],
)
def test_grid_refinement_error_is_below_1e_4(data, settings):
    fit = em.bayesian_meta_analysis(data, seed=1, draws=100, chains=1, **settings)
    error = fit.diagnostics["grid_error"]
    assert 0 <= error < 1e-4


def test_interpolated_quantiles_invert_a_known_density():
    """Triangular density on [0, 2] peaking at 1: CDF x^2/2 below 1, so q(p) = sqrt(2p)."""
    # A tent is not smooth at its peak, so the cubic interpolant is exact only in the limit:
    # a fine grid (error ~ h^2 at the kink) gives the quantiles to 1e-6.
    fine = np.linspace(0, 2, 2001)
    tent = 1 - np.abs(fine - 1)
    got = quantiles(fine, tent, [0.02, 0.125, 0.5, 0.875])
    np.testing.assert_allclose(got, [np.sqrt(0.04), 0.5, 1.0, 1.5], atol=1e-6)
    assert quantiles(np.linspace(0, 2, 3), np.array([0.0, 1.0, 0.0]), [0.5])[0] == pytest.approx(
        1.0, abs=1e-9
    )


@pytest.mark.parametrize(
    "text",
    [
        "normal(0.5, 2)",
        "student_t(3, -1, 0.5)",
        "halfnormal(0.7)",
        "halfcauchy(0.4)",
        "halfstudent_t(4, 0.6)",
        "exponential(2)",
        "uniform(0.1, 3)",
        "lognormal(-0.5, 0.8)",
    ],
)
def test_closed_form_prior_densities_and_quantiles_equal_scipy(text):
    """Priors are evaluated without scipy.stats on the exact path; scipy is the reference."""
    from evmeta.models.priors import parse_prior

    prior = parse_prior(text)
    x = np.array([-1.0, 0.0, 0.05, 0.5, 1.7, 4.0])
    expected = prior.scipy().logpdf(x)
    got = prior.logpdf(x)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(got), finite)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12)
    for q in (0.025, 0.5, 0.999):
        assert prior.ppf(q) == pytest.approx(float(prior.scipy().ppf(q)), rel=1e-10)


def test_exact_path_imports_neither_arviz_pymc_matplotlib_nor_scipy_stats():
    import subprocess
    import sys

    code = (
        "import sys, pandas as pd, evmeta as em\n"
        "fit = em.bayesian_meta_analysis(pd.DataFrame({'yi': [0.1, 0.5, 0.9, 0.4], 'vi': [0.1, 0.1, 0.2, 0.1],"
        " 's': [1, 1, 2, 2], 'x': [0.0, 1.0, 0.5, 0.2]}), mods='~ x', random=['s'], seed=1)\n"
        "str(fit.summary()); fit.coef_table(); fit.predict(newmods=[[0.3]])\n"
        "print(','.join(m for m in ('arviz', 'pymc', 'pytensor', 'matplotlib', 'scipy.stats', 'formulaic')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
