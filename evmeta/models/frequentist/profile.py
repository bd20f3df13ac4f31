"""Profile-likelihood confidence intervals for the variance components of a multilevel model.

For component l the bounds are the values of sigma2_l at which the (restricted)
log-likelihood, maximized over the other components, lies chi^2_1(level) / 2 below its
maximum, as metafor's ``confint.rma.mv`` (which profiles the same likelihood). A lower
bound is 0 when the profile at sigma2_l = 0 is still above the cut-off; an upper bound is
reported as infinite when none is found below 1e4 times the total variance of ``yi``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from evmeta.models.frequentist.blocks import evaluate, log_likelihood, score_and_information

#: Largest upper bound searched, relative to var(yi) + max(sigma2): beyond, "infinite".
UPPER_SEARCH = 1e4


def _profile(fit: Any, index: int, value: float, reml: bool) -> float:
    """Log-likelihood maximized over the other components with sigma2[index] = value."""
    y, X, batches = fit.yi, fit.X, fit.batches
    others = [j for j in range(len(fit.sigma2)) if j != index]

    def full(theta: np.ndarray) -> np.ndarray:
        sigma2 = np.zeros(len(fit.sigma2))
        sigma2[index] = value
        sigma2[others] = np.maximum(theta, 0.0)
        return sigma2

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ev = evaluate(batches, y, X, full(theta))
        score = score_and_information(batches, ev, reml)[0]
        return -log_likelihood(ev, X, reml), -score[others]

    if not others:
        return log_likelihood(evaluate(batches, y, X, full(np.zeros(0))), X, reml)
    start = np.asarray(fit.sigma2, dtype=float)[others]
    found = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * len(others),
        options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 500},
    )
    return -float(found.fun)


def profile_intervals(fit: Any, level: float) -> pd.DataFrame:
    """sigma2 and sigma of every random level: estimate, ci_low, ci_high (index ``sigma2[<level>]``
    then ``sigma[<level>]``)."""
    reml = fit.method == "REML"
    cut = fit.log_likelihood - stats.chi2.ppf(level, 1) / 2
    scale = float(np.var(fit.yi)) + max(fit.sigma2) + 1e-8
    rows = {}
    for index, (name, estimate) in enumerate(zip(fit.random, fit.sigma2, strict=True)):
        gap = lambda value, i=index: _profile(fit, i, value, reml) - cut  # noqa: E731
        lower = 0.0 if estimate <= 0 or gap(0.0) > 0 else optimize.brentq(gap, 0.0, estimate, xtol=1e-10)
        upper, top = np.inf, max(estimate, scale) * 2
        while top < UPPER_SEARCH * scale:
            if gap(top) < 0:
                upper = optimize.brentq(gap, estimate, top, xtol=1e-10)
                break
            top *= 4
        rows[f"sigma2[{name}]"] = (estimate, lower, upper)
    for name, (estimate, lower, upper) in list(rows.items()):
        rows[name.replace("sigma2", "sigma")] = (np.sqrt(estimate), np.sqrt(lower), np.sqrt(upper))
    return pd.DataFrame(rows, index=["estimate", "ci_low", "ci_high"]).T
