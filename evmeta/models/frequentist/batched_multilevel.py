"""Batched multilevel REML/ML over cluster-bootstrap resamples that share one structure.

A cluster bootstrap (the multiverse's null test draws studies with replacement) builds
every resample from whole copies of the original outermost groups: a study drawn m times
contributes m independent copies of its block of the marginal covariance
M_b = V_b + sum_l sigma2_l G_lb. Every sum of the likelihood, its score and its Fisher
information over the blocks of a resample is therefore a sum over the original blocks
weighted by their multiplicities. Here all resamples are fitted together: the blocks of
all resamples are stacked (``(resamples, blocks, m, m)``, one batched Cholesky and solve
per iteration) and each resample runs the Fisher scoring of
:func:`evmeta.models.frequentist.multilevel._fisher_scoring` (same start, same step,
same halving rule on the log-likelihood, same stopping rules, the same variance
components fixed at 0 when a level is not identified in that resample), stopping on its
own. The result equals ``multilevel_meta_analysis`` on the built resample to rounding
(tests/test_batched.py: 1e-10).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
from scipy import special

from evmeta.errors import ModelError
from evmeta.models.frequentist.blocks import BlockBatch, make_batches
from evmeta.models.frequentist.multilevel import MAX_HALVINGS, MAX_ITER, TOLERANCE


@dataclass
class _Structure:
    """The original blocks, stacked by size, and each resample's block multiplicities."""

    y: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    yb: list[np.ndarray]  # per batch (n, m); padding 0
    Xb: list[np.ndarray]  # per batch (n, m, p); padding 0
    G: list[np.ndarray]  # per batch (L, n, m, m); padding 0
    V: list[np.ndarray]  # per batch (n, m, m); padding: identity
    counts: list[np.ndarray]  # per batch (R, n)
    row_counts: np.ndarray  # (R, k)

    def take(self, idx: np.ndarray) -> _Structure:
        return _Structure(
            self.y,
            self.vi,
            self.X,
            self.yb,
            self.Xb,
            self.G,
            self.V,
            [c[idx] for c in self.counts],
            self.row_counts[idx],
        )


class _PaddedGroup(NamedTuple):
    """Blocks of neighbouring sizes stacked into one padded array each (see ``_padded``)."""

    yb: np.ndarray  # (n, m)
    Xb: np.ndarray  # (n, m, p)
    G: np.ndarray  # (L, n, m, m)
    V: np.ndarray  # (n, m, m)
    first: np.ndarray  # (n,) first row of each block: its outermost group
    rows: list[np.ndarray]  # the rows of each block, unpadded


def _padded(batches: list[BlockBatch], y: np.ndarray, X: np.ndarray) -> list[_PaddedGroup]:
    """Blocks of neighbouring sizes stacked into one array, padded to the largest size.

    A padded row has y = 0, X = 0, V = 1 and no random effects, so it adds exact zeros to
    every sum (and log 1 = 0 to the log-determinant): fewer, larger batched calls. Sizes
    join a group while the padded group stays within 3x the unpadded work.
    """
    groups: list[list[BlockBatch]] = []
    for batch in batches:  # ascending block size
        if groups:
            members = [*groups[-1], batch]
            n = sum(len(b.rows) for b in members)
            work = sum(len(b.rows) * b.rows.shape[1] ** 2 for b in members)
            if n * batch.rows.shape[1] ** 2 <= 3 * work:
                groups[-1] = members
                continue
        groups.append([batch])
    out = []
    for members in groups:
        m, n, L = members[-1].rows.shape[1], sum(len(b.rows) for b in members), members[0].G.shape[0]
        yb, Xb = np.zeros((n, m)), np.zeros((n, m, X.shape[1]))
        G, V = np.zeros((L, n, m, m)), np.broadcast_to(np.eye(m), (n, m, m)).copy()
        first: list[np.ndarray] = []
        start = 0
        for b in members:
            size, stop = b.rows.shape[1], start + len(b.rows)
            yb[start:stop, :size], Xb[start:stop, :size] = y[b.rows], X[b.rows]
            G[:, start:stop, :size, :size], V[start:stop, :size, :size] = b.G, b.V
            first.append(b.rows[:, 0])
            start = stop
        out.append(_PaddedGroup(yb, Xb, G, V, np.concatenate(first), [r for b in members for r in b.rows]))
    return out


