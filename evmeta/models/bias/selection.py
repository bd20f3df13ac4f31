"""Step-function selection models (``selection_model``): publication-bias-adjusted estimates.

Fits the Vevea & Hedges (1995) model by maximum likelihood (as metafor's ``selmodel(type =
"stepfun")``: the unadjusted model is refitted by ML, the standard errors come from the inverse
Hessian of (beta, tau^2, delta), and the likelihood-ratio test compares against the ML fit of the
unadjusted model with one degree of freedom per estimated delta). The likelihood itself lives in
:mod:`evmeta.models.bias.step_likelihood`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from evmeta.errors import ModelError
from evmeta.models.base.design import ModelData, new_design
from evmeta.models.base.inference import at_level, coefficient_table, prediction_frame
from evmeta.models.base.protocol import Summary, resolve_level
from evmeta.models.base.result_parts import FirstCoefficient, PrintsSummary
from evmeta.models.bias.step_likelihood import (
    ALTERNATIVES,
    interval_index,
    normal_ml_profile,
    normalize_steps,
    step_loglik,
    step_pvalues,
)


@dataclass(frozen=True)
class SelectionInputs:
    """What a selection model needs from a fitted meta-analysis."""

    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    names: list[str]
    fixed_effect: bool
    level: float
    model: ModelData


def inputs_from_fit(fit: Any) -> SelectionInputs:
    """The one adapter from a ``meta_analysis`` result (its stored ``inputs``) to arrays."""
    model = getattr(fit, "inputs", None)
    if not isinstance(model, ModelData):
        raise ModelError("selection_model needs a meta_analysis result (with stored inputs yi, vi and X)")
    return SelectionInputs(
        np.asarray(model.yi, float),
        np.asarray(model.vi, float),
        np.asarray(model.X, float),
        list(model.names),
        str(getattr(fit, "method", "REML")).upper() in ("EE", "FE", "CE"),
        float(getattr(fit, "level", 0.95)),
        model,
    )


@dataclass(frozen=True, eq=False, repr=False)
class SelectionResult(FirstCoefficient, PrintsSummary):
    """A fitted step-function selection model (immutable).

    ``estimate``/``se``/``ci_low``/``ci_high``/``pvalue`` are read from the intercept's row
    of ``coefficients`` (the adjusted pooled effect in a model without moderators), which
    holds every coefficient; ``inputs`` are the stored inputs of the fit it adjusts. ``delta`` are the
    relative selection weights per p-value interval (the first fixed at 1), ``delta_se`` their
    standard errors (NaN for the fixed one). ``lrt`` is the likelihood-ratio statistic against the
    ML fit of the unadjusted model, with ``lrt_df`` degrees of freedom.
    """

    steps: np.ndarray
    alternative: str
    tau2: float
    tau2_se: float
    delta: np.ndarray
    delta_se: np.ndarray
    k_per_interval: np.ndarray
    lrt: float
    lrt_df: int
    lrt_pvalue: float
    log_likelihood: float
    log_likelihood_unadjusted: float
    coefficients: pd.DataFrame
    level: float
    vb: np.ndarray = field(repr=False)
    inputs: ModelData = field(repr=False)

    @property
    def k(self) -> int:
        return self.inputs.k

    @property
    def measure(self) -> str | None:
        return self.inputs.measure

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """The adjusted tau^2 (ML under selection); no interval."""
        row = {"tau2": self.tau2, "tau": float(np.sqrt(self.tau2)), "ci_low": np.nan, "ci_high": np.nan}
        return pd.DataFrame([row], index=pd.Index(["comparison"], name="component"))

    def predict(self, newmods: Any = None, level: float | None = None) -> pd.DataFrame:
        """Selection-adjusted average effects: pred, se, ci_low/ci_high, pi_low/pi_high (tau^2)."""
        level = resolve_level(level, self.level)
        X = (
            np.ones((1, 1))
            if newmods is None and self.inputs.intercept_only
            else new_design(self.inputs, newmods)
        )
        return prediction_frame(X, self.coefficients["estimate"].to_numpy(), self.vb, self.tau2, level, None)

    def interval_labels(self) -> list[str]:
        """``"0 < p <= 0.025"``-style labels of the p-value intervals."""
        lower = np.concatenate([[0.0], self.steps[:-1]])
        return [f"{lo:g} < p <= {hi:g}" for lo, hi in zip(lower, self.steps, strict=False)]

    def weights_frame(self) -> pd.DataFrame:
        """One row per p-value interval: k, delta and its SE."""
        return pd.DataFrame(
            {"k": self.k_per_interval, "delta": self.delta, "delta_se": self.delta_se},
            index=pd.Index(self.interval_labels(), name="interval"),
        )

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """estimate, se, ci_low, ci_high, stat, pvalue per coefficient (intervals at ``level``)."""
        level = resolve_level(level, self.level)
        return self.coefficients.copy() if level == self.level else at_level(self.coefficients, level, None)

    def summary(self, level: float | None = None) -> Summary:
        """A metafor-like printout (:class:`~evmeta.models.base.protocol.Summary`): tau^2, the
        likelihood-ratio test and the selection weights above the coefficient table."""
        level = resolve_level(level, self.level)
        title = (
            f"Step-function selection model (k = {self.k}; alternative: {self.alternative}; "
            f"cut-points: {', '.join(f'{s:g}' for s in self.steps[:-1])})"
        )
        lines = [
            f"tau^2 = {self.tau2:.4f} (SE = {self.tau2_se:.4f})",
            f"LRT for selection: X2({self.lrt_df}) = {self.lrt:.4f}, p = {self.lrt_pvalue:.4g}",
            "Selection weights:",
            *self.weights_frame().to_string(float_format=lambda x: f"{x:.4f}").splitlines(),
        ]
        return Summary(title, lines, self.coef_table(level), level)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient with the model-level statistics repeated."""
        out = self.coefficients.reset_index(names="term")
        for name in ["k", "tau2", "lrt", "lrt_df", "lrt_pvalue", "alternative"]:
            out[name] = getattr(self, name)
        out["steps"] = ", ".join(f"{s:g}" for s in self.steps[:-1])
        out["model"] = "selection_model"
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values."""
        scalars = [
            "k",
            "alternative",
            "estimate",
            "se",
            "ci_low",
            "ci_high",
            "pvalue",
            "tau2",
            "tau2_se",
            "lrt",
            "lrt_df",
            "lrt_pvalue",
            "log_likelihood",
            "log_likelihood_unadjusted",
            "level",
        ]
        out: dict[str, Any] = {name: getattr(self, name) for name in scalars}
        for name in ["steps", "delta", "delta_se", "k_per_interval"]:
            out[name] = [float(x) for x in getattr(self, name)]
        out["coefficients"] = self.coefficients.reset_index(names="term").to_dict(orient="records")
        return out


def selection_model(fit: Any, steps: Any = (0.025,), *, alternative: str = "greater") -> SelectionResult:
    """Fit a step-function selection model to the data and design of a meta-analysis.

    Parameters
    ----------
    fit : MetaResult
        A ``meta_analysis`` result (with or without moderators). A common-effect fit
        (``method="EE"``) keeps tau^2 = 0; any other estimator is replaced by ML.
    steps : sequence of float
        Cut-points of the p-value intervals, in (0, 1); 1 is appended.
    alternative : {"greater", "less", "two.sided"}
        Direction of the p-values that drive selection (metafor's default ``"greater"``:
        significant positive effects are favoured).

    Returns
    -------
    SelectionResult

    Raises
    ------
    ModelError
        Unknown alternative, cut-points outside (0, 1), an interval without any p-value, or
        too few comparisons for the number of parameters.

    References
    ----------
    Vevea JL, Hedges LV (1995). Psychometrika 60:419-435. Viechtbauer W (2010). J Stat Softw 36(3).
    """
    if alternative not in ALTERNATIVES:
        raise ModelError(f"unknown alternative {alternative!r}; valid: {', '.join(ALTERNATIVES)}")
    raw = np.atleast_1d(np.asarray(steps, dtype=float))
    if raw.size == 0 or np.any((raw <= 0) | (raw > 1)) or np.any(~np.isfinite(raw)):
        raise ModelError(f"steps must be cut-points in (0, 1), got {list(raw)}")
    data = inputs_from_fit(fit)
    cuts = normalize_steps(raw)
    counts = np.bincount(
        interval_index(step_pvalues(data.yi, data.vi, alternative), cuts), minlength=cuts.size
    )
    if np.any(counts == 0):
        empty = [
            f"({lo:g}, {hi:g}]"
            for lo, hi, c in zip(np.r_[0, cuts[:-1]], cuts, counts, strict=False)
            if c == 0
        ]
        raise ModelError(f"no p-values in interval(s) {', '.join(empty)}: choose other steps")
    k, p = data.X.shape
    n_par = p + (0 if data.fixed_effect else 1) + cuts.size - 1
    if k <= n_par:
        raise ModelError(f"k = {k} comparisons are too few for {n_par} selection-model parameters")
    return _fit(data, cuts, alternative, counts)


def _scaling(X: np.ndarray) -> np.ndarray:
    """Matrix M with beta = M @ beta_scaled for standardized non-dummy moderators (conditioning)."""
    p = X.shape[1]
    M = np.eye(p)
    if p == 1 or not np.allclose(X[:, 0], 1):
        return M
    for j in range(1, p):
        column = X[:, j]
        if np.all(np.isin(column, (0.0, 1.0))):
            continue
        mean, sd = column.mean(), column.std(ddof=1)
        M[j, j] = 1 / sd
        M[0, j] = -mean / sd
    return M


def _fit(data: SelectionInputs, cuts: np.ndarray, alternative: str, counts: np.ndarray) -> SelectionResult:
    yi, vi, X = data.yi, data.vi, data.X
    M = _scaling(X)
    Xs = X @ M  # columns standardized; beta = M @ beta_s
    m = cuts.size
    ml = _normal_ml(yi, vi, Xs, data.fixed_effect)
    start_tau = [] if data.fixed_effect else [np.log(ml["tau2"] + 1e-3)]
    start = np.concatenate([ml["beta"], start_tau, np.zeros(m - 1)])

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        beta = theta[:p]
        tau2 = 0.0 if data.fixed_effect else float(np.exp(theta[p]))
        delta = np.concatenate([[1.0], np.exp(theta[p + (0 if data.fixed_effect else 1) :])])
        return beta, tau2, delta

    def negll(theta: np.ndarray) -> float:
        beta, tau2, delta = unpack(theta)
        return -step_loglik(beta, tau2, delta, yi, vi, Xs, cuts, alternative)

    p = X.shape[1]
    theta = _maximize(negll, start)
    beta_s, tau2, delta = unpack(theta)
    ll = -negll(theta)
    natural = np.concatenate([beta_s, [] if data.fixed_effect else [tau2], delta[1:]])

    def negll_natural(x: np.ndarray) -> float:
        tau = 0.0 if data.fixed_effect else max(float(x[p]), 0.0)
        rest = x[p + (0 if data.fixed_effect else 1) :]
        return -step_loglik(x[:p], tau, np.concatenate([[1.0], rest]), yi, vi, Xs, cuts, alternative)

    cov = np.linalg.inv(_hessian(negll_natural, natural))
    vb = M @ cov[:p, :p] @ M.T
    beta = M @ beta_s
    coefficients = coefficient_table(beta, vb, data.names, data.level, None)
    tau2_se = np.nan if data.fixed_effect else float(np.sqrt(cov[p, p]))
    offset = p + (0 if data.fixed_effect else 1)
    delta_se = np.concatenate([[np.nan], np.sqrt(np.diag(cov)[offset:])])
    lrt = max(0.0, 2 * (ll - ml["ll"]))
    return SelectionResult(
        steps=cuts,
        alternative=alternative,
        tau2=float(tau2),
        tau2_se=tau2_se,
        delta=delta,
        delta_se=delta_se,
        k_per_interval=counts,
        lrt=float(lrt),
        lrt_df=m - 1,
        lrt_pvalue=float(stats.chi2.sf(lrt, m - 1)),
        log_likelihood=float(ll),
        log_likelihood_unadjusted=float(ml["ll"]),
        coefficients=coefficients,
        level=data.level,
        vb=vb,
        inputs=data.model,
    )


def _normal_ml(yi, vi, X, fixed_effect: bool) -> dict:
    """ML fit of the unadjusted normal model (the LRT's null and the starting values)."""
    if fixed_effect:
        beta, ll = normal_ml_profile(yi, vi, X, 0.0)
        return {"beta": beta, "tau2": 0.0, "ll": ll}
    upper = 10 * (np.var(yi) + np.max(vi)) + 1.0
    res = optimize.minimize_scalar(
        lambda t: -normal_ml_profile(yi, vi, X, t)[1],
        bounds=(0.0, upper),
        method="bounded",
        options={"xatol": 1e-12, "maxiter": 500},
    )
    tau2 = (
        float(res.x)
        if -normal_ml_profile(yi, vi, X, res.x)[1] < -normal_ml_profile(yi, vi, X, 0.0)[1]
        else 0.0
    )
    beta, ll = normal_ml_profile(yi, vi, X, tau2)
    return {"beta": beta, "tau2": tau2, "ll": ll}


def _maximize(negll, start: np.ndarray) -> np.ndarray:
    """BFGS from the ML start, then Nelder-Mead and BFGS again to polish (bounded effort)."""
    best = optimize.minimize(negll, start, method="BFGS", options={"gtol": 1e-9, "maxiter": 2000})
    polish = optimize.minimize(
        negll,
        best.x,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000, "maxfev": 40000},
    )
    final = optimize.minimize(negll, polish.x, method="BFGS", options={"gtol": 1e-10, "maxiter": 2000})
    candidates = [best, polish, final]
    chosen = min(candidates, key=lambda r: r.fun)
    if not np.isfinite(chosen.fun):
        raise ModelError("the selection-model likelihood could not be maximized (non-finite value)")
    return chosen.x


def _hessian(func, x: np.ndarray, rel_step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian with Richardson extrapolation (two step sizes)."""

    def central(h: np.ndarray) -> np.ndarray:
        n = x.size
        H = np.empty((n, n))
        f0 = func(x)
        for i in range(n):
            for j in range(i, n):
                ei = np.zeros(n)
                ej = np.zeros(n)
                ei[i], ej[j] = h[i], h[j]
                if i == j:
                    value = (func(x + ei) - 2 * f0 + func(x - ei)) / h[i] ** 2
                else:
                    value = (
                        func(x + ei + ej) - func(x + ei - ej) - func(x - ei + ej) + func(x - ei - ej)
                    ) / (4 * h[i] * h[j])
                H[i, j] = H[j, i] = value
        return H

    h = rel_step * np.maximum(np.abs(x), 1e-2)
    coarse, fine = central(2 * h), central(h)
    return fine + (fine - coarse) / 3
