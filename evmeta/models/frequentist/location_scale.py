"""Location-scale meta-analysis: moderators of the mean *and* of the between-study
variance (``meta_analysis(..., scale="~ isolation_method")``), and its frozen result.

The between-study variance is log-linear in the scale moderators, log tau2_i = z_i' alpha
(metafor's ``rma(yi, vi, mods =, scale =)`` with the default log link; Viechtbauer &
Lopez-Lopez 2022). A scale coefficient is the log of a ratio of between-study variances:
exp(alpha_SEC) = tau2_SEC / tau2_reference. Estimation by ML or REML
(:mod:`evmeta.models.frequentist.location_scale_fit`); Wald z tests and intervals for beta
and alpha, the omnibus Wald test of the scale moderators (QS), and the likelihood-ratio test
against the same model without scale moderators (same method, same fixed effects).

References
----------
Viechtbauer W, Lopez-Lopez JA (2022). Location-scale models for meta-analysis. Res Synth
Methods 13:697-715.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from evmeta.errors import ModelError
from evmeta.models.base.design import ModelData, new_design, prepare
from evmeta.models.base.frequentist_protocol import FittedModel
from evmeta.models.base.inference import coefficient_table, critical_value, omnibus_test, prediction_frame
from evmeta.models.base.protocol import resolve_level
from evmeta.models.base.provenance import fingerprint, versions
from evmeta.models.base.threshold import add_threshold_columns, check_threshold
from evmeta.models.frequentist import location_scale_fit as core
from evmeta.models.frequentist.location_scale_levels import level_table, scale_variables

METHODS = ("ML", "REML")


@dataclass(frozen=True, eq=False)
class LocationScaleResult(FittedModel):
    """A fitted location-scale model (immutable).

    ``coefficients``/``vb`` describe the location (mean) part, ``scale_coefficients``/``va``
    the log-linear model of tau^2; ``tau2_rows`` is each fitted row's tau^2. ``lrt`` (df
    ``lrt_df``) compares with the model without scale moderators; ``qs`` is the Wald test
    of the scale moderators. ``notes`` says when a tau^2 reached its boundary 0 (the
    coefficients concerned are then not finite and their SE, interval and p-value are NaN).
    """

    k: int
    p: int
    n_scale: int
    method: str
    level: float
    coefficients: pd.DataFrame
    vb: np.ndarray
    scale_coefficients: pd.DataFrame
    va: np.ndarray
    weak: np.ndarray = field(repr=False)
    tau2_rows: np.ndarray
    qm: float
    qm_df: int
    qm_pvalue: float
    qs: float
    qs_df: int
    qs_pvalue: float
    log_likelihood: float
    log_likelihood_null: float
    lrt: float
    lrt_df: int
    lrt_pvalue: float
    aic: float
    bic: float
    iterations: int
    model: ModelData = field(repr=False)
    scale_model: ModelData = field(repr=False)
    notes: tuple[str, ...] = ()
    measure: str | None = None
    fingerprint: str = ""
    versions: dict = field(default_factory=dict)
    yi_column: str | None = None
    vi_column: str | None = None
    test: str = "z"
    df: float | None = None
    robust_cov: Any = None
    converged: bool = True
    inference: str = "model"
    cluster: str | None = None

    frozen = True

    @property
    def scale(self) -> str | None:
        """The scale formula."""
        return self.scale_model.formula

    @property
    def Z(self) -> np.ndarray:
        """Design matrix of the scale part (k x q)."""
        return self.scale_model.X

    @property
    def tau2(self) -> float:
        """tau^2 at the scale intercept (the reference level / zero of the scale moderators)."""
        return float(np.exp(self.scale_coefficients["estimate"].iloc[0]))

    @property
    def heterogeneity(self) -> dict[str, float]:
        table = self.heterogeneity_table()
        return {f"tau[{label}]": float(t) for label, t in zip(table["label"], table["tau"], strict=True)}

    def scale_coef_table(self, level: float | None = None) -> pd.DataFrame:
        """estimate, se, ci_low, ci_high, stat, pvalue of the scale coefficients (log tau^2)."""
        level = resolve_level(level, self.level)
        table = self.scale_coefficients
        if level == self.level:
            return table.copy()
        return _with_nan(
            coefficient_table(table["estimate"].to_numpy(), self.va, list(table.index), level, None), table
        )

    def tau2_at(self, newscale: Any = None, level: float | None = None) -> pd.DataFrame:
        """tau^2 at scale-moderator values: ``log_tau2`` and its ``se``, ``tau2`` with a
        ``ci_low``/``ci_high`` (the log-scale Wald interval, exponentiated) and ``tau``.

        ``newscale``: a DataFrame with the scale columns, or rows of values without the
        intercept (as metafor's ``newscale``); None: the fitted rows.
        """
        level = resolve_level(level, self.level)
        Z = self._scale_rows(newscale)
        alpha = self.scale_coefficients["estimate"].to_numpy()
        log_tau2 = Z @ alpha
        se = np.sqrt(np.einsum("ij,jk,ik->i", Z, self.va, Z))
        se = np.where(identified(Z, self.weak), se, np.nan)
        crit = critical_value(level, None)
        return pd.DataFrame(
            {
                "log_tau2": log_tau2,
                "se": se,
                "tau2": np.exp(log_tau2),
                "ci_low": np.exp(log_tau2 - crit * se),
                "ci_high": np.exp(log_tau2 + crit * se),
                "tau": np.exp(log_tau2 / 2),
            }
        )

    def predict(
        self,
        newmods: Any = None,
        level: float | None = None,
        *,
        newscale: Any = None,
        threshold: float | None = None,
    ) -> pd.DataFrame:
        """Average effects with confidence and prediction intervals, each row's prediction
        interval using tau^2 at its own scale values (``tau2`` column).

        ``newmods`` as :meth:`MetaResult.predict`; a DataFrame ``newmods`` also supplies the
        scale columns unless ``newscale`` is given. ``threshold`` adds ``p_true_above``.
        """
        level = resolve_level(level, self.level)
        if newscale is None and isinstance(newmods, pd.DataFrame):
            newscale = newmods
        if newmods is None and newscale is None:
            X, Z = self.X, self.Z
        else:
            Z = self._scale_rows(newscale)
            X = new_design(self.model, newmods) if not self.model.intercept_only else np.ones((len(Z), 1))
            if len(X) != len(Z):
                raise ModelError(
                    f"newmods gives {len(X)} row(s) but newscale {len(Z)}; give one per prediction"
                )
        beta = self.coefficients["estimate"].to_numpy()
        tau2 = np.exp(Z @ self.scale_coefficients["estimate"].to_numpy())
        out = prediction_frame(X, beta, self.vb, tau2, level, None).assign(tau2=tau2)
        threshold = check_threshold(threshold)
        return out if threshold is None else add_threshold_columns(out, threshold, tau2, None)

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """tau^2 and tau per distinct combination of the scale moderators in the data (at
        most 12; for a continuous scale moderator its minimum, median and maximum), with
        ``k``, the interval of tau^2 and, where the location part is the same for every row
        of a group, the average effect and its prediction interval."""
        return level_table(self, resolve_level(level, self.level))

    def lrt_table(self) -> pd.DataFrame:
        """The likelihood-ratio test against the model without scale moderators, one row."""
        return pd.DataFrame(
            [
                {
                    "test": "LRT (scale vs no scale)",
                    "stat": self.lrt,
                    "df": self.lrt_df,
                    "pvalue": self.lrt_pvalue,
                    "log_likelihood": self.log_likelihood,
                    "log_likelihood_null": self.log_likelihood_null,
                }
            ]
        )

    def _scale_rows(self, newscale: Any) -> np.ndarray:
        if newscale is None:
            return self.Z
        return new_design(self.scale_model, newscale)

    def _title(self) -> str:
        return f"Location-scale model (k = {self.k}; tau^2 estimator: {self.method}; log tau^2 {self.scale})"

    def _lines(self, level: float) -> list[str]:
        lines = [
            f"Test of scale moderators: QS({self.qs_df}) = {self.qs:.3f}, p = {self.qs_pvalue:.4g}",
            f"Likelihood-ratio test against the model without scale moderators: "
            f"chi2({self.lrt_df}) = {self.lrt:.3f}, p = {self.lrt_pvalue:.4g}",
        ]
        if not self.model.intercept_only:
            lines.append(f"Test of moderators: QM({self.qm_df}) = {self.qm:.3f}, p = {self.qm_pvalue:.4g}")
        scale = self.scale_coef_table(level).to_string(float_format=lambda x: f"{x:.4f}", na_rep="")
        return [*lines, *self.notes, "Scale coefficients (log tau^2):", scale]

    def to_frame(self) -> pd.DataFrame:
        """One row per location and per scale coefficient (``part`` says which)."""
        location = self.coefficients.reset_index(names="term").assign(part="location")
        scale = self.scale_coefficients.reset_index(names="term").assign(part="scale")
        out = pd.concat([location, scale], ignore_index=True)
        for name in ["k", "method", "test", "lrt", "lrt_pvalue"]:
            out[name] = getattr(self, name)
        out["model"] = "location_scale"
        out["mods"] = self.model.formula or ""
        out["scale"] = self.scale or ""
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (scalars, both coefficient tables, settings, provenance)."""
        scalars = ["k", "p", "n_scale", "method", "test", "level", "estimate", "se", "pvalue", "ci_low",
                   "ci_high", "qm", "qm_pvalue", "qs", "qs_df", "qs_pvalue", "lrt", "lrt_df",
                   "lrt_pvalue", "log_likelihood", "log_likelihood_null", "aic", "bic", "measure",
                   "fingerprint", "converged"]  # fmt: skip
        out = self._plain_dict(scalars)
        out["scale"] = self.scale
        out["scale_coefficients"] = self.scale_coefficients.reset_index(names="term").to_dict(
            orient="records"
        )
        out["notes"] = list(self.notes)
        return out


def location_scale_analysis(
    data: Any = None,
    yi: Any = "yi",
    vi: Any = "vi",
    *,
    scale: str,
    mods: str | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> LocationScaleResult:
    """Fit a location-scale meta-analysis (``meta_analysis(..., scale=...)`` calls this).

    Parameters
    ----------
    data, yi, vi, mods, level
        As :func:`evmeta.models.frequentist.meta.meta_analysis`.
    scale : str
        Formula of the scale moderators, e.g. ``"~ isolation_method"``; log tau^2 is linear
        in them (treatment contrasts against the first level for categorical moderators).
    method : {"ML", "REML"}
    test : {"z"}
        Wald z tests (the only choice for the scale part).

    Raises
    ------
    ModelError
        Another method or test; too few comparisons for the location and scale
        coefficients; a level of a categorical scale moderator with fewer than 2
        comparisons (its tau^2 is not identified); the fit breaking down numerically.
    """
    method = str(method).upper()
    if method not in METHODS:
        raise ModelError(f"a location-scale model is fitted by ML or REML, got method={method!r}")
    if test != "z":
        raise ModelError(f"a location-scale model uses Wald z tests (test='z'), got test={test!r}")
    if not 0 < level < 1:
        raise ModelError(f"level must lie between 0 and 1, got {level}")
    model = prepare(data, yi, vi, mods)
    scale_model = prepare(model.frame, model.yi, model.vi, scale)
    _check_identified(model, scale_model)
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            result = _fit(model, scale_model, method, level)
    except (np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError, OverflowError) as exc:
        raise ModelError(f"the location-scale model cannot be fitted numerically ({exc})") from None
    columns = (yi, vi) if isinstance(yi, str) and isinstance(vi, str) else (None, None)
    from dataclasses import replace

    return replace(result, yi_column=columns[0], vi_column=columns[1])


def _check_identified(model: ModelData, scale_model: ModelData) -> None:
    k, p, q = model.k, model.p, scale_model.p
    if k < p + q + 1:
        raise ModelError(
            f"{p} location and {q} scale coefficients need at least {p + q + 1} comparisons, got {k}"
        )
    frame = scale_model.frame
    for name in scale_variables(scale_model):
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and column.nunique() > 2:
            continue
        counts = column.value_counts()
        if counts.min() < 2:
            raise ModelError(
                f"scale moderator {name!r} has level {counts.idxmin()!r} with 1 comparison; its "
                "between-study variance cannot be estimated from fewer than 2 (merge it with another "
                "level or drop the scale model)"
            )


def _fit(model: ModelData, scale_model: ModelData, method: str, level: float) -> LocationScaleResult:
    reml = method == "REML"
    y, v, X, Z = model.yi, model.vi, model.X, scale_model.X
    s, iterations, converged, boundary = core.maximize(y, v, X, Z, core.start(y, v, X, Z), reml)
    if not converged:
        raise ModelError(f"the {method} location-scale fit did not converge in {core.MAX_ITER} iterations")
    _, hessian, _ = core.derivatives(s, Z, reml)
    at_boundary = s.tau2 < core.BOUNDARY * float(np.median(v))
    va, weak = _identified_covariance(-hessian, Z, at_boundary)
    ones = np.ones((len(y), 1))
    null, _, _, _ = core.maximize(y, v, X, ones, core.start(y, v, X, ones), reml)
    coefficients = coefficient_table(s.beta, s.vb, model.names, level, None)
    with np.errstate(divide="ignore", invalid="ignore"):  # unidentified rows: SE 0, set NaN below
        scale_table = coefficient_table(s.alpha, va, scale_model.names, level, None)
    notes: tuple[str, ...] = ()
    unidentified = ~identified(np.eye(scale_model.p), weak)
    if boundary or unidentified.any():
        notes = (
            "A between-study variance reached its boundary 0 for some scale-moderator values "
            "(their effects agree more closely than their sampling error implies): the log-linear "
            "coefficients that involve them run off to minus infinity, so their SE, interval and "
            "p-value are not reported; the likelihood-ratio test still applies.",
        )
        scale_table.loc[unidentified, ["se", "ci_low", "ci_high", "stat", "pvalue"]] = np.nan
    tested = scale_model.moderator_columns
    qs, qs_df, qs_p = (np.nan, len(tested), np.nan)
    if not unidentified[tested].any():
        qs, qs_df, qs_p = omnibus_test(s.alpha, va, tested, None)
    location_tested = model.moderator_columns if not model.intercept_only else [0]
    qm, qm_df, qm_p = omnibus_test(s.beta, s.vb, location_tested, None)
    lrt = max(0.0, 2 * (s.loglik - null.loglik))
    lrt_df = scale_model.p - 1
    parms = model.p + scale_model.p
    n_eff = model.k - model.p if reml else model.k
    return LocationScaleResult(
        k=model.k, p=model.p, n_scale=scale_model.p, method=method, level=level,
        coefficients=coefficients, vb=s.vb, scale_coefficients=scale_table, va=va, weak=weak, tau2_rows=s.tau2,
        qm=float(qm), qm_df=qm_df, qm_pvalue=float(qm_p), qs=float(qs), qs_df=int(qs_df),
        qs_pvalue=float(qs_p), log_likelihood=s.loglik, log_likelihood_null=null.loglik,
        lrt=float(lrt), lrt_df=lrt_df, lrt_pvalue=float(special.chdtrc(lrt_df, lrt)) if lrt_df else np.nan,
        aic=-2 * s.loglik + 2 * parms, bic=-2 * s.loglik + parms * np.log(n_eff), iterations=iterations,
        model=model, scale_model=scale_model, notes=notes, measure=_measure(model.frame),
        fingerprint=fingerprint(y, v, np.column_stack([X, Z])), versions=versions(),
    )  # fmt: skip


def _identified_covariance(
    info: np.ndarray, Z: np.ndarray, at_boundary: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(covariance of alpha, orthonormal basis of the unidentified directions).

    Without boundary rows: the inverse observed information (all directions unidentified
    if it is not positive definite). With rows whose tau^2 reached 0 (``at_boundary``):
    the combinations z' alpha that the other rows' design spans stay identified, and the
    covariance is the inverse information on that subspace; if the other rows span every
    direction (a continuous scale moderator), nothing is reported as identified.
    """
    q = info.shape[0]
    if not at_boundary.any():
        try:
            np.linalg.cholesky(info)
        except np.linalg.LinAlgError:
            return np.full_like(info, np.nan), np.eye(q)
        return np.linalg.inv(info), np.zeros((q, 0))
    rest = Z[~at_boundary]
    _, singular, vt = np.linalg.svd(rest, full_matrices=True) if len(rest) else (None, np.zeros(0), np.eye(q))
    rank = int(np.sum(singular > 1e-10 * (singular.max() if singular.size else 1.0)))
    if rank in (0, q):
        return np.full_like(info, np.nan), np.eye(q)
    basis, weak = vt[:rank].T, vt[rank:].T
    try:
        reduced = np.linalg.inv(basis.T @ info @ basis)
    except np.linalg.LinAlgError:
        return np.full_like(info, np.nan), np.eye(q)
    return basis @ reduced @ basis.T, weak


def identified(rows: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """True for each row z (a combination z' alpha) orthogonal to the unidentified directions."""
    rows = np.atleast_2d(rows)
    if weak.size == 0:
        return np.ones(len(rows), dtype=bool)
    return np.linalg.norm(rows @ weak, axis=1) <= 1e-6 * np.linalg.norm(rows, axis=1)


def _with_nan(table: pd.DataFrame, fitted: pd.DataFrame) -> pd.DataFrame:
    """Keep the NaN (boundary) entries of the fitted table at another level."""
    mask = fitted["se"].isna().to_numpy()
    table.loc[mask, ["se", "ci_low", "ci_high", "stat", "pvalue"]] = np.nan
    return table


def _measure(frame: pd.DataFrame) -> str | None:
    if "measure" in frame.columns and frame["measure"].nunique() == 1:
        return str(frame["measure"].iloc[0])
    return frame.attrs.get("measure") if getattr(frame, "attrs", None) else None
