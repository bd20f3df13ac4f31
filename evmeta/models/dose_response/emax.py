"""The hyperbolic Emax curve E(d) = Emax d / (ED50 + d), fitted by profile maximum likelihood.

The curve has no effect at dose 0 (the control arm's dose), rises with dose and levels off
at Emax; ED50 is the dose giving half of it. For a fixed ED50 the model is linear in Emax
(the covariate g = d / (ED50 + d)), so it is a multilevel meta-regression without an
intercept: the profile ML log-likelihood over theta = log10 ED50 is evaluated on a grid of
13 points from two decades below the lowest to two decades above the highest dose, and
maximized by bounded Brent search around the best grid point. REML is not defined for a
mean that is nonlinear in its parameters, so the Emax model is fitted by ML.

The covariance of (Emax, theta) is the inverse of the Gauss-Newton information J' M^-1 J
(J the Jacobian of the curve at the fitted rows, M = V + the random-effect covariance at
the ML variance components), as for nonlinear generalized least squares (Seber & Wild
1989, sec. 2.1); curve bands use it by the delta method. The ED50 interval is the profile
likelihood interval of theta (where the profile falls chi2_1(0.95) / 2 below its maximum;
open on a side where it does not fall that far within the range searched), which, unlike
a Wald interval, follows the often very asymmetric profile.

References
----------
Seber GAF, Wild CJ (1989). Nonlinear Regression, sec. 2.1 and 5.2. Wiley.
Macdougall J (2006). Analysis of dose-response studies - Emax model. In: Ting N (ed),
Dose Finding in Drug Development, pp. 127-145. Springer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evmeta.models.frequentist.multilevel import MultilevelResult, multilevel_meta_analysis

#: Decades beyond the observed doses searched for ED50.
SEARCH_DECADES = 2.0
GRID_POINTS = 13
LN10 = float(np.log(10.0))


@dataclass(frozen=True)
class EmaxFit:
    """The profile-ML Emax fit: ``fit`` is the linear fit at the estimated ED50."""

    fit: MultilevelResult
    emax: float
    log10_ed50: float
    vcov: np.ndarray
    bounds: tuple[float, float]
    at_bound: bool
    profile_interval: tuple[float, float] = (np.nan, np.nan)


def _profile_fit(frame: pd.DataFrame, dose: np.ndarray, theta: float, random, V) -> MultilevelResult:
    data = frame.assign(emax_g=dose / (10.0**theta + dose))
    return multilevel_meta_analysis(data, "yi", "vi", random=random, mods="~ 0 + emax_g", V=V, method="ML")


def fit_emax(frame: pd.DataFrame, dose: np.ndarray, random: list[str], V: np.ndarray, level: float = 0.95) -> EmaxFit:
    """Profile-ML fit of the Emax curve to the rows of ``frame`` (``yi``, ``vi``, the random
    grouping columns) at doses ``dose`` with sampling covariance ``V``, with the profile
    likelihood interval of log10 ED50 at ``level`` (NaN on a side where the profile does
    not fall below the cutoff within the range searched)."""
    from scipy import optimize

    logs = np.log10(dose)
    bounds = (float(logs.min() - SEARCH_DECADES), float(logs.max() + SEARCH_DECADES))
    grid = np.linspace(*bounds, GRID_POINTS)
    values = np.array([_profile_fit(frame, dose, t, random, V).log_likelihood for t in grid])
    best = int(np.argmax(values))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, GRID_POINTS - 1)]
    found = optimize.minimize_scalar(
        lambda t: -_profile_fit(frame, dose, t, random, V).log_likelihood,
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-7, "maxiter": 200},
    )
    theta = float(found.x) if -found.fun >= values[best] else float(grid[best])
    fit = _profile_fit(frame, dose, theta, random, V)
    emax = float(fit.coefficients["estimate"].iloc[0])
    vcov = _vcov(fit, dose, emax, theta, V)
    at_bound = min(theta - bounds[0], bounds[1] - theta) < 1e-3
    interval = _profile_interval(lambda t: _profile_fit(frame, dose, t, random, V).log_likelihood,
                                 grid, values, theta, fit.log_likelihood, level)
    return EmaxFit(fit, emax, theta, vcov, bounds, at_bound, interval)


def _profile_interval(profile, grid, values, theta: float, top: float, level: float) -> tuple[float, float]:
    """Where the profile log-likelihood falls chi2_1(level) / 2 below its maximum, each side
    of ``theta`` (root by Brent between the grid point below the cutoff and the next one)."""
    from scipy import optimize, special

    cutoff = top - float(special.chdtri(1, 1 - level)) / 2
    out = []
    for side in (-1, 1):
        points = np.flatnonzero((np.sign(grid - theta) == side) & (values < cutoff))
        if len(points) == 0:
            out.append(np.nan)
            continue
        outer = grid[points.max() if side < 0 else points.min()]
        inner = min((g for g in grid if np.sign(g - theta) == side and abs(g - theta) < abs(outer - theta)),
                    key=lambda g: abs(g - outer), default=theta)
        if profile(inner) < cutoff:
            inner = theta
        out.append(float(optimize.brentq(lambda t: profile(t) - cutoff, min(outer, inner), max(outer, inner),
                                         xtol=1e-6)))
    return out[0], out[1]


def marginal_covariance(fit: MultilevelResult, V: np.ndarray) -> np.ndarray:
    """M = V + sum over levels of sigma2 x (same-group indicator): the rows' covariance."""
    M = np.array(V, dtype=float, copy=True)
    for code, s2 in zip(fit.level_codes, fit.sigma2, strict=True):
        M += s2 * (np.asarray(code)[:, None] == np.asarray(code)[None, :])
    return M


def jacobian(dose: np.ndarray, emax: float, theta: float) -> np.ndarray:
    """d E(d) / d (Emax, log10 ED50) at doses ``dose`` (n x 2)."""
    g = dose / (10.0**theta + dose)
    return np.column_stack([g, -emax * g * (1 - g) * LN10])


def _vcov(fit: MultilevelResult, dose: np.ndarray, emax: float, theta: float, V: np.ndarray) -> np.ndarray:
    J = jacobian(dose, emax, theta)
    M = marginal_covariance(fit, V)
    info = J.T @ np.linalg.solve(M, J)
    return np.linalg.pinv(info)
