"""Exact draws of the random-effect SDs from the interpolated grid posterior.

The posterior of the taus is known at grid nodes. Between nodes a marginal density is
interpolated by cubic Hermite polynomials (node values and finite-difference slopes, error
O(h^4)), and draws are taken from that interpolant exactly, by inverse CDF:

* one level: pick a cell by its mass, then invert the cell's CDF (a quartic, by bisection);
* two levels: the outer tau from its marginal (node values = row integrals of the joint),
  then the inner tau given the drawn outer tau: the two neighbouring grid rows, mixed in
  proportion to their distance and mass (linear interpolation across rows), each row a
  Hermite density.

The quantiles that summaries report come from the same interpolant.

Nothing is drawn at a node and jittered, and no quadrature weight is read as a probability.
"""

from __future__ import annotations

import numpy as np

#: Bisection steps when inverting a cell's CDF (2^-50 of a cell width).
BISECTION_STEPS = 50


def _cell_integrals(h: np.ndarray, f0, f1, d0, d1, t):
    """Integral over [0, t] (in cell units) of the cubic Hermite interpolant, times 1/h."""
    t2, t3, t4 = t * t, t * t * t, t * t * t * t
    return (
        f0 * (t4 / 2 - t3 + t)
        + h * d0 * (t4 / 4 - 2 * t3 / 3 + t2 / 2)
        + f1 * (t3 - t4 / 2)
        + h * d1 * (t4 / 4 - t3 / 3)
    )


def _hermite_parts(axis: np.ndarray, density: np.ndarray):
    """Per row: slopes at the nodes, cell masses (>= 0) and the normalized CDF at cell ends."""
    density = np.atleast_2d(density)
    slopes = np.gradient(density, axis, axis=1, edge_order=2) if len(axis) > 2 else np.zeros_like(density)
    h = np.diff(axis)[None, :]
    mass = h * _cell_integrals(h, density[:, :-1], density[:, 1:], slopes[:, :-1], slopes[:, 1:], 1.0)
    mass = np.maximum(mass, 0.0)
    cdf = np.cumsum(mass, axis=1)
    total = cdf[:, -1].copy()
    return slopes, mass, cdf / np.where(total > 0, total, 1.0)[:, None], total


def sample_rows(axis: np.ndarray, density: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws from cubic-Hermite-interpolated densities.

    Parameters
    ----------
    axis : (n,) increasing nodes.
    density : (R, n) non-negative node values of R densities (any normalization).
    rows : (N,) which density each draw comes from.
    u : (N,) uniforms in [0, 1).

    Returns
    -------
    (N,) draws.
    """
    density = np.atleast_2d(density)
    slopes, mass, cdf, _ = _hermite_parts(axis, density)
    R, cells = cdf.shape
    # Offsetting row r by r makes the stacked CDFs one increasing array (each row ends at 1).
    flat = (cdf + np.arange(R)[:, None]).ravel()
    cell = np.clip(np.searchsorted(flat, rows + u, side="right") - rows * cells, 0, cells - 1)
    before = np.where(cell > 0, cdf[rows, np.maximum(cell - 1, 0)], 0.0)
    width = cdf[rows, cell] - before
    target = np.clip((u - before) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    h = axis[cell + 1] - axis[cell]
    f0, f1 = density[rows, cell], density[rows, cell + 1]
    d0, d1 = slopes[rows, cell], slopes[rows, cell + 1]
    cell_mass = np.where(mass[rows, cell] > 0, mass[rows, cell] / h, 1.0)
    low, high = np.zeros_like(target), np.ones_like(target)
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        below = _cell_integrals(h, f0, f1, d0, d1, mid) / cell_mass < target
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    return axis[cell] + (low + high) / 2 * h


def quantiles(axis: np.ndarray, density: np.ndarray, probs: list[float]) -> list[float]:
    """Quantiles of the interpolated density on ``axis`` (the law the draws follow)."""
    u = np.asarray(probs, dtype=float)
    values = sample_rows(axis, density[None, :], np.zeros(len(u), dtype=np.int64), u)
    return [float(v) for v in values]


def sample_taus(axes: list[np.ndarray], joint: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, levels) draws of the taus from the interpolated grid posterior ``joint``.

    ``joint`` holds the unnormalized posterior density at the grid nodes: shape (n0,) for
    one level, (n_outer, n_inner) for two.
    """
    if len(axes) == 1:
        return sample_rows(axes[0], joint[None, :], np.zeros(n, dtype=np.int64), rng.random(n))[:, None]
    outer_axis, inner_axis = axes
    _, _, _, row_mass = _hermite_parts(inner_axis, joint)
    outer = sample_rows(outer_axis, row_mass[None, :], np.zeros(n, dtype=np.int64), rng.random(n))
    cell = np.clip(np.searchsorted(outer_axis, outer, side="right") - 1, 0, len(outer_axis) - 2)
    lam = (outer - outer_axis[cell]) / (outer_axis[cell + 1] - outer_axis[cell])
    low, high = (1 - lam) * row_mass[cell], lam * row_mass[cell + 1]
    upper_row = rng.random(n) * (low + high) < high
    inner = sample_rows(inner_axis, joint, cell + upper_row, rng.random(n))
    return np.column_stack([outer, inner])
