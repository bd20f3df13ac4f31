"""Diagnostics of a fitted MetaResult: Q-profile interval for tau^2, leave-one-out,
influence (studentized deleted residuals, DFFITS, Cook's distance, covariance ratio, hat).

References
----------
Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
meta-analysis. Stat Med 26:37-52.
Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis.
Res Synth Methods 1:112-125.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from evmeta.errors import ModelError
from evmeta.models.frequentist.batched import case_deletions
from evmeta.models.frequentist.estimators import gls

#: A fitted MetaResult (typed loosely: this module is imported by meta.py, never the reverse;
#: refits go through ``result.fit_subset``, which uses the fitter the result carries).
MetaResult = Any


def confint_tau2(result: MetaResult, level: float = 0.95) -> pd.DataFrame:
    """Q-profile confidence interval for tau^2 (and tau, I^2, H^2).

    The bounds solve y'P(tau^2)y = chi^2 quantiles with k - p df; a bound is 0 when the
    generalized Q at tau^2 = 0 already lies below its quantile.
    """
    model = result.model
    y, v, X = model.yi, model.vi, model.X
    k, p = X.shape
    alpha = 1 - level

    def q_gen(tau2: float) -> float:
        return gls(y, v, X, tau2).rss

    def solve(target: float) -> float:
        if q_gen(0.0) < target:
            return 0.0
        upper = max(1.0, result.tau2 * 10, float(np.var(y)) * 10)
        while q_gen(upper) > target:
            upper *= 10
        return float(
            optimize.brentq(lambda t: q_gen(t) - target, 0.0, upper, xtol=1e-14, rtol=1e-14, maxiter=1000)
        )

    lower = solve(stats.chi2.ppf(1 - alpha / 2, k - p))
    upper = solve(stats.chi2.ppf(alpha / 2, k - p))
    typical = (k - p) / gls(y, v, X, 0.0).trace_p()
    rows = {
        "tau2": (result.tau2, lower, upper),
        "tau": (result.tau, np.sqrt(lower), np.sqrt(upper)),
        "i2": (result.i2, 100 * lower / (typical + lower), 100 * upper / (typical + upper)),
        "h2": (result.h2, lower / typical + 1, upper / typical + 1),
    }
    return pd.DataFrame(rows, index=["estimate", "ci_low", "ci_high"]).T


def case_deleted_fits(result: MetaResult) -> list[MetaResult | None]:
    """The model refitted without each comparison in turn (None where a refit is impossible).

    Leave-one-out and influence diagnostics both need these k refits; a result is immutable,
    so they are computed once per result and kept in its documented ``_cache``.
    """
    cached = result._cache.get("case_deleted_fits")
    if cached is None:
        # All k refits in one batched fit; a CR2 fit (whose refits must stay CR2) and a model
        # without a batched form are refitted one by one.
        cached = case_deletions(result) if result.inference == "model" else None
    if cached is None:
        model = result.model
        cached = []
        for i in range(model.k):
            keep = np.ones(model.k, dtype=bool)
            keep[i] = False
            try:
                cached.append(result.fit_subset(keep))
            except ModelError:
                cached.append(None)
    result._cache["case_deleted_fits"] = cached
    return cached


def leave_one_out(result: MetaResult) -> pd.DataFrame:
    """Refit without each comparison in turn (models without moderators, as metafor)."""
    model = result.model
    if not model.intercept_only:
        raise ModelError("leave-one-out is defined for models without moderators; use influence() instead")
    if model.k < 3:
        raise ModelError("leave-one-out needs at least 3 comparisons")
    rows = []
    for i, fit in enumerate(case_deleted_fits(result)):
        if fit is None:
            raise ModelError(f"leave-one-out: the model cannot be refitted without comparison {i + 1}")
        rows.append(
            {
                "left_out": model.frame.index[i],
                "estimate": fit.estimate,
                "se": fit.se,
                "stat": fit.stat,
                "pvalue": fit.pvalue,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "q": fit.q,
                "q_pvalue": fit.q_pvalue,
                "tau2": fit.tau2,
                "i2": fit.i2,
                "h2": fit.h2,
            }
        )
    out = pd.DataFrame(rows)
    if "label" in model.frame.columns:
        out.insert(1, "label", model.frame["label"].to_numpy())
    return out


def influence(result: MetaResult) -> pd.DataFrame:
    """Case-deletion diagnostics as metafor's ``influence.rma.uni``.

    Columns: ``rstudent`` (studentized deleted residual), ``dffits``, ``cook_d`` (over all
    coefficients),
    ``cov_r``, ``tau2_del``, ``q_del``, ``hat``, ``weight`` (percent) and ``influential``
    (metafor's rule of thumb).
    """
    model = result.model
    k, p = model.X.shape
    X = model.X
    beta = result.coefficients["estimate"].to_numpy()
    tested = list(range(p))  # Cook's distance and covariance ratio over all coefficients, as metafor
    inv_vb = np.linalg.inv(result.vb[np.ix_(tested, tested)])
    w = 1.0 / (model.vi + result.tau2)
    xtwx_inv = np.linalg.inv((X * w[:, None]).T @ X)
    hat = np.einsum("ij,jk,ik->i", X, xtwx_inv, X) * w
    fitted = X @ beta
    out = {
        name: np.full(k, np.nan) for name in ["rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "q_del"]
    }
    for i, fit in enumerate(case_deleted_fits(result)):
        if fit is None:
            continue
        b_del = fit.coefficients["estimate"].to_numpy()
        pred_del = X[i] @ b_del
        var_pred = X[i] @ fit.vb @ X[i]
        out["tau2_del"][i] = fit.tau2
        out["q_del"][i] = fit.q
        resid = model.yi[i] - pred_del
        out["rstudent"][i] = resid / np.sqrt(model.vi[i] * fit.s2w + var_pred + fit.tau2 * fit.s2w)
        out["dffits"][i] = (fitted[i] - pred_del) / np.sqrt(fit.s2w * hat[i] * (fit.tau2 + model.vi[i]))
        difference = beta[tested] - b_del[tested]
        out["cook_d"][i] = difference @ inv_vb @ difference
        out["cov_r"][i] = np.linalg.det(fit.vb[np.ix_(tested, tested)]) / np.linalg.det(
            result.vb[np.ix_(tested, tested)]
        )
    frame = pd.DataFrame(out, index=model.frame.index)
    frame["hat"] = hat
    frame["weight"] = result.weights
    m = len(tested)
    frame["influential"] = (
        (np.abs(frame["dffits"]) > 3 * np.sqrt(p / (k - p)))
        | (stats.chi2.cdf(frame["cook_d"], m) > 0.5)
        | (frame["hat"] > 3 * p / k)
    )
    if "label" in model.frame.columns:
        frame.insert(0, "label", model.frame["label"].to_numpy())
    return frame
