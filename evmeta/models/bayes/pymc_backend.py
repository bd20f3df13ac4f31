"""NUTS backend: the one module of evmeta that imports PyMC, lazily (normal models without
a known covariance are sampled by nutpie from :mod:`evmeta.models.bayes.marginal_nuts`,
without PyMC).

The model is non-centred: each outer level's effects are u_l = tau_l z_l with standard
normal (or Student-t, for ``likelihood="student_t"`` at the outermost level) z_l. The
innermost level's normal effects are integrated out of the likelihood with group sums (see
:mod:`evmeta.models.base.nesting`), which removes the funnel that makes NUTS struggle
with few observations per group. With a known sampling covariance V the likelihood is a
dense multivariate normal with covariance V + tau_inner^2 Z Z'.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from evmeta.errors import ModelError
from evmeta.models.base.nesting import NestedStructure
from evmeta.models.priors import Prior, PriorSet

if TYPE_CHECKING:
    from pymc import Model


def _import_pymc():
    """PyMC and PyTensor's tensor module, or a sentence naming ``evmeta[sampling]``."""
    from evmeta._extras import require

    with warnings.catch_warnings():
        # PyTensor warns at import that pip-installed BLAS may be slow; it is not an error.
        warnings.simplefilter("ignore")
        pm = require("pymc", "NUTS sampling (bayesian method='nuts')")
        pt = require("pytensor.tensor", "NUTS sampling (bayesian method='nuts')")
    return pm, pt


def _dist(pm, prior: Prior):
    """An unnamed distribution, for priors placed through a potential."""
    f, p = prior.family, prior.params
    if f == "normal":
        return pm.Normal.dist(mu=p[0], sigma=p[1])
    if f == "student_t":
        return pm.StudentT.dist(nu=p[0], mu=p[1], sigma=p[2])
    raise ModelError(f"{f} is not a prior for a coefficient (use normal or student_t)")


def _rv(pm, name: str, prior: Prior, **kwargs):
    f, p = prior.family, prior.params
    if f == "normal":
        return pm.Normal(name, mu=p[0], sigma=p[1], **kwargs)
    if f == "student_t":
        return pm.StudentT(name, nu=p[0], mu=p[1], sigma=p[2], **kwargs)
    if f == "halfnormal":
        return pm.HalfNormal(name, sigma=p[0], **kwargs)
    if f == "halfcauchy":
        return pm.HalfCauchy(name, beta=p[0], **kwargs)
    if f == "halfstudent_t":
        return pm.HalfStudentT(name, nu=p[0], sigma=p[1], **kwargs)
    if f == "exponential":
        return pm.Exponential(name, lam=p[0], **kwargs)
    if f == "uniform":
        return pm.Uniform(name, lower=p[0], upper=p[1], **kwargs)
    if f == "lognormal":
        return pm.LogNormal(name, mu=p[0], sigma=p[1], **kwargs)
    raise ModelError(f"unknown prior family {f!r}")


@dataclass
class NutsDraws:
    """Posterior draws (chain, draw, ...) and sampler statistics."""

    beta: np.ndarray
    tau: np.ndarray
    outer_effects: list[np.ndarray]  # per sampled level (outermost first)
    nu: np.ndarray | None
    diverging: np.ndarray
    energy: np.ndarray | None
    sampler: str
    target_accept: float


def _marginal_loglik(pt, resid, v: np.ndarray, taus: list, structure: NestedStructure, first_level: int):
    """log N(resid; 0, D + sum_{l >= first_level} tau_l^2 Z_l Z_l') by the group-sum recursion."""
    a = 1.0 / v
    inner = structure.inner
    E = structure.n_inner
    sum_a = pt.as_tensor_variable(np.bincount(inner, weights=a, minlength=E))
    sum_ar = pt.inc_subtensor(pt.zeros(E)[inner], resid * a)
    quad = pt.sum(resid**2 * a)
    logdet = float(np.sum(np.log(v)))
    for level in range(len(structure.levels) - 1, first_level - 1, -1):
        t2 = taus[level] ** 2
        growth = 1 + t2 * sum_a
        quad = quad - pt.sum(t2 / growth * sum_ar**2)
        logdet = logdet + pt.sum(pt.log(growth))
        if level > first_level:
            parent = structure.parent[level]
            size = structure.sizes[level - 1]
            sum_a = pt.inc_subtensor(pt.zeros(size)[parent], sum_a / growth)
            sum_ar = pt.inc_subtensor(pt.zeros(size)[parent], sum_ar / growth)
    return -0.5 * (len(v) * np.log(2 * np.pi) + logdet + quad)


