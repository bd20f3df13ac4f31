"""The numerical core of the location-scale model: profile (restricted) log-likelihood of
the log-linear between-study variance, its score and Hessian, and Newton maximization.

Model (metafor's ``rma(scale = ~ ...)``, link "log"): y_i ~ N(x_i' beta, v_i + tau2_i) with
log tau2_i = z_i' alpha. beta is profiled out by generalized least squares at each alpha.
With V = diag(v + tau2), W = V^-1, P = W - W X (X'WX)^-1 X'W, u = P y and
V_j = dV/d alpha_j = diag(tau2 * z_j):

* score_j = -1/2 tr(M V_j) + 1/2 u' V_j u, with M = W (ML) or P (REML);
* Hessian_jl = 1/2 tr(M V_j M V_l) - 1/2 tr(M V_jl) - u' V_j P V_l u + 1/2 u' V_jl u,
  V_jl = diag(tau2 * z_j * z_l);
* expected information_jl = 1/2 tr(M V_j M V_l) (Harville 1977; Viechtbauer & Lopez-Lopez
  2022, Res Synth Methods 13:697-715, for the location-scale model).

Standard errors of alpha are from the inverse observed information (the negative Hessian
of the profile likelihood), which checks against metafor 3.8.1 (tests/reference/
location_scale.R).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Newton iterations and the convergence threshold on the largest parameter change.
MAX_ITER = 200
TOLERANCE = 1e-10
#: A fitted tau2 below this fraction of the median sampling variance counts as the
#: boundary 0: the log-linear coefficients then run off to -infinity.
BOUNDARY = 1e-8


@dataclass(frozen=True)
class ProfileState:
    """Everything the likelihood and its derivatives need at one alpha."""

    alpha: np.ndarray
    tau2: np.ndarray
    w: np.ndarray
    beta: np.ndarray
    vb: np.ndarray
    P: np.ndarray
    u: np.ndarray
    loglik: float


def state(
    y: np.ndarray, v: np.ndarray, X: np.ndarray, Z: np.ndarray, alpha: np.ndarray, reml: bool
) -> ProfileState:
    """Profile state at ``alpha`` (log-likelihood as metafor defines it, REML with 1/2 log|X'X|)."""
    tau2 = np.exp(np.clip(Z @ alpha, -700, 700))
    w = 1.0 / (v + tau2)
    xwx = (X * w[:, None]).T @ X
    vb = np.linalg.inv(xwx)
    beta = vb @ (X.T @ (w * y))
    r = y - X @ beta
    WX = X * w[:, None]
    P = np.diag(w) - WX @ vb @ WX.T
    u = w * r
    k, p = X.shape
    ll = -0.5 * np.sum(np.log(v + tau2)) - 0.5 * float(r @ (w * r))
    if reml:
        ll += -0.5 * (k - p) * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        ll -= 0.5 * np.linalg.slogdet(xwx)[1]
    else:
        ll -= 0.5 * k * np.log(2 * np.pi)
    return ProfileState(alpha, tau2, w, beta, vb, P, u, float(ll))


def derivatives(s: ProfileState, Z: np.ndarray, reml: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, Hessian, expected information) of the profile log-likelihood in alpha."""
    M = s.P if reml else np.diag(s.w)
    dz = Z * s.tau2[:, None]  # columns: diagonals of V_j
    m_diag = np.diag(M)
    score = -0.5 * dz.T @ m_diag + 0.5 * dz.T @ (s.u**2)
    expected = 0.5 * dz.T @ (M * M) @ dz
    second = Z.T @ (Z * (s.tau2 * m_diag)[:, None])  # tr(M V_jl)
    du = dz * s.u[:, None]
    quad = du.T @ s.P @ du
    quad2 = Z.T @ (Z * (s.tau2 * s.u**2)[:, None])
    hessian = expected - 0.5 * second - quad + 0.5 * quad2
    return score, hessian, expected


def _direction(score: np.ndarray, hessian: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Newton step where the observed information is positive definite, else Fisher scoring."""
    info = -hessian
    try:
        np.linalg.cholesky(info)
        return np.linalg.solve(info, score)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(expected, score, rcond=None)[0]


def maximize(
    y: np.ndarray, v: np.ndarray, X: np.ndarray, Z: np.ndarray, alpha0: np.ndarray, reml: bool
) -> tuple[ProfileState, int, bool, bool]:
    """Newton-Raphson with step halving from ``alpha0``.

    Returns (state, iterations, converged, boundary); ``boundary`` is True when some fitted
    tau2 fell below ``BOUNDARY`` times the median sampling variance (its coefficients then
    diverge and the search stops there).
    """
    floor = BOUNDARY * float(np.median(v))
    s = state(y, v, X, Z, alpha0, reml)
    for iteration in range(1, MAX_ITER + 1):
        score, hessian, expected = derivatives(s, Z, reml)
        step = _direction(score, hessian, expected)
        for _ in range(50):
            candidate = state(y, v, X, Z, s.alpha + step, reml)
            if candidate.loglik >= s.loglik - 1e-12 * max(1.0, abs(s.loglik)):
                break
            step = step / 2
        else:
            return s, iteration, True, bool(np.min(s.tau2) < floor)
        change = float(np.max(np.abs(candidate.alpha - s.alpha)))
        s = candidate
        if np.min(s.tau2) < floor:
            return s, iteration, True, True
        if change < TOLERANCE or np.max(np.abs(score)) < 1e-12:
            return s, iteration, True, False
    return s, MAX_ITER, False, bool(np.min(s.tau2) < floor)


def start(y: np.ndarray, v: np.ndarray, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Starting alpha: the log of a moment (DerSimonian-Laird-type) tau2 on every row,
    floored at 1% of the mean sampling variance, projected on the columns of Z."""
    w = 1.0 / v
    xwx = (X * w[:, None]).T @ X
    beta = np.linalg.solve(xwx, X.T @ (w * y))
    r = y - X @ beta
    q = float(r @ (w * r))
    WX = X * w[:, None]
    trace_p = float(np.sum(w) - np.trace(np.linalg.solve(xwx, WX.T @ WX)))
    k, p = X.shape
    tau2 = max((q - (k - p)) / trace_p, 0.01 * float(np.mean(v)))
    return np.linalg.lstsq(Z, np.full(len(y), np.log(tau2)), rcond=None)[0]
