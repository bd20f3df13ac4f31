"""Batched random-effects estimation: many data sets in one vectorized call.

A multiverse's null test, a bootstrap, a permutation test and leave-one-out all refit the
same univariate model (``meta_analysis``) on many data sets that share a design: the same
rows with other effect sizes, or the same rows drawn with other multiplicities. Here those
fits run together on ``(n, k)`` arrays (numpy broadcasting; one LAPACK call per step for
the ``p x p`` systems of all data sets), with the single-fit definitions of
:mod:`evmeta.models.frequentist.estimators`:

* DL, HE, EE: closed forms;
* ML, REML: Fisher scoring (REML: Newton steps once a step is below 1e-4 max(1, tau^2))
  from the Hedges start with step halving at tau^2 = 0 and the
  stopping rule |step| < 1e-10 max(1, tau^2), per data set (a data set stops iterating
  when it converges, exactly as the single fit does; the others go on);
* PM (= EB): the root of the generalized Q statistic, y'P(tau^2)y = k - p, by Newton's
  method from tau^2 = 0. Q is decreasing and convex in tau^2 (dQ = -y'PPy, d2Q =
  2 y'PPPy >= 0), so the iterates rise monotonically to the root, without overshoot.

So the batched estimate agrees with the single fit to rounding (the tests require 1e-10
on tau^2 and the coefficients), and the cost is a few dozen vectorized evaluations however
many data sets there are.

``counts`` gives each row's multiplicity in each data set (a row drawn m times by a
bootstrap counts m times; 0 drops it), so a resample is fitted without building it: the
weighted sums equal the sums over the repeated rows.

References
----------
Viechtbauer W (2005). J Educ Behav Stat 30:261-293 (ML, REML, Fisher scoring).
Paule RC, Mandel J (1982). J Res Natl Bur Stand 87:377-385 (PM).
DerSimonian R, Laird N (1986). Control Clin Trials 7:177-188 (DL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from evmeta.errors import ModelError
from evmeta.models.frequentist.estimators import KNHA_ROUNDOFF, MAX_ITER, NEWTON_FROM, TOLERANCE

if TYPE_CHECKING:
    import pandas as pd

    from evmeta.models.base.frequentist_protocol import FittedModel

#: Estimators with a batched form (SJ has none; use ``meta_analysis``).
BATCHED_METHODS = ("EE", "DL", "HE", "PM", "EB", "ML", "REML")


@dataclass
class _Data:
    """Y, V, counts (n, k) and X, shared (k, p) or stacked (n, k, p)."""

    Y: np.ndarray
    V: np.ndarray
    C: np.ndarray
    X: np.ndarray

    @property
    def shared(self) -> bool:
        return self.X.ndim == 2

    def take(self, idx: np.ndarray) -> _Data:
        return _Data(self.Y[idx], self.V[idx], self.C[idx], self.X if self.shared else self.X[idx])

    def gram(self, a: np.ndarray) -> np.ndarray:
        """X' diag(a) X per data set: (n, p, p)."""
        if self.shared:
            return np.einsum("nk,kp,kq->npq", a, self.X, self.X, optimize=True)
        return np.einsum("nk,nkp,nkq->npq", a, self.X, self.X, optimize=True)

    def xt(self, a: np.ndarray) -> np.ndarray:
        """X' a per data set: (n, p)."""
        return a @ self.X if self.shared else np.einsum("nk,nkp->np", a, self.X)

    def times(self, beta: np.ndarray) -> np.ndarray:
        """X beta per data set: (n, k)."""
        return beta @ self.X.T if self.shared else np.einsum("nkp,np->nk", self.X, beta)

    @property
    def k(self) -> np.ndarray:
        return self.C.sum(axis=1)

    @property
    def p(self) -> int:
        return self.X.shape[-1]


