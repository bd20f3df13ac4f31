"""Bayesian location-scale model for a categorical moderator, by exact quadrature:
a separate mean and between-study SD per level, and contrasts such as P(tau_SEC < tau_UC).

Model: for level g, y_i ~ N(mu_g, v_i + tau_g^2), mu_g ~ normal(m0, s0) and tau_g ~ the
tau prior, independently across levels. The posterior then factorizes over levels; within a
level mu_g integrates out in closed form (normal-normal), leaving the one-dimensional
posterior of tau_g, which is evaluated on a Simpson grid. Contrasts between levels are
exact double integrals of independent one-dimensional posteriors,
P(tau_a < tau_b) = integral p_a(t) P(tau_b > t) dt. The posterior predictive distribution of a
new study's true effect in level g is the tau-mixture of N(m_g(tau), s_g(tau)^2 + tau^2), so
``p_true_above`` is exact too.

This is the Bayesian counterpart of ``meta_analysis(mods="~ g", scale="~ g")``; a common
mean or continuous scale moderators couple the levels and would need NUTS (not provided).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from evmeta.errors import ModelError
from evmeta.models.base.design import as_frame
from evmeta.models.priors import Prior, parse_prior

#: Simpson grid points on tau (odd) and the prior quantile that bounds the grid.
GRID = 2001
UPPER_QUANTILE = 1 - 1e-7


@dataclass(frozen=True)
class LevelPosterior:
    """The exact posterior of one level: tau grid with its density and the conditional
    posterior of mu given tau (mean and variance on the grid)."""

    level: Any
    k: int
    tau: np.ndarray
    density: np.ndarray  # normalized: sum(weights * density) = 1
    weights: np.ndarray  # Simpson weights on the grid
    mu_mean: np.ndarray
    mu_var: np.ndarray

    def cdf(self, t: np.ndarray) -> np.ndarray:
        """P(tau <= t): cumulative trapezoid integral of the density, interpolated."""
        return np.interp(t, self.tau, self._cumulative())

    def _cumulative(self) -> np.ndarray:
        steps = (self.density[1:] + self.density[:-1]) / 2 * np.diff(self.tau)
        cumulative = np.concatenate([[0.0], np.cumsum(steps)])
        return cumulative / cumulative[-1]

    def tau_summary(self, level: float) -> dict[str, float]:
        mass = self.weights * self.density
        mean = float(np.sum(mass * self.tau))
        sd = float(np.sqrt(max(np.sum(mass * self.tau**2) - mean**2, 0.0)))
        low, high = np.interp([(1 - level) / 2, 1 - (1 - level) / 2], self._cumulative(), self.tau)
        return {"tau_mean": mean, "tau_sd": sd, "tau_ci_low": float(low), "tau_ci_high": float(high)}

    def mu_summary(self) -> dict[str, float]:
        mass = self.weights * self.density
        mean = float(np.sum(mass * self.mu_mean))
        var = float(np.sum(mass * (self.mu_var + self.mu_mean**2)) - mean**2)
        return {"mu_mean": mean, "mu_sd": float(np.sqrt(max(var, 0.0)))}

    def p_true_above(self, threshold: float) -> float:
        """Posterior predictive P(theta_new > threshold) for a new study of this level."""
        mass = self.weights * self.density
        sd = np.sqrt(self.mu_var + self.tau**2)
        return float(np.sum(mass * special.ndtr((self.mu_mean - threshold) / sd)))


@dataclass(frozen=True, eq=False)
class BayesLocationScaleResult:
    """Per-level posteriors (``levels``) and the priors used (immutable)."""

    by: str
    levels: dict[Any, LevelPosterior] = field(repr=False)
    mu_prior: Prior
    tau_prior: Prior
    level: float = 0.95
    measure: str | None = None

    frozen = True

    @property
    def k(self) -> int:
        return sum(p.k for p in self.levels.values())

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """Per level: k, posterior mean/SD of mu, posterior mean/SD and equal-tailed
        credible interval of tau."""
        level = level or self.level
        rows = [
            {self.by: name, "k": post.k, **post.mu_summary(), **post.tau_summary(level)}
            for name, post in self.levels.items()
        ]
        return pd.DataFrame(rows)

    def p_tau_less(self, a: Any, b: Any) -> float:
        """P(tau_a < tau_b | data), exact up to the grid (e.g. ``p_tau_less("SEC", "UC")``)."""
        pa, pb = self._get(a), self._get(b)
        # On the union of both grids, P = integral p_a(t) (1 - F_b(t)) dt by the trapezoid rule.
        t = np.union1d(pa.tau, pb.tau)
        f = np.interp(t, pa.tau, pa.density, right=0.0) * (1 - pb.cdf(t))
        norm = np.trapezoid(np.interp(t, pa.tau, pa.density, right=0.0), t)
        return float(np.trapezoid(f, t) / norm)

    def tau_contrasts(self) -> pd.DataFrame:
        """P(tau_a < tau_b) for every ordered pair of levels."""
        names = list(self.levels)
        rows = [
            {"level": a, "versus": b, "p_tau_less": self.p_tau_less(a, b)}
            for a in names
            for b in names
            if a != b
        ]
        return pd.DataFrame(rows)

    def predict(self, threshold: float = 0.0) -> pd.DataFrame:
        """Per level: the posterior predictive probability that a new study's true effect
        exceeds ``threshold`` (``p_true_above``)."""
        return pd.DataFrame(
            [
                {self.by: n, "threshold": threshold, "p_true_above": p.p_true_above(threshold)}
                for n, p in self.levels.items()
            ]
        )

    def _get(self, name: Any) -> LevelPosterior:
        if name not in self.levels:
            raise ModelError(
                f"{name!r} is not a level of {self.by}; levels: {', '.join(map(str, self.levels))}"
            )
        return self.levels[name]


def bayesian_location_scale(
    data: Any,
    by: str,
    yi: str = "yi",
    vi: str = "vi",
    *,
    mu_prior: str = "normal(0, 5)",
    tau_prior: str = "halfnormal(1)",
    level: float = 0.95,
) -> BayesLocationScaleResult:
    """Exact Bayesian location-scale model by level of ``by`` (see the module docstring).

    Parameters
    ----------
    data : DataFrame or Comparisons
    by : str
        Categorical column (e.g. ``"isolation_method"``); each level needs >= 1 comparison.
    mu_prior : str
        Normal prior of each level's mean (the closed-form integration needs a normal).
    tau_prior : str
        Prior of each level's tau, any family of :mod:`evmeta.models.priors`.
    """
    frame = as_frame(data)
    if frame is None:
        raise ModelError(
            "bayesian_location_scale needs data: a DataFrame or Comparisons with the columns named"
        )
    for column in (by, yi, vi):
        if column not in frame.columns:
            raise ModelError(f"column {column!r} is not in the data")
    mu, tau = parse_prior(mu_prior, "mu_prior"), parse_prior(tau_prior, "tau_prior")
    if not mu.is_normal:
        raise ModelError(f"mu_prior must be a normal prior for exact integration, got {mu}")
    y = pd.to_numeric(frame[yi], errors="coerce").to_numpy(float)
    v = pd.to_numeric(frame[vi], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(y) | ~(v > 0) | frame[by].isna().to_numpy()
    if bad.any():
        raise ModelError(
            f"{int(bad.sum())} row(s) lack an effect size, a positive variance or a value of {by}"
        )
    levels = {
        name: level_posterior(name, y[mask], v[mask], mu, tau)
        for name in pd.unique(frame[by])
        for mask in [(frame[by] == name).to_numpy()]
    }
    measure = (
        str(frame["measure"].iloc[0])
        if "measure" in frame.columns and frame["measure"].nunique() == 1
        else None
    )
    return BayesLocationScaleResult(by, levels, mu, tau, level, measure)


def level_posterior(name: Any, y: np.ndarray, v: np.ndarray, mu: Prior, tau: Prior) -> LevelPosterior:
    """The exact posterior of one level's (mu, tau) on a tau grid."""
    m0, s0 = mu.params
    spread = float(np.std(y)) + float(np.sqrt(np.max(v)))
    upper = min(tau.ppf(UPPER_QUANTILE), 100 * spread)
    grid = np.linspace(0.0, upper, GRID)
    w = 1.0 / (v[None, :] + grid[:, None] ** 2)  # (grid, k)
    sw = w.sum(axis=1)
    r = y[None, :] - m0
    swr = (w * r).sum(axis=1)
    # log N(y; m0 1, V + s0^2 11') by the determinant lemma and Sherman-Morrison.
    loglik = 0.5 * np.log(w).sum(axis=1) - 0.5 * np.log1p(s0**2 * sw)
    loglik -= 0.5 * ((w * r**2).sum(axis=1) - s0**2 * swr**2 / (1 + s0**2 * sw))
    logpost = loglik + tau.logpdf(grid)
    density = np.exp(logpost - np.max(logpost))
    weights = np.full(GRID, 2.0)
    weights[1::2], weights[0], weights[-1] = 4.0, 1.0, 1.0
    weights *= (grid[1] - grid[0]) / 3
    density /= np.sum(weights * density)
    precision = sw + 1 / s0**2
    mu_mean = ((w * y[None, :]).sum(axis=1) + m0 / s0**2) / precision
    return LevelPosterior(name, len(y), grid, density, weights, mu_mean, 1 / precision)
