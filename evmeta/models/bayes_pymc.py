"""NUTS backend: the one module of evmeta that imports PyMC (and nutpie), lazily.

The model is non-centred: each outer level's effects are u_l = tau_l z_l with standard
normal (or Student-t, for ``likelihood="student_t"`` at the outermost level) z_l. The
innermost level's normal effects are integrated out of the likelihood with group sums (see
:mod:`evmeta.models.bayes_structure`), which removes the funnel that makes NUTS struggle
with few observations per group. With a known sampling covariance V the likelihood is a
dense multivariate normal with covariance V + tau_inner^2 Z Z'.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from evmeta.models.bayes_structure import NestedStructure
from evmeta.models.priors import Prior, PriorSet


def _import_pymc():
    with warnings.catch_warnings():
        # PyTensor warns at import that pip-installed BLAS may be slow; it is not an error.
        warnings.simplefilter("ignore")
        import pymc as pm
        import pytensor.tensor as pt
    return pm, pt


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
    raise ValueError(f"unknown prior family {f!r}")


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


def build_model(
    y, v, X, structure: NestedStructure, priors: PriorSet, *, student_t: bool, V: np.ndarray | None
):
    """The PyMC model; returns (model, names of the sampled outer levels)."""
    pm, pt = _import_pymc()
    levels = structure.levels
    n_levels = len(levels)
    marginalize_inner = not (student_t and n_levels == 1)
    sampled_levels = list(range(n_levels - 1)) if marginalize_inner else [0]
    with pm.Model() as model:
        betas = [_rv(pm, f"beta_{j}", prior) for j, prior in enumerate(priors.coefficients.values())]
        beta = pt.stack(betas)
        taus = [_rv(pm, f"tau_{level}", prior) for level, prior in enumerate(priors.taus.values())]
        nu = None
        if student_t:
            nu_minus_one = _rv(pm, "nu_minus_one", priors.nu)
            nu = pm.Deterministic("nu", nu_minus_one + 1)
        mu = pt.dot(pt.as_tensor_variable(X), beta)
        for level in sampled_levels:
            size = structure.sizes[level]
            if student_t and level == 0:
                z = pm.StudentT(f"z_{level}", nu=nu, mu=0, sigma=1, shape=size)
            else:
                z = pm.Normal(f"z_{level}", 0, 1, shape=size)
            effects = pm.Deterministic(f"u_{level}", taus[level] * z)
            mu = mu + effects[structure.codes[level]]
        resid = pt.as_tensor_variable(y) - mu
        if V is not None:
            inner = structure.inner
            same = (inner[:, None] == inner[None, :]).astype(float)
            cov = pt.as_tensor_variable(V) + taus[-1] ** 2 * pt.as_tensor_variable(same)
            pm.MvNormal("y", mu=mu, cov=cov, observed=y)
        elif marginalize_inner:
            a = 1.0 / v
            E = structure.n_inner
            inner = structure.inner
            sum_a = np.bincount(inner, weights=a, minlength=E)
            n_rows = np.bincount(inner, minlength=E)
            t2 = taus[-1] ** 2
            c = t2 / (1 + t2 * sum_a)
            sum_ar = pt.inc_subtensor(pt.zeros(E)[inner], resid * a)
            sum_ar2 = pt.inc_subtensor(pt.zeros(E)[inner], resid**2 * a)
            logdet = np.bincount(inner, weights=np.log(v), minlength=E) + pt.log1p(t2 * sum_a)
            loglik = -0.5 * (n_rows * np.log(2 * np.pi) + logdet + sum_ar2 - c * sum_ar**2)
            pm.Potential("loglik", pt.sum(loglik))
        else:
            pm.Normal("y", mu=mu, sigma=np.sqrt(v), observed=y)
    return model, sampled_levels


def sample_nuts(
    y, v, X, structure, priors, *, student_t, V, draws, tune, chains, seed, progress, target_accept
) -> NutsDraws:
    """Sample with nutpie (PyMC's NUTS when nutpie is unavailable)."""
    pm, _ = _import_pymc()
    model, sampled_levels = build_model(y, v, X, structure, priors, student_t=student_t, V=V)
    try:
        import nutpie
    except ImportError:  # pragma: no cover - nutpie is a declared dependency
        nutpie = None
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
            sampler = f"nutpie {nutpie.__version__}"
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
            sampler = f"pymc {pm.__version__}"
    return _extract(trace, priors, sampled_levels, student_t, sampler, target_accept)


def sample_default_pymc(
    y, v, X, structure, priors, *, student_t, V, draws, tune, chains, seed, progress, target_accept
):
    """PyMC's own NUTS sampler on the same model (for benchmarks)."""
    pm, _ = _import_pymc()
    model, sampled_levels = build_model(y, v, X, structure, priors, student_t=student_t, V=V)
    with warnings.catch_warnings(), model:
        warnings.simplefilter("ignore")
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
    return _extract(trace, priors, sampled_levels, student_t, f"pymc {pm.__version__}", target_accept)


def _extract(trace, priors: PriorSet, sampled_levels, student_t, sampler, target_accept) -> NutsDraws:
    post = trace.posterior
    beta = np.stack([post[f"beta_{j}"].values for j in range(len(priors.coefficients))], axis=-1)
    tau = np.stack([post[f"tau_{level}"].values for level in range(len(priors.taus))], axis=-1)
    effects = [post[f"u_{level}"].values for level in sampled_levels]
    stats = trace.sample_stats
    diverging = stats["diverging"].values.astype(bool)
    energy = stats["energy"].values if "energy" in stats else None
    nu = post["nu"].values if student_t else None
    return NutsDraws(beta, tau, effects, nu, diverging, energy, sampler, target_accept)
