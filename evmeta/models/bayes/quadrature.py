"""Exact posterior of one- and two-level Bayesian meta-regression by quadrature.

Given the standard deviations of the random effects, the coefficients beta have a
Gaussian posterior (Gaussian prior, Gaussian marginal likelihood), and the marginal
likelihood p(y | taus) has a closed form. Only the one or two taus need numerical
integration, on an adaptive grid:

* one level: y ~ N(X beta, D + tau^2 Z Z') with groups of one or more rows;
* two nested levels (study / experiment): the experiment effects are removed by the
  Sherman-Morrison formula within each experiment, the study effects by a second
  Sherman-Morrison step within each study (each study's block is "diagonal plus
  rank-one" twice over), so every grid point costs group sums only.

The grid is found adaptively (a coarse pass locates where the posterior mass is, a fine
pass integrates it with Simpson weights). There is no Monte Carlo error in the reported
means, SDs and quantiles; ``refinement_error`` compares them with a grid of twice the
density. The draws stored for ArviZ are exact draws: the taus by inverse CDF of the
interpolated grid posterior (:mod:`evmeta.models.bayes.grid_sampling`), then beta from its
Gaussian conditional at exactly those taus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtr, ndtri

from evmeta.errors import ModelError
from evmeta.models.base.nesting import NestedStructure
from evmeta.models.bayes.grid_sampling import quantiles, sample_taus
from evmeta.models.priors import Prior

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

#: Posterior density (relative to its maximum) below which the grid is cut.
CUT = 1e-11
FINE_1D = 1601
FINE_2D = 97
#: ``refinement_error`` above which reported summaries may be inaccurate to that degree
#: (`evmeta run` says so in a note and in the report).
GRID_ERROR_LIMIT = 1e-4
#: Draws per batch when computing beta | taus at the drawn taus (bounds memory).
DRAW_BATCH = 20_000
#: Probabilities at which the refinement check compares quantiles.
CHECK_PROBS = (0.025, 0.5, 0.975)


@dataclass
class Precomputed:
    """Row and group sums that do not depend on the taus."""

    k: int
    p: int
    XtAX: np.ndarray
    XtAy: np.ndarray
    ytAy: float
    logdet_D: float
    sum_a: np.ndarray  # (E,) innermost groups
    sum_aX: np.ndarray  # (E, p)
    sum_ay: np.ndarray  # (E,)
    outer_of_inner: np.ndarray | None  # (E,) study of each experiment
    n_outer: int
    prior_mean: np.ndarray
    prior_var: np.ndarray
    outer_aX: np.ndarray  # (E, p*p) outer products s_e s_e'
    outer_maps: OuterMaps | None  # None with one random level


@dataclass
class OuterMaps:
    """Sparse maps from experiments to their studies (two random levels)."""

    to_outer: csr_matrix  # (S, E)
    spread_aX: csr_matrix  # (E, S*p): row e holds s_e in the block of its study


def precompute(
    y: np.ndarray, v: np.ndarray, X: np.ndarray, structure: NestedStructure, coefficient_priors: list[Prior]
) -> Precomputed:
    if len(structure.levels) > 2:
        raise ModelError("quadrature handles one or two random levels; use method='nuts' for more")
    a = 1.0 / v
    inner = structure.inner
    E = structure.n_inner
    sum_a = np.bincount(inner, weights=a, minlength=E)
    sum_aX = np.zeros((E, X.shape[1]))
    np.add.at(sum_aX, inner, X * a[:, None])
    sum_ay = np.bincount(inner, weights=a * y, minlength=E)
    outer = structure.parent[1] if len(structure.levels) == 2 else None
    means = np.array([p.params[0] for p in coefficient_priors])
    variances = np.array([p.params[1] ** 2 for p in coefficient_priors])
    p = X.shape[1]
    n_outer = structure.sizes[0] if outer is not None else 0
    return Precomputed(
        len(y),
        p,
        (X * a[:, None]).T @ X,
        (X * a[:, None]).T @ y,
        float(np.sum(a * y * y)),
        float(np.sum(np.log(v))),
        sum_a,
        sum_aX,
        sum_ay,
        outer,
        n_outer,
        means,
        variances,
        np.einsum("ep,eq->epq", sum_aX, sum_aX).reshape(E, p * p),
        None if outer is None else _outer_maps(outer, sum_aX, n_outer),
    )


def _outer_maps(outer: np.ndarray, sum_aX: np.ndarray, n_outer: int) -> OuterMaps:
    from scipy import sparse

    E, p = sum_aX.shape
    rows = np.repeat(np.arange(E), p)
    columns = (outer[:, None] * p + np.arange(p)[None, :]).ravel()
    return OuterMaps(
        sparse.csr_matrix((np.ones(E), (outer, np.arange(E))), shape=(n_outer, E)),
        sparse.csr_matrix((sum_aX.ravel(), (rows, columns)), shape=(E, n_outer * p)),
    )


@dataclass
class GridPoints:
    """Conditional posterior of beta and the log posterior of the taus at grid points."""

    log_post: np.ndarray  # (G,)
    mean: np.ndarray  # (G, p)
    cov: np.ndarray  # (G, p, p)


#: Grid points evaluated together: bounds the temporaries (points x studies x coefficients)
#: to about a MB and keeps them in cache: 2-3x faster than one pass over a refined 2-D grid.
CHUNK = 256


def conditional(pre: Precomputed, tau_inner: np.ndarray, tau_outer: np.ndarray | None) -> GridPoints:
    """log p(y | taus) and beta | taus, y at each grid point, in chunks of :data:`CHUNK` points."""
    if len(tau_inner) <= CHUNK:
        return _conditional(pre, tau_inner, tau_outer)
    parts = [
        _conditional(pre, tau_inner[i : i + CHUNK], None if tau_outer is None else tau_outer[i : i + CHUNK])
        for i in range(0, len(tau_inner), CHUNK)
    ]
    return GridPoints(
        np.concatenate([part.log_post for part in parts]),
        np.concatenate([part.mean for part in parts]),
        np.concatenate([part.cov for part in parts]),
    )


def _conditional(pre: Precomputed, tau_inner: np.ndarray, tau_outer: np.ndarray | None) -> GridPoints:
    """log p(y | taus) and beta | taus, y at each grid point (vectorized over points).

    Innermost step: X'A1X = X'D^-1X - sum_e c_e s_e s_e' with s_e = sum_{i in e} a_i x_i,
    done as one matrix product with the precomputed outer products s_e s_e'. Outer step:
    the study sums t_s = sum_{e in s} f_e s_e are a sparse aggregation.
    """
    G, p = len(tau_inner), pre.p
    t2 = tau_inner[:, None] ** 2
    growth = 1 + t2 * pre.sum_a[None, :]  # (G, E)
    c = t2 / growth
    XMX = pre.XtAX[None] - (c @ pre.outer_aX).reshape(G, p, p)
    XMy = pre.XtAy[None] - (c * pre.sum_ay[None, :]) @ pre.sum_aX
    yMy = pre.ytAy - (c @ pre.sum_ay**2)
    logdet = pre.logdet_D + np.sum(np.log(growth), axis=1)
    if tau_outer is not None:
        maps = pre.outer_maps
        if maps is None:
            raise ValueError("tau_outer given for a structure with one random level")
        f = 1.0 / growth  # (G, E)
        S = pre.n_outer
        # t_s(X): (G, S, p) via the sparse map experiments -> (study, coefficient).
        TX = (maps.spread_aX.T @ f.T).T.reshape(G, S, p)
        Ty = (maps.to_outer @ (f * pre.sum_ay[None, :]).T).T
        q = (maps.to_outer @ (f * pre.sum_a[None, :]).T).T
        s2 = tau_outer[:, None] ** 2
        d = s2 / (1 + s2 * q)
        XMX = XMX - np.matmul(TX.transpose(0, 2, 1) * d[:, None, :], TX)
        XMy = XMy - np.einsum("gs,gsp->gp", d * Ty, TX)
        yMy = yMy - np.sum(d * Ty**2, axis=1)
        logdet = logdet + np.sum(np.log1p(s2 * q), axis=1)
    precision = XMX + np.diag(1 / pre.prior_var)[None]
    rhs = XMy + (pre.prior_mean / pre.prior_var)[None]
    chol = np.linalg.cholesky(precision)
    cov = np.linalg.inv(precision)
    mean = np.einsum("gpq,gq->gp", cov, rhs)
    logdet_prec = 2 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
    log_marginal = -0.5 * (
        pre.k * np.log(2 * np.pi)
        + logdet
        + np.sum(np.log(pre.prior_var))
        + logdet_prec
        + yMy
        + np.sum(pre.prior_mean**2 / pre.prior_var)
        - np.sum(rhs * mean, axis=1)
    )
    return GridPoints(log_marginal, mean, cov)


def _simpson(n: int) -> np.ndarray:
    if n % 2 == 0:
        raise ValueError("Simpson's rule needs an odd number of points")
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4, 2
    return w / 3


def _bounds(grid: np.ndarray, marginal: np.ndarray) -> tuple[float, float, bool]:
    """Interval of the grid that holds the mass; whether the upper end was reached."""
    keep = np.flatnonzero(marginal > CUT * marginal.max())
    low = grid[max(keep[0] - 1, 0)]
    high_index = min(keep[-1] + 1, len(grid) - 1)
    return float(low), float(grid[high_index]), keep[-1] >= len(grid) - 2


def _prior_log(prior: Prior, values: np.ndarray) -> np.ndarray:
    return prior.logpdf(values)


@dataclass
class QuadratureFit:
    """Grid nodes for the taus, normalized weights, and beta | taus at each node."""

    taus: np.ndarray  # (G, L) node values, outermost first
    weights: np.ndarray  # (G,) summing to 1
    mean: np.ndarray  # (G, p)
    cov: np.ndarray  # (G, p, p)
    axes: list[np.ndarray]  # per level, the grid axis
    axis_density: list[np.ndarray]  # per level, the marginal density on its axis (integrates to 1)
    n_evaluations: int
    joint: np.ndarray = field(repr=False)  # unnormalized density at the nodes
    pre: Precomputed = field(repr=False)
    tau_priors: list[Prior] = field(repr=False)

    # --- exact summaries --------------------------------------------------------------
    def beta_moments(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.weights @ self.mean
        second = np.einsum("g,gpq->pq", self.weights, self.cov) + np.einsum(
            "g,gp,gq->pq", self.weights, self.mean, self.mean
        )
        return mean, second - np.outer(mean, mean)

    def linear_mixture(
        self, vector: np.ndarray, extra_var: np.ndarray | float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Means and SDs per node of c' beta (+ extra variance per node)."""
        means = self.mean @ vector
        variances = np.einsum("p,gpq,q->g", vector, self.cov, vector) + extra_var
        return means, np.sqrt(np.maximum(variances, 0.0))

    def mixture_quantiles(self, means: np.ndarray, sds: np.ndarray, probs: list[float]) -> list[float]:
        """Quantiles of the Gaussian mixture sum_g w_g N(means_g, sds_g^2): safeguarded Newton
        (bisection whenever a Newton step leaves the bracket), to |F(x) - p| < 1e-13."""
        keep = self.weights > 1e-16 * self.weights.max()  # nodes that cannot move a quantile
        w, means, sds = self.weights[keep], means[keep], np.maximum(sds[keep], 1e-300)
        w = w / w.sum()
        centre = float(w @ means)
        spread = float(np.sqrt(max(w @ (sds**2 + means**2) - centre**2, 1e-300)))
        out = []
        for prob in probs:
            lo, hi = float(np.min(means - 40 * sds)), float(np.max(means + 40 * sds))
            x = min(max(centre + spread * float(ndtri(prob)), lo), hi)
            for _ in range(100):
                z = (x - means) / sds
                excess = float(w @ ndtr(z)) - prob
                if abs(excess) < 1e-13:
                    break
                if excess > 0:
                    hi = x
                else:
                    lo = x
                density = float(w @ (np.exp(-0.5 * z * z) / sds)) / np.sqrt(2 * np.pi)
                step = x - excess / density if density > 0 else np.nan
                x = step if lo < step < hi else (lo + hi) / 2
            out.append(x)
        return out

    def mixture_cdf(self, means: np.ndarray, sds: np.ndarray, x: float) -> float:
        return float(self.weights @ ndtr((x - means) / np.where(sds > 0, sds, 1e-300)))

    def tau_summary(self, level: int, probs: list[float]) -> tuple[float, float, list[float]]:
        """Mean and SD (Simpson) and quantiles of the interpolated marginal (as the draws)."""
        mean = float(self.weights @ self.taus[:, level])
        sd = float(np.sqrt(max(self.weights @ self.taus[:, level] ** 2 - mean**2, 0.0)))
        return mean, sd, quantiles(self.axes[level], self.axis_density[level], probs)

    def density_at_zero(self, columns: list[int]) -> float:
        """Posterior density of beta[columns] at 0 (exact mixture of Gaussians)."""
        mean = self.mean[:, columns]
        cov = self.cov[:, columns][:, :, columns]
        _, logdet = np.linalg.slogdet(cov)
        inv = np.linalg.inv(cov)
        quad = np.einsum("gp,gpq,gq->g", mean, inv, mean)
        log_density = -0.5 * (len(columns) * np.log(2 * np.pi) + logdet + quad)
        return float(self.weights @ np.exp(log_density))

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Exact posterior draws of (taus, beta): the taus by inverse CDF of the interpolated
        grid posterior, then beta from its Gaussian conditional at exactly those taus."""
        taus = sample_taus(self.axes, self.joint, n, rng)
        beta = np.empty((n, self.pre.p))
        for start in range(0, n, DRAW_BATCH):
            part = taus[start : start + DRAW_BATCH]
            inner = part[:, -1]
            outer = part[:, 0] if part.shape[1] == 2 else None
            points = conditional(self.pre, inner, outer)
            chol = np.linalg.cholesky(points.cov)
            noise = rng.standard_normal((len(part), self.pre.p))
            beta[start : start + len(part)] = points.mean + np.einsum("npq,nq->np", chol, noise)
        return taus, beta

    def summary_vector(self) -> np.ndarray:
        """Posterior means, SDs and quantiles (CHECK_PROBS) of every coefficient and tau."""
        mean, cov = self.beta_moments()
        values: list[np.ndarray | list[float]] = [mean, np.sqrt(np.diag(cov))]
        for j in range(self.pre.p):
            means, sds = self.linear_mixture(np.eye(self.pre.p)[j])
            values.append(self.mixture_quantiles(means, sds, list(CHECK_PROBS)))
        for level in range(len(self.axes)):
            tau_mean, tau_sd, quantiles = self.tau_summary(level, list(CHECK_PROBS))
            values.append([tau_mean, tau_sd, *quantiles])
        return np.concatenate([np.ravel(v) for v in values])

    @cached_property
    def refinement_error(self) -> float:
        """Largest absolute change of :meth:`summary_vector` on a grid of twice the density."""
        fine = len(self.axes[0])
        bounds = [(float(a[0]), float(a[-1])) for a in self.axes]
        refined = integrate(self.pre, self.tau_priors, bounds, 2 * fine - 1)
        return float(np.max(np.abs(self.summary_vector() - refined.summary_vector())))


def fit_quadrature(pre: Precomputed, tau_priors: list[Prior], scale: float) -> QuadratureFit:
    """Adaptive grid over the taus (one or two levels)."""
    levels = len(tau_priors)
    spread = max(scale, float(np.sqrt(1 / np.median(pre.sum_a))))
    upper = [max(5 * spread, _finite_quantile(p, 0.999, 20 * spread)) for p in tau_priors]
    lower = [0.0] * levels
    evaluations = 0
    coarse = 161 if levels == 1 else 33
    for _ in range(12):
        axes = [np.linspace(lo, hi, coarse) for lo, hi in zip(lower, upper, strict=True)]
        log_post, _, _, count = _evaluate(pre, axes, tau_priors)
        evaluations += count
        post = np.exp(log_post - log_post.max())
        found = []
        for level in range(levels):
            marginal = post.sum(axis=tuple(a for a in range(levels) if a != level)) if levels > 1 else post
            found.append(_bounds(axes[level], marginal))
        if not any(at_top for _, _, at_top in found):
            lower, upper = [lo for lo, _, _ in found], [hi for _, hi, _ in found]
            break
        # Widen only the levels whose mass reaches the top; shrink nothing until all settle
        # (shrinking one level while widening another made the search oscillate).
        upper = [hi * 2 if at_top else hi_old for (_, hi, at_top), hi_old in zip(found, upper, strict=True)]
    else:
        raise ModelError("the posterior of tau did not settle on a finite range; use a proper prior on tau")
    fine = FINE_1D if levels == 1 else FINE_2D
    bounds = list(zip(lower, upper, strict=True))
    return integrate(pre, tau_priors, bounds, fine, evaluations)


def integrate(
    pre: Precomputed,
    tau_priors: list[Prior],
    bounds: list[tuple[float, float]],
    fine: int,
    evaluations: int = 0,
) -> QuadratureFit:
    """Simpson integration on a ``fine``-point grid per level within ``bounds``.

    Nodes are uniform in sqrt(tau) (Simpson in u = sqrt(tau), Jacobian dtau = 2u du), so they
    are densest near 0, where tau posteriors rise steeply.
    """
    levels = len(tau_priors)
    roots = [np.linspace(np.sqrt(lo), np.sqrt(hi), fine) for lo, hi in bounds]
    axes = [u**2 for u in roots]
    log_post, mean, cov, count = _evaluate(pre, axes, tau_priors)
    evaluations += count
    rule = _simpson(fine)
    weights_nd = np.exp(log_post - log_post.max())
    node = [rule * (u[1] - u[0]) * 2 * u for u in roots]  # dtau weight of every node
    if levels == 1:
        quad = weights_nd * node[0]
        taus = axes[0][:, None]
    else:
        quad = weights_nd * np.outer(node[0], node[1])
        grid = np.meshgrid(*axes, indexing="ij")
        taus = np.column_stack([g.ravel() for g in grid])
    weights = (quad / quad.sum()).ravel()
    densities = []
    for level in range(levels):
        if levels == 1:
            marginal = weights_nd
        else:
            other = 1 - level
            marginal = np.tensordot(weights_nd, node[other], axes=([other], [0]))
        densities.append(marginal / np.sum(marginal * node[level]))
    return QuadratureFit(
        taus,
        weights,
        mean.reshape(-1, pre.p),
        cov.reshape(-1, pre.p, pre.p),
        axes,
        densities,
        evaluations,
        joint=weights_nd,
        pre=pre,
        tau_priors=list(tau_priors),
    )


def _finite_quantile(prior: Prior, q: float, cap: float) -> float:
    value = prior.ppf(q)
    return min(value, cap) if np.isfinite(value) else cap


def _evaluate(pre: Precomputed, axes: list[np.ndarray], tau_priors: list[Prior]):
    """Log posterior of the taus on the product grid (levels outermost first)."""
    if len(axes) == 1:
        points = conditional(pre, axes[0], None)
        log_post = points.log_post + _prior_log(tau_priors[0], axes[0])
        return log_post, points.mean, points.cov, len(axes[0])
    outer, inner = np.meshgrid(axes[0], axes[1], indexing="ij")
    points = conditional(pre, inner.ravel(), outer.ravel())
    log_post = (
        points.log_post + _prior_log(tau_priors[0], outer.ravel()) + _prior_log(tau_priors[1], inner.ravel())
    )
    shape = (len(axes[0]), len(axes[1]))
    return log_post.reshape(shape), points.mean, points.cov, outer.size
