"""Random-effects meta-analysis and meta-regression (``meta_analysis``) and its result.

Follows metafor's ``rma.uni`` definitions so that every number can be checked against R
(see ``tests/reference/metafor_reference.R``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import pandas as pd
from scipy import special

from evmeta.errors import ModelError
from evmeta.models.base.design import ModelData, prepare
from evmeta.models.base.frequentist_protocol import FittedModel
from evmeta.models.base.inference import check_inference, coefficient_table, omnibus_test
from evmeta.models.base.protocol import check_level, empty_heterogeneity, resolve_level
from evmeta.models.base.provenance import fingerprint, versions
from evmeta.models.base.result_parts import COMMON_SCALARS
from evmeta.models.frequentist import diagnostics
from evmeta.models.frequentist.estimators import KNHA_ROUNDOFF, METHODS, estimate_tau2, gls
from evmeta.models.frequentist.robust import RobustCovariance, cluster_codes, with_robust

if TYPE_CHECKING:
    from evmeta.models.frequentist.location_scale import LocationScaleResult

TESTS = ("z", "knha")
#: metafor's spellings: ``test="t"`` is Knapp-Hartung in ``rma.uni``; ``method="FE"`` is EE.
TEST_SYNONYMS = {"t": "knha", "hksj": "knha"}
METHOD_SYNONYMS = {"FE": "EE", "CE": "EE"}


@dataclass(frozen=True, eq=False, repr=False)
class MetaResult(FittedModel):
    """A fitted (mixed-effects) meta-analysis model; immutable.

    The intercept's scalars (``estimate``, ``se``, ``stat``, ``pvalue``, ``ci_low``,
    ``ci_high``; the pooled effect in a model without moderators) and ``pi_low``/``pi_high``
    are read from ``coefficients`` and ``vb``; ``coefficients`` holds every coefficient.
    ``i2`` and ``r2`` are percents, ``weights`` percent weights of the comparisons. ``qm`` is
    the omnibus test of the moderators (chi-square, or F under ``test="knha"``; the HTZ F
    test under CR2 inference).

    The inputs are stored as plain attributes: ``yi``, ``vi`` (arrays of the fitted rows),
    ``X`` (design matrix), ``names``, ``data`` (the fitted rows with every input column),
    ``mods``, ``method``, ``test``, ``level``, ``inference`` (``"model"`` or ``"CR2"``) and
    ``cluster``; ``yi_column``/``vi_column`` name the input columns (None when arrays were
    given). :meth:`refit`, leave-one-out and influence use the stored inputs and keep the
    inference setting. ``notes`` are sentences about the fit (e.g. why CR2 fell back to
    model-based inference).
    """

    k: int
    p: int
    method: str
    test: str
    level: float
    tau2: float
    tau2_se: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_pvalue: float
    coefficients: pd.DataFrame
    qm: float
    qm_df: int | tuple[float, float]
    qm_pvalue: float
    log_likelihood: float
    aic: float
    bic: float
    aicc: float
    weights: np.ndarray
    vb: np.ndarray
    model: ModelData = field(repr=False)
    df: float | None = None
    s2w: float = 1.0
    fingerprint: str = ""
    versions: dict = field(default_factory=dict)
    converged: bool = True
    inference: str = "model"
    cluster: str | None = None
    robust_cov: RobustCovariance | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()
    yi_column: str | None = None
    vi_column: str | None = None
    #: Values derived on first use from the fields (R^2, the case-deleted refits of
    #: leave-one-out and influence); never part of the result's identity.
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def tau(self) -> float:
        return float(np.sqrt(self.tau2))

    @property
    def r2(self) -> float:
        """Percent of heterogeneity accounted for by the moderators, metafor's
        ``max(0, 100 (tau2_0 - tau2) / tau2_0)`` with tau2_0 from the model without moderators
        (adjusted WLS R^2 for an equal-effects model; NaN without moderators). Derived on
        first use (it needs a second fit) and cached."""
        if "r2" not in self._cache:
            self._cache["r2"] = _r_squared(self.model, self.tau2, self.method)
        return float(self._cache["r2"])

    def confint(self, level: float | None = None) -> pd.DataFrame:
        """Confidence intervals, as metafor's ``confint.rma.uni``: every coefficient (Wald,
        with the fit's test and inference), then tau^2, tau, I^2 (percent) and H^2 with
        Q-profile intervals (Viechtbauer 2007). Columns estimate, ci_low, ci_high."""
        level = resolve_level(level, self.level)
        table = self.coef_table(level)[["estimate", "ci_low", "ci_high"]]
        if self.method == "EE":
            return table
        return pd.concat([table, diagnostics.confint_tau2(self, level)])

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """One row (``comparison``): tau2, tau with its Q-profile interval (ci_low, ci_high),
        i2 (percent) and h2; no rows for a common-effect (EE) model."""
        if self.method == "EE":
            return empty_heterogeneity()
        ci = diagnostics.confint_tau2(self, resolve_level(level, self.level))
        row = {
            "tau2": self.tau2,
            "tau": self.tau,
            "ci_low": ci.loc["tau", "ci_low"],
            "ci_high": ci.loc["tau", "ci_high"],
            "i2": self.i2,
            "h2": self.h2,
        }
        return pd.DataFrame([row], index=pd.Index(["comparison"], name="component"))

    def leave_one_out(self) -> pd.DataFrame:
        """The model refitted without each comparison in turn (models without moderators)."""
        return diagnostics.leave_one_out(self)

    def influence(self) -> pd.DataFrame:
        """Studentized deleted residuals, DFFITS, Cook's distance, covariance ratio, hat values."""
        return diagnostics.influence(self)

    def fit_subset(self, keep: np.ndarray) -> MetaResult:
        """The same model (and inference setting) on the stored rows where ``keep`` is True."""
        fit = _fit(self.model.subset(keep), self.method, self.test, self.level)
        return fit.robust(self.cluster) if self.inference == "CR2" else fit

    def refit(self, data: Any = None, *, rows: Any = None, **changes: Any) -> MetaResult:
        """The same model on other rows or with other settings.

        Parameters
        ----------
        data : DataFrame, optional
            New data with the columns the model was fitted from (``yi_column``,
            ``vi_column``, the moderators). None: the stored inputs.
        rows : array-like, optional
            Index labels (or a boolean mask) of ``data`` (the stored rows) to keep.
        **changes
            ``method``, ``test``, ``level``, ``mods``, ``inference`` or ``cluster``.
        """
        settings = dict(
            mods=self.model.formula,
            method=self.method,
            test=self.test,
            level=self.level,
            **self._inference_settings(),
        )
        settings.update(changes)
        if data is None:
            source, yi, vi = self.data, self.yi, self.vi
            if rows is not None:
                keep = _row_mask(self.data, rows)
                source, yi, vi = source[keep], yi[keep], vi[keep]
            result = meta_analysis(source, yi, vi, **settings)
            return replace(result, yi_column=self.yi_column, vi_column=self.vi_column)
        if self.yi_column is None or self.vi_column is None:
            raise ModelError("this model was fitted from arrays; refit(data=...) needs yi and vi columns")
        if rows is not None:
            data = data.loc[rows]
        return meta_analysis(data, self.yi_column, self.vi_column, **settings)

    def robust(self, cluster: str | None = None) -> MetaResult:
        """A new result with cluster-robust (CR2) inference, as clubSandwich.

        ``cluster`` is a column of ``data`` (e.g. ``"study_id"``); None makes every row
        its own cluster. Coefficient tests and intervals use Satterthwaite df, the
        moderator test is clubSandwich's HTZ test, and :meth:`predict` uses the CR2
        covariance with each row's Satterthwaite df.
        """
        codes, labels = cluster_codes(self.data, cluster)
        base = self
        if self.robust_cov is not None:  # start from the model-based fit
            base = replace(
                _fit(self.model, self.method, self.test, self.level),
                yi_column=self.yi_column,
                vi_column=self.vi_column,
            )
        marginal = self.vi + self.tau2
        blocks = [(np.flatnonzero(codes == c), np.diag(marginal[codes == c])) for c in np.unique(codes)]
        return with_robust(base, cluster, blocks, labels)

    @property
    def heterogeneity(self) -> dict[str, float]:
        return {} if self.method == "EE" else {"tau[comparison]": self.tau}

    def _title(self) -> str:
        heading = "Random-effects model" if self.method != "EE" else "Common-effect (equal-effects) model"
        if not self.model.intercept_only:
            heading = (
                "Mixed-effects model (meta-regression)"
                if self.method != "EE"
                else "Common-effect meta-regression"
            )
        robust = f"; cluster-robust CR2 by {self.robust_cov.cluster}" if self.robust_cov is not None else ""
        return f"{heading} (k = {self.k}; tau^2 estimator: {self.method}; test: {self.test}{robust})"

    def _lines(self, level: float) -> list[str]:
        lines = []
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
            df = ", ".join(f"{d:.4g}" for d in self.qm_df) if isinstance(self.qm_df, tuple) else self.qm_df
            name = "F" if self.test == "knha" or self.is_robust else "QM"
            lines.append(f"Test of moderators: {name}({df}) = {self.qm:.3f}, p = {self.qm_pvalue:.4g}")
        if self.model.intercept_only:
            pred = self.predict(level=level).iloc[0]
            lines.append(
                f"Prediction interval ({100 * level:g}%): [{pred['pi_low']:.4f}, {pred['pi_high']:.4f}]"
            )
        return lines + [f"Note: {note}" for note in self.notes]

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient, with the model-level statistics repeated (for results.csv)."""
        out = self.coefficients.reset_index(names="term")
        for name in ["k", "method", "test", "inference", "tau2", "i2", "q", "q_pvalue"]:
            out[name] = getattr(self, name)
        out["model"] = "meta_analysis"
        out["mods"] = self.model.formula or ""
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values: scalars, coefficients as records, settings and provenance."""
        scalars = [
            *COMMON_SCALARS,
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
            "inference",
            "cluster",
        ]
        out = self._plain_dict(scalars)
        out["weights"] = [float(w) for w in self.weights]
        out["notes"] = list(self.notes)
        return out


