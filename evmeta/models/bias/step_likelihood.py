"""Likelihood of the step-function selection model (Vevea & Hedges 1995), as pure functions.

An observed effect ``y_i ~ N(x_i'beta, v_i + tau^2)`` is published with relative probability
``delta_j`` when its p-value falls into interval ``j`` of ``0 < steps[0] < ... < steps[-1] = 1``
(``delta_0 = 1``). The density of a published effect is the normal density times its weight,
divided by the expected weight ``A_i = sum_j delta_j P_ij``, where ``P_ij`` is the probability
that an effect from the unselected normal distribution gets a p-value in interval ``j``.

p-values follow metafor's ``selmodel``: one-sided ``"greater"`` ``p = 1 - Phi(y / sqrt(v))``,
``"less"`` ``p = Phi(y / sqrt(v))``, ``"two.sided"`` ``p = 2 (1 - Phi(|y| / sqrt(v)))``.

References
----------
Vevea JL, Hedges LV (1995). A general linear model for estimating effect size in the presence
of publication bias. Psychometrika 60:419-435.
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

ALTERNATIVES = ("greater", "less", "two.sided")


def normalize_steps(steps: ArrayLike) -> np.ndarray:
    """Sorted unique cut-points in (0, 1) with 1 appended (the last interval ends at p = 1)."""
    cuts = np.unique(np.asarray(steps, dtype=float).ravel())
    cuts = cuts[cuts < 1]
    return np.append(cuts, 1.0)


def step_pvalues(yi: np.ndarray, vi: np.ndarray, alternative: str = "greater") -> np.ndarray:
    """p-value of every effect under its own sampling variance (the quantity selected on)."""
    z = np.asarray(yi, float) / np.sqrt(np.asarray(vi, float))
    if alternative == "two.sided":
        return 2 * stats.norm.sf(np.abs(z))
    if alternative == "less":
        return stats.norm.cdf(z)
    return stats.norm.sf(z)


def interval_index(pvalues: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """0-based interval of each p-value: the first ``j`` with ``p <= steps[j]``."""
    return np.searchsorted(steps, pvalues, side="left")


def interval_probabilities(
    mean: np.ndarray, var: np.ndarray, vi: np.ndarray, steps: np.ndarray, alternative: str
) -> np.ndarray:
    """``P_ij``: probability that ``y ~ N(mean_i, var_i)`` has its p-value in interval ``j``.

    Returns a (k, m) array whose rows sum to one. Broadcasts over a leading grid axis of
    ``mean``/``var`` (shape (..., k)).
    """
    mean = np.asarray(mean, float)
    sd = np.sqrt(var)
    se = np.sqrt(vi)
    if alternative == "less":
        mean = -mean
    inner = steps[:-1] / 2 if alternative == "two.sided" else steps[:-1]
    # cut_j: |y| (two-sided) or y (one-sided) at which p = steps[j]; decreasing in j.
    # special.ndtr/ndtri are what stats.norm's sf/cdf/isf evaluate, without their argument
    # checks (this runs in every likelihood evaluation of the optimizer).
    cuts = se[..., None] * -special.ndtri(inner)
    upper = special.ndtr((mean[..., None] - cuts) / sd[..., None])  # P(y >= cut_j)
    tail = np.concatenate([np.zeros((*upper.shape[:-1], 1)), upper, np.ones((*upper.shape[:-1], 1))], -1)
    if alternative == "two.sided":
        lower = special.ndtr((-cuts - mean[..., None]) / sd[..., None])  # P(y <= -cut_j)
        zeros = np.zeros((*lower.shape[:-1], 1))
        tail = tail + np.concatenate([zeros, lower, zeros], -1)
        tail[..., -1] = 1.0
    return np.diff(tail, axis=-1)


def step_loglik(
    beta: np.ndarray,
    tau2: float,
    delta: np.ndarray,
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray,
    steps: np.ndarray,
    alternative: str = "greater",
) -> float:
    """Log-likelihood of the step-function selection model (natural parameters)."""
    mean = X @ beta
    var = vi + tau2
    group = interval_index(step_pvalues(yi, vi, alternative), steps)
    probs = interval_probabilities(mean, var, vi, steps, alternative)
    expected_weight = probs @ delta
    normal = -0.5 * (np.log(2 * np.pi * var) + (yi - mean) ** 2 / var)
    return float(np.sum(np.log(delta[group]) + normal - np.log(expected_weight)))


def normal_ml_profile(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, tau2: float) -> tuple[np.ndarray, float]:
    """GLS coefficients and the ML log-likelihood of the normal model at a given tau^2."""
    w = 1 / (vi + tau2)
    xtwx = (X * w[:, None]).T @ X
    beta = np.linalg.solve(xtwx, (X * w[:, None]).T @ yi)
    resid = yi - X @ beta
    ll = -0.5 * np.sum(np.log(2 * np.pi * (vi + tau2)) + w * resid**2)
    return beta, float(ll)
