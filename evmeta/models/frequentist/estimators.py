"""Estimators of the between-study variance tau^2 in (mixed-effects) meta-regression.

Every estimator takes y (k), v (k) and X (k x p) and works with p x p algebra only: the
k x k matrices of the textbook formulas (W, P = W - W X (X'WX)^-1 X'W) are never formed,
so k = 100,000 fits in memory and in seconds.

References
----------
DerSimonian R, Laird N (1986). Control Clin Trials 7:177-188 (DL).
Hedges LV (1983). Psychol Bull 93:388-395 (HE).
Sidik K, Jonkman JN (2005). J Biopharm Stat 15:823-838 (SJ).
Paule RC, Mandel J (1982). J Res Natl Bur Stand 87:377-385 (PM); Morris CN (1983) (EB).
Viechtbauer W (2005). J Educ Behav Stat 30:261-293 (ML, REML, Fisher scoring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from evmeta.errors import ModelError

METHODS = ("EE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB")
TOLERANCE = 1e-10
MAX_ITER = 1000
#: Weighted residual sum of squares, relative to the weighted total sum of squares, below which
#: the residuals are rounding error (relative error ~1e-16 in y gives ~1e-32): the effect sizes
#: are identical, and a Knapp-Hartung scale of ~1e-31 would give an SE of ~1e-16 (used by the
#: single and the batched fits).
KNHA_ROUNDOFF = 1e-24
#: REML takes Newton steps once a Fisher step is below this (relative) size.
NEWTON_FROM = 1e-4


@dataclass
class GLS:
    """Weighted least squares at one tau^2, with the traces the estimators need."""

    w: np.ndarray  # 1 / (v + tau2)
    beta: np.ndarray
    vb: np.ndarray  # (X'WX)^-1
    residual: np.ndarray  # y - X beta
    X: np.ndarray

    @property
    def rss(self) -> float:
        """y'Py = sum w (y - X beta)^2."""
        return float(np.sum(self.w * self.residual**2))

    def trace_p(self) -> float:
        """tr(P) = sum w - tr((X'WX)^-1 X'W^2X)."""
        return float(np.sum(self.w) - np.sum(self.vb * ((self.X * self.w[:, None] ** 2).T @ self.X)))

    def trace_pp(self) -> float:
        """tr(P P) = sum(P * P), P symmetric."""
        return frobenius2(self.w, self.X * self.w[:, None], self.vb)

    def ypp_y(self) -> float:
        """y'PPy = ||W (y - X beta)||^2."""
        return float(np.sum((self.w * self.residual) ** 2))


def gls(y: np.ndarray, v: np.ndarray, X: np.ndarray, tau2: float) -> GLS:
    """Generalized least squares with weights 1 / (v + tau2)."""
    w = 1.0 / (v + tau2)
    xtwx = (X * w[:, None]).T @ X
    vb = np.linalg.inv(xtwx)
    beta = vb @ ((X * w[:, None]).T @ y)
    return GLS(w, beta, vb, y - X @ beta, X)


def frobenius2(d: np.ndarray, U: np.ndarray, B: np.ndarray, e: np.ndarray | None = None) -> float:
    """||(diag(d) - U B U') diag(e)||_F^2 in O(k p^2) (B symmetric; e = 1 when None)."""
    e2 = np.ones_like(d) if e is None else e**2
    first = np.sum(d**2 * e2)
    cross = np.sum(B * ((U * (d * e2)[:, None]).T @ U))
    G_e = (U * e2[:, None]).T @ U
    G = U.T @ U
    last = np.sum((B @ G_e) * (B @ G).T)
    return float(first - 2 * cross + last)


