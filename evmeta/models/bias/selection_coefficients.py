"""The step-selection likelihood integrated over its mean structure at given (tau, omega).

Given the heterogeneity ``tau`` and the selection weight ``omega = Phi(z)``, comparison ``i``'s
log-likelihood in the one-cut step model depends on its mean ``m_i`` alone,

``l_i(m) = log N(y_i; m, s_i^2) - log A_i(m)``, ``A_i(m) = omega + (1 - omega) Phi(u)``,
``u = (m - c_i) / s_i``, ``s_i^2 = v_i + tau^2``,

and it is strictly concave in ``m``: ``d^2/dm^2 (-log A_i) = r (u + r) / s_i^2`` with
``r = (1 - omega) phi(u) / A_i``, which lies below the inverse Mills ratio ``phi(u) / Phi(u)``,
and ``R (u + R) < 1`` for that ratio ``R``, so ``-d^2 l_i / dm^2 = (1 - r (u + r)) / s_i^2 > 0``.
The mean is linear in the coefficients (``m_i = t_j(i) + gamma' x_i`` with a categorical
moderator, ``t_j = mu + beta_j`` being level ``j``'s mean; ``m_i = mu + gamma' x_i`` without)
and their priors are Gaussian, so the coefficients' posterior given (tau, omega) is
log-concave and smooth, close to a Gaussian. It is integrated in two nested steps:

* the *global* coefficients ``a = (gamma, mu)`` (numeric slopes, effect) by a product
  Gauss-Hermite rule of ``order`` nodes per coefficient, centred at the conditional mode of all
  coefficients (Newton's method, vectorized over the (tau, omega) nodes) and scaled by the
  Cholesky factor of the conditional covariance of ``a`` there, the level means integrated
  out (the inverse of the Schur complement of their block of the Hessian): adaptive
  Gauss-Hermite quadrature (Naylor & Smith 1982; Liu & Pierce 1994);
* with a categorical moderator, given ``a`` the comparisons of different levels are
  independent (the deviations are independent a priori), so each level's mean is a 1-D
  integral: the trapezoid rule on a grid shared by the ``mu`` nodes of one slope node (one
  likelihood evaluation serves every ``mu`` node; the prior ``N(t_j; mu, s)`` is applied per
  node), spaced ``step`` conditional SDs and reaching ``span`` SDs beyond the conditional
  centres of every ``mu`` node.

The accuracy of both rules is not assumed: the caller compares the result with that of a
higher order and a finer grid (:mod:`evmeta.models.bias.moderated_selection`).

References
----------
Naylor JC, Smith AFM (1982). Applications of a method for the efficient computation of
posterior distributions. Appl Stat 31:214-225. Liu Q, Pierce DA (1994). A note on
Gauss-Hermite quadrature. Biometrika 81:624-629.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import special

LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
#: Newton iterations for the conditional mode (quadratic convergence from the Gaussian start
#: takes a handful), and the step below which it has converged.
NEWTON_STEPS = 50
NEWTON_TOL = 1e-10
#: Elements of the largest temporary array of one block of (tau, omega) nodes.
BLOCK_ELEMENTS = 2_000_000


@dataclass(frozen=True, eq=False)
class MeanStructure:
    """The data and the mean structure of one selection model.

    ``x`` (k, q) are the included standardized numeric moderators, ``level_of`` the level of
    each comparison (``n_levels = 0`` without the categorical moderator), ``cut_y`` the effect
    above which a comparison is significant.
    """

    yi: np.ndarray
    vi: np.ndarray
    cut_y: np.ndarray
    x: np.ndarray
    level_of: np.ndarray
    n_levels: int
    effect: bool
    mu_sd: float
    moderator_sd: float

    @property
    def q(self) -> int:
        return self.x.shape[1]

    @property
    def r(self) -> int:
        """Number of global coefficients (slopes, then mu)."""
        return self.q + int(self.effect)


@dataclass(frozen=True)
class InnerRule:
    """Gauss-Hermite ``order`` per global coefficient; level grids spaced ``step`` conditional
    SDs, reaching ``span`` SDs beyond the conditional centres."""

    order: int
    step: float
    span: float

    def refined(self, order_step: int) -> InnerRule:
        return InnerRule(self.order + order_step, self.step / np.sqrt(2.0), self.span)


def comparison_loglik(y, cut_y, m, var, omega, one_minus):
    """``l_i(m)`` elementwise (all arguments broadcast)."""
    significant = special.ndtr((m - cut_y) / np.sqrt(var))
    return -0.5 * (np.log(2 * np.pi * var) + (y - m) ** 2 / var) - np.log(omega + one_minus * significant)


def _loglik_derivatives(model: MeanStructure, m, var, z):
    """Sum of ``l_i``, ``dl_i/dm`` and ``w_i = -d^2 l_i / dm^2 > 0`` at means ``m`` (B, k)."""
    sd = np.sqrt(var)
    u = (m - model.cut_y) / sd
    omega, one_minus = special.ndtr(z)[:, None], special.ndtr(-z)[:, None]
    a = omega + one_minus * special.ndtr(u)
    resid = model.yi - m
    value = np.sum(-0.5 * (np.log(2 * np.pi * var) + resid**2 / var) - np.log(a), axis=1)
    r = one_minus * np.exp(-0.5 * u**2 - LOG_SQRT_2PI) / a
    # max(., 0): the bound r (u + r) < 1 holds exactly; guard the last bits of rounding
    return value, resid / var - r / sd, np.maximum(1 - r * (u + r), 1e-12) / var


class _Design:
    """Linear maps between the coefficients ``[a (r), t (J)]`` and the means, and the prior
    precision in blocks ``P_aa`` (r, r), ``P_ta`` (J, r) and the diagonal ``p_tt`` (J)."""

    def __init__(self, model: MeanStructure):
        k, q, J = len(model.yi), model.q, model.n_levels
        self.xa = np.column_stack([model.x] + ([np.full(k, float(J == 0))] if model.effect else []))
        self.xa = self.xa.reshape(k, model.r)
        self.levels = np.zeros((k, J))
        if J:
            self.levels[np.arange(k), model.level_of] = 1.0
        s2 = model.moderator_sd**2
        diag = [1 / s2] * q + ([1 / model.mu_sd**2 + J / s2] if model.effect else [])
        self.p_aa = np.diag(diag).reshape(model.r, model.r)
        self.p_ta = np.zeros((J, model.r))
        if model.effect and J:
            self.p_ta[:, q] = -1 / s2
        self.p_tt = np.full(J, 1 / s2)

    def means(self, theta, r):
        return theta[:, :r] @ self.xa.T + theta[:, r:] @ self.levels.T

    def log_prior(self, theta, r):
        a, t = theta[:, :r], theta[:, r:]
        quad = np.einsum("bi,ij,bj->b", a, self.p_aa, a) + 2 * np.einsum("bj,ji,bi->b", t, self.p_ta, a)
        return -0.5 * (quad + np.sum(self.p_tt * t**2, axis=1))


def conditional_mode(model: MeanStructure, var: np.ndarray, z: np.ndarray):
    """Mode of all coefficients at every (tau, z) node (rows of ``var`` (B, k), ``z`` (B)) and
    the blocks of the Hessian of -log density there: ``(theta, S, H_ta, d)``, ``S`` the Schur
    complement (the conditional precision of ``a`` with the level means integrated out),
    ``H_ta`` (B, J, r) and ``d`` (B, J) the level block (diagonal: levels are independent
    given ``a``)."""
    design, r = _Design(model), model.r
    theta = np.zeros((len(z), r + model.n_levels))

    def objective(th):
        value, grad, w = _loglik_derivatives(model, design.means(th, r), var, z)
        return value + design.log_prior(th, r), grad, w

    f, grad_m, w = objective(theta)
    for _ in range(NEWTON_STEPS):
        step = _newton_step(design, theta, r, grad_m, w)
        alpha = np.ones(len(z))
        for _ in range(40):  # backtracking: the density is concave, a full step rarely fails
            trial = theta + alpha[:, None] * step
            f_trial, grad_trial, w_trial = objective(trial)
            worse = f_trial < f - 1e-12 * np.abs(f)
            if not worse.any():
                break
            alpha[worse] /= 2
        theta, f, grad_m, w = trial, f_trial, grad_trial, w_trial
        if np.max(np.abs(alpha[:, None] * step), initial=0.0) < NEWTON_TOL:
            break
    s, h_ta, d = _hessian_blocks(design, w)
    return theta, s, h_ta, d


def _hessian_blocks(design: _Design, w):
    h_aa = np.einsum("ki,bk,kj->bij", design.xa, w, design.xa) + design.p_aa
    h_ta = np.einsum("kj,bk,ki->bji", design.levels, w, design.xa) + design.p_ta
    d = w @ design.levels + design.p_tt
    s = h_aa - np.einsum("bji,bj,bjl->bil", h_ta, 1 / d, h_ta)
    return s, h_ta, d


def _newton_step(design: _Design, theta, r, grad_m, w):
    """Solve ``H step = gradient`` through the Schur complement of the diagonal level block."""
    a, t = theta[:, :r], theta[:, r:]
    g_a = grad_m @ design.xa - a @ design.p_aa - t @ design.p_ta
    g_t = grad_m @ design.levels - a @ design.p_ta.T - design.p_tt * t
    s, h_ta, d = _hessian_blocks(design, w)
    if r:
        rhs = g_a - np.einsum("bji,bj->bi", h_ta, g_t / d)
        step_a = np.linalg.solve(s, rhs[..., None])[..., 0]
    else:
        step_a = g_a
    step_t = (g_t - np.einsum("bji,bi->bj", h_ta, step_a)) / d
    return np.concatenate([step_a, step_t], axis=1)


def hermite_rule(order: int, dims: int):
    """Product Gauss-Hermite nodes (N, dims) and log weights for ``integral f(u) du`` over R^dims
    (the weight ``exp(-u^2/2)`` divided back in)."""
    if dims == 0:
        return np.zeros((1, 0)), np.zeros(1)
    x, w = np.polynomial.hermite_e.hermegauss(order)
    log_w = np.log(w) + 0.5 * x**2
    nodes = np.array(list(itertools.product(x, repeat=dims)))
    return nodes, np.array([sum(c) for c in itertools.product(log_w, repeat=dims)])


@dataclass(frozen=True, eq=False)
class InnerNodes:
    """The inner rule at every (tau, omega) node: slopes ``gamma`` (B, G, q), effects ``mu``
    (B, G, M), the log weight of each (slope, effect) node with their prior densities, and per
    level the first node ``low`` and spacing ``h`` (B, G, J) of its grid of ``counts[j]`` means."""

    gamma: np.ndarray
    mu: np.ndarray
    log_weight: np.ndarray
    low: np.ndarray
    h: np.ndarray
    counts: tuple[int, ...]

    @property
    def per_outer(self) -> int:
        """Nodes of the rule per (tau, omega) node."""
        return self.mu.shape[1] * self.mu.shape[2]


def inner_nodes(model: MeanStructure, rule: InnerRule, var: np.ndarray, z: np.ndarray) -> InnerNodes:
    """Centre and scale the inner rule at every (tau, z) node (module docstring)."""
    theta, s, h_ta, d = conditional_mode(model, var, z)
    q, r, B = model.q, model.r, len(z)
    chol = np.linalg.cholesky(np.linalg.inv(s)) if r else np.zeros((B, 0, 0))
    u_g, log_w_g = hermite_rule(rule.order, q)
    u_m, log_w_m = hermite_rule(rule.order, 1) if model.effect else (np.zeros((1, 1)), np.zeros(1))
    gamma_hat = theta[:, :q]
    gamma = gamma_hat[:, None, :] + np.einsum("bij,gj->bgi", chol[:, :q, :q], u_g)
    log_weight = log_w_g[None, :, None] + log_w_m[None, None, :]
    log_weight = log_weight + np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)[:, None, None]
    sd = model.moderator_sd
    log_weight = log_weight + np.sum(-0.5 * (gamma / sd) ** 2 - np.log(sd) - LOG_SQRT_2PI, axis=2)[..., None]
    if model.effect:  # mu = mu_hat + L_mg u_g + L_mm u_m (the Cholesky rows of mu, last)
        mu = theta[:, q, None, None] + np.einsum("bj,gj->bg", chol[:, q, :q], u_g)[..., None]
        mu = mu + chol[:, q, q, None, None] * u_m[None, None, :, 0]
        log_weight = log_weight - 0.5 * (mu / model.mu_sd) ** 2 - np.log(model.mu_sd) - LOG_SQRT_2PI
    else:
        mu = np.zeros((B, len(u_g), 1))
    low, h, counts = _level_grids(model, rule, theta, h_ta, d, gamma, mu)
    return InnerNodes(gamma, mu, log_weight, low, h, counts)


def _level_grids(model, rule, theta, h_ta, d, gamma, mu):
    """Each level's grid at every slope node: from the smallest to the largest conditional
    centre over the ``mu`` nodes, ``span`` conditional SDs beyond; one node count per level."""
    J, q, r = model.n_levels, model.q, model.r
    B, G = gamma.shape[:2]
    if not J:
        return np.zeros((B, G, 0)), np.zeros((B, G, 0)), ()
    delta = np.einsum("bji,bgi->bgj", h_ta[:, :, :q], gamma - theta[:, None, :q])[:, :, None, :]
    if model.effect:
        delta = delta + h_ta[:, None, None, :, q] * (mu - theta[:, q, None, None])[..., None]
    centre = theta[:, None, None, r:] - delta / d[:, None, None, :]  # (B, G, M, J)
    sd = (1 / np.sqrt(d))[:, None, :]
    low = centre.min(axis=2) - rule.span * sd
    high = centre.max(axis=2) + rule.span * sd
    counts = tuple(int(c) + 1 for c in np.ceil(np.max((high - low) / (rule.step * sd), axis=(0, 1))))
    h = (high - low) / (np.array(counts) - 1)
    return low, h, counts


def block_log_integrand(model: MeanStructure, nodes: InnerNodes, var, z, rows: slice, moments: bool = False):
    """log integrand at the inner nodes of the (tau, z) nodes ``rows``: ``(total, edge, level
    moments)``. ``total`` (b, G, M) includes the inner weights and priors; ``edge`` (b, G, M)
    is the largest share (log) of any level integral at the two ends of its grid; ``moments``
    (b, G, M, J, 2) the conditional mean and variance of each level's mean (when asked)."""
    gamma, mu = nodes.gamma[rows], nodes.mu[rows]
    shift = gamma @ model.x.T  # (b, G, k)
    var = var[rows][:, None, None, :]
    omega, one_minus = special.ndtr(z[rows])[:, None, None, None], special.ndtr(-z[rows])[:, None, None, None]
    total = nodes.log_weight[rows].copy()
    edge = np.full(total.shape, -np.inf)
    if not model.n_levels:
        means = mu[..., None] + shift[:, :, None, :]  # (b, G, M, k)
        total += np.sum(comparison_loglik(model.yi, model.cut_y, means, var, omega, one_minus), axis=3)
        return total, edge, None
    found = np.zeros((*total.shape, model.n_levels, 2)) if moments else None
    s = model.moderator_sd
    for j, count in enumerate(nodes.counts):
        sel = model.level_of == j
        t = nodes.low[rows][:, :, j, None] + nodes.h[rows][:, :, j, None] * np.arange(count)  # (b, G, T)
        means = t[..., None] + shift[:, :, None, sel]
        g = np.sum(
            comparison_loglik(model.yi[sel], model.cut_y[sel], means, var[..., sel], omega, one_minus), axis=3
        )
        top = g.max(axis=2, keepdims=True)
        scaled = np.exp(g - top)
        prior = np.exp(-0.5 * ((t[..., None] - mu[:, :, None, :]) / s) ** 2) / (s * np.sqrt(2 * np.pi))
        mass = np.einsum("bgt,bgtm->bgm", scaled, prior)
        with np.errstate(divide="ignore"):
            log_i = np.log(mass) + top + np.log(nodes.h[rows][:, :, j, None])
            ends = np.log(scaled[:, :, [0, -1], None] * prior[:, :, [0, -1], :]).max(axis=2)
        total += log_i
        edge = np.maximum(edge, ends + top + np.log(nodes.h[rows][:, :, j, None]) - log_i)
        if found is not None:
            safe = np.where(mass > 0, mass, 1.0)
            mean = np.einsum("bgt,bgtm->bgm", scaled * t, prior) / safe
            second = np.einsum("bgt,bgtm->bgm", scaled * t**2, prior) / safe
            found[..., j, 0], found[..., j, 1] = mean, np.maximum(second - mean**2, 0.0)
    return total, edge, found


def block_rows(model: MeanStructure, nodes: InnerNodes) -> int:
    """(tau, omega) nodes per block, so that the largest temporary has ``BLOCK_ELEMENTS``."""
    if model.n_levels:
        sizes = np.bincount(model.level_of, minlength=model.n_levels)
        widest = max(c * max(int(n), nodes.mu.shape[2]) for c, n in zip(nodes.counts, sizes, strict=True))
    else:
        widest = len(model.yi)
    return max(1, BLOCK_ELEMENTS // (nodes.per_outer * widest))


def evaluations(model: MeanStructure, nodes: InnerNodes, n_outer: int) -> int:
    """Comparison-likelihood evaluations of one pass over the grid."""
    if model.n_levels:
        sizes = np.bincount(model.level_of, minlength=model.n_levels)
        per_slope = sum(c * int(n) for c, n in zip(nodes.counts, sizes, strict=True))
        return n_outer * nodes.gamma.shape[1] * per_slope
    return n_outer * nodes.per_outer * len(model.yi)
