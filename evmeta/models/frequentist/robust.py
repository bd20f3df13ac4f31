"""Cluster-robust (CR2) standard errors with Satterthwaite degrees of freedom.

The bias-reduced linearization estimator of Bell & McCaffrey (2002), in the form of
Pustejovsky & Tipton (2018, J Bus Econ Stat 36:672-683) that the R package clubSandwich
implements for ``rma.mv``: the working covariance is the fitted model's marginal
covariance M (so the weights are M^-1), clusters are the outermost random level.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from evmeta.models.frequentist.blocks import evaluate


def _inverse_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    tol = max(values.max(), 0) * 1e-12
    inv_sqrt = np.where(values > tol, 1 / np.sqrt(np.clip(values, tol, None)), 0.0)
    return (vectors * inv_sqrt) @ vectors.T


def apply_cr2(result, V_matrix=None):
    """Replace the model-based SEs, tests and intervals of a MultilevelResult by CR2 ones."""
    model = result.model
    y, X = model.yi, model.X
    k, p = X.shape
    sigma2 = np.asarray(result.sigma2)
    ev = evaluate(result._batches, y, X, sigma2)
    B = ev.A_inv
    beta = ev.beta
    clusters = []  # (rows, M_j, W_j)
    for batch, minv in zip(result._batches, ev.minv, strict=True):
        M = batch.V + np.tensordot(sigma2, batch.G, axes=1)
        for index in range(len(batch.rows)):
            clusters.append((batch.rows[index], M[index], minv[index]))
    meat = np.zeros((p, p))
    adjusted = []  # per cluster: A_j' W_j X_j B  (m_j x p)
    for rows, M, W in clusters:
        Xj = X[rows]
        upper = np.linalg.cholesky(M).T  # M = D' D
        Bj = upper @ (M - Xj @ B @ Xj.T) @ upper.T
        Aj = upper.T @ _inverse_sqrt(Bj) @ upper
        ej = y[rows] - Xj @ beta
        u = Xj.T @ W @ Aj @ ej
        meat += np.outer(u, u)
        adjusted.append(Aj.T @ W @ Xj @ B)
    vcov = B @ meat @ B
    # Satterthwaite df per coefficient (working model: y ~ N(X beta, M)).
    J = len(clusters)
    WXB = np.zeros((k, p))
    for rows, _, W in clusters:
        WXB[rows] = W @ X[rows] @ B
    dfs = np.empty(p)
    for h in range(p):
        G = np.zeros((k, J))
        for j, ((rows, _, _), Pj) in enumerate(zip(clusters, adjusted, strict=True)):
            pj = Pj[:, h]
            G[rows, j] += pj
            G[:, j] -= WXB @ (X[rows].T @ pj)
        phi_g = np.zeros_like(G)
        for rows, M, _ in clusters:
            phi_g[rows] = M @ G[rows]
        S = G.T @ phi_g
        dfs[h] = np.trace(S) ** 2 / np.sum(S * S)
    se = np.sqrt(np.diag(vcov))
    stat = beta / se
    pvalue = 2 * stats.t.sf(np.abs(stat), dfs)
    crit = stats.t.ppf(1 - (1 - result.level) / 2, dfs)
    coefficients = result.coefficients.copy()
    coefficients["se"], coefficients["stat"], coefficients["pvalue"] = se, stat, pvalue
    coefficients["ci_low"], coefficients["ci_high"] = beta - crit * se, beta + crit * se
    coefficients["df"] = dfs
    result.coefficients = coefficients
    result.vb = vcov
    row = coefficients.iloc[0]
    result.se, result.stat, result.pvalue = float(row["se"]), float(row["stat"]), float(row["pvalue"])
    result.ci_low, result.ci_high = float(row["ci_low"]), float(row["ci_high"])
    result.robust = True
    result.test = "CR2"
    tested = model.moderator_columns if not model.intercept_only else [0]
    b_t = beta[tested]
    chi = float(b_t @ np.linalg.solve(vcov[np.ix_(tested, tested)], b_t))
    result.qm, result.qm_df, result.qm_pvalue = chi, len(tested), float(stats.chi2.sf(chi, len(tested)))
    return result
