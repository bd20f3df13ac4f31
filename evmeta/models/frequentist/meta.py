"""Random-effects meta-analysis and meta-regression (``meta_analysis``) and its result.

Follows metafor's ``rma.uni`` definitions so that every number can be checked against R
(see ``tests/reference/metafor_reference.R``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evmeta.errors import ModelError
from evmeta.models.base.design import ModelData, new_design, prepare
from evmeta.models.base.inference import FittedModel, coefficient_table, omnibus_test, prediction_frame
from evmeta.models.base.provenance import fingerprint, versions
from evmeta.models.frequentist.estimators import METHODS, estimate_tau2, gls

TESTS = ("z", "knha")


@dataclass
class MetaResult(FittedModel):
    """A fitted (mixed-effects) meta-analysis model.

    Scalar attributes describe the intercept (the pooled effect in a model without
    moderators); ``coefficients`` holds every coefficient. ``i2`` and ``r2`` are percents,
    ``weights`` percent weights of the comparisons. ``qm`` is the omnibus test of the
    moderators (chi-square, or F under ``test="knha"``).
    """

    k: int
    p: int
    method: str
    test: str
    level: float
    estimate: float
    se: float
    stat: float
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    tau2_se: float
    tau: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_pvalue: float
    pi_low: float
    pi_high: float
    coefficients: pd.DataFrame
    qm: float
    qm_df: int | tuple[int, int]
    qm_pvalue: float
    r2: float
    log_likelihood: float
    aic: float
    bic: float
    aicc: float
    weights: np.ndarray
    vb: np.ndarray
    model: ModelData = field(repr=False)
    df: float | None = None
    s2w: float = 1.0
    measure: str | None = None
    fingerprint: str = ""
    versions: dict = field(default_factory=dict)
    converged: bool = True

    def predict(self, newmods: Any = None) -> pd.DataFrame:
        """Predicted (average) effects with confidence and prediction intervals.

        Parameters
        ----------
        newmods : DataFrame or array-like, optional
            Moderator values: a DataFrame with the moderator columns, or rows of values in
            coefficient order without the intercept. None: the fitted rows (for a model
            without moderators, the pooled effect once).
        """
        if newmods is None and self.model.intercept_only:
            X = np.ones((1, 1))
        else:
            X = new_design(self.model, newmods)
        return prediction_frame(
            X, self.coefficients["estimate"].to_numpy(), self.vb, self.tau2, self.level, self.df
        )

    def confint_tau2(self, level: float | None = None) -> pd.DataFrame:
        """Q-profile confidence intervals for tau^2, tau, I^2 and H^2 (Viechtbauer 2007)."""
        from evmeta.models.frequentist.diagnostics import confint_tau2

        return confint_tau2(self, level or self.level)

    def leave_one_out(self) -> pd.DataFrame:
        """The model refitted without each comparison in turn (models without moderators)."""
        from evmeta.models.frequentist.diagnostics import leave_one_out

        return leave_one_out(self)

    def influence(self) -> pd.DataFrame:
        """Studentized deleted residuals, DFFITS, Cook's distance, covariance ratio, hat values."""
        from evmeta.models.frequentist.diagnostics import influence

        return influence(self)

    def refit(self, data: Any = None, **changes: Any) -> MetaResult:
        """The same model on other rows (``data``) or with other settings."""
        settings = dict(mods=self.model.formula, method=self.method, test=self.test, level=self.level)
        settings.update(changes)
        return meta_analysis(
            self.model.frame if data is None else data, self._yi_name, self._vi_name, **settings
        )

    _yi_name: Any = "yi"
    _vi_name: Any = "vi"

    def summary(self) -> str:
        """A metafor-like printout."""
        heading = "Random-effects model" if self.method != "EE" else "Common-effect (equal-effects) model"
        if not self.model.intercept_only:
            heading = (
                "Mixed-effects model (meta-regression)"
                if self.method != "EE"
                else "Common-effect meta-regression"
            )
        lines = [f"{heading} (k = {self.k}; tau^2 estimator: {self.method}; test: {self.test})", ""]
        if self.method != "EE":
            lines.append(
                f"tau^2 = {self.tau2:.4f} (SE = {self.tau2_se:.4f}); tau = {self.tau:.4f}; "
                f"I^2 = {self.i2:.1f}%; H^2 = {self.h2:.2f}"
            )
            if not self.model.intercept_only:
                lines.append(f"R^2 (amount of heterogeneity accounted for) = {self.r2:.1f}%")
        lines.append(
            f"Test for (residual) heterogeneity: Q({self.q_df}) = {self.q:.3f}, p = {self.q_pvalue:.4g}"
        )
        if not self.model.intercept_only:
            df = self.qm_df if isinstance(self.qm_df, int) else f"{self.qm_df[0]}, {self.qm_df[1]}"
            name = "F" if self.test == "knha" else "QM"
            lines.append(f"Test of moderators: {name}({df}) = {self.qm:.3f}, p = {self.qm_pvalue:.4g}")
        lines.append("")
        lines.append(self.coefficients.to_string(float_format=lambda x: f"{x:.4f}"))
        if self.model.intercept_only:
            lines.append(f"\nPrediction interval: [{self.pi_low:.4f}, {self.pi_high:.4f}]")
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient, with the model-level statistics repeated (for results.csv)."""
        out = self.coefficients.reset_index(names="term")
        for name in ["k", "method", "test", "tau2", "i2", "q", "q_pvalue"]:
            out[name] = getattr(self, name)
        out["model"] = "meta_analysis"
        out["mods"] = self.model.formula or ""
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values: scalars, coefficients as records, settings and provenance."""
        scalars = [
            "k",
            "p",
            "method",
            "test",
            "level",
            "estimate",
            "se",
            "stat",
            "pvalue",
            "ci_low",
            "ci_high",
            "tau2",
            "tau2_se",
            "tau",
            "i2",
            "h2",
            "q",
            "q_df",
            "q_pvalue",
            "pi_low",
            "pi_high",
            "qm",
            "qm_pvalue",
            "r2",
            "log_likelihood",
            "aic",
            "bic",
            "aicc",
            "measure",
            "fingerprint",
            "converged",
        ]
        out = self._plain_dict(scalars)
        out["weights"] = [float(w) for w in self.weights]
        return out