def _ols_parts(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> tuple[float, float, np.ndarray]:
    xtx_inv = np.linalg.inv(X.T @ X)
    residual = y - X @ (xtx_inv @ (X.T @ y))
    rss = float(residual @ residual)
    trace_pv = float(np.sum(v) - np.sum(xtx_inv * ((X * v[:, None]).T @ X)))
    return rss, trace_pv, xtx_inv


@dataclass
class Tau2Fit:
    """tau^2, its standard error, and how it was found."""

    tau2: float
    se: float
    iterations: int = 0
    converged: bool = True


def estimate_tau2(y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str) -> Tau2Fit:
    """Estimate tau^2 by ``method`` (one of :data:`METHODS`); truncated at 0 as metafor does."""
    k, p = X.shape
    if method == "EE":
        return Tau2Fit(0.0, np.nan)
    if method == "DL":
        fixed = gls(y, v, X, 0.0)
        trace_p = fixed.trace_p()
        tau2 = max(0.0, (fixed.rss - (k - p)) / trace_p)
        pp = fixed.trace_pp()
        se = np.sqrt((2 * (k - p) + 4 * tau2 * trace_p + 2 * tau2**2 * pp) / trace_p**2)
        return Tau2Fit(tau2, float(se))
    if method == "HE":
        rss, trace_pv, xtx_inv = _ols_parts(y, v, X)
        tau2 = max(0.0, (rss - trace_pv) / (k - p))
        # tr(PVPV) with the OLS residual projector P = I - X (X'X)^-1 X'.
        pvpv = _trace_pvpv_ols(v, X, xtx_inv)
        se = np.sqrt((2 * pvpv + 4 * tau2 * trace_pv + 2 * tau2**2 * (k - p)) / (k - p) ** 2)
        return Tau2Fit(tau2, float(se))
    if method == "SJ":
        tau2_0 = float(np.var(y))  # var(y) (k - 1) / k
        fit = gls(y, v, X, tau2_0)
        tau2 = tau2_0 * fit.rss / (k - p)
        # SE as metafor: P at tau2_0, V = diag(v).
        sqrt_v = np.sqrt(v)
        pvpv = frobenius2(fit.w * v, (X * fit.w[:, None]) * sqrt_v[:, None], fit.vb)
        pv_p = frobenius2(fit.w, X * fit.w[:, None], fit.vb, e=sqrt_v)
        pp = fit.trace_pp()
        se = np.sqrt(tau2_0**2 / (k - p) ** 2 * (2 * pvpv + 4 * tau2 * pv_p + 2 * tau2**2 * pp))
        return Tau2Fit(tau2, float(se))
    if method in {"PM", "EB"}:
        tau2 = _paule_mandel(y, v, X)
        w = 1.0 / (v + tau2)
        se = np.sqrt(2 * k**2 / (k - p) / np.sum(w) ** 2)
        return Tau2Fit(tau2, float(se))
    if method in {"ML", "REML"}:
        return _fisher_scoring(y, v, X, method)
    raise ModelError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")


def _trace_pvpv_ols(v: np.ndarray, X: np.ndarray, xtx_inv: np.ndarray) -> float:
    """tr(P V P V) for P = I - X (X'X)^-1 X' (P symmetric, so tr((PV)^2) = ||V^1/2 P V^1/2||_F^2)."""
    sqrt_v = np.sqrt(v)
    return frobenius2(v, X * sqrt_v[:, None], xtx_inv)


def _paule_mandel(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """Root of the generalized Q statistic: y'P(tau2)y = k - p (0 when Q(0) <= k - p)."""
    k, p = X.shape
    target = k - p

    def excess(tau2: float) -> float:
        return gls(y, v, X, tau2).rss - target

    if excess(0.0) <= 0:
        return 0.0
    upper = max(1.0, float(np.var(y)) * 10)
    while excess(upper) > 0:
        upper *= 10
    return float(optimize.brentq(excess, 0.0, upper, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=1000))


def _reml_step(y: np.ndarray, v: np.ndarray, X: np.ndarray, tau2: float, newton: bool = False) -> float:
    """One REML Fisher-scoring step, (y'PPy - tr P) / tr(PP), at ``tau2``; with ``newton``
    the Newton step (y'PPy - tr P) / (2 y'PPPy - tr PP) instead (the observed information,
    used near the root where it converges quadratically), Fisher's when the observed
    information is not positive.

    The same quantities as :class:`GLS` (``ypp_y``, ``trace_p``, ``trace_pp``) from three
    k x p products (X'WX, X'W^2X, X'W^3X) computed once: with U = WX and B = (X'WX)^-1,
    tr P = sum w - <B, X'W^2X> and tr(PP) = sum w^2 - 2 <B, X'W^3X> + <B G, (B G)'>,
    G = X'W^2X (the fit's hot loop; tested equal to the GLS path).
    """
    w = 1.0 / (v + tau2)
    U = X * w[:, None]
    B = np.linalg.inv(U.T @ X)
    residual = y - X @ (B @ (U.T @ y))
    G = U.T @ U
    H = (U * w[:, None]).T @ U
    BG = B @ G
    z = w * residual  # P y
    ypp_y = float(np.dot(z, z))
    trace_p = float(w.sum() - np.vdot(B, G))
    trace_pp = float(np.dot(w, w) - 2 * np.vdot(B, H) + np.vdot(BG, BG.T))
    if newton:
        pz = w * z - U @ (B @ (U.T @ z))  # P (P y)
        observed = 2 * float(np.dot(z, pz)) - trace_pp
        if observed > 0:
            return (ypp_y - trace_p) / observed
    return (ypp_y - trace_p) / trace_pp


def _fisher_scoring(y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str) -> Tau2Fit:
    """ML / REML by Fisher scoring with step halving at the boundary tau2 = 0.

    Starts from the Hedges estimate (as metafor) and stops when the change in tau2 is
    below 1e-10 x max(1, tau2). REML switches to Newton steps (observed information) once a
    step is below 1e-4 x max(1, tau2): same root, about half the iterations.
    """
    rss, trace_pv, _ = _ols_parts(y, v, X)
    k, p = X.shape
    tau2 = max(0.0, (rss - trace_pv) / (k - p))
    near = False
    for iteration in range(1, MAX_ITER + 1):  # noqa: B007 (the count is reported after the loop)
        if method == "REML":
            step = _reml_step(y, v, X, tau2, newton=near)
        else:
            fit = gls(y, v, X, tau2)
            step = (fit.ypp_y() - np.sum(fit.w)) / np.sum(fit.w**2)
        while tau2 + step < 0:
            step /= 2
        tau2 += step
        if abs(step) < TOLERANCE * max(1.0, tau2):
            break
        near = abs(step) < NEWTON_FROM * max(1.0, tau2)
    else:
        return Tau2Fit(tau2, np.nan, MAX_ITER, converged=False)
    fit = gls(y, v, X, tau2)
    info = fit.trace_pp() if method == "REML" else float(np.sum(fit.w**2))
    return Tau2Fit(float(tau2), float(np.sqrt(2 / info)), iteration)
