"""Cluster-robust (CR2) covariance with Satterthwaite df and the HTZ Wald test.

The bias-reduced linearization estimator of Bell & McCaffrey (2002), in the form of
Pustejovsky & Tipton (2018, J Bus Econ Stat 36:672-683) that the R package clubSandwich
implements for ``rma.uni`` and ``rma.mv``: the working covariance is the fitted model's
marginal covariance M (so the weights are M^-1), and each cluster j contributes
u_j = B X_j' W_j A_j e_j with B = (X'WX)^-1 and the CR2 adjustment A_j.

Every u_j is linear in y: u_j = G_j' y. Under the working model y ~ N(X beta, M), the
covariances S_ij = G_i' M G_j give

* Satterthwaite df of a contrast c: (sum_j c'S_jj c)^2 / sum_ij (c'S_ij c)^2;
* the HTZ test of C beta = 0 (Tipton & Pustejovsky 2015, J Educ Behav Stat 40:604-634):
  Q = (C b)'(C V^R C')^-1 (C b), F = Q (eta - q + 1) / (eta q) on (q, eta - q + 1) df, with
  eta = q (q + 1) / sum_st Var(d_st), d = Omega^-1/2 C V^R C' Omega^-1/2, Omega = E[C V^R C'].
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from evmeta.errors import ModelError
from evmeta.models.base.frequentist_protocol import robust_coefficients


def _inverse_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    tol = max(values.max(), 0) * 1e-12
    inv_sqrt = np.where(values > tol, 1 / np.sqrt(np.clip(values, tol, None)), 0.0)
    return (vectors * inv_sqrt) @ vectors.T


@dataclass(frozen=True)
class RobustCovariance:
    """CR2 covariance of beta and what the small-sample corrections need.

    Attributes
    ----------
    vcov : ndarray (p x p)
        The CR2 covariance matrix of the coefficients.
    G : ndarray (k x J x p)
        u_j = G[:, j, :]' y, the cluster contributions as linear maps of y.
    blocks : list of (rows, M_j)
        Clusters with their working covariance.
    cluster : str
        What the clusters are (a column name, or ``"row"``).
    """

    vcov: np.ndarray
    G: np.ndarray
    blocks: list
    cluster: str

    @property
    def n_clusters(self) -> int:
        return len(self.blocks)

    def _covariances(self, C: np.ndarray) -> np.ndarray:
        """S[i, j] = (G_i C')' M (G_j C') for all cluster pairs: (J, J, q, q)."""
        U = self.G @ C.T  # (k, J, q)
        MU = np.zeros_like(U)
        for rows, M in self.blocks:
            MU[rows] = np.einsum("ab,bjq->ajq", M, U[rows])
        return np.einsum("kiq,kjr->ijqr", U, MU)

    def satterthwaite_df(self, C: np.ndarray) -> np.ndarray:
        """Satterthwaite df of each row of C (one contrast per row)."""
        C = np.atleast_2d(C)
        out = np.empty(len(C))
        for index, row in enumerate(C):
            S = self._covariances(row[None, :])[:, :, 0, 0]
            out[index] = np.trace(S) ** 2 / np.sum(S * S)
        return out

    def htz_test(self, C: np.ndarray, beta: np.ndarray) -> tuple[float, tuple[float, float], float]:
        """HTZ Wald test of C beta = 0: (F, (df1, df2), p-value)."""
        C = np.atleast_2d(C)
        q = len(C)
        S = self._covariances(C)
        omega = np.einsum("jjqr->qr", S)
        root = _inverse_sqrt(omega)
        S = np.einsum("ab,ijbc,cd->ijad", root, S, root)
        # Var(d_st) = sum_ij S_ij[s,s] S_ij[t,t] + S_ij[s,t] S_ij[t,s] (Isserlis).
        diag = np.einsum("ijss->ijs", S)
        total = np.einsum("ijs,ijt->", diag, diag) + np.einsum("ijst,ijts->", S, S)
        eta = q * (q + 1) / total
        b = C @ beta
        wald = float(b @ np.linalg.solve(C @ self.vcov @ C.T, b))
        df2 = eta - q + 1
        if df2 <= 0:
            raise ModelError(
                f"the HTZ test has {df2:.3g} denominator df: too few clusters for {q} constraints"
            )
        F = wald * df2 / (eta * q)
        return float(F), (float(q), float(df2)), float(special.fdtrc(q, df2, F))


def cr2(y: np.ndarray, X: np.ndarray, blocks: list, cluster: str) -> tuple[np.ndarray, RobustCovariance]:
    """CR2 covariance for GLS with working covariance blocks ``[(rows, M_j), ...]``.

    Returns the GLS estimate of beta (weights M^-1) and the :class:`RobustCovariance`.
    """
    k, p = X.shape
    W = [np.linalg.inv(M) for _, M in blocks]
    xtwx = sum(X[rows].T @ Wj @ X[rows] for (rows, _), Wj in zip(blocks, W, strict=True))
    B = np.linalg.inv(xtwx)
    beta = B @ sum(X[rows].T @ Wj @ y[rows] for (rows, _), Wj in zip(blocks, W, strict=True))
    WXB = np.zeros((k, p))
    for (rows, _), Wj in zip(blocks, W, strict=True):
        WXB[rows] = Wj @ X[rows] @ B
    G = np.zeros((k, len(blocks), p))
    meat = np.zeros((p, p))
    for j, ((rows, M), Wj) in enumerate(zip(blocks, W, strict=True)):
        Xj = X[rows]
        upper = np.linalg.cholesky(M).T  # M = D'D
        Aj = upper.T @ _inverse_sqrt(upper @ (M - Xj @ B @ Xj.T) @ upper.T) @ upper
        Pj = Aj.T @ Wj @ Xj @ B  # (m_j x p): u_j = Pj' e_j
        G[rows, j, :] += Pj
        G[:, j, :] -= WXB @ (Xj.T @ Pj)
        u = Pj.T @ (y[rows] - Xj @ beta)
        meat += np.outer(u, u)
    return beta, RobustCovariance(meat, G, list(blocks), cluster)


def cluster_codes(frame: Any, cluster: str | None) -> np.ndarray:
    """Integer cluster code of each row: the column ``cluster``, or one cluster per row."""
    if cluster is None:
        return np.arange(len(frame))
    if cluster not in frame.columns:
        raise ModelError(
            f"cluster={cluster!r} is not a column of data; columns: {', '.join(map(str, frame.columns))}"
        )
    if frame[cluster].isna().any():
        raise ModelError(
            f"cluster column {cluster!r} is missing in {int(frame[cluster].isna().sum())} row(s)"
        )
    return pd.factorize(frame[cluster].astype(str))[0]


def with_robust(result: Any, cluster: str, blocks: list) -> Any:
    """A copy of a frequentist result with CR2 inference (``dataclasses.replace``)."""
    if len(blocks) < 2:
        raise ModelError(f"cluster-robust inference needs at least 2 clusters, got {len(blocks)}")
    beta, robust_cov = cr2(result.yi, result.X, blocks, cluster)
    coefficients, _ = robust_coefficients(beta, result.names, robust_cov, result.level)
    model = result.model
    tested = model.moderator_columns if not model.intercept_only else [0]
    C = np.eye(len(beta))[tested]
    qm, qm_df, qm_pvalue = robust_cov.htz_test(C, beta)
    row = coefficients.iloc[0]
    changes = dict(
        coefficients=coefficients,
        vb=robust_cov.vcov,
        robust_cov=robust_cov,
        test="CR2",
        df=None,
        estimate=float(row["estimate"]),
        se=float(row["se"]),
        stat=float(row["stat"]),
        pvalue=float(row["pvalue"]),
        ci_low=float(row["ci_low"]),
        ci_high=float(row["ci_high"]),
        qm=qm,
        qm_df=qm_df,
        qm_pvalue=qm_pvalue,
    )
    out = replace(result, **changes)
    if model.intercept_only:
        pred = out.predict().iloc[0]
        out = replace(out, pi_low=float(pred["pi_low"]), pi_high=float(pred["pi_high"]))
    return out