@dataclass
class _GLS:
    """Weighted least squares of every data set at its own tau^2."""

    u: np.ndarray  # 1 / (v + tau2), (n, k)
    w: np.ndarray  # counts x u
    vb: np.ndarray  # (X'WX)^-1, (n, p, p)
    beta: np.ndarray  # (n, p)
    residual: np.ndarray  # (n, k)

    @property
    def rss(self) -> np.ndarray:
        return np.sum(self.w * self.residual**2, axis=1)

    def ypp_y(self) -> np.ndarray:
        return np.sum(self.w * self.u * self.residual**2, axis=1)


def _gls(data: _Data, tau2: np.ndarray) -> _GLS:
    u = 1.0 / (data.V + tau2[:, None])
    w = data.C * u
    vb = np.linalg.inv(data.gram(w))
    beta = np.einsum("npq,nq->np", vb, data.xt(w * data.Y))
    return _GLS(u, w, vb, beta, data.Y - data.times(beta))


def _trace_p(data: _Data, fit: _GLS) -> np.ndarray:
    """tr(P) = sum w - tr((X'WX)^-1 X'W^2X)."""
    return fit.w.sum(1) - np.sum(fit.vb * data.gram(fit.w * fit.u), axis=(1, 2))


def _trace_pp(data: _Data, fit: _GLS) -> np.ndarray:
    """tr(PP) = sum w^2 - 2 tr(B X'W^3X) + tr(B G B G), B = (X'WX)^-1, G = X'W^2X."""
    w2 = fit.w * fit.u
    G = data.gram(w2)
    BG = fit.vb @ G
    cross = np.sum(fit.vb * data.gram(w2 * fit.u), axis=(1, 2))
    return w2.sum(1) - 2 * cross + np.sum(BG * BG.transpose(0, 2, 1), axis=(1, 2))


