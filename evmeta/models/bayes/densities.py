"""Posterior and prior densities of a BayesResult and Savage-Dickey Bayes factors.

Functions of a fitted result (``self``), bound as its methods ``density``,
``prior_density`` and ``bayes_factor``; kept apart so that result.py stays one concept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evmeta.errors import ModelError


def density(self: Any, parameter: str, x: np.ndarray) -> np.ndarray:
    """Posterior density of ``parameter`` (a coefficient name or a tau name) at ``x``.

    Exact under quadrature (the grid marginal of a tau; the Gaussian mixture of a
    coefficient); a kernel density estimate of the draws under NUTS.
    """
    x = np.asarray(x, dtype=float)
    level = self.tau_index(parameter)
    if parameter not in self.names and level is None:
        raise ModelError(
            f"unknown parameter {parameter!r}; valid: {', '.join([*self.names, *self.tau_names])}"
        )
    if self.quadrature is not None:
        if level is not None:
            return np.interp(
                x, self.quadrature.axes[level], self.quadrature.axis_density[level], left=0.0, right=0.0
            )
        means, sds = self.quadrature.linear_mixture(np.eye(len(self.names))[self.names.index(parameter)])
        # The normal density written out: scipy.stats' argument checks cost more than the
        # arithmetic over (grid nodes x points).
        z = (x[None, :] - means[:, None]) / sds[:, None]
        return self.quadrature.weights @ (np.exp(-0.5 * z * z) / (np.sqrt(2 * np.pi) * sds[:, None]))
    from scipy import stats

    beta, tau = self.flat_draws()
    draws = tau[:, level] if level is not None else beta[:, self.names.index(parameter)]
    return stats.gaussian_kde(draws)(x)


def prior_density(self: Any, parameter: str, x: np.ndarray) -> np.ndarray:
    """Prior density of ``parameter`` at ``x``."""
    level = self.tau_index(parameter)
    if level is not None:
        prior = list(self.prior_set.taus.values())[level]
    elif parameter in self.prior_set.coefficients:
        prior = self.prior_set.coefficients[parameter]
    else:
        raise ModelError(
            f"unknown parameter {parameter!r}; valid: {', '.join([*self.names, *self.tau_names])}"
        )
    return np.exp(prior.logpdf(np.asarray(x, dtype=float)))


def bayes_factor(self: Any, term: str) -> dict[str, float]:
    """Savage-Dickey Bayes factor for coefficient(s) = 0 (a coefficient name or a term).

    Exact under quadrature (posterior density of a Gaussian mixture at 0); under NUTS
    a Gaussian approximation of the posterior (a kernel density for one coefficient).
    Returns ``bf10`` (evidence for a non-zero effect), ``bf01`` and ``log_bf10``.
    """
    if term in self.names:
        columns = [self.names.index(term)]
    elif term in self.model.term_columns and term != "intercept":
        columns = self.model.term_columns[term]
    else:
        raise ModelError(f"unknown term {term!r}; valid: {', '.join(n for n in self.names)}")
    priors = [list(self.prior_set.coefficients.values())[c] for c in columns]
    from scipy import stats

    if not all(p.is_normal for p in priors):
        prior_density = float(np.prod([np.exp(p.logpdf(0.0)) for p in priors]))
    else:
        prior_density = float(np.prod([stats.norm.pdf(0, p.params[0], p.params[1]) for p in priors]))
    if self.quadrature is not None:
        posterior_density = self.quadrature.density_at_zero(columns)
        how = "exact"
    else:
        beta = self.flat_draws()[0][:, columns]
        if len(columns) == 1:
            posterior_density = float(stats.gaussian_kde(beta[:, 0])(0.0)[0])
            how = "kernel density"
        else:
            posterior_density = float(
                stats.multivariate_normal(beta.mean(axis=0), np.cov(beta.T)).pdf(np.zeros(len(columns)))
            )
            how = "normal approximation"
    bf01 = posterior_density / prior_density
    with np.errstate(divide="ignore"):
        return {
            "term": term,
            "bf10": 1 / bf01 if bf01 > 0 else np.inf,
            "bf01": bf01,
            "log_bf10": float(-np.log(bf01)) if bf01 > 0 else np.inf,
            "method": how,
        }
