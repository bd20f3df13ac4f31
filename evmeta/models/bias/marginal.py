"""Marginal likelihoods of the bias-ensemble models, by exact integration (no sampling).

* Normal models (no bias, PET, PEESE; with or without effect and heterogeneity): given tau the
  coefficients (mu, and the PET/PEESE slope b) have a Gaussian prior and likelihood, so they
  integrate out in closed form; a half-normal slope adds the exact factor
  ``P(b > 0 | y, tau) / P(b > 0)``. tau is integrated by the trapezoid rule in ``log tau`` on a
  dense grid (the integrand is smooth and decays double-exponentially at the lower end).
* Step-function selection models: the selection weight enters the likelihood through the
  normalizing constants ``A_i``, so (mu, log tau, probit omega) are integrated numerically by
  the trapezoid rule on a lattice in whitened coordinates (centred at the posterior mode,
  rotated and scaled by the Hessian there), filled outwards from the mode to wherever the
  posterior is within ``exp(-DROP)`` of its maximum: a box probed along the whitened axes
  alone misses mass off those axes (omega near 1 at another tau), up to 3e-3 of the marginal
  likelihood.

Each function returns the log marginal likelihood and the posterior of mu as a Gaussian mixture
(means, sds, weights; sd 0 for point masses), which the ensemble combines into the model-averaged
posterior.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats

from evmeta.errors import ModelError
from evmeta.models.bias.step_likelihood import interval_index, step_pvalues

#: Grid points in log tau for the normal models.
N_TAU = 2001
#: Nodes over the truncated slope when splitting mu's posterior into Gaussian components.
N_SLOPE = 24
#: Lattice spacing in whitened units; log drop below the maximum beyond which the lattice is
#: not extended (exp(-28) ~ 7e-13); largest relative difference allowed between the trapezoid
#: sums at spacings STEP and 2 STEP before the spacing is refined (at most MAX_REFINE times).
STEP = 0.5
DROP = 28.0
REFINE_TOL = 1e-3
MAX_REFINE = 2
#: Most lattice points of one integral (a few seconds for k = 100).
MAX_POINTS = 400_000
#: Most mixture components kept per model and quantity (adjacent components are merged by
#: their first two moments beyond it).
MAX_COMPONENTS = 4000


@dataclass(frozen=True)
class EnsemblePriors:
    """Priors of the ensemble, on the scale of the effect measure (defaults: RoBMA on SMD).

    mu ~ normal(0, mu_sd); tau ~ inverse-gamma(tau_shape, tau_scale); PET slope ~
    half-normal(pet_sd); PEESE slope ~ half-normal(peese_sd); selection weight omega of
    p-values above the cut-point ~ uniform(0, 1) (a cumulative Dirichlet(1, 1)); each
    moderator coefficient (a level's deviation from mu, or the slope per SD of a numeric
    moderator) ~ normal(0, moderator_sd) (RoBMA 3's default, 0.25); in multilevel models the
    share of tau^2 between studies rho ~ beta(1, 1) (RoBMA's ``priors_hierarchical``).
    """

    mu_sd: float = 1.0
    tau_shape: float = 1.0
    tau_scale: float = 0.15
    pet_sd: float = 1.0
    peese_sd: float = 5.0
    tau_lognormal: tuple[float, float] | None = None  # (mu, sigma): replaces the inverse gamma
    moderator_sd: float = 0.25

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
            "moderators": f"normal(0, {self.moderator_sd:g})",
            "rho": "beta(1, 1)",
        }


@dataclass
class MarginalFit:
    """Log marginal likelihood and the posterior of mu as a Gaussian mixture."""

    log_ml: float
    mu_means: np.ndarray
    mu_sds: np.ndarray
    mu_weights: np.ndarray
    slope_mean: float = float("nan")  # posterior mean of the PET/PEESE slope (NaN otherwise)
    #: Posterior of each level's mean of a categorical moderator, (means, sds, weights) per level
    #: (empty without one).
    level_components: list = field(default_factory=list)
    #: Measured convergence of the quadrature (log scale; 0 where the integral is closed form
    #: up to the fixed tau grid).
    error: float = 0.0

    @property
    def mu_mean(self) -> float:
        return float(np.sum(self.mu_weights * self.mu_means))


def merge_components(means, sds, weights, most: int = MAX_COMPONENTS):
    """At most ``most`` components: runs of adjacent ones merged keeping their weight, mean and
    variance (the components come in node order, so neighbours are alike)."""
    if len(means) <= most:
        return means, sds, weights
    groups = np.arange(len(means)) * most // len(means)
    w = np.bincount(groups, weights)
    safe = np.where(w > 0, w, 1.0)
    m = np.bincount(groups, weights * means) / safe
    second = np.bincount(groups, weights * (sds**2 + means**2)) / safe
    keep = w > 0
    return m[keep], np.sqrt(np.maximum(second - m**2, 0.0))[keep], w[keep]


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
    """Marginal likelihood of a one-cut-point, one-sided step selection model (grid quadrature).

    The selection weight is integrated as ``z = probit(omega)``. The uniform prior leaves mass
    at omega near 1 (no selection) whenever the data allow it; in ``z`` that tail decays like a
    Gaussian, in ``logit(omega)`` only exponentially (a ridge some 30 units long to cover).
    """
    steps = np.array([cut, 1.0])
    n_above = int(np.sum(interval_index(step_pvalues(yi, vi, "greater"), steps) == 1))
    cut_y = np.sqrt(vi) * -special.ndtri(cut)  # p_i <= cut exactly when y_i >= cut_y[i]

    def log_post(theta: np.ndarray) -> np.ndarray:
        # theta: (N, d) in (mu, log tau, probit omega) order, absent ones dropped
        theta = np.atleast_2d(theta)
        col = 0
        mu = theta[:, col] if effect else np.zeros(len(theta))
        col += effect
        log_tau = theta[:, col] if heterogeneity else np.full(len(theta), -np.inf)  # tau = 0
        col += heterogeneity
        z = theta[:, col]
        tau2 = np.exp(2 * log_tau)
        # omega^n_above from the weights of the published p-values; phi(z): the uniform
        # prior's Jacobian.
        out = n_above * special.log_ndtr(z) - 0.5 * (z**2 + np.log(2 * np.pi))
        out = out + _selected_normal_loglik(yi, vi, cut_y, mu, tau2, z)
        if effect:
            out = out - 0.5 * (mu / priors.mu_sd) ** 2 - np.log(priors.mu_sd * np.sqrt(2 * np.pi))
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


def _selected_normal_loglik(yi, vi, cut_y, mu, tau2, z) -> np.ndarray:
    """sum_i log N(y_i; mu, v_i + tau2) - log A_i for many (mu, tau2, z = probit omega) at once.

    ``A_i = omega + (1 - omega) P(y_i >= cut_y[i])``: a sum of two non-negative terms, so it
    keeps its precision when omega and that probability are both tiny.
    """
    out = np.empty(len(mu))
    chunk = max(1, 2**18 // len(yi))  # rows per block: a few MB of temporaries
    omega, one_minus = special.ndtr(z), special.ndtr(-z)
    for start in range(0, len(mu), chunk):
        sl = slice(start, start + chunk)
        var = vi[None, :] + tau2[sl, None]
        resid = yi[None, :] - mu[sl, None]
        significant = special.ndtr((mu[sl, None] - cut_y[None, :]) / np.sqrt(var))
        expected = omega[sl, None] + one_minus[sl, None] * significant
        out[sl] = -0.5 * np.sum(np.log(2 * np.pi * var) + resid**2 / var, axis=1) - np.sum(
            np.log(expected), axis=1
        )
    return out


def grid_integrate(
    log_density: Callable[[np.ndarray], np.ndarray], start: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """log of the integral of ``exp(log_density)`` over R^d, d <= 3, on a whitened trapezoid lattice.

    The lattice is centred at the mode and rotated and scaled by the Hessian there (spacing
    ``STEP`` in whitened units). It is filled outwards from the mode: every neighbour of a
    point whose log density is within ``DROP`` of the maximum is evaluated too, so the
    lattice follows the posterior wherever it goes (a curved ridge or a long tail off the
    whitened axes included) and stops one layer beyond the ``exp(-DROP)`` contour. The
    trapezoid rule is checked against the same sum on the lattice of twice the spacing; when
    they differ by more than ``REFINE_TOL`` (relative) the spacing is divided by sqrt(2)
    (the error of the trapezoid rule on a smooth integrand falls exponentially with the
    spacing). Returns the log integral, the grid points (N, d) and their normalized
    posterior weights.

    Raises
    ------
    ModelError
        When the posterior needs more than ``MAX_POINTS`` lattice points (it is then far from
        any Gaussian shape, e.g. improper).
    """
    d = start.size
    found = optimize.minimize(lambda x: -log_density(x)[0], start, method="BFGS")
    mode = found.x
    eigval, eigvec = np.linalg.eigh(_hessian(lambda x: -log_density(x)[0], mode))
    L = eigvec / np.sqrt(np.maximum(eigval, 1e-6))  # columns: whitened axes
    log_det = float(np.log(abs(np.linalg.det(L))))
    step = STEP
    result: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(MAX_REFINE + 1):
        lattice = _fill_lattice(log_density, mode, L * step)
        if lattice is None:  # too many points: keep the coarser answer when there is one
            break
        index, values = lattice
        log_z = float(special.logsumexp(values) + d * np.log(step) + log_det)
        coarse = np.all(index % 2 == 0, axis=1)
        log_z_coarse = float(special.logsumexp(values[coarse]) + d * np.log(2 * step) + log_det)
        result = (log_z, mode + index @ (L * step).T, values)
        if abs(np.expm1(log_z_coarse - log_z)) <= REFINE_TOL:
            break
        step /= np.sqrt(2.0)
    if result is None:  # the first lattice was already too large
        raise ModelError(
            f"the posterior of a selection model needs more than {MAX_POINTS:,} grid points; "
            "it is too far from a Gaussian shape to integrate"
        )
    log_z, points, values = result
    weights = np.exp(values - np.max(values))
    return log_z, points, weights / weights.sum()


def _fill_lattice(
    log_density: Callable[[np.ndarray], np.ndarray], mode: np.ndarray, basis: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer lattice points ``n`` (positions ``mode + basis @ n``) reached from the mode through
    neighbours of points within ``DROP`` of the largest log density, and their log densities;
    None beyond ``MAX_POINTS``."""
    d = mode.size
    moves = np.vstack([np.eye(d, dtype=np.int64), -np.eye(d, dtype=np.int64)])
    # Visited points in a dense boolean box (grown when the fill reaches its edge): numpy
    # indexing instead of a set of tuples.
    low = np.full(d, -8, dtype=np.int64)
    visited = np.zeros((17,) * d, dtype=bool)
    visited[(8,) * d] = True
    frontier = np.zeros((1, d), dtype=np.int64)
    top = float(log_density(mode)[0])
    indices, values = [frontier], [np.array([top])]
    count = 1
    while len(frontier):
        candidates = (frontier[:, None, :] + moves[None]).reshape(-1, d)
        below, above = candidates.min(axis=0), candidates.max(axis=0)
        shape = np.array(visited.shape)
        if np.any(below < low) or np.any(above >= low + shape):
            new_low = np.minimum(low, below - shape // 2)
            new_high = np.maximum(low + shape, above + 1 + shape // 2)
            grown = np.zeros(tuple(new_high - new_low), dtype=bool)
            grown[tuple(slice(a, a + s) for a, s in zip(low - new_low, shape, strict=True))] = visited
            visited, low = grown, new_low
        flat = np.unique(np.ravel_multi_index(tuple((candidates - low).T), visited.shape))
        flat = flat[~visited.flat[flat]]
        if not flat.size:
            break
        visited.flat[flat] = True
        fresh = np.column_stack(np.unravel_index(flat, visited.shape)) + low
        count += len(fresh)
        if count > MAX_POINTS:
            return None
        level = log_density(mode + fresh @ basis.T)
        indices.append(fresh)
        values.append(level)
        top = max(top, float(np.max(level)))
        frontier = fresh[level > top - DROP]
    return np.concatenate(indices), np.concatenate(values)


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
