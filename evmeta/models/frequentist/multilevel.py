"""Multilevel (nested random-effects) meta-analysis: comparisons within experiments within
studies, with an optional known sampling covariance for shared controls.

Model: y = X beta + sum_l u_l + e, u_l ~ N(0, sigma2_l) for each group of level l (levels
named outermost first), e ~ N(0, V) with V = diag(vi) unless given. Variance components
by REML or ML, as metafor's ``rma.mv(yi, vi, random = ~ 1 | study/experiment)``: Fisher
scoring with step halving at the boundary, and where it has not converged after
:data:`MAX_ITER` iterations (a ridge where two variance components trade off, e.g. most
studies with one experiment), a bounded quasi-Newton search (L-BFGS-B with the analytic
score) from the best point found. Convergence is checked the same way for both: the
projected score below :data:`TOLERANCE` times the information scale, i.e. the remaining
Newton step is a negligible fraction of a standard error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from evmeta.errors import ModelError
from evmeta.models.base.design import ModelData, prepare
from evmeta.models.base.frequentist_protocol import FittedModel
from evmeta.models.base.inference import check_inference, coefficient_table, omnibus_test
from evmeta.models.base.nesting import nested_structure, parse_random
from evmeta.models.base.protocol import check_level, resolve_level
from evmeta.models.base.provenance import fingerprint, versions
from evmeta.models.base.result_parts import COMMON_SCALARS
from evmeta.models.frequentist.blocks import (
    BlockBatch,
    evaluate,
    log_likelihood,
    make_batches,
    score_and_information,
)
from evmeta.models.frequentist.estimators import gls
from evmeta.models.frequentist.profile import profile_intervals
from evmeta.models.frequentist.robust import RobustCovariance, with_robust

TOLERANCE = 1e-10
#: Fisher-scoring iterations before the quasi-Newton fallback takes over.
MAX_ITER = 100
#: Step halvings per Fisher-scoring iteration before the step is declared unproductive.
MAX_HALVINGS = 40
#: Function evaluations of the quasi-Newton fallback.
MAX_FALLBACK = 2000
#: Projected score, in units of the information scale (a remaining Newton step in SEs),
#: accepted as converged after the fallback: 1e-6 SE is far below any reported digit.
FALLBACK_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False, repr=False)
class MultilevelResult(FittedModel):
    """A fitted multilevel model (immutable); the same estimate/CI/coefficient fields as
    MetaResult, and the same stored inputs (``yi``, ``vi``, ``X``, ``data``, ``V``).

    ``sigma2`` lists the variance components in the order of ``random``; ``i2_levels``
    the share of total variance per level (percent, metafor FAQ definition). After
    :meth:`robust` (or ``inference="CR2"``) standard errors, tests, intervals and
    predictions are cluster-robust (CR2 with Satterthwaite df in ``coefficients['df']``;
    HTZ moderator test); refits keep the setting. ``notes`` records variance components
    fixed at their boundary, and CR2 falling back to model-based inference (with why).
    """

    k: int
    p: int
    method: str
    test: str
    level: float
    random: list[str]
    n_groups: list[int]
    sigma2: list[float]
    i2_levels: list[float]
    i2: float
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
    weights: np.ndarray
    vb: np.ndarray
    model: ModelData = field(repr=False)
    df: float | None = None
    iterations: int = 0
    converged: bool = True
    fingerprint: str = ""
    versions: dict = field(default_factory=dict)
    batches: Any = field(default=None, repr=False)
    level_codes: Any = field(default=None, repr=False)
    V: np.ndarray | None = field(default=None, repr=False)
    inference: str = "model"
    cluster: str | None = None
    robust_cov: RobustCovariance | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()
    yi_column: str | None = None
    vi_column: str | None = None
    #: Values derived on first use from the fields (the case-deleted refits of
    #: leave-one-out and influence); never part of the result's identity.
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def tau2(self) -> float:
        """Total between-comparison variance (sum of the components)."""
        return float(np.sum(self.sigma2))

    @property
    def heterogeneity(self) -> dict[str, float]:
        return {f"tau[{name}]": float(np.sqrt(s)) for name, s in zip(self.random, self.sigma2, strict=True)}

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """One row per random level (outermost first) and ``total``: tau2 (sigma^2), tau
        with its profile-likelihood interval (ci_low, ci_high; none for ``total``), the
        level's I^2 as :attr:`i2_levels` (``i2``), I^2 by the ratio and matrix methods, CVH,
        M and, for a meta-regression, R^2 (:mod:`evmeta.models.frequentist.multilevel_heterogeneity`)."""
        from evmeta.models.frequentist.multilevel_heterogeneity import heterogeneity_levels_table

        table = heterogeneity_levels_table(self)
        ci = profile_intervals(self, resolve_level(level, self.level))
        own_i2 = dict(zip(self.random, self.i2_levels, strict=True))
        table.insert(2, "tau2", table["sigma2"])
        for bound in ("ci_low", "ci_high"):
            of_sigma = ci[bound].to_dict()
            table[bound] = [of_sigma.get(f"sigma[{n}]", np.nan) for n in table["level"]]
        table["i2"] = [own_i2.get(n, np.nan) for n in table["level"]]
        return table.set_index(pd.Index(table["level"], name="component"))

    def confint(self, level: float | None = None) -> pd.DataFrame:
        """Confidence intervals: every coefficient (Wald, with the fit's test and inference),
        then sigma^2 and sigma of each level with profile-likelihood intervals (as
        metafor's ``confint.rma.mv``). Columns estimate, ci_low, ci_high."""
        level = resolve_level(level, self.level)
        table = self.coef_table(level)[["estimate", "ci_low", "ci_high"]]
        return pd.concat([table, profile_intervals(self, level)])

    def robust(self, cluster: str | None = None) -> MultilevelResult:
        """A new result with CR2 inference, clustered by ``cluster`` (default: the outermost
        random level), as clubSandwich's ``vcovCR(type = "CR2")`` with Satterthwaite df
        and the HTZ moderator test; :meth:`predict` then uses CR2 and Satterthwaite df."""
        cluster = cluster or self.random[0]
        if cluster != self.random[0]:
            raise ModelError(
                f"CR2 clusters must be the outermost random level ({self.random[0]}), got {cluster!r}"
            )
        base = self if self.robust_cov is None else self.refit(inference="model", cluster=None)
        blocks, labels = [], []
        for batch in base.batches:
            M = batch.V + np.tensordot(np.asarray(base.sigma2), batch.G, axes=1)
            blocks += [(batch.rows[i], M[i]) for i in range(len(batch.rows))]
            labels += [str(base.data[cluster].iloc[rows[0]]) for rows in batch.rows]
        return with_robust(base, cluster, blocks, labels)

    def refit(self, data: Any = None, *, rows: Any = None, **changes: Any) -> MultilevelResult:
        """The same model on the stored inputs (optionally only ``rows``, index labels or a
        mask of ``data``) or on new ``data`` with the original columns; ``changes`` set
        ``mods``, ``method``, ``test``, ``level``, ``inference`` or ``cluster``."""
        settings = dict(
            random=self.random,
            mods=self.model.formula,
            method=self.method,
            test=self.test,
            level=self.level,
            **self._inference_settings(),
        )
        settings.update(changes)
        if data is None:
            keep = np.ones(self.k, dtype=bool) if rows is None else _row_mask(self.data, rows)
            V = None if self.V is None else self.V[np.ix_(keep, keep)]
            fit = multilevel_meta_analysis(self.data[keep], self.yi[keep], self.vi[keep], V=V, **settings)
            return replace(fit, yi_column=self.yi_column, vi_column=self.vi_column)
        if self.yi_column is None or self.vi_column is None:
            raise ModelError("this model was fitted from arrays; refit(data=...) needs yi and vi columns")
        if self.V is not None:
            raise ModelError("a model with a known V cannot be refitted to new data; pass V again")
        data = data if rows is None else data.loc[rows]
        return multilevel_meta_analysis(data, self.yi_column, self.vi_column, **settings)

    def _title(self) -> str:
        robust = f"; cluster-robust CR2 by {self.robust_cov.cluster}" if self.robust_cov is not None else ""
        return f"Multilevel model (k = {self.k}; {self.method}; test: {self.test}{robust})"

    def _lines(self, level: float) -> list[str]:
        lines = [
            ", ".join(
                f"sigma^2[{name}] = {s:.4f} ({n} groups)"
                for name, s, n in zip(self.random, self.sigma2, self.n_groups, strict=True)
            ),
            "I^2 by level: "
            + ", ".join(f"{n} {v:.1f}%" for n, v in zip(self.random, self.i2_levels, strict=True)),
            f"Test for residual heterogeneity: Q({self.q_df}) = {self.q:.3f}, p = {self.q_pvalue:.4g}",
        ]
        if not self.model.intercept_only:
            df = ", ".join(f"{d:.4g}" for d in self.qm_df) if isinstance(self.qm_df, tuple) else self.qm_df
            lines.append(f"Test of moderators: {self.qm:.3f} on ({df}) df, p = {self.qm_pvalue:.4g}")
        return lines + [f"Note: {note}" for note in self.notes]

    def to_frame(self) -> pd.DataFrame:
        out = self.coefficients.reset_index(names="term")
        out["k"], out["method"], out["test"], out["inference"] = (
            self.k,
            self.method,
            self.test,
            self.inference,
        )
        for name, value in zip(self.random, self.sigma2, strict=True):
            out[f"sigma2[{name}]"] = value
        out["model"] = "multilevel_meta_analysis"
        out["mods"] = self.model.formula or ""
        return out

    def to_dict(self) -> dict[str, Any]:
        scalars = [
            *COMMON_SCALARS,
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
            "iterations",
            "converged",
            "fingerprint",
            "measure",
            "inference",
            "cluster",
        ]
        out = self._plain_dict(scalars)
        out["robust"] = self.robust_cov is not None
        out["notes"] = list(self.notes)
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
    inference: str = "model",
    cluster: str | None = None,
) -> MultilevelResult:
    """Fit a multilevel (nested random-effects) meta-analysis or meta-regression.

    Parameters
    ----------
    data : DataFrame or Comparisons
    yi, vi : str
        Effect size and sampling variance columns.
    random : list of str or str
        Nested grouping columns, outermost first, e.g. ``["study_id", "experiment_id"]``,
        or metafor's formula ``"~ 1 | study_id/experiment_id"``.
        Each row is its own innermost unit in addition, through ``vi``; add
        ``"comparison_id"`` for a separate comparison-level variance (three levels).
    mods : str, optional
        Moderator formula, as in :func:`meta_analysis`.
    method : {"REML", "ML"}
    test : {"z", "t"}
        Normal tests, or t with k - p df (metafor's ``test="t"``); ``"knha"`` (the
        univariate model's Knapp-Hartung setting) reads as ``"t"`` here: t tests with k - p
        df, without the Knapp-Hartung variance scaling.
    V : array-like (k x k), optional
        Known sampling covariance (e.g. comparisons sharing a control); it must be block
        diagonal by the outermost level. Its diagonal replaces ``vi``.
    robust : bool
        Shorthand for ``inference="CR2"``.
    level : float
        Confidence level (0.95, or 95 as a percent).
    inference : {"model", "CR2"}
        Model-based, or cluster-robust (CR2) standard errors with Satterthwaite df and the
        HTZ moderator test (Pustejovsky & Tipton 2018; clubSandwich). Where CR2 is not
        defined the model-based fit comes back with a note.
    cluster : str, optional
        CR2 clusters: the outermost random level (the default), the only one allowed.
    """
    method = str(method).upper()
    if method not in {"REML", "ML"}:
        raise ModelError(f"unknown method {method!r} for a multilevel model; valid methods: REML, ML")
    test = {"knha": "t"}.get(test, test)
    if test not in {"z", "t"}:
        raise ModelError(f"unknown test {test!r} for a multilevel model; valid tests: z, t (knha reads as t)")
    level = check_level(level)
    inference = check_inference("CR2" if robust else inference, cluster)
    random = parse_random(random) or []
    if not random:
        raise ModelError("random needs at least one grouping column, e.g. ['study_id', 'experiment_id']")
    model = prepare(data, yi, vi, mods)
    codes = nested_structure(model.frame, random).codes
    V_matrix = None if V is None else _known_covariance(V, model.k, codes[0], random[0])
    batches = make_batches(codes, V_matrix, model.vi)
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            result = _fit(model, batches, codes, random, method, test, level)
    except (np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError) as exc:
        raise ModelError(
            f"the multilevel model cannot be fitted numerically ({exc}); check V, vi and extreme effect sizes"
        ) from None
    columns = (yi, vi) if isinstance(yi, str) and isinstance(vi, str) else (None, None)
    result = replace(result, V=V_matrix, yi_column=columns[0], vi_column=columns[1])
    return result.robust(cluster) if inference == "CR2" else result


def _known_covariance(V: Any, k: int, outer: np.ndarray, name: str) -> np.ndarray:
    """``V`` as a dense k x k array, checked: symmetric, positive definite, block diagonal
    by the outermost level (``outer`` codes, called ``name``)."""
    matrix = np.asarray(V.toarray() if hasattr(V, "toarray") else V, dtype=float)
    if matrix.shape != (k, k):
        raise ModelError(f"V must be {k} x {k}, got {matrix.shape}")
    if not np.allclose(matrix, matrix.T):
        raise ModelError("V must be symmetric")
    if np.any(matrix[outer[:, None] != outer[None, :]] != 0):
        raise ModelError(
            f"V has covariances between different {name} groups; it must be block diagonal by {name}"
        )
    if np.any(np.linalg.eigvalsh(matrix) <= 0):
        raise ModelError("V is not positive definite")
    return matrix


def _row_mask(frame: pd.DataFrame, rows: Any) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.dtype == bool:
        return rows
    return frame.index.isin(rows)


def _start(model: ModelData, n_levels: int) -> np.ndarray:
    fixed = gls(model.yi, model.vi, model.X, 0.0)
    k, p = model.X.shape
    total = max((fixed.rss - (k - p)) / fixed.trace_p(), 0.01 * float(np.var(model.yi)) + 1e-8)
    return np.full(n_levels, total / n_levels)


def _unidentified(codes: list[np.ndarray], random: list[str], intercept: bool) -> dict[int, str]:
    """Levels whose variance cannot be told apart from another term: fixed at 0, with why."""
    out = {}
    for level, code in enumerate(codes):
        groups = len(np.unique(code))
        if level > 0 and groups == len(np.unique(codes[level - 1])):
            out[level] = (
                f"sigma^2[{random[level]}] is fixed at 0: every {random[level]} group is also a whole "
                f"{random[level - 1]} group, so the two variances cannot be told apart"
            )
        elif groups == 1 and intercept:
            out[level] = (
                f"sigma^2[{random[level]}] is fixed at 0: one {random[level]} group cannot be told apart from the intercept"
            )
    return out


def _explained_by_moderators(
    X: np.ndarray, codes: list[np.ndarray], random: list[str], notes: dict[int, str]
) -> dict[int, str]:
    """Levels whose groups the fixed effects already separate (e.g. one study per isolation
    method): the group indicators lie in the column space of X, REML's projection removes
    them, and the restricted likelihood does not depend on that variance at all (metafor then
    returns its starting value)."""
    out = {}
    rank = np.linalg.matrix_rank(X)
    for level, code in enumerate(codes):
        if level in notes:
            continue
        Z = (np.asarray(code)[:, None] == np.unique(code)[None, :]).astype(float)
        if np.linalg.matrix_rank(np.column_stack([X, Z])) == rank:
            out[level] = (
                f"sigma^2[{random[level]}] is fixed at 0: the moderators already separate every "
                f"{random[level]} group (one group per moderator level), so the restricted likelihood "
                "does not depend on its variance"
            )
    return out


def _projected_score(batches, ev, reml: bool, sigma2: np.ndarray, fixed: np.ndarray) -> tuple:
    """Score, information, the free components and the projected score in information units."""
    score, info = score_and_information(batches, ev, reml)
    free = ~fixed & ~((sigma2 <= 0) & (score <= 0))
    scale = np.sqrt(np.abs(np.diag(info)[free])) + 1e-300
    size = float(np.max(np.abs(score[free]) / scale)) if free.any() else 0.0
    return score, info, free, size


def _fisher_scoring(model, batches, reml: bool, fixed: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Fisher scoring with step halving: the log-likelihood never decreases.

    Components in ``fixed`` stay at 0. A step is halved (at most MAX_HALVINGS times)
    until the likelihood does not decrease; convergence is a relative step below
    TOLERANCE or a projected gradient below TOLERANCE x the information scale. When no
    halving helps, the current point is already a numerical maximum along the step.
    Returns the last point (the best so far) and whether it converged.
    """
    y, X = model.yi, model.X
    sigma2 = np.where(fixed, 0.0, _start(model, len(fixed)))
    ev = evaluate(batches, y, X, sigma2)
    ll = log_likelihood(ev, X, reml)
    for iteration in range(1, MAX_ITER + 1):
        score, info, free, size = _projected_score(batches, ev, reml, sigma2, fixed)
        if not free.any() or size < TOLERANCE:
            return sigma2, iteration, True
        step = np.zeros_like(sigma2)
        step[free] = np.linalg.lstsq(info[np.ix_(free, free)], score[free], rcond=1e-12)[0]
        for _ in range(MAX_HALVINGS):
            candidate = np.maximum(sigma2 + step, 0.0)
            ev_new = evaluate(batches, y, X, candidate)
            ll_new = log_likelihood(ev_new, X, reml)
            if ll_new >= ll - 1e-12 * abs(ll):
                break
            step = step / 2
        else:
            return sigma2, iteration, True  # no ascent left along the scoring direction
        change = np.max(np.abs(candidate - sigma2) / np.maximum(1.0, candidate))
        sigma2, ev, ll = candidate, ev_new, ll_new
        if change < TOLERANCE:
            return sigma2, iteration, True
    return sigma2, MAX_ITER, False


def _quasi_newton(
    model, batches, reml: bool, fixed: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, int, bool]:
    """Maximize the (restricted) likelihood by L-BFGS-B over sigma2 >= 0 from ``start``.

    The fallback where Fisher scoring zig-zags along a ridge. Components in ``fixed``
    stay at 0. Converged when the projected score at the optimum is below
    FALLBACK_TOLERANCE information units.
    """
    from scipy import optimize

    y, X = model.yi, model.X
    free = ~fixed

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        sigma2 = np.zeros(len(fixed))
        sigma2[free] = np.maximum(theta, 0.0)
        ev = evaluate(batches, y, X, sigma2)
        score = score_and_information(batches, ev, reml)[0]
        return -log_likelihood(ev, X, reml), -score[free]

    found = optimize.minimize(
        objective,
        start[free],
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * int(free.sum()),
        options={"maxfun": MAX_FALLBACK, "maxiter": MAX_FALLBACK, "ftol": 1e-15, "gtol": 1e-12},
    )
    sigma2 = np.zeros(len(fixed))
    sigma2[free] = np.maximum(found.x, 0.0)
    ev = evaluate(batches, y, X, sigma2)
    size = _projected_score(batches, ev, reml, sigma2, fixed)[3]
    return sigma2, int(found.nit), bool(size < FALLBACK_TOLERANCE)


def estimate_components(
    model: ModelData, batches: list[BlockBatch], reml: bool, fixed: np.ndarray
) -> tuple[np.ndarray, int, bool]:
    """Variance components: Fisher scoring, then the quasi-Newton fallback if needed."""
    sigma2, iterations, converged = _fisher_scoring(model, batches, reml, fixed)
    if converged:
        return sigma2, iterations, True
    sigma2, more, converged = _quasi_newton(model, batches, reml, fixed, sigma2)
    return sigma2, iterations + more, converged


def _fit(model, batches, codes, random, method, test, level) -> MultilevelResult:
    reml = method == "REML"
    y, X = model.yi, model.X
    k, p = X.shape
    notes = _unidentified(codes, random, "intercept" in model.names)
    if reml:
        notes.update(_explained_by_moderators(X, codes, random, notes))
    fixed = np.array([level in notes for level in range(len(random))])
    if fixed.all() and p > 1:
        raise ModelError(
            "no variance component can be estimated: "
            + "; ".join(notes[level] for level in range(len(random)))
        )
    sigma2, iteration, converged = estimate_components(model, batches, reml, fixed)
    if not converged:
        raise ModelError(
            f"the {method} estimates of the variance components did not converge ({MAX_ITER} Fisher-scoring "
            f"iterations, then {MAX_FALLBACK} quasi-Newton evaluations)"
        )
    ev = evaluate(batches, y, X, sigma2)
    beta, vb = ev.beta, ev.A_inv
    df = float(k - p) if test == "t" else None
    coefficients = coefficient_table(beta, vb, model.names, level, df)
    # Residual heterogeneity: Q with the known sampling covariance only.
    known = evaluate(batches, y, X, np.zeros_like(sigma2))
    q = max(0.0, known.quad)
    # tr(P) with W = V^-1: sum tr(V_b^-1) - tr(A^-1 sum (V_b^-1 X_b)'(V_b^-1 X_b)).
    xwwx = sum(np.einsum("nmp,nmq->pq", mx, mx) for mx in known.mx)
    trace_p = sum(float(np.einsum("nii->", m)) for m in known.minv) - float(np.sum(known.A_inv * xwwx))
    typical = (k - p) / trace_p
    i2_levels = [100 * s / (np.sum(sigma2) + typical) for s in sigma2]
    tested = model.moderator_columns if not model.intercept_only else [0]
    qm, qm_df, qm_pvalue = omnibus_test(beta, vb, tested, df)
    n_params = p + len(sigma2)
    ll = log_likelihood(ev, X, reml)
    n_eff = k - p if reml else k
    weights = np.zeros(k)
    for batch, minv in zip(batches, ev.minv, strict=True):
        weights[batch.rows] = np.diagonal(minv, axis1=1, axis2=2)
    weights = 100 * weights / weights.sum()
    return MultilevelResult(
        k=k,
        p=p,
        method=method,
        test=test,
        level=level,
        random=random,
        n_groups=[len(np.unique(c)) for c in codes],
        sigma2=[float(s) for s in sigma2],
        i2_levels=[float(i) for i in i2_levels],
        i2=float(np.sum(i2_levels)),
        q=float(q),
        q_df=k - p,
        q_pvalue=float(special.chdtrc(k - p, q)),
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
        batches=batches,
        level_codes=codes,
        notes=tuple(notes.values()),
    )