@overload
def meta_analysis(
    data: Any = ...,
    yi: Any = ...,
    vi: Any = ...,
    *,
    mods: str | None = ...,
    method: str = ...,
    test: str = ...,
    level: float = ...,
    scale: None = None,
    inference: str = ...,
    cluster: str | None = ...,
) -> MetaResult: ...


@overload
def meta_analysis(
    data: Any = ...,
    yi: Any = ...,
    vi: Any = ...,
    *,
    mods: str | None = ...,
    method: str = ...,
    test: str = ...,
    level: float = ...,
    scale: str,
    inference: str = ...,
    cluster: str | None = ...,
) -> LocationScaleResult: ...


@overload
def meta_analysis(
    data: Any = ...,
    yi: Any = ...,
    vi: Any = ...,
    *,
    mods: str | None = ...,
    method: str = ...,
    test: str = ...,
    level: float = ...,
    scale: str | None,
    inference: str = ...,
    cluster: str | None = ...,
) -> MetaResult | LocationScaleResult: ...


def meta_analysis(
    data: Any = None,
    yi: Any = "yi",
    vi: Any = "vi",
    *,
    mods: str | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    scale: str | None = None,
    inference: str = "model",
    cluster: str | None = None,
) -> MetaResult | LocationScaleResult:
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
        Estimator of tau^2, as metafor defines each (``"FE"`` reads as ``"EE"``).
    test : {"z", "knha"}
        Normal-theory tests, or Knapp-Hartung (t with k - p df, variance scaled); ``"t"``
        (metafor's spelling) reads as ``"knha"``.
    level : float
        Confidence level of intervals (0.95, or 95 as a percent).
    scale : str, optional
        Formula of moderators of the between-study variance, e.g. ``"~ isolation_method"``:
        fits a location-scale model (log tau^2 linear in them; ML or REML) and returns a
        :class:`~evmeta.models.frequentist.location_scale.LocationScaleResult`.
    inference : {"model", "CR2"}
        Model-based standard errors and tests, or cluster-robust CR2 ones (as
        :meth:`MetaResult.robust`; clubSandwich's CR2 with Satterthwaite df and the HTZ
        moderator test). Where CR2 is not defined the model-based fit comes back with a note.
    cluster : str, optional
        Column of ``data`` whose values are the CR2 clusters (None: each row its own).

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
    method = METHOD_SYNONYMS.get(str(method).upper(), str(method).upper())
    if method not in METHODS:
        raise ModelError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)} (FE reads as EE)")
    test = TEST_SYNONYMS.get(test, test)
    if test not in TESTS:
        raise ModelError(f"unknown test {test!r}; valid tests: {', '.join(TESTS)} (t reads as knha)")
    level = check_level(level)
    inference = check_inference(inference, cluster)
    if scale is not None:
        if inference != "model":
            raise ModelError("a location-scale model (scale=...) has model-based inference only; drop inference='CR2'")
        from evmeta.models.frequentist.location_scale import location_scale_analysis

        return location_scale_analysis(data, yi, vi, scale=scale, mods=mods, method=method, test=test, level=level)
    model = prepare(data, yi, vi, mods)
    result = _fit(model, method, test, level)
    columns = (yi, vi) if isinstance(yi, str) and isinstance(vi, str) else (None, None)
    result = replace(result, yi_column=columns[0], vi_column=columns[1])
    return result.robust(cluster) if inference == "CR2" else result


