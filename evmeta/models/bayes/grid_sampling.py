"""Exact draws of the random-effect SDs from the interpolated grid posterior.

The posterior of the taus is known at grid nodes. Between nodes it is interpolated
linearly (one level) or bilinearly (two levels), and draws are taken from that
interpolant exactly, by inverse CDF:

* one level: pick a cell by its mass, then invert the cell's CDF, a quadratic;
* two levels: the outer tau from its marginal (linear between nodes, whose values are the
  row integrals of the joint), then the inner tau from its conditional given the drawn
  outer tau, which under bilinear interpolation is a two-row mixture of linear densities.

Nothing is drawn at a node and jittered, and no quadrature weight is read as a probability.
"""

from __future__ import annotations

import numpy as np


def _row_cdfs(axis: np.ndarray, density: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: cumulative cell masses (normalized to end at 1) and the row totals."""
    mass = np.diff(axis)[None, :] * (density[:, 1:] + density[:, :-1]) / 2
    cdf = np.cumsum(mass, axis=1)
    total = cdf[:, -1].copy()
    return cdf / np.where(total > 0, total, 1.0)[:, None], total


def sample_linear_rows(axis: np.ndarray, density: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws from piecewise-linear densities.

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
    cdf, _ = _row_cdfs(axis, density)
    R, cells = cdf.shape
    # Offsetting row r by r makes the stacked CDFs one increasing array (each row ends at 1).
    flat = (cdf + np.arange(R)[:, None]).ravel()
    cell = np.searchsorted(flat, rows + u, side="right") - rows * cells
    cell = np.clip(cell, 0, cells - 1)
    before = np.where(cell > 0, cdf[rows, np.maximum(cell - 1, 0)], 0.0)
    width = cdf[rows, cell] - before
    w = np.clip((u - before) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    f0, f1 = density[rows, cell], density[rows, cell + 1]
    # Within the cell, F(t) = (f0 t + (f1 - f0) t^2 / 2) / ((f0 + f1) / 2) = w; stable root.
    root = np.sqrt(np.maximum(f0**2 + w * (f1**2 - f0**2), 0.0))
    denominator = f0 + root
    t = np.where(denominator > 0, w * (f0 + f1) / np.where(denominator > 0, denominator, 1.0), w)
    return axis[cell] + np.clip(t, 0.0, 1.0) * (axis[cell + 1] - axis[cell])


def linear_quantiles(axis: np.ndarray, density: np.ndarray, probs: list[float]) -> list[float]:
    """Quantiles of the piecewise-linear density on ``axis`` (the law the draws follow)."""
    u = np.asarray(probs, dtype=float)
    values = sample_linear_rows(axis, density[None, :], np.zeros(len(u), dtype=np.int64), u)
    return [float(v) for v in values]


def sample_taus(axes: list[np.ndarray], joint: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, levels) exact draws of the taus from the (bi)linear interpolant of ``joint``.

    ``joint`` holds the unnormalized posterior density at the grid nodes: shape (n0,) for
    one level, (n_outer, n_inner) for two.
    """
    if len(axes) == 1:
        rows = np.zeros(n, dtype=np.int64)
        return sample_linear_rows(axes[0], joint[None, :], rows, rng.random(n))[:, None]
    outer_axis, inner_axis = axes
    # Marginal of the outer tau: linear between nodes, node values = row integrals.
    _, row_mass = _row_cdfs(inner_axis, joint)
    outer = sample_linear_rows(outer_axis, row_mass[None, :], np.zeros(n, dtype=np.int64), rng.random(n))
    cell = np.clip(np.searchsorted(outer_axis, outer, side="right") - 1, 0, len(outer_axis) - 2)
    lam = (outer - outer_axis[cell]) / (outer_axis[cell + 1] - outer_axis[cell])
    low, high = (1 - lam) * row_mass[cell], lam * row_mass[cell + 1]
    upper_row = rng.random(n) * (low + high) < high
    inner = sample_linear_rows(inner_axis, joint, cell + upper_row, rng.random(n))
    return np.column_stack([outer, inner])
