"""Multilevel (nested random-effects) meta-analysis: comparisons within experiments within
studies, with an optional known sampling covariance for shared controls.

Model: y = X beta + sum_l u_l + e, u_l ~ N(0, sigma2_l) for each group of level l (levels
named outermost first), e ~ N(0, V) with V = diag(vi) unless given. Variance components
by REML or ML (Fisher scoring with step halving at the boundary), as metafor's
``rma.mv(yi, vi, random = ~ 1 | study/experiment)``.
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
from evmeta.models.base.nesting import nested_structure
from evmeta.models.base.provenance import fingerprint, versions
from evmeta.models.frequentist.blocks import evaluate, make_batches, score_and_information
from evmeta.models.frequentist.estimators import gls

TOLERANCE = 1e-10
MAX_ITER = 500


@dataclass
class MultilevelResult(FittedModel):
    """A fitted multilevel model; the same estimate/CI/coefficient fields as MetaResult.

    ``sigma2`` lists the variance components in the order of ``random``; ``i2_levels``
    the share of total variance per level (percent, metafor FAQ definition); ``robust``
    is True when standard errors, tests and intervals are cluster-robust (CR2 with
    Satterthwaite df; then ``coefficients['df']`` holds the df).
    """

    k: int
    p: int
    method: str
    test: str
    level: float
    random: list[str]
    n_groups: list[int]
    estimate: float
    se: float
    stat: float
    pvalue: float
    ci_low: float
    ci_high: float
    sigma2: list[float]
    i2_levels: list[float]
    i2: float
    q: float
    q_df: int
    q_pvalue: float
    pi_low: float
    pi_high: float
    coefficients: pd.DataFrame
    qm: float
    qm_df: Any
    qm_pvalue: float
    log_likelihood: float
    aic: float
    bic: float
    weights: np.ndarray
    vb: np.ndarray
    model: ModelData = field(repr=False)
    df: float | None = None
    robust: bool = False
    iterations: int = 0
    converged: bool = True
    fingerprint: str = ""
    versions: dict = field(default_factory=dict)
    measure: str | None = None
    _batches: Any = field(default=None, repr=False)
    _level_codes: Any = field(default=None, repr=False)

    @property
    def tau2(self) -> float:
        """Total between-comparison variance (sum of the components)."""
        return float(np.sum(self.sigma2))

    def predict(self, newmods: Any = None) -> pd.DataFrame:
        """Predicted average effects with confidence and prediction intervals."""
        X = (
            np.ones((1, 1))
            if newmods is None and self.model.intercept_only
            else new_design(self.model, newmods)
        )
        return prediction_frame(
            X, self.coefficients["estimate"].to_numpy(), self.vb, self.tau2, self.level, self.df
        )

    def summary(self) -> str:
        levels = ", ".join(
            f"sigma^2[{name}] = {s:.4f} ({n} groups)"
            for name, s, n in zip(self.random, self.sigma2, self.n_groups, strict=True)
        )
        lines = [
            f"Multilevel model (k = {self.k}; {self.method}; test: {self.test}"
            f"{'; cluster-robust CR2' if self.robust else ''})",
            levels,
            "I^2 by level: "
            + ", ".join(f"{n} {v:.1f}%" for n, v in zip(self.random, self.i2_levels, strict=True)),
            f"Test for residual heterogeneity: Q({self.q_df}) = {self.q:.3f}, p = {self.q_pvalue:.4g}",
        ]
        if not self.model.intercept_only:
            lines.append(f"Test of moderators: {self.qm:.3f} on {self.qm_df} df, p = {self.qm_pvalue:.4g}")
        lines += ["", self.coefficients.to_string(float_format=lambda x: f"{x:.4f}")]
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        out = self.coefficients.reset_index(names="term")
        out["k"], out["method"], out["test"] = self.k, self.method, self.test
        for name, value in zip(self.random, self.sigma2, strict=True):
            out[f"sigma2[{name}]"] = value
        out["model"] = "multilevel_meta_analysis"
        out["mods"] = self.model.formula or ""
        return out

    def to_dict(self) -> dict[str, Any]:
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
            "i2",
            "q",
            "q_df",
            "q_pvalue",
            "pi_low",
            "pi_high",
            "qm",
            "qm_pvalue",
            "log_likelihood",
            "aic",
            "bic",
            "robust",
            "iterations",
            "converged",
            "fingerprint",
            "measure",
        ]
        out = self._plain_dict(scalars)
        out["random"] = list(self.random)
        out["sigma2"] = [float(s) for s in self.sigma2]
        out["i2_levels"] = [float(s) for s in self.i2_levels]
        return out


def multilevel_meta_analysis(
    data: Any,
    yi: Any = "yi",
    vi: Any = "vi",
    *,
    random: list[str] | str,
    mods: str | None = None,
    method: str = "REML",
    test: str = "z",
    V: Any = None,
    robust: bool = False,
    level: float = 0.95,
) -> MultilevelResult:
    """Fit a multilevel (nested random-effects) meta-analysis or meta-regression.

    Parameters
    ----------
    data : DataFrame or Comparisons
    yi, vi : str
        Effect size and sampling variance columns.
    random : list of str
        Nested grouping columns, outermost first, e.g. ``["study_id", "experiment_id"]``.
        Each row is its own innermost unit in addition, through ``vi``; add
        ``"comparison_id"`` for a separate comparison-level variance (three levels).
    mods : str, optional
        Moderator formula, as in :func:`meta_analysis`.
    method : {"REML", "ML"}
    test : {"z", "t"}
        Normal tests, or t with k - p df (metafor's ``test="t"``).
    V : array-like (k x k), optional
        Known sampling covariance (e.g. comparisons sharing a control); it must be block
        diagonal by the outermost level. Its diagonal replaces ``vi``.
    robust : bool
        Cluster-robust (CR2) standard errors with Satterthwaite df, clustered by the
        outermost level (Pustejovsky & Tipton 2018; clubSandwich).
    level : float
        Confidence level.
    """
    method = str(method).upper()
    if method not in {"REML", "ML"}:
        raise ModelError(f"unknown method {method!r} for a multilevel model; valid methods: REML, ML")
    if test not in {"z", "t"}:
        raise ModelError(f"unknown test {test!r} for a multilevel model; valid tests: z, t")
    random = [random] if isinstance(random, str) else list(random)
    if not random:
        raise ModelError("random needs at least one grouping column, e.g. ['study_id', 'experiment_id']")
    model = prepare(data, yi, vi, mods)
    codes = nested_structure(model.frame, random).codes
    V_matrix = None
    if V is not None:
        V_matrix = np.asarray(V.toarray() if hasattr(V, "toarray") else V, dtype=float)
        if V_matrix.shape != (model.k, model.k):
            raise ModelError(f"V must be {model.k} x {model.k}, got {V_matrix.shape}")
        if not np.allclose(V_matrix, V_matrix.T):
            raise ModelError("V must be symmetric")
        different = codes[0][:, None] != codes[0][None, :]
        if np.any(V_matrix[different] != 0):
            raise ModelError(
                f"V has covariances between different {random[0]} groups; it must be block diagonal by {random[0]}"
            )
        if np.any(np.linalg.eigvalsh(V_matrix) <= 0):
            raise ModelError("V is not positive definite")
    batches = make_batches(codes, V_matrix, model.vi)
    try:
        result = _fit(model, batches, codes, random, method, test, level, V_matrix)
    except np.linalg.LinAlgError as exc:
        raise ModelError(
            f"the marginal covariance is not positive definite ({exc}); check V and vi"
        ) from None
    if robust:
        from evmeta.models.frequentist.robust import apply_cr2

        result = apply_cr2(result, V_matrix)
    frame = model.frame
    if "measure" in frame.columns and frame["measure"].nunique() == 1:
        result.measure = str(frame["measure"].iloc[0])
    return result


def _start(model: ModelData, n_levels: int) -> np.ndarray:
    fixed = gls(model.yi, model.vi, model.X, 0.0)
    k, p = model.X.shape
    total = max((fixed.rss - (k - p)) / fixed.trace_p(), 0.01 * float(np.var(model.yi)) + 1e-8)
    return np.full(n_levels, total / n_levels)


def _fit(model, batches, codes, random, method, test, level, V_matrix) -> MultilevelResult:
    reml = method == "REML"
    y, X = model.yi, model.X
    k, p = X.shape
    sigma2 = _start(model, len(random))
    converged = False
    iteration = 0
    for iteration in range(1, MAX_ITER + 1):  # noqa: B007 (the count is reported after the loop)
        ev = evaluate(batches, y, X, sigma2)
        score, info = score_and_information(batches, ev, reml)
        free = ~((sigma2 <= 0) & (score <= 0))
        step = np.zeros_like(sigma2)
        if free.any():
            sub = info[np.ix_(free, free)]
            step[free] = (
                np.linalg.solve(sub, score[free])
                if np.linalg.cond(sub) < 1e14
                else score[free] / np.diag(sub)
            )
        while np.any(sigma2 + step < 0):
            negative = sigma2 + step < 0
            if np.all(sigma2[negative] <= 0):
                step[negative] = -sigma2[negative]
                break
            step /= 2
        sigma2 = np.maximum(sigma2 + step, 0.0)
        if np.max(np.abs(step) / np.maximum(1.0, sigma2)) < TOLERANCE:
            converged = True
            break
    if not converged:
        raise ModelError(
            f"the {method} estimates of the variance components did not converge in {MAX_ITER} iterations"
        )
    ev = evaluate(batches, y, X, sigma2)
    beta, vb = ev.beta, ev.A_inv
    df = float(k - p) if test == "t" else None
    coefficients = coefficient_table(beta, vb, model.names, level, df)
    # Residual heterogeneity: Q with the known sampling covariance only.
    fixed = evaluate(batches, y, X, np.zeros_like(sigma2))
    q = max(0.0, fixed.quad)
    # tr(P) with W = V^-1: sum tr(V_b^-1) - tr(A^-1 sum (V_b^-1 X_b)'(V_b^-1 X_b)).
    xwwx = sum(np.einsum("nmp,nmq->pq", mx, mx) for mx in fixed.mx)
    trace_p = sum(float(np.einsum("nii->", m)) for m in fixed.minv) - float(np.sum(fixed.A_inv * xwwx))
    typical = (k - p) / trace_p
    i2_levels = [100 * s / (np.sum(sigma2) + typical) for s in sigma2]
    tested = model.moderator_columns if not model.intercept_only else [0]
    qm, qm_df, qm_pvalue = omnibus_test(beta, vb, tested, df)
    n_params = p + len(sigma2)
    if reml:
        ll = (
            -0.5 * ((k - p) * np.log(2 * np.pi) + ev.logdet_M + ev.logdet_A + ev.quad)
            + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        )
        n_eff = k - p
    else:
        ll = -0.5 * (k * np.log(2 * np.pi) + ev.logdet_M + ev.quad)
        n_eff = k
    weights = np.zeros(k)
    for batch, minv in zip(batches, ev.minv, strict=True):
        weights[batch.rows] = np.diagonal(minv, axis1=1, axis2=2)
    weights = 100 * weights / weights.sum()
    row = coefficients.iloc[0]
    result = MultilevelResult(
        k=k,
        p=p,
        method=method,
        test=test,
        level=level,
        random=random,
        n_groups=[len(np.unique(c)) for c in codes],
        estimate=float(row["estimate"]),
        se=float(row["se"]),
        stat=float(row["stat"]),
        pvalue=float(row["pvalue"]),
        ci_low=float(row["ci_low"]),
        ci_high=float(row["ci_high"]),
        sigma2=[float(s) for s in sigma2],
        i2_levels=[float(i) for i in i2_levels],
        i2=float(np.sum(i2_levels)),
        q=float(q),
        q_df=k - p,
        q_pvalue=float(stats.chi2.sf(q, k - p)),
        pi_low=np.nan,
        pi_high=np.nan,
        coefficients=coefficients,
        qm=float(qm),
        qm_df=qm_df,
        qm_pvalue=qm_pvalue,
        log_likelihood=float(ll),
        aic=float(-2 * ll + 2 * n_params),
        bic=float(-2 * ll + n_params * np.log(n_eff)),
        weights=weights,
        vb=vb,
        model=model,
        df=df,
        iterations=iteration,
        converged=converged,
        fingerprint=fingerprint(y, model.vi, X, np.array(codes, dtype=float)),
        versions=versions(),
        _batches=batches,
        _level_codes=codes,
    )
    if model.intercept_only:
        prediction = result.predict().iloc[0]
        result.pi_low, result.pi_high = float(prediction["pi_low"]), float(prediction["pi_high"])
    return result