def _row_mask(frame: pd.DataFrame, rows: Any) -> np.ndarray:
    """Boolean mask of ``frame`` rows from a mask or index labels."""
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if len(rows) != len(frame):
            raise ModelError(f"rows has {len(rows)} values but the model has {len(frame)} rows")
        return rows
    keep = frame.index.isin(rows)
    if keep.sum() != len(set(rows.tolist())):
        raise ModelError("rows names index labels that the model's data does not have")
    return keep


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
    """Fit, turning numerical breakdown (overflow, singular matrices) into a ModelError."""
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            result = _fit_unchecked(model, method, test, level)
    except (np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError, OverflowError) as exc:
        raise ModelError(
            f"the model cannot be fitted numerically ({exc}); check for extreme effect sizes or variances"
        ) from None
    return result


def _knapp_hartung_scale(rss: float, k: int, p: int, total: float = 0.0) -> float:
    """Knapp-Hartung's variance scale factor (weighted residual sum of squares / (k - p)).

    ``total`` is the weighted total sum of squares, sum(w * y^2): a residual sum of squares
    below :data:`KNHA_ROUNDOFF` times it is taken as 0 (identical effect sizes).
    """
    s2w = rss / (k - p)
    if not s2w > 0 or rss <= KNHA_ROUNDOFF * total:
        raise ModelError(
            "Knapp-Hartung needs residual variation: the effect sizes lie exactly on the fitted "
            "model (all equal?), so the scale factor is 0; use test='z'"
        )
    return s2w


