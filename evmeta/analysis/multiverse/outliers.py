"""Studentized deleted residuals of the random-effects model, all deletions at once.

The multiverse's outlier rule needs, for every analysis table, the studentized deleted
residual of each comparison (Viechtbauer & Cheung 2010; metafor's ``rstudent``), i.e. k
refits of the model. ``MetaResult.influence()`` computes them with k full fits (and many
other diagnostics); here the k leave-one-out fits of the intercept-only model are done
together on a k x k array (row i = the table without comparison i), which is 20-50x faster
at k ~ 50-100. The tau^2 estimators follow the definitions of ``evmeta.models`` (same start
value, Fisher-scoring step, step halving at 0 and stopping rule for ML/REML); the test
(``tests/test_multiverse.py``) checks the result against ``influence()["rstudent"]``.
Estimators without a closed form or scoring step here (PM, EB, SJ) and very large tables
use ``influence()`` itself.

Candidate to move into ``evmeta.models`` (a vectorized ``leave_one_out``) once the result
redesign of issue 13 has landed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Arrays of these routines: float64 values, bool deletion masks.
Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

VECTORIZED = ("EE", "DL", "HE", "ML", "REML")
MAX_K = 2000  # k x k arrays above this: fall back to influence()
MAX_ITER = 1000
TOLERANCE = 1e-10


def _initial(Y: Floats, V: Floats, keep: Mask, n: int) -> Floats:
    """Hedges (HE) estimate of every deletion set (the ML/REML start value)."""
    mean: Floats = (Y * keep).sum(1) / n
    rss: Floats = (keep * (Y - mean[:, None]) ** 2).sum(1)
    trace_pv: Floats = (V * keep).sum(1) * (1 - 1 / n)
    return np.maximum(0.0, (rss - trace_pv) / (n - 1))


def _dersimonian_laird(Y: Floats, V: Floats, keep: Mask, n: int) -> Floats:
    w = keep / V
    sw: Floats = w.sum(1)
    mu: Floats = (w * Y).sum(1) / sw
    q: Floats = (w * (Y - mu[:, None]) ** 2).sum(1)
    sw2: Floats = (w**2).sum(1)
    return np.maximum(0.0, (q - (n - 1)) / (sw - sw2 / sw))


def _fisher_scoring(Y: Floats, V: Floats, keep: Mask, n: int, method: str) -> Floats:
    tau2 = _initial(Y, V, keep, n)
    active = np.ones(len(tau2), dtype=bool)
    for _ in range(MAX_ITER):
        w = keep / (V + tau2[:, None])
        sw, sw2 = w.sum(1), (w**2).sum(1)
        mu = (w * Y).sum(1) / sw
        ypp_y = ((w * (Y - mu[:, None])) ** 2).sum(1)
        if method == "REML":
            trace_p = sw - sw2 / sw
            trace_pp = sw2 - 2 * (w**3).sum(1) / sw + sw2**2 / sw**2
            step = (ypp_y - trace_p) / trace_pp
        else:
            step = (ypp_y - sw) / sw2
        while np.any(negative := active & (tau2 + step < 0)):
            step = np.where(negative, step / 2, step)
        tau2 = np.where(active, tau2 + step, tau2)
        active &= ~(np.abs(step) < TOLERANCE * np.maximum(1.0, tau2))
        if not active.any():
            return tau2
    return np.where(active, np.nan, tau2)  # not converged: no residual for those rows


def deleted_tau2(yi: Floats, vi: Floats, method: str) -> Floats:
    """tau^2 of the model without each comparison in turn (intercept only)."""
    k = len(yi)
    keep = ~np.eye(k, dtype=bool)
    Y, V = np.broadcast_to(yi, (k, k)), np.broadcast_to(vi, (k, k))
    n = k - 1
    if method == "EE":
        return np.zeros(k)
    if method == "DL":
        return _dersimonian_laird(Y, V, keep, n)
    if method == "HE":
        return _initial(Y, V, keep, n)
    return _fisher_scoring(Y, V, keep, n, method)


def studentized_deleted_residuals(
    yi: npt.ArrayLike, vi: npt.ArrayLike, method: str = "REML", test: str = "z"
) -> Floats:
    """Studentized deleted residual of each comparison (intercept-only random-effects model).

    Parameters
    ----------
    yi, vi : ndarray
        Effect sizes and sampling variances (k >= 3).
    method : {"EE", "DL", "HE", "ML", "REML"}
        tau^2 estimator (as :func:`evmeta.meta_analysis`).
    test : {"z", "knha"}
        Under Knapp-Hartung the variances are scaled by each deletion fit's s^2_w, as in
        ``influence()``.

    Returns
    -------
    ndarray
        (y_i - mu_(-i)) / sqrt(s2w (v_i + tau2_(-i)) + Var(mu_(-i))), NaN where a deletion
        fit did not converge.
    """
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    k = len(yi)
    tau2 = deleted_tau2(yi, vi, method)
    keep = ~np.eye(k, dtype=bool)
    w = keep / (vi[None, :] + tau2[:, None])
    sw: Floats = w.sum(1)
    mu: Floats = (w * yi[None, :]).sum(1) / sw
    s2w = np.ones(k)
    if test == "knha":
        s2w = (w * (yi[None, :] - mu[:, None]) ** 2).sum(1) / (k - 2)
    var_mu = s2w / sw
    return (yi - mu) / np.sqrt(vi * s2w + var_mu + tau2 * s2w)


__all__ = ["VECTORIZED", "deleted_tau2", "studentized_deleted_residuals"]
