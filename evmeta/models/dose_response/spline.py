"""Natural (restricted) cubic spline basis, the same basis as R's ``splines::ns``.

A natural cubic spline is cubic between knots and linear beyond the two boundary knots.
The basis is built the standard way (de Boor 2001; Hastie & Tibshirani 1990, sec. 2.9):
the cubic B-splines on the knot sequence with the boundary knots repeated four times,
without the first B-spline (no intercept column), projected onto the null space of the
second derivatives at the two boundary knots (the columns 3.. of the complete Householder
QR factor of the 2 x m constraint matrix, transposed). The resulting m - 2 columns span
the natural splines that vanish at the lower boundary knot; with the same knots they are
the columns of ``ns(x, knots = knots, Boundary.knots = boundary)`` (checked against R in
``tests/reference/dose_response.json``). Beyond the boundary knots each column continues
linearly with the slope it has at the knot.

References
----------
de Boor C (2001). A Practical Guide to Splines, revised ed. Springer.
Harrell FE (2015). Regression Modeling Strategies, 2nd ed., sec. 2.4.5 (restricted cubic
splines; knots at quantiles). Springer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from evmeta.errors import ModelError

#: Default knot quantiles: the outer two are the boundary knots, the others interior knots
#: (Harrell 2015, Table 2.3: three knots at the 10th, 50th and 90th percentiles).
DEFAULT_QUANTILES = (0.10, 0.50, 0.90)


@dataclass(frozen=True)
class NaturalSpline:
    """A natural cubic spline basis with fixed knots (on the scale of the dose variable).

    Attributes
    ----------
    knots : tuple of float
        Interior knots, increasing.
    boundary : tuple of float
        The two boundary knots (lower, upper).
    """

    knots: tuple[float, ...]
    boundary: tuple[float, float]

    @property
    def df(self) -> int:
        """Number of basis columns (interior knots + 1)."""
        return len(self.knots) + 1

    @property
    def names(self) -> list[str]:
        return [f"ns{j + 1}" for j in range(self.df)]

    def _bsplines(self):
        from scipy.interpolate import BSpline

        lo, hi = self.boundary
        t = np.r_[[lo] * 4, self.knots, [hi] * 4]
        m = len(t) - 4
        return [BSpline(t, np.eye(m)[j], 3, extrapolate=True) for j in range(1, m)]

    def _projection(self) -> np.ndarray:
        splines = self._bsplines()
        const = np.array([[b.derivative(2)(v) for b in splines] for v in self.boundary])
        q, _ = np.linalg.qr(const.T, mode="complete")
        return q[:, 2:]

    def basis(self, x: ArrayLike) -> np.ndarray:
        """Basis matrix (n x df) at values ``x``; linear beyond the boundary knots."""
        x = np.asarray(x, dtype=float).ravel()
        lo, hi = self.boundary
        splines = self._bsplines()
        inside = np.clip(x, lo, hi)
        B = np.column_stack([b(inside) for b in splines])
        for edge, mask in ((lo, x < lo), (hi, x > hi)):
            if mask.any():
                slope = np.array([b.derivative(1)(edge) for b in splines])
                B[mask] += (x[mask] - edge)[:, None] * slope[None, :]
        return B @ self._projection()


def spline_at_quantiles(x: ArrayLike, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> NaturalSpline:
    """A natural spline with knots at ``quantiles`` of ``x`` (numpy's default linear
    interpolation, R's ``quantile(type = 7)``): the outer two are the boundary knots.

    Raises
    ------
    ModelError
        Fewer than three quantiles, quantiles outside (0, 1), or knots that coincide
        (too few distinct doses for the spline; fewer knots or the linear model then).
    """
    quantiles = sorted(float(q) for q in quantiles)
    if len(quantiles) < 3 or quantiles[0] <= 0 or quantiles[-1] >= 1:
        raise ModelError(
            f"knot quantiles must be at least three numbers strictly between 0 and 1, got {quantiles}"
        )
    values = np.quantile(np.asarray(x, dtype=float), quantiles)
    if np.any(np.diff(values) <= 1e-9 * max(1.0, float(np.ptp(values)))):
        raise ModelError(
            f"the spline knots at quantiles {quantiles} of the dose coincide ({np.round(values, 4).tolist()}); "
            "too few distinct doses for this spline: use fewer knots or model='linear'"
        )
    return NaturalSpline(tuple(float(v) for v in values[1:-1]), (float(values[0]), float(values[-1])))
