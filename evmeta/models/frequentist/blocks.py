"""Block-diagonal marginal covariance M = V + sum_l sigma2_l Z_l Z_l' of nested models.

Rows are grouped into blocks by the outermost random factor (a study); within a block,
M_b is small and dense. Blocks of equal size are stacked and handled by batched numpy
linear algebra, so nothing k x k is ever formed and thousands of studies cost one call
per distinct block size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BlockBatch:
    """All blocks of one size: row indices (n, m), level indicator matrices (L, n, m, m), V (n, m, m)."""

    rows: np.ndarray
    G: np.ndarray
    V: np.ndarray


def make_batches(level_codes: list[np.ndarray], V: np.ndarray | None, vi: np.ndarray) -> list[BlockBatch]:
    """Group rows by the outermost level (``level_codes[0]``) and stack blocks by size.

    ``level_codes[l]`` gives, for each row, an integer id of its level-l group (ids of an
    inner level are unique across outer groups).
    """
    outer = level_codes[0]
    order = np.argsort(outer, kind="stable")
    boundaries = np.flatnonzero(np.diff(outer[order])) + 1
    blocks = np.split(order, boundaries)
    by_size: dict[int, list[np.ndarray]] = {}
    for block in blocks:
        by_size.setdefault(len(block), []).append(block)
    batches = []
    for size, members in sorted(by_size.items()):
        rows = np.vstack(members)  # (n, m)
        G = np.stack(
            [(codes[rows][:, :, None] == codes[rows][:, None, :]).astype(float) for codes in level_codes]
        )
        if V is None:
            Vb = np.zeros((len(members), size, size))
            idx = np.arange(size)
            Vb[:, idx, idx] = vi[rows]
        else:
            Vb = V[rows[:, :, None], rows[:, None, :]]
        batches.append(BlockBatch(rows, G, Vb))
    return batches


@dataclass
class Evaluation:
    """Quantities of the likelihood at one value of the variance components."""

    beta: np.ndarray
    A_inv: np.ndarray  # (X' M^-1 X)^-1
    logdet_M: float
    logdet_A: float
    quad: float  # r' M^-1 r
    minv: list[np.ndarray]  # per batch (n, m, m)
    e: list[np.ndarray]  # per batch M^-1 r (n, m)
    mx: list[np.ndarray]  # per batch M^-1 X (n, m, p)


def evaluate(batches: list[BlockBatch], y: np.ndarray, X: np.ndarray, sigma2: np.ndarray) -> Evaluation:
    """GLS fit and likelihood pieces for variance components ``sigma2``."""
    p = X.shape[1]
    xtmx = np.zeros((p, p))
    xtmy = np.zeros(p)
    logdet = 0.0
    minvs, mxs = [], []
    for batch in batches:
        M = batch.V + np.tensordot(sigma2, batch.G, axes=1)
        chol = np.linalg.cholesky(M)
        logdet += 2 * float(np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2))))
        eye = np.broadcast_to(np.eye(M.shape[1]), M.shape)
        minv = np.linalg.solve(M, eye)
        Xb = X[batch.rows]  # (n, m, p)
        mx = minv @ Xb
        xtmx += np.einsum("nmp,nmq->pq", Xb, mx)
        xtmy += np.einsum("nmp,nm->p", mx, y[batch.rows])
        minvs.append(minv)
        mxs.append(mx)
    A_inv = np.linalg.inv(xtmx)
    beta = A_inv @ xtmy
    quad = 0.0
    es = []
    for batch, minv in zip(batches, minvs, strict=True):
        r = y[batch.rows] - X[batch.rows] @ beta
        e = np.einsum("nij,nj->ni", minv, r)
        quad += float(np.sum(r * e))
        es.append(e)
    return Evaluation(beta, A_inv, logdet, float(np.linalg.slogdet(xtmx)[1]), quad, minvs, es, mxs)


def score_and_information(
    batches: list[BlockBatch], ev: Evaluation, reml: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Score (gradient of the log-likelihood) and Fisher information in sigma2."""
    L = batches[0].G.shape[0]
    p = ev.A_inv.shape[0]
    trace_mg = np.zeros(L)
    quad_g = np.zeros(L)
    C = np.zeros((L, p, p))
    T = np.zeros((L, L))
    D = np.zeros((L, L, p, p))
    for batch, minv, e, mx in zip(batches, ev.minv, ev.e, ev.mx, strict=True):
        mx_t = mx.transpose(0, 2, 1)
        g_mx = [batch.G[level] @ mx for level in range(L)] if reml else []
        mg = [minv @ batch.G[level] for level in range(L)]  # M^-1 G_l
        for level in range(L):
            G = batch.G[level]
            # G and M^-1 are symmetric: tr(M^-1 G) = sum(M^-1 * G).
            trace_mg[level] += float(np.sum(minv * G))
            quad_g[level] += float(np.sum(e * (G @ e[:, :, None])[:, :, 0]))
            if reml:
                C[level] += np.sum(mx_t @ g_mx[level], axis=0)
        for a in range(L):
            for b in range(a, L):
                T[a, b] += float(np.sum(mg[a] * mg[b].transpose(0, 2, 1)))
                if reml:
                    # X' M^-1 G_a M^-1 G_b M^-1 X = (G_a M^-1 X)' (M^-1 G_b M^-1 X)
                    D[a, b] += np.sum(g_mx[a].transpose(0, 2, 1) @ (mg[b] @ mx), axis=0)
    T = T + np.triu(T, 1).T
    if not reml:
        return -0.5 * (trace_mg - quad_g), 0.5 * T
    A_inv = ev.A_inv
    trace_pg = trace_mg - np.array([np.sum(A_inv * C[level]) for level in range(L)])
    info = np.zeros((L, L))
    for a in range(L):
        for b in range(a, L):
            value = T[a, b] - 2 * np.sum(A_inv * D[a, b].T) + np.sum((A_inv @ C[a]) * (A_inv @ C[b]).T)
            info[a, b] = info[b, a] = 0.5 * value
    return -0.5 * (trace_pg - quad_g), info


def log_likelihood(ev: Evaluation, X: np.ndarray, reml: bool) -> float:
    """(Restricted) log-likelihood at an evaluation (metafor's definitions; REML includes
    + 1/2 log|X'X|)."""
    k, p = X.shape
    if reml:
        return float(
            -0.5 * ((k - p) * np.log(2 * np.pi) + ev.logdet_M + ev.logdet_A + ev.quad)
            + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        )
    return float(-0.5 * (k * np.log(2 * np.pi) + ev.logdet_M + ev.quad))