def _heterogeneity(y, v, X, tau2: float, method: str) -> tuple[float, float, float, float]:
    """Q, its p-value, I^2 (percent) and H^2 from the fixed-effect projector (W = 1 / v)."""
    k, p = X.shape
    fixed = gls(y, v, X, 0.0)
    q = max(0.0, fixed.rss)
    q_pvalue = float(special.chdtrc(k - p, q))
    if method == "EE":
        i2 = max(0.0, 100 * (q - (k - p)) / q) if q > 0 else 0.0
        return q, q_pvalue, i2, q / (k - p)
    typical = (k - p) / fixed.trace_p()
    return q, q_pvalue, 100 * tau2 / (typical + tau2), tau2 / typical + 1


def _fit_unchecked(model: ModelData, method: str, test: str, level: float) -> MetaResult:
    y, v, X = model.yi, model.vi, model.X
    k, p = X.shape
    tau2_fit = estimate_tau2(y, v, X, method)
    tau2 = tau2_fit.tau2
    fit = gls(y, v, X, tau2)
    beta, vb = fit.beta, fit.vb
    s2w, df = (_knapp_hartung_scale(fit.rss, k, p, float(np.sum(fit.w * y**2))), k - p) if test == "knha" else (1.0, None)
    vb = vb * s2w
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(np.diag(vb)))):
        raise ModelError("the model gives non-finite estimates; check for extreme effect sizes or variances")
    coefficients = coefficient_table(beta, vb, model.names, level, df)
    q, q_pvalue, i2, h2 = _heterogeneity(y, v, X, tau2, method)
    # Omnibus test of the moderators (all coefficients but the intercept).
    tested = model.moderator_columns if not model.intercept_only else [0]
    qm, qm_df, qm_pvalue = omnibus_test(beta, vb, tested, df)
    ll, aic, bic, aicc = _information_criteria(model, fit, tau2, method)
    weights = 100 * fit.w / np.sum(fit.w)
    if not tau2_fit.converged:
        raise ModelError(f"the {method} estimate of tau^2 did not converge in 1000 iterations")
    result = MetaResult(
        k=k,
        p=p,
        method=method,
        test=test,
        level=level,
        tau2=float(tau2),
        tau2_se=float(tau2_fit.se),
        i2=float(i2),
        h2=float(h2),
        q=float(q),
        q_df=k - p,
        q_pvalue=q_pvalue,
        coefficients=coefficients,
        qm=float(qm),
        qm_df=qm_df,
        qm_pvalue=qm_pvalue,
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
    return result


def _information_criteria(model: ModelData, fit: Any, tau2: float, method: str) -> tuple[float, ...]:
    """Log-likelihood, AIC, BIC and AICc (metafor's definitions; REML includes + 1/2 log|X'X|)."""
    v, X = model.vi, model.X
    k, p = X.shape
    parms = p + (0 if method == "EE" else 1)
    if method == "REML":
        ll = (
            -0.5 * (k - p) * np.log(2 * np.pi)
            + 0.5 * np.linalg.slogdet(X.T @ X)[1]
            - 0.5 * np.sum(np.log(v + tau2))
            - 0.5 * np.linalg.slogdet((X * fit.w[:, None]).T @ X)[1]
            - 0.5 * fit.rss
        )
        n_eff = k - p
    else:
        ll = -0.5 * k * np.log(2 * np.pi) - 0.5 * np.sum(np.log(v + tau2)) - 0.5 * fit.rss
        n_eff = k
    aic = -2 * ll + 2 * parms
    bic = -2 * ll + parms * np.log(n_eff)
    aicc = -2 * ll + 2 * parms * max(n_eff, parms + 2) / (max(n_eff, parms + 2) - parms - 1)
    return float(ll), float(aic), float(bic), float(aicc)


def _r_squared(model: ModelData, tau2: float, method: str) -> float:
    """Percent of heterogeneity accounted for by the moderators (NaN without moderators)."""
    y, v, X = model.yi, model.vi, model.X
    if model.intercept_only:
        return float("nan")
    if method == "EE":
        # metafor: adjusted R^2 of the weighted least-squares fit (weights 1 / v).
        import statsmodels.api as sm

        return max(0.0, 100 * sm.WLS(y, X, weights=1 / v).fit().rsquared_adj) if np.var(y) > 0 else 0.0
    reduced = estimate_tau2(y, v, np.ones((len(y), 1)), method).tau2
    return max(0.0, 100 * (reduced - tau2) / reduced) if reduced > 0 else 0.0