def meta_analysis(
    data: Any = None,
    yi: Any = "yi",
    vi: Any = "vi",
    *,
    mods: str | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> MetaResult:
    """Fit a random-effects meta-analysis or mixed-effects meta-regression.

    Parameters
    ----------
    data : DataFrame or Comparisons, optional
        Then ``yi``/``vi`` name columns. If omitted, ``yi``/``vi`` are arrays.
    yi, vi : str or array-like
        Effect sizes and sampling variances.
    mods : str, optional
        Moderator formula, e.g. ``"~ isolation_method + quality_score"``; categorical
        moderators get treatment contrasts against their first level.
    method : {"EE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB"}
        Estimator of tau^2, as metafor defines each.
    test : {"z", "knha"}
        Normal-theory tests, or Knapp-Hartung (t with k - p df, variance scaled).
    level : float
        Confidence level of intervals.

    Returns
    -------
    MetaResult

    Raises
    ------
    ModelError
        Fewer than 2 comparisons, missing or non-positive variances, a moderator with one
        level, or a rank-deficient design.

    Examples
    --------
    >>> fit = meta_analysis(yi=[0.5, 1.2, 0.8, 1.9], vi=[0.1, 0.2, 0.15, 0.3])
    >>> round(fit.estimate, 3)  # doctest: +SKIP
    """
    method = str(method).upper()
    if method not in METHODS:
        raise ModelError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    if test not in TESTS:
        raise ModelError(f"unknown test {test!r}; valid tests: {', '.join(TESTS)}")
    if not 0 < level < 1:
        raise ModelError(f"level must lie between 0 and 1, got {level}")
    model = prepare(data, yi, vi, mods)
    result = _fit(model, method, test, level)
    result._yi_name, result._vi_name = (yi, vi) if isinstance(yi, str) else ("yi", "vi")
    frame = model.frame
    if "measure" in frame.columns and frame["measure"].nunique() == 1:
        result.measure = str(frame["measure"].iloc[0])
    elif getattr(frame, "attrs", {}).get("measure"):
        result.measure = frame.attrs["measure"]
    return result


def fit_design(
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray,
    names: list[str],
    *,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> MetaResult:
    """Fit with a ready design matrix (for internal uses such as regression tests)."""
    frame = pd.DataFrame({"yi": yi, "vi": vi})
    terms = {name: [j] for j, name in enumerate(names)}
    model = ModelData(
        np.asarray(yi, float),
        np.asarray(vi, float),
        np.asarray(X, float),
        list(names),
        terms,
        frame,
        list(names) == ["intercept"],
        None,
    )
    return _fit(model, method, test, level)


def _fit(model: ModelData, method: str, test: str, level: float) -> MetaResult:
    y, v, X = model.yi, model.vi, model.X
    k, p = X.shape
    tau2_fit = estimate_tau2(y, v, X, method)
    tau2 = tau2_fit.tau2
    fit = gls(y, v, X, tau2)
    beta, vb = fit.beta, fit.vb
    s2w = 1.0
    df: float | None = None
    if test == "knha":
        s2w = fit.rss / (k - p)
        vb = vb * s2w
        df = k - p
    coefficients = coefficient_table(beta, vb, model.names, level, df)
    # Heterogeneity from the fixed-effect projector (W = 1 / v).
    fixed = gls(y, v, X, 0.0)
    q = max(0.0, fixed.rss)
    q_pvalue = float(stats.chi2.sf(q, k - p))
    if method == "EE":
        i2 = max(0.0, 100 * (q - (k - p)) / q) if q > 0 else 0.0
        h2 = q / (k - p)
    else:
        typical = (k - p) / fixed.trace_p()
        i2 = 100 * tau2 / (typical + tau2)
        h2 = tau2 / typical + 1
    # Omnibus test of the moderators (all coefficients but the intercept).
    tested = model.moderator_columns if not model.intercept_only else [0]
    qm, qm_df, qm_pvalue = omnibus_test(beta, vb, tested, df)
    # Fit statistics (metafor's definitions; REML includes + 1/2 log|X'X|).
    rss_f = fit.rss
    ll_ml = -0.5 * k * np.log(2 * np.pi) - 0.5 * np.sum(np.log(v + tau2)) - 0.5 * rss_f
    parms = p + (0 if method == "EE" else 1)
    if method == "REML":
        ll = (
            -0.5 * (k - p) * np.log(2 * np.pi)
            + 0.5 * np.linalg.slogdet(X.T @ X)[1]
            - 0.5 * np.sum(np.log(v + tau2))
            - 0.5 * np.linalg.slogdet((X * fit.w[:, None]).T @ X)[1]
            - 0.5 * rss_f
        )
        n_eff = k - p
    else:
        ll, n_eff = ll_ml, k
    aic = -2 * ll + 2 * parms
    bic = -2 * ll + parms * np.log(n_eff)
    aicc = -2 * ll + 2 * parms * max(n_eff, parms + 2) / (max(n_eff, parms + 2) - parms - 1)
    r2 = np.nan
    if not model.intercept_only and method == "EE":
        # metafor: adjusted R^2 of the weighted least-squares fit (weights 1 / v).
        import statsmodels.api as sm

        r2 = max(0.0, 100 * sm.WLS(y, X, weights=1 / v).fit().rsquared_adj) if np.var(y) > 0 else 0.0
    elif not model.intercept_only:
        reduced = estimate_tau2(y, v, np.ones((k, 1)), method).tau2
        r2 = max(0.0, 100 * (reduced - tau2) / reduced) if reduced > 0 else 0.0
    weights = 100 * fit.w / np.sum(fit.w)
    row = coefficients.iloc[0]
    result = MetaResult(
        k=k,
        p=p,
        method=method,
        test=test,
        level=level,
        estimate=float(row["estimate"]),
        se=float(row["se"]),
        stat=float(row["stat"]),
        pvalue=float(row["pvalue"]),
        ci_low=float(row["ci_low"]),
        ci_high=float(row["ci_high"]),
        tau2=float(tau2),
        tau2_se=float(tau2_fit.se),
        tau=float(np.sqrt(tau2)),
        i2=float(i2),
        h2=float(h2),
        q=float(q),
        q_df=k - p,
        q_pvalue=q_pvalue,
        pi_low=np.nan,
        pi_high=np.nan,
        coefficients=coefficients,
        qm=float(qm),
        qm_df=qm_df,
        qm_pvalue=qm_pvalue,
        r2=float(r2),
        log_likelihood=float(ll),
        aic=float(aic),
        bic=float(bic),
        aicc=float(aicc),
        weights=weights,
        vb=vb,
        model=model,
        df=df,
        s2w=float(s2w),
        fingerprint=fingerprint(y, v, X),
        versions=versions(),
        converged=tau2_fit.converged,
    )
    prediction = result.predict(np.zeros((1, p - 1)) if not model.intercept_only else None).iloc[0]
    if model.intercept_only:
        result.pi_low, result.pi_high = float(prediction["pi_low"]), float(prediction["pi_high"])
    if not tau2_fit.converged:
        raise ModelError(f"the {method} estimate of tau^2 did not converge in 1000 iterations")
    return result