@dataclass
class _Evaluation:
    """Likelihood pieces of every resample at its sigma2 (leading axis: resamples)."""

    beta: np.ndarray  # (R, p)
    A_inv: np.ndarray  # (R, p, p)
    logdet_M: np.ndarray  # (R,)
    logdet_A: np.ndarray
    quad: np.ndarray
    minv: list[np.ndarray]  # per batch (R, n, m, m)
    e: list[np.ndarray]  # per batch (R, n, m)
    mx: list[np.ndarray]  # per batch (R, n, m, p)

    def take(self, idx: np.ndarray) -> _Evaluation:
        def rows(stack: list[np.ndarray]) -> list[np.ndarray]:
            return [a[idx] for a in stack]

        return _Evaluation(
            self.beta[idx], self.A_inv[idx], self.logdet_M[idx], self.logdet_A[idx], self.quad[idx],
            rows(self.minv), rows(self.e), rows(self.mx),
        )  # fmt: skip

    def put(self, idx: np.ndarray, other: _Evaluation) -> None:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, list):
                for a, b in zip(mine, theirs, strict=True):
                    a[idx] = b
            else:
                mine[idx] = theirs


def _evaluate(s: _Structure, sigma2: np.ndarray) -> _Evaluation:
    """``blocks.evaluate`` of every resample (``sigma2``: (R, L))."""
    R, p = len(sigma2), s.X.shape[1]
    xtmx, xtmy = np.zeros((R, p, p)), np.zeros((R, p))
    logdet = np.zeros(R)
    minvs, mxs = [], []
    for yb, Xb, G, V, c in zip(s.yb, s.Xb, s.G, s.V, s.counts, strict=True):
        M = V[None] + np.einsum("rl,lnij->rnij", sigma2, G)
        chol = np.linalg.cholesky(M)
        logdet += 2 * np.sum(c * np.sum(np.log(np.diagonal(chol, axis1=2, axis2=3)), axis=2), axis=1)
        minv = np.linalg.inv(M)
        mx = minv @ Xb
        xtmx += np.einsum("rn,nmp,rnmq->rpq", c, Xb, mx)
        xtmy += np.einsum("rn,rnmp,nm->rp", c, mx, yb)
        minvs.append(minv)
        mxs.append(mx)
    A_inv = np.linalg.inv(xtmx)
    beta = np.einsum("rpq,rq->rp", A_inv, xtmy)
    quad = np.zeros(R)
    es = []
    for yb, Xb, minv, c in zip(s.yb, s.Xb, minvs, s.counts, strict=True):
        r = yb[None] - np.einsum("nmp,rp->rnm", Xb, beta)
        e = np.einsum("rnij,rnj->rni", minv, r)
        quad += np.sum(c * np.sum(r * e, axis=2), axis=1)
        es.append(e)
    return _Evaluation(beta, A_inv, logdet, np.linalg.slogdet(xtmx)[1], quad, minvs, es, mxs)


def _log_likelihood(ev: _Evaluation, s: _Structure, reml: bool) -> np.ndarray:
    k, p = s.row_counts.sum(axis=1), s.X.shape[1]
    if reml:
        logdet_xx = np.linalg.slogdet(np.einsum("rk,kp,kq->rpq", s.row_counts, s.X, s.X))[1]
        return -0.5 * ((k - p) * np.log(2 * np.pi) + ev.logdet_M + ev.logdet_A + ev.quad) + 0.5 * logdet_xx
    return -0.5 * (k * np.log(2 * np.pi) + ev.logdet_M + ev.quad)