def _ols(data: _Data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rss, tr(PV), (X'X)^-1) of the unweighted fit, as ``estimators._ols_parts``."""
    xtx_inv = np.linalg.inv(data.gram(data.C))
    beta = np.einsum("npq,nq->np", xtx_inv, data.xt(data.C * data.Y))
    residual = data.Y - data.times(beta)
    rss = np.sum(data.C * residual**2, axis=1)
    trace_pv = np.sum(data.C * data.V, axis=1) - np.sum(xtx_inv * data.gram(data.C * data.V), axis=(1, 2))
    return rss, trace_pv, xtx_inv


def _hedges(data: _Data) -> np.ndarray:
    """Hedges' estimate (the ML/REML start value)."""
    rss, trace_pv, _ = _ols(data)
    return np.maximum(0.0, (rss - trace_pv) / (data.k - data.p))


def _hedges_se(data: _Data, tau2: np.ndarray) -> np.ndarray:
    """SE of Hedges' estimate, with tr(PVPV) for the OLS projector P = I - X (X'X)^-1 X'."""
    _, trace_pv, B = _ols(data)
    G = data.gram(data.C * data.V)
    BG = B @ G
    cross = np.sum(B * data.gram(data.C * data.V**2), axis=(1, 2))
    pvpv = np.sum(data.C * data.V**2, axis=1) - 2 * cross + np.sum(BG * BG.transpose(0, 2, 1), axis=(1, 2))
    df = data.k - data.p
    return np.sqrt((2 * pvpv + 4 * tau2 * trace_pv + 2 * tau2**2 * df) / df**2)


def _dersimonian_laird(data: _Data) -> np.ndarray:
    fixed = _gls(data, np.zeros(len(data.Y)))
    return np.maximum(0.0, (fixed.rss - (data.k - data.p)) / _trace_p(data, fixed))


def _reml_steps(data: _Data, fit: _GLS, newton: np.ndarray) -> np.ndarray:
    """REML steps of ``estimators._reml_step``: Fisher's, or Newton's (observed information
    2 y'PPPy - tr PP, with y'PPPy = sum w z^2 - a'Ba for z = u r, a = X'(w z)) where
    ``newton`` and the observed information is positive."""
    trace_pp = _trace_pp(data, fit)
    score = fit.ypp_y() - _trace_p(data, fit)
    step = score / trace_pp
    if newton.any():
        z = fit.u * fit.residual
        a = data.xt(fit.w * z)
        observed = 2 * (np.sum(fit.w * z**2, axis=1) - np.einsum("np,npq,nq->n", a, fit.vb, a)) - trace_pp
        use = newton & (observed > 0)
        step = np.where(use, score / np.where(use, observed, 1.0), step)
    return step


def _scoring(data: _Data, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Fisher scoring of every data set; (tau2, converged), each data set stopping on its own."""
    tau2 = _hedges(data)
    active = np.arange(len(tau2))
    near = np.zeros(len(tau2), dtype=bool)  # REML: Newton steps from here, as the single fit
    for _ in range(MAX_ITER):
        sub = data.take(active)
        fit = _gls(sub, tau2[active])
        if method == "REML":
            step = _reml_steps(sub, fit, near[active])
        else:
            step = (fit.ypp_y() - fit.w.sum(1)) / np.sum(fit.w * fit.u, axis=1)
        current = tau2[active]
        while np.any(negative := current + step < 0):
            step = np.where(negative, step / 2, step)
        current = current + step
        tau2[active] = current
        near[active] = np.abs(step) < NEWTON_FROM * np.maximum(1.0, current)
        active = active[~(np.abs(step) < TOLERANCE * np.maximum(1.0, current))]
        if not len(active):
            return tau2, np.ones(len(tau2), dtype=bool)
    converged = np.ones(len(tau2), dtype=bool)
    converged[active] = False
    return tau2, converged


def _paule_mandel(data: _Data) -> tuple[np.ndarray, np.ndarray]:
    """Root of y'P(tau2)y = k - p by monotone Newton steps from 0 (0 when Q(0) <= k - p)."""
    target = data.k - data.p
    tau2 = np.zeros(len(data.Y))
    fit = _gls(data, tau2)
    active = np.flatnonzero(fit.rss - target > 0)
    for _ in range(MAX_ITER):
        if not len(active):
            return tau2, np.ones(len(tau2), dtype=bool)
        sub = data.take(active)
        fit = _gls(sub, tau2[active])
        step = (fit.rss - target[active]) / fit.ypp_y()
        step = np.maximum(step, 0.0)  # convexity: never below the root; rounding only
        tau2[active] += step
        active = active[~(step <= 4 * np.finfo(float).eps * np.maximum(1e-300, tau2[active]) + 1e-15)]
    converged = np.ones(len(tau2), dtype=bool)
    converged[active] = False
    return tau2, converged


def _tau2(data: _Data, method: str) -> tuple[np.ndarray, np.ndarray]:
    n = len(data.Y)
    if method == "EE":
        return np.zeros(n), np.ones(n, dtype=bool)
    if method == "DL":
        return _dersimonian_laird(data), np.ones(n, dtype=bool)
    if method == "HE":
        return _hedges(data), np.ones(n, dtype=bool)
    if method in {"PM", "EB"}:
        return _paule_mandel(data)
    return _scoring(data, method)


def _tau2_se(data: _Data, fit: _GLS, tau2: np.ndarray, method: str, fixed: _GLS) -> np.ndarray:
    """Standard error of tau^2 by the single fit's formula for ``method``."""
    k, p = data.k, data.p
    if method == "DL":
        trace_p = _trace_p(data, fixed)
        pp = _trace_pp(data, fixed)
        return np.sqrt((2 * (k - p) + 4 * tau2 * trace_p + 2 * tau2**2 * pp) / trace_p**2)
    if method in {"PM", "EB"}:
        return np.sqrt(2 * k**2 / (k - p) / fit.w.sum(1) ** 2)
    if method == "REML":
        return np.sqrt(2 / _trace_pp(data, fit))
    if method == "ML":
        return np.sqrt(2 / np.sum(fit.w * fit.u, axis=1))
    if method == "HE":
        return _hedges_se(data, tau2)
    return np.full(len(tau2), np.nan)  # EE: tau^2 = 0 is not estimated


@dataclass(frozen=True)
class BatchedFit:
    """Fits of ``n`` data sets; every array has the data sets along its first axis.

    ``beta``, ``se``, ``stat``, ``pvalue``, ``ci_low``, ``ci_high`` are ``(n, p)`` (column
    0: the intercept, the pooled effect of a model without moderators); ``vb`` is
    ``(n, p, p)`` (scaled by ``s2w`` under Knapp-Hartung); ``tau2``, ``tau2_se``, ``q``,
    ``i2`` (percent), ``h2``, ``s2w``, ``k`` and ``df`` (t df, NaN for z tests) are
    ``(n,)``. ``valid`` is False where the single fit raises a ModelError (no convergence,
    a rank-deficient design among the counted rows, fewer than p + 1 rows, Knapp-Hartung
    without residual variation, non-finite results); those rows hold NaN, and ``reason``
    says why in words per data set ("" when valid).
    """

    method: str
    test: str
    level: float
    tau2: np.ndarray
    tau2_se: np.ndarray
    beta: np.ndarray
    vb: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    pvalue: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    q: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    s2w: np.ndarray
    k: np.ndarray
    df: np.ndarray
    valid: np.ndarray
    reason: np.ndarray

    @property
    def estimate(self) -> np.ndarray:
        """The intercept of every data set (the pooled effect without moderators)."""
        return self.beta[:, 0]

    @property
    def q_pvalue(self) -> np.ndarray:
        return special.chdtrc(self.k - self.beta.shape[1], self.q)


def batched_meta_analysis(
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray | None = None,
    *,
    counts: np.ndarray | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> BatchedFit:
    """Fit ``meta_analysis(yi=yi[j], vi=vi[j], ...)`` for every data set ``j`` at once.

    Parameters
    ----------
    yi, vi : array-like, (n, k) or (k,)
        Effect sizes and sampling variances (broadcast against each other and ``counts``).
        Rows with count 0 are ignored (they may hold NaN, e.g. padding of ragged data).
    X : array-like, optional
        Design: None (intercept only), shared ``(k, p)`` or one per data set ``(n, k, p)``.
    counts : array-like, (n, k) or (k,), optional
        Non-negative multiplicity of each row in each data set (default 1): a bootstrap
        resample is its counts, leave-one-out the identity's complement.
    method : {"EE", "DL", "HE", "PM", "EB", "ML", "REML"}
        tau^2 estimator, as :func:`evmeta.meta_analysis`.
    test : {"z", "knha"}
        Normal tests, or Knapp-Hartung (t with k - p df, scaled covariance).
    level : float
        Confidence level of the intervals.

    Returns
    -------
    BatchedFit

    Raises
    ------
    ModelError
        Unknown method or test, shapes that do not broadcast, negative counts, or
        non-positive variances in counted rows. A data set that cannot be fitted does not
        raise: it is marked invalid in the result, with the reason.
    """
    method = str(method).upper()
    if method not in BATCHED_METHODS:
        raise ModelError(
            f"no batched form of method {method!r}; batched methods: {', '.join(BATCHED_METHODS)}"
        )
    if test not in ("z", "knha"):
        raise ModelError(f"unknown test {test!r}; valid tests: z, knha")
    if not 0 < level < 1:
        raise ModelError(f"level must lie between 0 and 1, got {level}")
    data = _as_data(yi, vi, X, counts)
    n, p = len(data.Y), data.p
    reason = np.full(n, "", dtype=object)
    reason[data.k - p < 1] = f"fewer than {p + 1} counted rows for {p} coefficient(s)"
    gram = data.gram(data.C)
    deficient = (data.k - p >= 1) & (np.linalg.matrix_rank(gram) < p)
    reason[deficient] = "the design is rank-deficient among the counted rows"
    ok = np.flatnonzero(reason == "")
    parts = _fit_ok(data.take(ok), method, test, level) if len(ok) else {}
    out = {name: np.full((n, *value.shape[1:]), np.nan) for name, value in parts.items()}
    for name, value in parts.items():
        out[name][ok] = value
    if not len(ok):
        out = {name: np.full(shape, np.nan) for name, shape in _shapes(n, p).items()}
    valid = np.zeros(n, dtype=bool)
    if len(ok):
        valid[ok] = parts["converged"] > 0
        reason[ok[parts["converged"] == 0]] = f"the {method} estimate of tau^2 did not converge"
        reason[ok[parts["scale"] == 0]] = "Knapp-Hartung needs residual variation (scale factor 0)"
        valid[ok] &= parts["scale"] > 0
        finite = np.all(np.isfinite(parts["beta"]) & np.isfinite(parts["se"]), axis=1)
        reason[ok[~finite & valid[ok]]] = "non-finite estimates"
        valid[ok] &= finite
    for name in ("beta", "vb", "se", "stat", "pvalue", "ci_low", "ci_high", "tau2", "tau2_se"):
        out[name][~valid] = np.nan
    del out["converged"], out["scale"]
    return BatchedFit(method, test, level, k=data.k, valid=valid, reason=reason, **out)


def _shapes(n: int, p: int) -> dict[str, tuple[int, ...]]:
    vectors = ("tau2", "tau2_se", "q", "i2", "h2", "s2w", "df", "converged", "scale")
    return {
        **{name: (n,) for name in vectors},
        **{name: (n, p) for name in ("beta", "se", "stat", "pvalue", "ci_low", "ci_high")},
        "vb": (n, p, p),
    }


def _as_data(yi, vi, X, counts) -> _Data:
    Y = np.atleast_2d(np.asarray(yi, dtype=float))
    V = np.atleast_2d(np.asarray(vi, dtype=float))
    C = np.atleast_2d(np.ones(1) if counts is None else np.asarray(counts, dtype=float))
    n = np.shape(X)[0] if X is not None and np.ndim(X) == 3 else 1  # stacked designs set n
    try:
        Y, V, C = (np.array(a) for a in np.broadcast_arrays(Y, V, C, np.empty((n, 1)))[:3])
    except ValueError:
        raise ModelError(f"yi {Y.shape}, vi {V.shape} and counts {C.shape} do not broadcast") from None
    k = Y.shape[1]
    if not np.all(np.isfinite(C) & (C >= 0)):
        raise ModelError("counts must be finite and non-negative")
    counted = C > 0
    bad = counted & ~(np.isfinite(V) & (V > 0) & np.isfinite(Y))
    if bad.any():
        j, i = np.argwhere(bad)[0]
        raise ModelError(
            f"sampling variances must be positive and finite and effect sizes finite; not so in "
            f"data set {j}, row {i} (and {int(bad.sum()) - 1} more)"
        )
    Y, V = np.where(counted, Y, 0.0), np.where(counted, V, 1.0)
    design = np.ones((k, 1)) if X is None else np.asarray(X, dtype=float)
    if design.ndim not in (2, 3) or design.shape[-2] != k or (design.ndim == 3 and len(design) != len(Y)):
        raise ModelError(f"X must be ({k}, p) or ({len(Y)}, {k}, p), got {design.shape}")
    if not np.all(np.isfinite(design)):
        raise ModelError("X has non-finite values")
    return _Data(Y, V, C, design)


def _fit_ok(data: _Data, method: str, test: str, level: float) -> dict[str, np.ndarray]:
    """Every quantity of the result for data sets that can be fitted."""
    with np.errstate(all="ignore"):
        tau2, converged = _tau2(data, method)
        fit = _gls(data, tau2)
        fixed = _gls(data, np.zeros(len(tau2)))
        k, p = data.k, data.p
        q = np.maximum(0.0, fixed.rss)
        if method == "EE":
            i2 = np.where(q > 0, np.maximum(0.0, 100 * (q - (k - p)) / q), 0.0)
            h2 = q / (k - p)
        else:
            typical = (k - p) / _trace_p(data, fixed)
            i2, h2 = 100 * tau2 / (typical + tau2), tau2 / typical + 1
        vb, s2w, df = fit.vb, np.ones(len(tau2)), np.full(len(tau2), np.nan)
        if test == "knha":
            s2w = fit.rss / (k - p)
            vb, df = vb * s2w[:, None, None], (k - p).astype(float)
        se = np.sqrt(np.diagonal(vb, axis1=1, axis2=2))
        stat = fit.beta / se
        tail = 1 - (1 - level) / 2
        if test == "knha":
            pvalue = 2 * special.stdtr(df[:, None], -np.abs(stat))
            crit = special.stdtrit(df, tail)[:, None]
        else:
            pvalue, crit = 2 * special.ndtr(-np.abs(stat)), special.ndtri(tail)
        return {
            "tau2": tau2,
            "tau2_se": _tau2_se(data, fit, tau2, method, fixed),
            "beta": fit.beta,
            "vb": vb,
            "se": se,
            "stat": stat,
            "pvalue": pvalue,
            "ci_low": fit.beta - crit * se,
            "ci_high": fit.beta + crit * se,
            "q": q,
            "i2": i2,
            "h2": h2,
            "s2w": s2w,
            "df": df,
            "converged": converged.astype(float),
            # As the single fit (estimators.KNHA_ROUNDOFF): a residual sum of squares that is rounding
            # error of sum(w y^2) means identical effect sizes, a scale factor of 0.
            "scale": ((s2w > 0) & (fit.rss > KNHA_ROUNDOFF * np.sum(fit.w * data.Y**2, axis=1))).astype(float),
        }


@dataclass(frozen=True)
class DeletedFit:
    """One case-deleted refit: the attributes leave-one-out and influence read."""

    estimate: float
    se: float
    stat: float
    pvalue: float
    ci_low: float
    ci_high: float
    q: float
    q_pvalue: float
    tau2: float
    i2: float
    h2: float
    s2w: float
    vb: np.ndarray
    coefficients: pd.DataFrame  # an "estimate" column, one row per coefficient


def case_deletions(result: FittedModel) -> list[DeletedFit | None] | None:
    """The k refits of a fitted ``MetaResult`` without each row in turn, batched.

    Equal to ``result.fit_subset`` without row i (same design columns, method, test and
    level; None where that refit raises a ModelError). Returns None when the estimator or
    test has no batched form (the caller then refits one by one).
    """
    import pandas as pd

    if result.method not in BATCHED_METHODS or result.test not in ("z", "knha"):
        return None
    model = result.model
    counts = 1.0 - np.eye(model.k)
    fit = batched_meta_analysis(
        model.yi, model.vi, model.X, counts=counts, method=result.method, test=result.test, level=result.level
    )
    q_pvalue = fit.q_pvalue
    out: list[DeletedFit | None] = []
    for i in range(model.k):
        if not fit.valid[i]:
            out.append(None)
            continue
        coefficients = pd.DataFrame({"estimate": fit.beta[i]}, index=pd.Index(model.names, name="term"))
        out.append(
            DeletedFit(
                estimate=float(fit.estimate[i]), se=float(fit.se[i, 0]), stat=float(fit.stat[i, 0]),
                pvalue=float(fit.pvalue[i, 0]), ci_low=float(fit.ci_low[i, 0]), ci_high=float(fit.ci_high[i, 0]),
                q=float(fit.q[i]), q_pvalue=float(q_pvalue[i]), tau2=float(fit.tau2[i]), i2=float(fit.i2[i]),
                h2=float(fit.h2[i]), s2w=float(fit.s2w[i]), vb=fit.vb[i], coefficients=coefficients,
            )
        )  # fmt: skip
    return out


__all__ = ["BATCHED_METHODS", "BatchedFit", "DeletedFit", "batched_meta_analysis", "case_deletions"]
