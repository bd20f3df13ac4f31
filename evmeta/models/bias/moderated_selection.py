"""Marginal likelihood of the ensemble's step-selection model with moderators, by nested
quadrature.

The one-sided step model publishes a comparison whose p-value is above the cut-point with
relative probability ``omega``; its likelihood is not Gaussian in the coefficients. The
integral is nested so that it stays exact up to the convergence of smooth quadratures:

* outer: a tensor trapezoid grid over ``log tau`` (heterogeneity models), ``z = probit(omega)``
  and the slope of every included numeric moderator;
* middle: a trapezoid grid over the effect ``mu`` (effect models);
* inner, with a categorical moderator: given the outer parameters and ``mu`` the likelihood
  factorizes over its levels (each comparison depends on its own level's mean
  ``t_j = mu + beta_j`` only, and the deviations are independent a priori), so the ``J``
  level integrals are 1-D trapezoid integrals, evaluated once per outer node on a grid of
  ``t_j`` and convolved with the prior ``normal(t_j; mu, moderator_sd)`` for every ``mu``.

Every axis is centred at the joint posterior mode with spacing ``STEP`` conditional posterior
SDs (from the Hessian there), starts at ``SPAN`` marginal SDs either side and is extended
until the log integrand on each face of the grid (and at both ends of every level's grid) is
``DROP`` below the maximum, so no mass above ``exp(-DROP)`` lies outside. Convergence is
measured: the same sums on every other node (twice the spacing, in every direction) must
agree with the full sums to ``TOL`` on the log scale, else the spacing is divided by sqrt(2)
(at most ``MAX_REFINE`` times); the last difference is returned as ``error``. For smooth
integrands the trapezoid error falls like ``exp(-c / h^2)``, so the full sums are far more
accurate than that difference.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import optimize, special

from evmeta.errors import ModelError
from evmeta.models.bias.marginal import EnsemblePriors, MarginalFit
from evmeta.models.bias.moderator_terms import ModeratorTerms
from evmeta.models.bias.step_likelihood import interval_index, step_pvalues

STEP = 0.7
SPAN = 6.0
DROP = 20.0
TOL = 1e-6
MAX_REFINE = 2
MAX_GROW = 30
#: Most nodes of one outer x middle grid.
MAX_NODES = 20_000_000
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
        self.outer = ([self.i_tau] if heterogeneity else []) + [self.i_z] + self.i_gamma
        self.dim = self.i_z + 1 + self.q + self.n_levels

    def study_loglik(self, means, var, z):
        """sum over the last axis of log N(y; mean, var) - log A (the step model's density)."""
        omega, one_minus = special.ndtr(z), special.ndtr(-z)
        significant = special.ndtr((means - self.cut_y) / np.sqrt(var))
        return -0.5 * np.sum(np.log(2 * np.pi * var) + (self.yi - means) ** 2 / var, axis=-1) - np.sum(
            np.log(omega + one_minus * significant), axis=-1
        )

    def outer_prior(self, log_tau, z, gamma):
        """log prior (per unit log tau, z and gamma) and the omega^n_above factor."""
        out = self.n_above * special.log_ndtr(z) - 0.5 * z**2 - LOG_SQRT_2PI
        if self.heterogeneity:
            out = out + self.priors.log_tau_density(np.exp(log_tau)) + log_tau
        s = self.priors.moderator_sd
        return out + np.sum(-0.5 * (gamma / s) ** 2 - np.log(s) - LOG_SQRT_2PI, axis=-1)

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
        out = self.study_loglik(means, var, z[:, None]) + self.outer_prior(log_tau, z, gamma) + extra
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


class _Axis:
    """A uniform trapezoid axis ``centre + h * (low .. high)``."""

    def __init__(self, centre, h, half):
        self.centre, self.h = float(centre), float(h)
        self.low, self.high = -int(np.ceil(half / h)), int(np.ceil(half / h))

    @property
    def nodes(self):
        return self.centre + self.h * np.arange(self.low, self.high + 1)

    def grow(self, side: int):
        extra = max(3, (self.high - self.low) // 4)
        if side < 0:
            self.low -= extra
        else:
            self.high += extra

    def rescaled(self, h: float) -> _Axis:
        """The same extent with spacing ``h``."""
        out = _Axis(self.centre, h, 0.0)
        out.low, out.high = int(np.floor(self.low * self.h / h)), int(np.ceil(self.high * self.h / h))
        return out


def _conditional_sd(cov, axis, given):
    """SD of parameter ``axis`` given the parameters ``given`` (others integrated out)."""
    block = [axis, *given]
    precision = np.linalg.inv(cov[np.ix_(block, block)])
    return 1 / np.sqrt(precision[0, 0])


def _build_axes(problem, mode, cov, step):
    outer = [
        _Axis(
            mode[i],
            step * _conditional_sd(cov, i, [o for o in problem.outer if o != i]),
            SPAN * np.sqrt(cov[i, i]),
        )
        for i in problem.outer
    ]
    mu = None
    if problem.effect:
        i = problem.i_mu
        mu = _Axis(mode[i], step * _conditional_sd(cov, i, problem.outer), SPAN * np.sqrt(cov[i, i]))
    return outer, mu


class _LevelGrids:
    """One ``t`` grid per level shared by every outer node, so that the convolution with the
    prior ``normal(t; mu, moderator_sd)`` over the ``mu`` nodes is a matrix product. At each
    outer node the level's Gaussian posterior given the outer parameters (selection ignored)
    has SD ``w`` and a centre moving with ``mu``; the grid spans every node's centre at the
    smallest ``mu`` minus ``span w`` to its centre at the largest plus ``span w``, with spacing
    ``step`` times the smallest ``w``."""

    def __init__(self, step: float, span: float = 6.0):
        self.step, self.span = step, span

    def nodes(self, problem, sel, mesh_shift, mesh_var, mus):
        prior_prec = 1 / problem.priors.moderator_sd**2
        w = 1 / mesh_var[:, sel]
        prec = w.sum(axis=1)
        data_mean = (w * (problem.yi[sel] - mesh_shift[:, sel])).sum(axis=1) / prec
        post_sd = 1 / np.sqrt(prec + prior_prec)
        centres = [(data_mean * prec + mu * prior_prec) * post_sd**2 for mu in (mus.min(), mus.max())]
        low = float(np.min(np.minimum(*centres) - self.span * post_sd))
        high = float(np.max(np.maximum(*centres) + self.span * post_sd))
        count = int(np.ceil((high - low) / (self.step * post_sd.min()))) + 1
        return np.linspace(low, high, count), (high - low) / (count - 1)


def _evaluate(problem, outer, mu_axis, levels: _LevelGrids, posterior_of=None):
    """log integrand over the outer x mu grid (fine and on every other node), edge values.

    Returns ``(log_z, faces, level edge, largest value)`` or, when
    ``posterior_of`` is the fine ``log_z``, ``(mu nodes, mu weights, [(t nodes, t weights)
    per level])``.
    """
    grids = [axis.nodes for axis in outer]
    mesh = np.array(list(itertools.product(*grids))) if grids else np.zeros((1, 0))
    mus = mu_axis.nodes if mu_axis is not None else np.zeros(1)
    log_h = sum(np.log(axis.h) for axis in outer) + (np.log(mu_axis.h) if mu_axis is not None else 0.0)
    if len(mesh) * len(mus) > MAX_NODES:
        raise ModelError(f"a selection model with moderators needs more than {MAX_NODES:,} quadrature nodes")
    cols = {i: n for n, i in enumerate(problem.outer)}

    def unpack(block):
        log_tau = block[:, cols[problem.i_tau]] if problem.heterogeneity else np.full(len(block), -np.inf)
        gamma = block[:, [cols[i] for i in problem.i_gamma]]
        var = problem.vi[None, :] + np.exp(2 * log_tau)[:, None]
        return log_tau, block[:, cols[problem.i_z]], gamma, gamma @ problem.x.T, var

    t_grids, prior_mats = [], []
    if problem.factor:
        _, _, _, mesh_shift, mesh_var = unpack(mesh)
        for j in range(problem.n_levels):
            t, h = levels.nodes(problem, problem.level_of == j, mesh_shift, mesh_var, mus)
            t_grids.append(t)
            # (T, M): prior density of t given mu, times the trapezoid weight
            prior_mats.append(np.exp(problem.level_prior(t[:, None], mus[None, :])) * h)
    fine, edge = [], -np.inf
    mu_post = np.zeros(len(mus))
    t_post = [np.zeros(len(t)) for t in t_grids]
    widest = max([len(t) for t in t_grids] + [len(mus)])
    chunk = max(
        1,
        300_000 // (widest * (len(problem.yi) if not problem.factor else max(np.bincount(problem.level_of)))),
    )
    for start in range(0, len(mesh), chunk):
        log_tau, z, gamma, shift, var = unpack(mesh[start : start + chunk])
        base = problem.outer_prior(log_tau, z, gamma)[:, None] + (
            problem.mu_prior(mus) if problem.effect else 0.0
        )
        inner = []
        if problem.factor:
            total = base + log_h
            for j, (t, mat) in enumerate(zip(t_grids, prior_mats, strict=True)):
                sel = problem.level_of == j
                g = _grid_loglik(problem, sel, t, shift, var, z)  # (B, T)
                top_g = g.max(axis=1, keepdims=True)
                scaled = np.exp(g - top_g)
                with np.errstate(divide="ignore"):
                    log_i = np.log(scaled @ mat) + top_g  # (B, M)
                total = total + log_i
                inner.append((g, top_g, scaled, log_i, mat))
            for g, _top, _scaled, log_i, mat in inner:
                ends = g[:, [0, -1]][:, None, :] + np.log(mat[[0, -1], :].T + 1e-300)[None]
                edge = max(edge, float(np.max((total - log_i)[..., None] + ends)))
        else:
            total = base + _grid_loglik(problem, slice(None), mus, shift, var, z) + log_h
        if posterior_of is not None:
            p = np.exp(total - posterior_of)
            mu_post += p.sum(axis=0)
            for j, (_g, top_g, scaled, log_i, mat) in enumerate(inner):
                ratio = np.where(np.isfinite(log_i), p * np.exp(top_g - log_i), 0.0)  # p / I, rescaled
                t_post[j] += np.sum(scaled * (ratio @ mat.T), axis=0)
            continue
        fine.append(total)
    if posterior_of is not None:
        out = [(t, w / w.sum()) for t, w in zip(t_grids, t_post, strict=True)]
        return mus, mu_post / mu_post.sum(), out
    values = np.concatenate(fine)
    cube = values.reshape([len(g) for g in grids] + ([len(mus)] if mu_axis is not None else []))
    faces = [
        (float(np.take(cube, 0, axis=a).max()), float(np.take(cube, -1, axis=a).max()))
        for a in range(cube.ndim)
    ]
    return float(special.logsumexp(values)), faces, edge, float(values.max())


def _grid_loglik(problem, sel, t, shift, var, z):
    """Step-model log-likelihood of the comparisons ``sel`` when their common mean is each of
    ``t`` (T) plus their ``shift`` (B, n): the normal part as a quadratic in ``t`` (O(B T)),
    the selection part ``-sum log A_i`` comparison by comparison (O(B T n))."""
    y, cut_y = problem.yi[sel], problem.cut_y[sel]
    w = 1 / var[:, sel]
    r = y[None, :] - shift[:, sel]
    a, b = w.sum(axis=1), (w * r).sum(axis=1)
    c = (w * r**2).sum(axis=1) + np.log(2 * np.pi * var[:, sel]).sum(axis=1)
    normal = -0.5 * (a[:, None] * t[None, :] ** 2 - 2 * b[:, None] * t[None, :] + c[:, None])
    omega, one_minus = special.ndtr(z)[:, None, None], special.ndtr(-z)[:, None, None]
    significant = special.ndtr(
        (t[None, :, None] + (shift[:, sel] - cut_y)[:, None, :]) * np.sqrt(w)[:, None, :]
    )
    return normal - np.sum(np.log(omega + one_minus * significant), axis=2)


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
        When the grid needs more than ``MAX_NODES`` nodes or does not close within ``MAX_GROW``
        extensions (the posterior is then far from any Gaussian shape).
    """
    problem = _Problem(yi, vi, priors, terms, included, effect, heterogeneity, cut)
    mode, _, cov = _mode_and_covariance(problem)
    outer, mu_axis = _build_axes(problem, mode, cov, STEP)
    levels = _LevelGrids(STEP)
    log_z, error = _closed_grid(problem, outer, mu_axis, levels), np.inf
    for _ in range(MAX_REFINE):
        coarse = (outer, mu_axis, levels, log_z)
        outer = [axis.rescaled(axis.h / np.sqrt(2.0)) for axis in outer]
        mu_axis = mu_axis.rescaled(mu_axis.h / np.sqrt(2.0)) if mu_axis is not None else None
        levels = _LevelGrids(levels.step / np.sqrt(2.0), levels.span)
        try:
            log_z = _closed_grid(problem, outer, mu_axis, levels)
        except ModelError:  # the finer grid is too large: keep the last one and its measured change
            outer, mu_axis, levels, log_z = coarse
            break
        error = abs(log_z - coarse[3])
        if error <= TOL:
            break
    # The posteriors of mu and of the level means from the last grid but one (the refinement
    # only confirms the marginal likelihood; the posterior summaries need far less accuracy).
    mus, mu_w, level_post = _evaluate(problem, *coarse[:3], posterior_of=coarse[3])
    level_components = []
    if problem.factor:
        level_components = [(t, np.zeros(len(t)), w) for t, w in level_post]
    elif terms is not None and terms.factor is not None:  # the factor is out: every level's mean is mu
        level_components = [(mus, np.zeros(len(mus)), mu_w)] * len(terms.levels)
    return MarginalFit(log_z, mus, np.zeros(len(mus)), mu_w, level_components=level_components, error=error)


def _closed_grid(problem, outer, mu_axis, levels) -> float:
    """log integral on the grid, its faces (and level ends) extended until they are ``DROP``
    below the largest value; the axes are extended in place."""
    axes = [*outer, *([mu_axis] if mu_axis is not None else [])]
    for _ in range(MAX_GROW):
        log_z, faces, edge, top = _evaluate(problem, outer, mu_axis, levels)
        grown = False
        for axis, (first, last) in zip(axes, faces, strict=True):
            for side, value in ((-1, first), (1, last)):
                if value > top - DROP:
                    axis.grow(side)
                    grown = True
        if edge > top - DROP:
            levels.span *= 1.5
            grown = True
        if not grown:
            return log_z
    raise ModelError(
        f"the quadrature grid of a selection model with moderators did not close in {MAX_GROW} extensions"
    )