def _score_and_information(s: _Structure, ev: _Evaluation, reml: bool) -> tuple[np.ndarray, np.ndarray]:
    """``blocks.score_and_information`` of every resample: score (R, L), information (R, L, L)."""
    R, L, p = len(ev.quad), s.G[0].shape[0], s.X.shape[1]
    trace_mg, quad_g = np.zeros((R, L)), np.zeros((R, L))
    C, T, D = np.zeros((R, L, p, p)), np.zeros((R, L, L)), np.zeros((R, L, L, p, p))
    for G, c, minv, e, mx in zip(s.G, s.counts, ev.minv, ev.e, ev.mx, strict=True):
        g_mx = [np.einsum("nij,rnjp->rnip", G[a], mx) for a in range(L)] if reml else []
        mg = [minv @ G[a][None] for a in range(L)]  # M^-1 G_l, (R, n, m, m)
        for a in range(L):
            trace_mg[:, a] += np.einsum("rn,rnij,nij->r", c, minv, G[a])
            quad_g[:, a] += np.einsum("rn,rni,nij,rnj->r", c, e, G[a], e)
            if reml:
                C[:, a] += np.einsum("rn,rnip,rniq->rpq", c, mx, g_mx[a])
        for a in range(L):
            for b in range(a, L):
                T[:, a, b] += np.einsum("rn,rnij,rnji->r", c, mg[a], mg[b])
                if reml:
                    D[:, a, b] += np.einsum("rn,rnip,rniq->rpq", c, g_mx[a], mg[b] @ mx)
    T = T + np.triu(T, 1).transpose(0, 2, 1) if L > 1 else T
    if not reml:
        return -0.5 * (trace_mg - quad_g), 0.5 * T
    A = ev.A_inv
    trace_pg = trace_mg - np.einsum("rpq,rlpq->rl", A, C)
    AC = np.einsum("rpq,rlqs->rlps", A, C)
    info = np.zeros((R, L, L))
    for a in range(L):
        for b in range(a, L):
            value = (
                T[:, a, b]
                - 2 * np.einsum("rpq,rqp->r", A, D[:, a, b])
                + np.einsum("rpq,rqp->r", AC[:, a], AC[:, b])
            )
            info[:, a, b] = info[:, b, a] = 0.5 * value
    return -0.5 * (trace_pg - quad_g), info


def _lstsq(info: np.ndarray, score: np.ndarray, free: np.ndarray) -> np.ndarray:
    """``np.linalg.lstsq(info[free, free], score[free], rcond=1e-12)`` of every resample."""
    step = np.zeros_like(score)
    patterns, which = np.unique(free, axis=0, return_inverse=True)
    for index, pattern in enumerate(patterns):
        members = np.flatnonzero(which.ravel() == index)
        cols = np.flatnonzero(pattern)
        if not len(members) or not len(cols):
            continue
        A = info[np.ix_(members, cols, cols)]
        U, sv, Vt = np.linalg.svd(A)
        keep = sv > 1e-12 * sv[:, :1]
        coef = np.einsum("rji,rj->ri", U, score[np.ix_(members, cols)])
        coef = np.where(keep, coef / np.where(keep, sv, 1.0), 0.0)
        step[np.ix_(members, cols)] = np.einsum("rij,ri->rj", Vt, coef)
    return step


def _start(s: _Structure) -> np.ndarray:
    """``multilevel._start``'s total variance of every resample (divided among the levels later)."""
    c, X, vi, y = s.row_counts, s.X, s.vi, s.y
    w = c / vi
    vb = np.linalg.inv(np.einsum("rk,kp,kq->rpq", w, X, X))
    beta = np.einsum("rpq,rq->rp", vb, (w * y) @ X)
    rss = np.sum(w * (y - beta @ X.T) ** 2, axis=1)
    trace_p = w.sum(1) - np.sum(vb * np.einsum("rk,kp,kq->rpq", w / vi, X, X), axis=(1, 2))
    k = c.sum(1)
    mean = (c @ y) / k
    variance = np.sum(c * (y - mean[:, None]) ** 2, axis=1) / k
    return np.maximum((rss - (k - X.shape[1])) / trace_p, 0.01 * variance + 1e-8)


