"""Marginal likelihood of the ensemble's step-selection model with moderators, by nested
quadrature.

The one-sided step model publishes a comparison whose p-value is above the cut-point with
relative probability ``omega``; its likelihood is not Gaussian in the coefficients. The
integral is nested so that it stays exact up to the convergence of smooth quadratures:

* outer: a tensor trapezoid grid over ``log tau`` (heterogeneity models) and
  ``z = probit(omega)``;
* inner, at every outer node: the mean structure (the numeric slopes ``gamma``, the effect
  ``mu`` and, with a categorical moderator, every level's mean ``t_j = mu + beta_j``) by
  adaptive Gauss-Hermite quadrature over ``(gamma, mu)`` centred at their conditional mode,
  and given those, one trapezoid integral per level (the likelihood factorizes over the levels
  of the categorical moderator): :mod:`evmeta.models.bias.selection_coefficients`.

The outer axes are centred at the joint posterior mode with spacing ``STEP`` conditional
posterior SDs (from the Hessian there), start at ``SPAN`` marginal SDs either side and are
extended until the log integrand on each face of the grid (and at both ends of every level's
grid) is ``DROP`` below the maximum, so no mass above ``exp(-DROP)`` lies outside. Convergence
is measured: the whole computation is repeated with every spacing divided by sqrt(2) and
``GH_ORDER_STEP`` more Gauss-Hermite nodes per coefficient, until the log marginal likelihood
changes by less than ``TOL`` (at most ``MAX_REFINE`` times); the last change is returned as
``error``. The trapezoid error on smooth integrands falls like ``exp(-c / h^2)`` and the
Gauss-Hermite error geometrically in the order, so the final value is far more accurate than
that change.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from evmeta.errors import ModelError
from evmeta.models.bias.marginal import EnsemblePriors, MarginalFit, merge_components
from evmeta.models.bias.moderator_terms import ModeratorTerms
from evmeta.models.bias.selection_coefficients import (
    InnerRule,
    MeanStructure,
    block_log_integrand,
    block_rows,
    evaluations,
    inner_nodes,
)
from evmeta.models.bias.step_likelihood import interval_index, step_pvalues

STEP = 0.7
#: The first lattice points: all within this many whitened SDs of the mode.
START_RADIUS = 3.5
#: Reach of the level grids beyond the conditional centres, in conditional SDs (the
#: Gaussian's end term is then about exp(-25) of its peak, inside ``DROP``).
LEVEL_SPAN = 7.0
DROP = 20.0
TOL = 1e-6
MAX_REFINE = 2
MAX_GROW = 10
MAX_OUTER_NODES = 200_000
#: Gauss-Hermite nodes per slope and effect, and the nodes added at each refinement.
GH_ORDER = 8
GH_ORDER_STEP = 4
#: Most comparison-likelihood evaluations of one pass over the grid (about a minute).
MAX_EVALUATIONS = 3_000_000_000
LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


class _Problem:
    """The data, priors and layout of one model: parameters ``[mu] [log tau] z gamma.. [t_j..]``."""

    def __init__(self, yi, vi, priors, terms, included, effect, heterogeneity, cut):
        self.yi, self.vi, self.priors = yi, vi, priors
        self.effect, self.heterogeneity = effect, heterogeneity
        self.n_above = int(np.sum(interval_index(step_pvalues(yi, vi, "greater"), np.array([cut, 1.0])) == 1))
        self.cut_y = np.sqrt(vi) * -special.ndtri(cut)  # p_i <= cut exactly when y_i >= cut_y[i]
        self.factor = terms is not None and terms.factor is not None and terms.factor in included
        self.level_of = terms.level_of if self.factor else np.zeros(len(yi), dtype=int)
        self.n_levels = len(terms.levels) if self.factor else 0
        picked = [q for q, name in enumerate(terms.numeric_names) if name in included] if terms else []
        self.x = terms.numeric[:, picked] if picked else np.zeros((len(yi), 0))
        self.q = self.x.shape[1]
        # positions in the full parameter vector
        self.i_mu = 0 if effect else None
        self.i_tau = int(effect) if heterogeneity else None
        self.i_z = int(effect) + int(heterogeneity)
        self.i_gamma = list(range(self.i_z + 1, self.i_z + 1 + self.q))
        self.i_t = list(range(self.i_z + 1 + self.q, self.i_z + 1 + self.q + self.n_levels))
        self.outer = ([self.i_tau] if heterogeneity else []) + [self.i_z]
        self.dim = self.i_z + 1 + self.q + self.n_levels
        self.means = MeanStructure(
            yi,
            vi,
            self.cut_y,
            self.x,
            self.level_of,
            self.n_levels,
            effect,
            priors.mu_sd,
            priors.moderator_sd,
        )

    def study_loglik(self, means, var, z):
        """sum over the last axis of log N(y; mean, var) - log A (the step model's density)."""
        omega, one_minus = special.ndtr(z), special.ndtr(-z)
        significant = special.ndtr((means - self.cut_y) / np.sqrt(var))
        return -0.5 * np.sum(np.log(2 * np.pi * var) + (self.yi - means) ** 2 / var, axis=-1) - np.sum(
            np.log(omega + one_minus * significant), axis=-1
        )

    def outer_prior(self, log_tau, z):
        """log prior (per unit log tau and z) and the omega^n_above factor."""
        out = self.n_above * special.log_ndtr(z) - 0.5 * z**2 - LOG_SQRT_2PI
        if self.heterogeneity:
            out = out + self.priors.log_tau_density(np.exp(log_tau)) + log_tau
        return out

    def slope_prior(self, gamma):
        s = self.priors.moderator_sd
        return np.sum(-0.5 * (gamma / s) ** 2 - np.log(s) - LOG_SQRT_2PI, axis=-1)

    def mu_prior(self, mu):
        s = self.priors.mu_sd
        return -0.5 * (mu / s) ** 2 - np.log(s) - LOG_SQRT_2PI

    def level_prior(self, t, mu):
        s = self.priors.moderator_sd
        return -0.5 * ((t - mu) / s) ** 2 - np.log(s) - LOG_SQRT_2PI

    def log_joint(self, theta):
        """Unreduced log(likelihood x prior) at the rows of ``theta`` (N, dim)."""
        theta = np.atleast_2d(theta)
        n = len(theta)
        mu = theta[:, self.i_mu] if self.effect else np.zeros(n)
        log_tau = theta[:, self.i_tau] if self.heterogeneity else np.full(n, -np.inf)
        z, gamma = theta[:, self.i_z], theta[:, self.i_gamma]
        shift = gamma @ self.x.T
        if self.factor:
            t = theta[:, self.i_t]
            means = t[:, self.level_of] + shift
            extra = np.sum(self.level_prior(t, mu[:, None]), axis=1)
        else:
            means = mu[:, None] + shift
            extra = 0.0
        var = self.vi[None, :] + np.exp(2 * log_tau)[:, None]
        out = (
            self.study_loglik(means, var, z[:, None]) + self.outer_prior(log_tau, z) + self.slope_prior(gamma)
        )
        out = out + extra
        return out + (self.mu_prior(mu) if self.effect else 0.0)

    def start(self):
        w = 1 / self.vi
        theta = np.zeros(self.dim)
        if self.effect:
            theta[self.i_mu] = np.average(self.yi, weights=w)
        if self.heterogeneity:
            theta[self.i_tau] = np.log(max(np.std(self.yi), 0.05))
        for j, i in enumerate(self.i_t):
            sel = self.level_of == j
            theta[i] = np.average(self.yi[sel], weights=w[sel])
        return theta


def _mode_and_covariance(problem: _Problem):
    """Posterior mode, the Hessian H of -log density there and its inverse."""
    found = optimize.minimize(lambda x: -problem.log_joint(x)[0], problem.start(), method="BFGS")
    mode = found.x
    d, h = problem.dim, 1e-4
    shifts = [np.zeros(d)]
    pairs = list(itertools.combinations_with_replacement(range(d), 2))
    for i, j in pairs:
        for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            e = np.zeros(d)
            e[i] += si * h
            e[j] += sj * h
            shifts.append(e)
    values = -problem.log_joint(mode + np.array(shifts))
    H = np.empty((d, d))
    for n, (i, j) in enumerate(pairs):
        a, b, c, e = values[1 + 4 * n : 5 + 4 * n]
        H[i, j] = H[j, i] = (a - b - c + e) / (4 * h * h)
    eigval, eigvec = np.linalg.eigh(H)
    eigval = np.maximum(eigval, 1e-6 * max(eigval.max(), 1.0))
    H = (eigvec * eigval) @ eigvec.T
    return mode, H, np.linalg.inv(H)


@dataclass(frozen=True, eq=False)
class _Pass:
    """One pass over the lattice: the log integral, the largest log integrand at a level grid's
    end, the largest outer log integrand; and per inner node the log integrand, ``mu`` and the
    level moments."""

    log_z: float
    edge: float
    top: float
    total: np.ndarray
    mu: np.ndarray
    moments: np.ndarray | None


class _Lattice:
    """The outer trapezoid lattice ``mode + basis @ n`` over integer vectors ``n``: the
    eigenvectors of the outer parameters' covariance at the posterior mode, scaled by their
    SDs times the spacing (whitened coordinates)."""

    def __init__(self, mode: np.ndarray, cov: np.ndarray, step: float):
        eigval, eigvec = np.linalg.eigh(cov)
        self.mode, self.step = mode, step
        self.basis = eigvec * np.sqrt(np.maximum(eigval, 1e-12)) * step
        self.log_cell = float(np.log(abs(np.linalg.det(self.basis))))

    def refined(self) -> _Lattice:
        out = _Lattice.__new__(_Lattice)
        out.mode, out.step, out.basis = self.mode, self.step / np.sqrt(2.0), self.basis / np.sqrt(2.0)
        out.log_cell = self.log_cell - len(self.mode) * 0.5 * np.log(2.0)
        return out

    def start(self) -> list[tuple[int, ...]]:
        """The integer points within ``START_RADIUS`` whitened SDs of the mode."""
        reach = int(START_RADIUS / self.step)
        box = itertools.product(range(-reach, reach + 1), repeat=len(self.mode))
        return [n for n in box if sum(c * c for c in n) * self.step**2 <= START_RADIUS**2]


def _fill(problem: _Problem, lattice: _Lattice, rule: InnerRule) -> _Pass:
    """The nested quadrature on the lattice points reached from the mode through neighbours
    (the 3^d - 1 adjacent points) of points whose outer integrand is within ``DROP`` of the
    largest, so the lattice follows the posterior wherever it goes and stops one layer beyond
    the ``exp(-DROP)`` contour; restarted with level grids reaching 1.5 times as far when a
    level grid's end carries more than ``exp(-DROP)`` of the largest value."""
    d = len(lattice.mode)
    moves = [m for m in itertools.product((-1, 0, 1), repeat=d) if any(m)]
    for _ in range(MAX_GROW):
        cache: dict = {}
        fresh = lattice.start()
        top = -np.inf
        while fresh:
            if len(cache) + len(fresh) > MAX_OUTER_NODES:
                raise ModelError(
                    f"the outer grid of a selection model with moderators needs more than {MAX_OUTER_NODES:,} nodes"
                )
            values = _evaluate_nodes(problem, lattice, rule, fresh, cache)
            top = max(top, float(values.max()))
            keep = [key for key, value in zip(fresh, values, strict=True) if value > top - DROP]
            fresh = list(
                {tuple(a + b for a, b in zip(key, m, strict=True)) for key in keep for m in moves}
                - cache.keys()
            )
        result = _collect(problem, cache)
        if result.edge <= result.top - DROP:
            return result
        rule = InnerRule(rule.order, rule.step, rule.span * 1.5)
    raise ModelError(
        f"the level grids of a selection model with moderators did not close in {MAX_GROW} extensions"
    )


def _collect(problem: _Problem, cache: dict) -> _Pass:
    parts = list(cache.values())
    total = np.stack([part[0] for part in parts])
    per_node = special.logsumexp(total, axis=(1, 2))
    return _Pass(
        float(special.logsumexp(per_node)),
        max(part[1] for part in parts),
        float(per_node.max()),
        total,
        np.stack([part[2] for part in parts]),
        np.stack([part[3] for part in parts]) if problem.factor else None,
    )


def _evaluate_nodes(problem: _Problem, lattice: _Lattice, rule: InnerRule, keys: list, cache: dict):
    """Inner integrals at the lattice points ``keys``, into ``cache`` (per point: the log
    integrand at every inner node, the largest level-grid end, the ``mu`` nodes, the level
    moments); returns the log outer integrand at each point."""
    mesh = lattice.mode + np.array(keys, dtype=float) @ lattice.basis.T
    cols = {i: n for n, i in enumerate(problem.outer)}
    log_tau = mesh[:, cols[problem.i_tau]] if problem.heterogeneity else np.full(len(mesh), -np.inf)
    z = mesh[:, cols[problem.i_z]]
    var = problem.vi[None, :] + np.exp(2 * log_tau)[:, None]
    base = problem.outer_prior(log_tau, z) + lattice.log_cell
    nodes = inner_nodes(problem.means, rule, var, z)
    if evaluations(problem.means, nodes, len(mesh)) > MAX_EVALUATIONS:
        raise ModelError(
            f"a selection model with moderators needs more than {MAX_EVALUATIONS:,} likelihood evaluations"
        )
    step = block_rows(problem.means, nodes)
    out = np.empty(len(mesh))
    for first in range(0, len(mesh), step):
        rows = slice(first, first + step)
        total, edge, found = block_log_integrand(problem.means, nodes, var, z, rows, moments=problem.factor)
        total += base[rows, None, None]
        edge = np.max(total + edge, axis=(1, 2))
        out[rows] = special.logsumexp(total, axis=(1, 2))
        for n, key in enumerate(keys[rows]):
            cache[key] = (total[n], float(edge[n]), nodes.mu[first + n], None if found is None else found[n])
    return out


def moderated_selection_marginal(
    yi: np.ndarray,
    vi: np.ndarray,
    priors: EnsemblePriors,
    terms: ModeratorTerms,
    included: frozenset[str],
    *,
    effect: bool,
    heterogeneity: bool,
    cut: float,
) -> MarginalFit:
    """Marginal likelihood of the step selection model with the moderators in ``included``
    (nested quadrature, module docstring); ``error`` is the measured convergence of the sums.

    Raises
    ------
    ModelError
        When the quadrature needs more than ``MAX_OUTER_NODES`` outer nodes or
        ``MAX_EVALUATIONS`` likelihood evaluations in one pass, or its level grids do not
        close within ``MAX_GROW`` extensions (the posterior is then far from any Gaussian shape).
    """
    problem = _Problem(yi, vi, priors, terms, included, effect, heterogeneity, cut)
    mode, _, cov = _mode_and_covariance(problem)
    lattice = _Lattice(mode[problem.outer], cov[np.ix_(problem.outer, problem.outer)], STEP)
    rule = InnerRule(GH_ORDER, STEP, LEVEL_SPAN)
    result, error = _fill(problem, lattice, rule), np.inf
    for _ in range(MAX_REFINE):
        coarse = result
        lattice, rule = lattice.refined(), rule.refined(GH_ORDER_STEP)
        try:
            result = _fill(problem, lattice, rule)
        except ModelError:  # the finer grid is too large: keep the last one and its measured change
            result = coarse
            break
        error = abs(result.log_z - coarse.log_z)
        if error <= TOL:
            break
    return _fit(problem, terms, result, error)


def _fit(problem: _Problem, terms: ModeratorTerms, result: _Pass, error: float) -> MarginalFit:
    """The marginal likelihood and the posteriors of mu and the level means, as mixtures of at
    most ``MAX_COMPONENTS`` components (point masses at the ``mu`` nodes; at each inner node a
    level mean's conditional mean and SD), merged in sorted order."""
    weights = np.exp(result.total - result.log_z).ravel()
    mu = result.mu.ravel()
    mu_fit = _merged(mu, np.zeros_like(mu), weights)
    level_components = []
    if problem.factor and result.moments is not None:
        moments = result.moments.reshape(-1, problem.n_levels, 2)
        level_components = [
            _merged(moments[:, j, 0], np.sqrt(moments[:, j, 1]), weights) for j in range(problem.n_levels)
        ]
    elif terms is not None and terms.factor is not None:  # the factor is out: every level's mean is mu
        level_components = [mu_fit] * len(terms.levels)
    means, sds, weights = mu_fit
    return MarginalFit(result.log_z, means, sds, weights, level_components=level_components, error=error)


def _merged(means, sds, weights):
    keep = weights > 1e-14 * weights.max()
    order = np.argsort(means[keep], kind="stable")
    w = weights[keep][order]
    return merge_components(means[keep][order], sds[keep][order], w / w.sum())
