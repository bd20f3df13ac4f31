"""The NUTS path without PyMC (evmeta.models.bayes.marginal_nuts, issue 30 item 3).

References: the dense multivariate normal likelihood with every random level's covariance
written out (scipy.stats.multivariate_normal) plus scipy's prior densities and the log-tau
Jacobian: differences of the log posterior between points agree to 1e-8 (rounding of a
300-term sum and a dense Cholesky); the gradient against central finite differences
(step 1e-6: error ~1e-6 relative); the sampled posterior against the exact quadrature
posterior within Monte Carlo error (4 MCSE, MCSE = posterior SD / sqrt(bulk ESS)).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import evmeta as em
from evmeta.models.base.design import prepare
from evmeta.models.base.nesting import nested_structure
from evmeta.models.bayes.marginal_nuts import MarginalModel, applicable
from evmeta.models.priors import PriorSet, parse_prior
from tests.conftest import ROOT

TAU_PRIORS = ["halfnormal(0.8)", "halfcauchy(0.5)", "halfstudent_t(3, 0.7)", "exponential(2)", "lognormal(-1, 0.6)"]


def _data(k: int = 60, studies: int = 15, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    study = np.sort(rng.integers(0, studies, size=k))
    experiment = rng.integers(0, 3, size=k)
    cell = rng.integers(0, 2, size=k)
    group = np.array(["UC", "SEC", "TFF"])[rng.integers(0, 3, size=studies)][study]
    vi = rng.uniform(0.05, 0.4, size=k)
    mean = 0.8 + 0.4 * (group == "SEC") + rng.normal(0, 0.5, studies)[study]
    return pd.DataFrame(
        {
            "yi": mean + rng.normal(0, 0.3, (studies, 3))[study, experiment] + rng.normal(0, np.sqrt(vi)),
            "vi": vi,
            "group": group,
            "x": rng.normal(size=k),
            "study_id": study,
            "experiment_id": experiment,
            "cell": cell,
        }
    )


def _model(levels: list[str] | None, tau_prior: str, coefficient: str = "normal(0, 3)"):
    data = _data()
    design = prepare(data, "yi", "vi", "~ group + x")
    structure = nested_structure(data, levels)
    priors = PriorSet(
        {name: parse_prior(coefficient if j else "normal(0.5, 5)") for j, name in enumerate(design.names)},
        {level: parse_prior(tau_prior) for level in structure.levels},
    )
    return design, structure, priors, MarginalModel(design.yi, design.vi, design.X, structure, priors)


def _dense(design, structure, priors, model: MarginalModel, x: np.ndarray) -> float:
    p = design.X.shape[1]
    beta, tau = model.R_inv @ x[:p], np.exp(x[p:])
    cov = np.diag(design.vi)
    for level, codes in enumerate(structure.codes):
        cov = cov + tau[level] ** 2 * (codes[:, None] == codes[None, :])
    value = stats.multivariate_normal(mean=design.X @ beta, cov=cov).logpdf(design.yi)
    value += sum(float(prior.logpdf(np.array([b]))[0]) for b, prior in zip(beta, priors.coefficients.values(), strict=True))
    value += sum(float(prior.logpdf(np.array([t]))[0]) for t, prior in zip(tau, priors.taus.values(), strict=True))
    return float(value + np.sum(x[p:]))  # + log-tau Jacobian


@pytest.mark.parametrize("levels", [None, ["study_id"], ["study_id", "experiment_id"], ["study_id", "experiment_id", "cell"]])
@pytest.mark.parametrize("tau_prior", TAU_PRIORS)
def test_log_posterior_is_the_dense_model(levels, tau_prior):
    design, structure, priors, model = _model(levels, tau_prior, "student_t(3, 0, 2)")
    points = [model.initial_point(seed) for seed in range(4)]
    ours = [model.logp_and_grad(x)[0] for x in points]
    dense = [_dense(design, structure, priors, model, x) for x in points]
    np.testing.assert_allclose(np.diff(ours), np.diff(dense), rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("levels", [None, ["study_id", "experiment_id"], ["study_id", "experiment_id", "cell"]])
def test_gradient_matches_finite_differences(levels):
    for tau_prior in TAU_PRIORS:
        _, _, _, model = _model(levels, tau_prior)
        x = model.initial_point(7)
        _, grad = model.logp_and_grad(x)
        numeric = np.empty_like(x)
        for j in range(len(x)):
            step = np.zeros_like(x)
            step[j] = 1e-6
            numeric[j] = (model.logp_and_grad(x + step)[0] - model.logp_and_grad(x - step)[0]) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5 * max(1.0, np.max(np.abs(grad))))


def test_what_the_path_covers():
    _, _, priors, _ = _model(["study_id"], "halfnormal(1)")
    assert applicable(priors, student_t=False, V=None)
    assert not applicable(priors, student_t=True, V=None)  # Student-t effects: sampled explicitly in PyMC
    assert not applicable(priors, student_t=False, V=np.eye(3))  # a known covariance: PyMC's MvNormal
    uniform = PriorSet(priors.coefficients, {"study_id": parse_prior("uniform(0, 3)")})
    assert not applicable(uniform, student_t=False, V=None)  # bounded: PyMC's interval transform


@pytest.mark.slow
def test_nuts_agrees_with_the_exact_posterior():
    data = _data(k=48, studies=12, seed=9)
    settings = dict(mods="~ group + x", random=["study_id", "experiment_id"], seed=3)
    exact = em.bayesian_meta_analysis(data, method="quadrature", **settings)
    sampled = em.bayesian_meta_analysis(data, method="nuts", draws=1000, tune=1000, chains=4, progress=False, **settings)
    assert "marginal log posterior" in sampled.diagnostics["sampler"]
    assert sampled.diagnostics["divergences"] == 0 and sampled.diagnostics["max_r_hat"] < 1.01
    truth, got = exact.summary().table, sampled.summary().table
    mcse = got["posterior_sd"] / np.sqrt(got["ess_bulk"])
    assert np.all(np.abs(got["estimate"] - truth.loc[got.index, "estimate"]) < 4 * mcse), (got, truth)
    # The posterior SDs agree too (their Monte Carlo error is about SD / sqrt(2 ESS)).
    np.testing.assert_allclose(got["posterior_sd"], truth.loc[got.index, "posterior_sd"], rtol=0.1)


@pytest.mark.slow
def test_nuts_path_imports_no_pymc():
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.test_bayes_marginal_nuts import _data\n"
        "import evmeta as em\n"
        "fit = em.bayesian_meta_analysis(_data(), mods='~ group', random=['study_id'], method='nuts', "
        "draws=200, tune=200, chains=2, seed=1, progress=False)\n"
        "print('pymc' in sys.modules, 'pytensor' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False", out.stderr
