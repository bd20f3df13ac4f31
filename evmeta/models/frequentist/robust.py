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

CR2 is only defined where every coefficient is informed by at least two clusters: a
cluster that alone determines a coefficient has leverage 1 there, its residuals are 0 and
the sandwich gives that coefficient (and every contrast resting on it) a variance of 0.
:func:`with_robust` checks this before computing anything (a coefficient rests on one
cluster when dropping that cluster leaves it unidentified), then checks the result (no
robust SE below :data:`MIN_SE_RATIO` of the model-based one, a non-singular HTZ matrix,
positive denominator df). Where a check fails it returns the model-based fit with a note
in ``notes`` naming the coefficient, the cluster and the reason, never an SE of 0 or an
astronomically large statistic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from evmeta.errors import ModelError, RobustUnavailable
from evmeta.models.base.frequentist_protocol import robust_coefficients

#: A robust SE below this fraction of the model-based SE is numerical degeneracy (a
#: cluster with leverage ~1), not information: the fit falls back to model-based inference.
#: Genuine CR2 SEs are within an order of magnitude or two of the model-based ones.
MIN_SE_RATIO = 1e-3
#: Relative eigenvalue below which the HTZ matrices (C V^R C' and Omega) count as singular.
SINGULAR_TOL = 1e-10


def _inverse_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    tol = max(values.max(), 0) * 1e-12
    safe = np.where(values > tol, values, 1.0)
    inv_sqrt = np.where(values > tol, 1 / np.sqrt(safe), 0.0)
    return (vectors * inv_sqrt) @ vectors.T


def _checked_inverse(matrix: np.ndarray, what: str) -> np.ndarray:
    """Inverse of a symmetric positive semi-definite matrix, or RobustUnavailable if singular."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    if not np.all(np.isfinite(values)) or values.max() <= 0 or values.min() <= SINGULAR_TOL * values.max():
        raise RobustUnavailable(f"the {what} is singular")
    return (vectors / values) @ vectors.T


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
        _checked_inverse(omega, "expected robust covariance of the tested coefficients (HTZ)")
        root = _inverse_sqrt(omega)
        S = np.einsum("ab,ijbc,cd->ijad", root, S, root)
        # Var(d_st) = sum_ij S_ij[s,s] S_ij[t,t] + S_ij[s,t] S_ij[t,s] (Isserlis).
        diag = np.einsum("ijss->ijs", S)
        total = np.einsum("ijs,ijt->", diag, diag) + np.einsum("ijst,ijts->", S, S)
        eta = q * (q + 1) / total
        b = C @ beta
        wald = float(
            b @ _checked_inverse(C @ self.vcov @ C.T, "robust covariance of the tested coefficients") @ b
        )
        df2 = eta - q + 1
        if not df2 > 0:
            raise RobustUnavailable(
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


def cluster_codes(frame: Any, cluster: str | None) -> tuple[np.ndarray, list[str]]:
    """Integer cluster code of each row and the cluster labels: the column ``cluster``, or
    one cluster per row (labelled by the row's index)."""
    if cluster is None:
        return np.arange(len(frame)), [str(label) for label in frame.index]
    if cluster not in frame.columns:
        raise ModelError(
            f"cluster={cluster!r} is not a column of data; columns: {', '.join(map(str, frame.columns))}"
        )
    if frame[cluster].isna().any():
        raise ModelError(
            f"cluster column {cluster!r} is missing in {int(frame[cluster].isna().sum())} row(s)"
        )
    codes, uniques = pd.factorize(frame[cluster].astype(str))
    return codes, [str(u) for u in uniques]


def single_cluster_coefficients(X: np.ndarray, blocks: list, names: list[str], labels: list[str]) -> dict:
    """Cluster label -> the coefficients that cannot be estimated without that cluster.

    A coefficient rests on one cluster when the design without that cluster's rows no
    longer identifies it (it has a component in the null space of the reduced X).
    """
    p = X.shape[1]
    out: dict[str, list[str]] = {}
    for (rows, _), label in zip(blocks, labels, strict=True):
        reduced = np.delete(X, rows, axis=0)
        if len(reduced) == 0:
            out[label] = list(names)
            continue
        _, values, vt = np.linalg.svd(reduced, full_matrices=True)
        rank = int(np.sum(values > max(reduced.shape) * np.finfo(float).eps * values.max()))
        if rank < p:
            loads = np.linalg.norm(vt[rank:], axis=0)
            out[label] = [names[m] for m in np.flatnonzero(loads > 1e-8)]
    return out


def _describe(name: str) -> str:
    return "the intercept (the reference level)" if name == "intercept" else name


def _robust_changes(result: Any, cluster: str, blocks: list, labels: list[str]) -> dict:
    """The fields a CR2 fit replaces, or RobustUnavailable with the reason."""
    names = list(result.names)
    alone = single_cluster_coefficients(result.X, blocks, names, labels)
    if alone:
        parts = "; ".join(
            f"{', '.join(map(_describe, lost))} cannot be estimated without {cluster} {label}"
            for label, lost in alone.items()
        )
        raise RobustUnavailable(
            f"CR2 needs at least two {cluster} clusters informing each coefficient: {parts}"
        )
    beta, robust_cov = cr2(result.yi, result.X, blocks, cluster)
    coefficients, _ = robust_coefficients(beta, names, robust_cov, result.level)
    model_se = result.coefficients["se"].to_numpy()
    ratio = coefficients["se"].to_numpy() / model_se
    bad = [n for n, r in zip(names, ratio, strict=True) if not (np.isfinite(r) and r >= MIN_SE_RATIO)]
    if bad:
        raise RobustUnavailable(
            f"the CR2 standard error of {', '.join(map(_describe, bad))} is numerically 0 "
            f"(below {MIN_SE_RATIO:g} x the model-based SE)"
        )
    model = result.model
    tested = model.moderator_columns if not model.intercept_only else [0]
    qm, qm_df, qm_pvalue = robust_cov.htz_test(np.eye(len(beta))[tested], beta)
    return dict(
        coefficients=coefficients,
        vb=robust_cov.vcov,
        robust_cov=robust_cov,
        qm=qm,
        qm_df=qm_df,
        qm_pvalue=qm_pvalue,
    )


def with_robust(result: Any, cluster: str | None, blocks: list, labels: list[str] | None = None) -> Any:
    """A copy of a frequentist result with CR2 inference (``dataclasses.replace``).

    ``inference`` becomes ``"CR2"`` and ``cluster`` is recorded either way, so refits and
    subsets ask for CR2 again. Where CR2 is not defined (see the module docstring) the
    result keeps its model-based inference (``robust_cov`` None) and gains a note.
    """
    labels = labels if labels is not None else [str(j + 1) for j in range(len(blocks))]
    settings = dict(inference="CR2", cluster=cluster)
    cluster = cluster or "row"
    try:
        if len(blocks) < 2:
            raise RobustUnavailable(f"CR2 needs at least 2 {cluster} clusters, got {len(blocks)}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            changes = _robust_changes(result, cluster, blocks, labels)
    except (RobustUnavailable, np.linalg.LinAlgError) as exc:
        note = (
            f"cluster-robust (CR2) inference by {cluster} was not applied ({exc}); "
            f"the model-based standard errors and tests (test = {result.test}) are reported"
        )
        return replace(result, robust_cov=None, notes=(*result.notes, note), **settings)
    return replace(result, **changes, **settings)
