"""Marginal likelihoods of the bias-ensemble models, by exact integration (no sampling).

* Normal models (no bias, PET, PEESE; with or without effect and heterogeneity): given tau the
  coefficients (mu, and the PET/PEESE slope b) have a Gaussian prior and likelihood, so they
  integrate out in closed form; a half-normal slope adds the exact factor
  ``P(b > 0 | y, tau) / P(b > 0)``. tau is integrated by the trapezoid rule in ``log tau`` on a
  dense grid (the integrand is smooth and decays double-exponentially at the lower end).
* Step-function selection models: the selection weight enters the likelihood through the
  normalizing constants ``A_i``, so (mu, log tau, logit omega) are integrated numerically on a
  tensor trapezoid grid in whitened coordinates (centred at the posterior mode, rotated by the
  Cholesky factor of the inverse Hessian), widened until the posterior at the faces is below
  ``exp(-FACE_DROP)`` of its maximum.

Each function returns the log marginal likelihood and the posterior of mu as a Gaussian mixture
(means, sds, weights; sd 0 for point masses), which the ensemble combines into the model-averaged
posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from evmeta.models.bias.step_likelihood import interval_index, interval_probabilities, step_pvalues

#: Grid points in log tau for the normal models.
N_TAU = 2001
#: Nodes over the truncated slope when splitting mu's posterior into Gaussian components.
N_SLOPE = 24
#: Trapezoid step in whitened units, and the log drop required at the faces of the grid.
STEP = 0.35
FACE_DROP = 28.0
MAX_HALF_WIDTH = 12.0
MAX_NODES = 45


@dataclass(frozen=True)
class EnsemblePriors:
    """Priors of the ensemble, on the scale of the effect measure (defaults: RoBMA on SMD).

    mu ~ normal(0, mu_sd); tau ~ inverse-gamma(tau_shape, tau_scale); PET slope ~
    half-normal(pet_sd); PEESE slope ~ half-normal(peese_sd); selection weight omega of
    p-values above the cut-point ~ uniform(0, 1) (a cumulative Dirichlet(1, 1)).
    """

    mu_sd: float = 1.0
    tau_shape: float = 1.0
    tau_scale: float = 0.15
    pet_sd: float = 1.0
    peese_sd: float = 5.0
    tau_lognormal: tuple[float, float] | None = None  # (mu, sigma): replaces the inverse gamma

    def log_tau_density(self, tau: np.ndarray) -> np.ndarray:
        """Log prior density of tau (per unit tau)."""
        if self.tau_lognormal is not None:
            mu, sigma = self.tau_lognormal
            return stats.lognorm.logpdf(tau, sigma, scale=np.exp(mu))
        return stats.invgamma.logpdf(tau, self.tau_shape, scale=self.tau_scale)

    def describe(self) -> dict[str, str]:
        """The priors as printable strings."""
        tau = (
            f"lognormal({self.tau_lognormal[0]:g}, {self.tau_lognormal[1]:g})"
            if self.tau_lognormal
            else f"inverse_gamma({self.tau_shape:g}, {self.tau_scale:g})"
        )
        return {
            "mu": f"normal(0, {self.mu_sd:g})",
            "tau": tau,
            "pet": f"halfnormal({self.pet_sd:g})",
            "peese": f"halfnormal({self.peese_sd:g})",
            "omega": "uniform(0, 1)",
        }


@dataclass
class MarginalFit:
    """Log marginal likelihood and the posterior of mu as a Gaussian mixture."""

    log_ml: float
    mu_means: np.ndarray
    mu_sds: np.ndarray
    mu_weights: np.ndarray
    slope_mean: float = float("nan")  # posterior mean of the PET/PEESE slope (NaN otherwise)

    @property
    def mu_mean(self) -> float:
        return float(np.sum(self.mu_weights * self.mu_means))


def tau_grid(yi: np.ndarray, vi: np.ndarray, priors: EnsemblePriors) -> tuple[np.ndarray, float]:
    """Equally spaced log-tau nodes (and their spacing) covering prior and likelihood mass."""
    if priors.tau_lognormal is not None:
        mu, sigma = priors.tau_lognormal
        lower = mu - 9 * sigma  # lognormal mass below: about 1e-19
    else:
        lower = np.log(priors.tau_scale / 80.0)  # inverse-gamma mass below: exp(-80 shape)-small
    spread = np.std(yi) + np.sqrt(np.max(vi)) + priors.tau_scale
    upper = np.log(60.0 * spread)
    if priors.tau_lognormal is not None:
        upper = max(upper, priors.tau_lognormal[0] + 9 * priors.tau_lognormal[1])
    nodes = np.linspace(lower, upper, N_TAU)
    return nodes, float(nodes[1] - nodes[0])


def normal_marginal(
    yi: np.ndarray,
    vi: np.ndarray,
    priors: EnsemblePriors,
    *,
    effect: bool,
    heterogeneity: bool,
    slope: str | None,
) -> MarginalFit:
    """Exact marginal likelihood of a normal model: slope None (no bias), "pet" or "peese"."""
    columns, sds = [], []
    if effect:
        columns.append(np.ones_like(yi))
        sds.append(priors.mu_sd)
    if slope is not None:
        columns.append(np.sqrt(vi) if slope == "pet" else vi)
        sds.append(priors.pet_sd if slope == "pet" else priors.peese_sd)
    X = np.column_stack(columns) if columns else np.zeros((len(yi), 0))
    prior_var = np.asarray(sds, float) ** 2
    if heterogeneity:
        u, du = tau_grid(yi, vi, priors)
        tau = np.exp(u)
        log_prior = priors.log_tau_density(tau) + u  # density in log tau
    else:
        tau, du, log_prior = np.zeros(1), 1.0, np.zeros(1)
    log_l, post_mean, post_cov = _gaussian_coefficients(yi, vi, X, prior_var, tau**2)
    if slope is not None:
        j = X.shape[1] - 1
        sd_b = np.sqrt(post_cov[:, j, j])
        # half-normal prior: renormalize by P(b > 0) under posterior (and 1/2 under prior).
        log_l = log_l + stats.norm.logcdf(post_mean[:, j] / sd_b) + np.log(2.0)
    log_terms = log_l + log_prior
    log_ml = float(special.logsumexp(log_terms) + np.log(du))
    weights = np.exp(log_terms - special.logsumexp(log_terms))
    slope_mean = float("nan")
    if slope is not None:  # mean of the posterior truncated to b > 0, averaged over tau
        ratio = post_mean[:, -1] / sd_b
        truncated = post_mean[:, -1] + sd_b * np.exp(stats.norm.logpdf(ratio) - stats.norm.logcdf(ratio))
        slope_mean = float(np.sum(weights * truncated))
    if not effect:
        return MarginalFit(log_ml, np.zeros(1), np.zeros(1), np.ones(1), slope_mean)
    keep = weights > 1e-12 * weights.max()
    means, sdevs, comp_w = _mu_components(post_mean[keep], post_cov[keep], weights[keep], slope)
    return MarginalFit(log_ml, means, sdevs, comp_w / comp_w.sum(), slope_mean)


def _gaussian_coefficients(yi, vi, X, prior_var, tau2):
    """log p(y | tau) with coefficients integrated out; posterior means and covariances."""
    var = vi[None, :] + tau2[:, None]  # (T, k)
    w = 1.0 / var
    base = -0.5 * np.sum(np.log(2 * np.pi * var) + w * yi**2, axis=1)
    p = X.shape[1]
    if p == 0:
        return base, np.zeros((len(tau2), 0)), np.zeros((len(tau2), 0, 0))
    xtwx = np.einsum("ki,tk,kj->tij", X, w, X)
    precision = xtwx + np.diag(1.0 / prior_var)[None]
    xtwy = np.einsum("ki,tk,k->ti", X, w, yi)
    cov = np.linalg.inv(precision)
    mean = np.einsum("tij,tj->ti", cov, xtwy)
    logdet_precision = np.linalg.slogdet(precision)[1]
    log_l = base + 0.5 * np.einsum("ti,ti->t", mean, xtwy) - 0.5 * logdet_precision
    log_l = log_l - 0.5 * np.sum(np.log(prior_var))
    return log_l, mean, cov


def _mu_components(mean, cov, weights, slope):
    """mu | y as a Gaussian mixture over tau nodes (and truncated-slope nodes for PET/PEESE)."""
    if slope is None:
        return mean[:, 0], np.sqrt(cov[:, 0, 0]), weights
    m_mu, m_b = mean[:, 0], mean[:, 1]
    c_mm, c_mb, c_bb = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    s_b = np.sqrt(c_bb)
    nodes, node_w = np.polynomial.legendre.leggauss(N_SLOPE)
    u = (nodes + 1) / 2
    low = stats.norm.cdf(-m_b / s_b)
    # slope quantiles of the posterior truncated to b > 0, then mu | b is Gaussian.
    q = np.clip(low[:, None] + u[None, :] * (1 - low[:, None]), 1e-300, 1 - 1e-16)
    b = m_b[:, None] + s_b[:, None] * stats.norm.ppf(q)
    means = m_mu[:, None] + (c_mb / c_bb)[:, None] * (b - m_b[:, None])
    sds = np.broadcast_to(np.sqrt(np.maximum(c_mm - c_mb**2 / c_bb, 0))[:, None], means.shape)
    comp_w = weights[:, None] * node_w[None, :] / 2
    return means.ravel(), sds.ravel(), comp_w.ravel()


def selection_marginal(
    yi: np.ndarray,
    vi: np.ndarray,
    priors: EnsemblePriors,
    *,
    effect: bool,
    heterogeneity: bool,
    cut: float,
) -> MarginalFit:
    """Marginal likelihood of a one-cut-point, one-sided step selection model (grid quadrature)."""
    steps = np.array([cut, 1.0])
    group = interval_index(step_pvalues(yi, vi, "greater"), steps)
    n_above = int(np.sum(group == 1))

    def log_post(theta):  # theta: (N, d) in (mu, log tau, logit omega) order, absent ones dropped
        theta = np.atleast_2d(theta)
        col = 0
        mu = theta[:, col] if effect else np.zeros(len(theta))
        col += effect
        log_tau = theta[:, col] if heterogeneity else None
        col += heterogeneity
        logit_w = theta[:, col]
        omega = special.expit(logit_w)
        tau2 = np.exp(2 * log_tau) if heterogeneity else np.zeros(len(theta))
        log_w, log_1mw = special.log_expit(logit_w), special.log_expit(-logit_w)
        out = (n_above + 1) * log_w + log_1mw  # selection weights + uniform prior's Jacobian
        out = out + _selected_normal_loglik(yi, vi, mu, tau2, omega, steps)
        if effect:
            out = out + stats.norm.logpdf(mu, 0, priors.mu_sd)
        if heterogeneity:
            out = out + priors.log_tau_density(np.exp(log_tau)) + log_tau
        return out

    start = []
    if effect:
        start.append(float(np.average(yi, weights=1 / vi)))
    if heterogeneity:
        start.append(np.log(max(np.std(yi), 0.05)))
    start.append(0.0)
    log_ml, points, weights = grid_integrate(log_post, np.array(start))
    if not effect:
        return MarginalFit(log_ml, np.zeros(1), np.zeros(1), np.ones(1))
    keep = weights > 1e-14 * weights.max()
    return MarginalFit(log_ml, points[keep, 0], np.zeros(keep.sum()), weights[keep] / weights[keep].sum())


def _selected_normal_loglik(yi, vi, mu, tau2, omega, steps, chunk: int = 512) -> np.ndarray:
    """sum_i log N(y_i; mu, v_i + tau2) - log A_i for many (mu, tau2, omega) at once."""
    out = np.empty(len(mu))
    for start in range(0, len(mu), chunk):
        sl = slice(start, start + chunk)
        var = vi[None, :] + tau2[sl, None]
        mean = np.broadcast_to(mu[sl, None], var.shape)
        probs = interval_probabilities(mean, var, vi, steps, "greater")
        expected = probs[..., 0] + omega[sl, None] * probs[..., 1]
        normal = -0.5 * (np.log(2 * np.pi * var) + (yi[None, :] - mean) ** 2 / var)
        out[sl] = np.sum(normal - np.log(expected), axis=1)
    return out


def grid_integrate(log_density, start: np.ndarray):
    """log of the integral of ``exp(log_density)`` over R^d, d <= 3, on a whitened trapezoid grid.

    The grid is centred at the mode and rotated along the eigenvectors of the Hessian there;
    along each axis it extends until the density has dropped by ``FACE_DROP`` (searched in
    half-unit steps, at most ``MAX_HALF_WIDTH`` units), with spacing ``STEP`` (coarsened so that no
    axis has more than ``MAX_NODES`` nodes). Returns the log integral, the grid points (N, d)
    and their normalized posterior weights.
    """
    d = start.size
    found = optimize.minimize(lambda x: -log_density(x)[0], start, method="BFGS")
    mode = found.x
    top = log_density(mode)[0]
    eigval, eigvec = np.linalg.eigh(_hessian(lambda x: -log_density(x)[0], mode))
    L = eigvec / np.sqrt(np.maximum(eigval, 1e-6))  # columns: whitened axes
    probe = np.arange(0.5, MAX_HALF_WIDTH + 1e-9, 0.5)
    axes = []
    for j in range(d):
        extent = []
        for sign in (-1.0, 1.0):
            values = log_density(mode + sign * probe[:, None] * L[:, j][None, :])
            below = np.nonzero(values < top - FACE_DROP)[0]
            extent.append(probe[below[0]] if below.size else probe[-1])
        n = min(MAX_NODES, int(np.ceil((extent[0] + extent[1]) / STEP)) + 1)
        axes.append(np.linspace(-extent[0], extent[1], n))
    z = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
    values = log_density(mode + z @ L.T)
    cell = float(np.sum([np.log(a[1] - a[0]) for a in axes]))
    log_z = float(special.logsumexp(values) + cell + np.log(abs(np.linalg.det(L))))
    weights = np.exp(values - np.max(values))
    return log_z, mode + z @ L.T, weights / weights.sum()


def _hessian(func, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    n = x.size
    H = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.zeros(n), np.zeros(n)
            ei[i], ej[j] = h, h
            H[i, j] = H[j, i] = (
                func(x + ei + ej) - func(x + ei - ej) - func(x - ei + ej) + func(x - ei - ej)
            ) / (4 * h * h)
    return H