def _unidentified(
    s: _Structure, block_rows: list[list[np.ndarray]], codes: list[np.ndarray], intercept: bool
) -> np.ndarray:
    """Per resample, the levels ``multilevel._unidentified`` fixes at 0 (R, L)."""
    L = len(codes)
    groups = np.zeros((len(s.row_counts), L))
    for rows, c in zip(block_rows, s.counts, strict=True):
        for level in range(L):
            per_block = np.array([len(np.unique(codes[level][r])) for r in rows])
            groups[:, level] += c @ per_block
    fixed = np.zeros(groups.shape, dtype=bool)
    for level in range(L):
        nested = groups[:, level] == groups[:, level - 1] if level > 0 else np.zeros(len(groups), bool)
        fixed[:, level] = nested | ((groups[:, level] == 1) & intercept)
    return fixed


def _line_search(s: _Structure, sigma2, step, ll, reml):
    """Halve each resample's step until its log-likelihood does not decrease."""
    n = len(sigma2)
    accepted, candidate, ll_out = np.zeros(n, dtype=bool), sigma2.copy(), ll.copy()
    pending, ev_out = np.arange(n), None
    for _ in range(MAX_HALVINGS):
        trial = np.maximum(sigma2[pending] + step[pending], 0.0)
        sub = s.take(pending)
        ev = _evaluate(sub, trial)
        ll_new = _log_likelihood(ev, sub, reml)
        ok = ll_new >= ll[pending] - 1e-12 * np.abs(ll[pending])
        if ev_out is None:
            ev_out = ev
        else:
            ev_out.put(pending[ok], ev.take(np.flatnonzero(ok)))
        candidate[pending[ok]], ll_out[pending[ok]], accepted[pending[ok]] = trial[ok], ll_new[ok], True
        pending = pending[~ok]
        step[pending] = step[pending] / 2
        if not len(pending):
            break
    return accepted, candidate, ll_out, ev_out


def _fisher_scoring(s: _Structure, reml: bool, fixed: np.ndarray):
    """Every resample's ``multilevel._fisher_scoring``: (sigma2, iterations, converged)."""
    R, L = fixed.shape
    sigma2 = np.where(fixed, 0.0, _start(s)[:, None] / L)
    ev = _evaluate(s, sigma2)
    ll = _log_likelihood(ev, s, reml)
    iterations, converged = np.zeros(R, dtype=int), np.zeros(R, dtype=bool)
    active = np.arange(R)
    for iteration in range(1, MAX_ITER + 1):
        sub = s.take(active)
        score, info = _score_and_information(sub, ev, reml)
        iterations[active] = iteration
        free = ~fixed[active] & ~((sigma2[active] <= 0) & (score <= 0))
        scale = np.sqrt(np.abs(np.diagonal(info, axis1=1, axis2=2))) + 1e-300
        stop = ~free.any(axis=1) | (np.where(free, np.abs(score) / scale, 0.0).max(axis=1) < TOLERANCE)
        converged[active[stop]] = True
        go = np.flatnonzero(~stop)
        if not len(go):
            return sigma2, iterations, converged
        step = _lstsq(info[go], score[go], free[go])
        accepted, candidate, ll_new, ev_new = _line_search(
            sub.take(go), sigma2[active[go]], step, ll[active[go]], reml
        )
        converged[active[go[~accepted]]] = True  # no ascent left along the scoring direction
        change = np.max(np.abs(candidate - sigma2[active[go]]) / np.maximum(1.0, candidate), axis=1)
        moved = active[go[accepted]]
        sigma2[moved], ll[moved] = candidate[accepted], ll_new[accepted]
        done = accepted & (change < TOLERANCE)
        converged[active[go[done]]] = True
        going = accepted & ~done
        active = active[go[going]]
        if not len(active):
            return sigma2, iterations, converged
        ev = ev_new.take(np.flatnonzero(going))
    return sigma2, iterations, converged