def build_model(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    structure: NestedStructure,
    priors: PriorSet,
    *,
    student_t: bool,
    V: np.ndarray | None,
) -> tuple[Model, list[int]]:
    """The PyMC model; returns (model, levels whose effects are sampled explicitly).

    Every normal level is integrated out of the likelihood, so NUTS explores only the
    coefficients and the SDs (no funnel). With ``student_t`` the outermost effects are
    Student-t and sampled explicitly (non-centred).
    """
    pm, pt = _import_pymc()
    sampled_levels = [0] if student_t else []
    from evmeta.models.bayes.marginal_nuts import orthogonal_design

    p = X.shape[1]

    Q_star, R_inv = orthogonal_design(X)
    with pm.Model() as model:
        theta = pm.Flat("theta", shape=p)
        beta = pm.Deterministic("beta", pt.dot(pt.as_tensor_variable(R_inv), theta))
        prior_terms = [
            pm.logp(_dist(pm, prior), beta[j]) for j, prior in enumerate(priors.coefficients.values())
        ]
        pm.Potential("beta_prior", pt.sum(pt.stack(prior_terms)))
        taus = [_rv(pm, f"tau_{level}", prior) for level, prior in enumerate(priors.taus.values())]
        mu = pt.dot(pt.as_tensor_variable(Q_star), theta)
        if student_t:
            if priors.nu is None:
                raise ModelError("a Student-t likelihood needs a prior on nu (PriorSet.nu)")
            nu_minus_one = _rv(pm, "nu_minus_one", priors.nu)
            nu = pm.Deterministic("nu", nu_minus_one + 1)
            z = pm.StudentT("z_0", nu=nu, mu=0, sigma=1, shape=structure.sizes[0])
            effects = pm.Deterministic("u_0", taus[0] * z)
            mu = mu + effects[structure.codes[0]]
        resid = pt.as_tensor_variable(y) - mu
        first = 1 if student_t else 0
        if V is not None:
            cov = pt.as_tensor_variable(V)
            for level in range(first, len(structure.levels)):
                codes = structure.codes[level]
                same = (codes[:, None] == codes[None, :]).astype(float)
                cov = cov + taus[level] ** 2 * pt.as_tensor_variable(same)
            pm.MvNormal("y", mu=mu, cov=cov, observed=y)
        elif first < len(structure.levels):
            pm.Potential("loglik", _marginal_loglik(pt, resid, v, taus, structure, first))
        else:
            pm.Normal("y", mu=mu, sigma=np.sqrt(v), observed=y)
    return model, sampled_levels


def sample_nuts(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    structure: NestedStructure,
    priors: PriorSet,
    *,
    student_t: bool,
    V: np.ndarray | None,
    draws: int,
    tune: int,
    chains: int,
    seed: int | None,
    progress: bool,
    target_accept: float,
    sampler: str = "nutpie",
) -> NutsDraws:
    """Sample with nutpie (``sampler="nutpie"``, falling back to PyMC's NUTS when nutpie is
    missing) or with PyMC's own NUTS (``sampler="pymc"``, used by the benchmarks).

    With nutpie, a normal model without a known covariance V (and priors it writes out) is
    sampled from :mod:`evmeta.models.bayes.marginal_nuts`, the same posterior without
    importing PyMC or compiling a PyMC graph; ``sampler="nutpie-pymc"`` forces the PyMC
    model under nutpie (the benchmarks compare the two)."""
    if sampler == "nutpie":
        from evmeta.models.bayes import marginal_nuts

        if marginal_nuts.applicable(priors, student_t=student_t, V=V):
            fast = marginal_nuts.sample(
                y, v, X, structure, priors,
                draws=draws, tune=tune, chains=chains, seed=seed, progress=progress, target_accept=target_accept,
            )  # fmt: skip
            if fast is not None:
                trace, label = fast
                return _extract(trace, priors, [], False, label, target_accept)
    pm, _ = _import_pymc()
    model, sampled_levels = build_model(y, v, X, structure, priors, student_t=student_t, V=V)
    nutpie = _import_nutpie() if sampler in {"nutpie", "nutpie-pymc"} else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if nutpie is not None:
            compiled = nutpie.compile_pymc_model(model)
            trace = nutpie.sample(
                compiled,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                progress_bar=progress,
                target_accept=target_accept,
                save_warmup=False,
            )
            label = f"nutpie {nutpie.__version__}"
        else:
            with model:
                trace = pm.sample(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    random_seed=seed,
                    progressbar=progress,
                    target_accept=target_accept,
                    nuts_sampler="pymc",
                    compute_convergence_checks=False,
                )
            label = f"pymc {pm.__version__}"
    return _extract(trace, priors, sampled_levels, student_t, label, target_accept)


def _import_nutpie() -> ModuleType | None:
    """nutpie, or None when it is not installed (PyMC's NUTS is used then)."""
    try:
        import nutpie
    except ImportError:  # pragma: no cover - nutpie is a declared dependency
        return None
    return nutpie


def _extract(trace, priors: PriorSet, sampled_levels, student_t, sampler, target_accept) -> NutsDraws:
    post = trace.posterior
    beta = post["beta"].values
    tau = np.stack([post[f"tau_{level}"].values for level in range(len(priors.taus))], axis=-1)
    effects = [post[f"u_{level}"].values for level in sampled_levels]
    stats = trace.sample_stats
    diverging = stats["diverging"].values.astype(bool)
    energy = stats["energy"].values if "energy" in stats else None
    nu = post["nu"].values if student_t else None
    return NutsDraws(beta, tau, effects, nu, diverging, energy, sampler, target_accept)