@dataclass(frozen=True)
class BatchedMultilevelFit:
    """Multilevel fits of ``R`` resamples (leading axis). ``sigma2`` is ``(R, L)`` (levels as
    ``level_codes``); ``beta``, ``se``, ``stat``, ``pvalue``, ``ci_low``, ``ci_high`` are
    ``(R, p)``; ``vb`` ``(R, p, p)``; ``k``, ``df`` (NaN for z tests), ``iterations`` and
    ``log_likelihood`` ``(R,)``. ``valid`` is False (and the row NaN, with ``reason``) where
    the single fit raises: no convergence, or non-finite results."""

    method: str
    test: str
    sigma2: np.ndarray
    beta: np.ndarray
    vb: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    pvalue: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    k: np.ndarray
    df: np.ndarray
    iterations: np.ndarray
    log_likelihood: np.ndarray
    valid: np.ndarray
    reason: np.ndarray

    @property
    def estimate(self) -> np.ndarray:
        return self.beta[:, 0]


def batched_multilevel_meta_analysis(
    yi: np.ndarray,
    vi: np.ndarray,
    level_codes: list[np.ndarray],
    counts: np.ndarray,
    *,
    X: np.ndarray | None = None,
    V: np.ndarray | None = None,
    intercept: bool = True,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> BatchedMultilevelFit:
    """``multilevel_meta_analysis`` of many cluster-bootstrap resamples of one data set.

    Parameters
    ----------
    yi, vi : ndarray (k,)
        Effect sizes and sampling variances of the original rows.
    level_codes : list of ndarray (k,)
        Group codes of every random level, outermost first (``nested_structure(...).codes``).
    counts : ndarray (R, k)
        Copies of each row in each resample. Rows of one outermost group share a count:
        a group drawn m times enters as m independent groups at every level (as the
        multiverse's null test relabels copies).
    X : ndarray (k, p), optional
        Design (default: intercept only). ``intercept`` says whether it has an intercept
        column (a level with one group is then not identified).
    V : ndarray (k, k), optional
        Known sampling covariance, block diagonal by the outermost level (default diag(vi)).
    method : {"REML", "ML"}
    test : {"z", "t"}
        Normal tests, or t with k - p df.
    level : float
        Confidence level.

    Returns
    -------
    BatchedMultilevelFit

    Raises
    ------
    ModelError
        Unknown method or test, or counts that differ within an outermost group.
    """
    method = str(method).upper()
    if method not in {"REML", "ML"}:
        raise ModelError(f"unknown method {method!r} for a multilevel model; valid methods: REML, ML")
    if test not in {"z", "t"}:
        raise ModelError(f"unknown test {test!r} for a multilevel model; valid tests: z, t")
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    X = np.ones((len(y), 1)) if X is None else np.asarray(X, dtype=float)
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    batches = make_batches(list(level_codes), None if V is None else np.asarray(V, dtype=float), v)
    for b in batches:
        if np.any(counts[:, b.rows] != counts[:, b.rows[:, :1]]):
            raise ModelError("counts must be equal within each outermost group (copies of whole groups)")
    k, p = counts.sum(axis=1), X.shape[1]
    fittable = k - p >= 1
    fittable[fittable] = np.linalg.matrix_rank(np.einsum("rk,kp,kq->rpq", counts[fittable], X, X)) == p
    if not fittable.all():
        part = (
            batched_multilevel_meta_analysis(
                y, v, level_codes, counts[fittable], X=X, V=V, intercept=intercept, method=method, test=test,
                level=level,
            )
            if fittable.any()
            else None
        )  # fmt: skip
        return _expanded(part, fittable, k, len(level_codes), p, method, test)
    with np.errstate(all="ignore"):
        s, block_rows = _structure(batches, y, v, X, counts)
        fixed = _unidentified(s, block_rows, list(level_codes), intercept)
        sigma2, iterations, converged = _fisher_scoring(s, method == "REML", fixed)
        ev = _evaluate(s, sigma2)
        return _inference(s, ev, sigma2, iterations, converged, method, test, level)


def _structure(
    batches: list[BlockBatch], y: np.ndarray, v: np.ndarray, X: np.ndarray, counts: np.ndarray
) -> tuple[_Structure, list[list[np.ndarray]]]:
    """The padded block stacks of the data and each resample's block counts."""
    groups = _padded(batches, y, X)
    s = _Structure(
        y, v, X, [g.yb for g in groups], [g.Xb for g in groups], [g.G for g in groups], [g.V for g in groups],
        [counts[:, g.first] for g in groups], counts,
    )  # fmt: skip
    return s, [g.rows for g in groups]


def _inference(s, ev, sigma2, iterations, converged, method, test, level) -> BatchedMultilevelFit:
    k, p = s.row_counts.sum(axis=1), s.X.shape[1]
    df = (k - p).astype(float) if test == "t" else np.full(len(k), np.nan)
    se = np.sqrt(np.diagonal(ev.A_inv, axis1=1, axis2=2))
    stat = ev.beta / se
    tail = 1 - (1 - level) / 2
    if test == "t":
        pvalue, crit = 2 * special.stdtr(df[:, None], -np.abs(stat)), special.stdtrit(df, tail)[:, None]
    else:
        pvalue, crit = 2 * special.ndtr(-np.abs(stat)), special.ndtri(tail)
    reason = np.full(len(k), "", dtype=object)
    reason[~converged] = f"the {method} estimates of the variance components did not converge"
    finite = np.all(np.isfinite(ev.beta) & np.isfinite(se), axis=1) & np.all(np.isfinite(sigma2), axis=1)
    reason[converged & ~finite] = "non-finite estimates"
    valid = converged & finite
    out = {
        "sigma2": sigma2,
        "beta": ev.beta,
        "vb": ev.A_inv,
        "se": se,
        "stat": stat,
        "pvalue": pvalue,
        "ci_low": ev.beta - crit * se,
        "ci_high": ev.beta + crit * se,
    }
    out = {name: np.where(valid.reshape(-1, *([1] * (a.ndim - 1))), a, np.nan) for name, a in out.items()}
    ll = _log_likelihood(ev, s, method == "REML")
    return BatchedMultilevelFit(
        method, test, k=k, df=df, iterations=iterations, log_likelihood=ll, valid=valid, reason=reason, **out
    )


def _expanded(part, fittable, k, L, p, method, test) -> BatchedMultilevelFit:
    """The fit of the ``fittable`` resamples, with the others NaN and their reason."""
    n = len(fittable)
    out = {
        "sigma2": np.full((n, L), np.nan),
        "vb": np.full((n, p, p), np.nan),
        **{name: np.full((n, p), np.nan) for name in ("beta", "se", "stat", "pvalue", "ci_low", "ci_high")},
        "df": np.full(n, np.nan),
        "iterations": np.zeros(n, dtype=int),
        "log_likelihood": np.full(n, np.nan),
        "valid": np.zeros(n, dtype=bool),
        "reason": np.full(n, f"fewer than {p + 1} rows, or a rank-deficient design", dtype=object),
    }
    if part is not None:
        for name in out:
            out[name][fittable] = getattr(part, name)
    return BatchedMultilevelFit(method, test, k=k, **out)


__all__ = ["BatchedMultilevelFit", "batched_multilevel_meta_analysis"]
