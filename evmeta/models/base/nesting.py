"""Nesting structure of a Bayesian meta-analysis and the group-sum algebra it allows.

Levels are named outermost first. The innermost level's effects are integrated out of
the likelihood analytically: within an innermost group g with rows i, the marginal
covariance is diag(v_i) + tau_inner^2 11', whose inverse and determinant follow from the
Sherman-Morrison formula and the determinant lemma with group sums only:

    r' (D + t^2 11')^-1 r = sum_i a_i r_i^2 - c (sum_i a_i r_i)^2,  c = t^2 / (1 + t^2 sum_i a_i)
    log |D + t^2 11'| = sum_i log v_i + log(1 + t^2 sum_i a_i),      a_i = 1 / v_i.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

from evmeta.errors import ModelError


@dataclass
class NestedStructure:
    """Group codes of every level for each row.

    Attributes
    ----------
    levels : list of str
        Level names, outermost first (``["comparison"]`` for the classic model).
    codes : list of ndarray
        Per level, each row's group code (inner ids made unique within outer ids).
    sizes : list of int
        Number of groups per level.
    parent : list of ndarray
        For level l > 0, the level-(l-1) group of each level-l group.
    """

    levels: list[str]
    codes: list[np.ndarray]
    sizes: list[int]
    parent: list[np.ndarray | None]
    labels: list[list[str]] | None = None

    def group_labels(self, level: int) -> list[str]:
        """Ids of the groups of one level (``study/experiment`` for nested ids), in code order."""
        if self.labels is None:
            return [str(i) for i in range(self.sizes[level])]
        return list(self.labels[level])

    @property
    def inner(self) -> np.ndarray:
        return self.codes[-1]

    @property
    def n_inner(self) -> int:
        return self.sizes[-1]


def parse_random(random: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """Random levels, outermost first, from a list of columns or a metafor formula.

    ``"~ 1 | study_id/experiment_id"`` (metafor's ``random`` for nested effects) and
    ``"study_id/experiment_id"`` give ``["study_id", "experiment_id"]``; a single column
    name gives a one-element list; None stays None.
    """
    if random is None:
        return None
    if not isinstance(random, str):
        return [str(r) for r in random]
    text = random.strip()
    if text.startswith("~"):
        head, bar, tail = text[1:].partition("|")
        if not bar or head.strip() != "1":
            raise ModelError(
                f"random={random!r}: only nested random intercepts are supported, "
                "e.g. '~ 1 | study_id/experiment_id'"
            )
        text = tail
    levels = [part.strip() for part in text.split("/")]
    if not all(levels):
        raise ModelError(f"random={random!r}: empty level name; e.g. '~ 1 | study_id/experiment_id'")
    return levels


def nested_structure(frame: pd.DataFrame, random: list[str] | None) -> NestedStructure:
    """Build the structure; ``random=None`` makes every row its own group (one level)."""
    k = len(frame)
    if random is None:
        labels = frame["comparison_id"].astype(str).tolist() if "comparison_id" in frame.columns else None
        if labels is not None and len(set(labels)) != k:
            labels = None
        return NestedStructure(
            ["comparison"], [np.arange(k)], [k], [None], [labels or [str(i) for i in frame.index]]
        )
    codes: list[np.ndarray] = []
    sizes: list[int] = []
    parents: list[np.ndarray | None] = []
    level_labels: list[list[str]] = []
    keys: list[pd.Series] = []
    for name in random:
        if name not in frame.columns:
            raise ModelError(
                f"random level {name!r} is not a column of data; columns: {', '.join(map(str, frame.columns))}"
            )
        if frame[name].isna().any():
            raise ModelError(f"random level {name!r} is missing in {int(frame[name].isna().sum())} row(s)")
        keys.append(frame[name].astype(str).reset_index(drop=True))
        combined = keys[0] if len(keys) == 1 else pd.Series(["\x1f".join(t) for t in zip(*keys, strict=True)])
        code, uniques = pd.factorize(combined)
        codes.append(code.astype(np.int64))
        sizes.append(len(uniques))
        level_labels.append([str(u).replace("\x1f", "/") for u in uniques])
        if len(codes) > 1:
            parent = np.zeros(len(uniques), dtype=np.int64)
            parent[code] = codes[-2]
            parents.append(parent)
        else:
            parents.append(None)
    return NestedStructure(list(random), codes, sizes, parents, level_labels)


def group_sum(codes: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sum ``values`` (k, ...) by group along the first axis -> (size, ...)."""
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=size)
    out = np.zeros((size, *values.shape[1:]))
    np.add.at(out, codes, values)
    return out


def group_sum_last(codes: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sum ``values`` (..., k) by group along the last axis -> (..., size)."""
    flat = values.reshape(-1, values.shape[-1])
    out = np.zeros((flat.shape[0], size))
    for row in range(flat.shape[0]):
        out[row] = np.bincount(codes, weights=flat[row], minlength=size)
    return out.reshape(*values.shape[:-1], size)


def _sparse_indicator(codes: np.ndarray, size: int) -> csr_matrix:
    from scipy import sparse

    return sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(size, len(codes)))


def inner_block_loglik(
    resid: np.ndarray, v: np.ndarray, tau_inner: np.ndarray, structure: NestedStructure
) -> np.ndarray:
    """Log-likelihood of each innermost group with its random effect integrated out.

    Parameters
    ----------
    resid : (N, k)
        y minus the fixed part and the sampled outer effects, per draw.
    v : (k,)
        Sampling variances.
    tau_inner : (N,)
        Innermost SD per draw.

    Returns
    -------
    (N, n_inner) pointwise log-likelihood.
    """
    indicator = _sparse_indicator(structure.inner, structure.n_inner)
    a = 1.0 / v
    sum_a = indicator @ a  # (E,)
    t2 = tau_inner[:, None] ** 2
    c = t2 / (1 + t2 * sum_a[None, :])
    sum_ar = (indicator @ (resid * a).T).T  # (N, E)
    sum_ar2 = (indicator @ (resid**2 * a).T).T
    quad = sum_ar2 - c * sum_ar**2
    n_rows = np.asarray(indicator.sum(axis=1)).ravel()
    logdet = (indicator @ np.log(v))[None, :] + np.log1p(t2 * sum_a[None, :])
    loglik: npt.NDArray[np.float64] = -0.5 * (n_rows[None, :] * np.log(2 * np.pi) + logdet + quad)
    return loglik


def sample_inner_effects(
    resid: np.ndarray,
    v: np.ndarray,
    tau_inner: np.ndarray,
    structure: NestedStructure,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw the innermost effects from their conditional posterior given everything else.

    Returns (N, n_inner); precision 1/tau^2 + sum a_i, mean sum(a_i r_i) / precision.
    """
    indicator = _sparse_indicator(structure.inner, structure.n_inner)
    a = 1.0 / v
    sum_a = indicator @ a
    sum_ar = (indicator @ (resid * a).T).T
    with np.errstate(divide="ignore"):
        precision = 1.0 / tau_inner[:, None] ** 2 + sum_a[None, :]
    mean = sum_ar / precision
    effects: npt.NDArray[np.float64] = mean + rng.standard_normal(mean.shape) / np.sqrt(precision)
    return effects


def _aggregators(structure: NestedStructure, k: int) -> tuple[csr_matrix, list[csr_matrix | None]]:
    """Sparse maps rows -> innermost groups and level-m groups -> level-(m-1) groups."""
    from scipy import sparse

    to_inner = sparse.csr_matrix((np.ones(k), (structure.inner, np.arange(k))), shape=(structure.n_inner, k))
    to_parent: list[csr_matrix | None] = [None]  # level 0 has no parent
    for level in range(1, len(structure.levels)):
        n = structure.sizes[level]
        to_parent.append(
            sparse.csr_matrix(
                (np.ones(n), (structure.parent[level], np.arange(n))), shape=(structure.sizes[level - 1], n)
            )
        )
    return to_inner, to_parent


def marginal_sums(
    resid: np.ndarray, v: np.ndarray, taus: np.ndarray, structure: NestedStructure, level: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Effective sums 1'A r and 1'A 1 of each level-``level`` group, with every deeper level
    integrated out (A = inverse covariance of the deeper levels plus sampling error).

    resid (N, k), taus (N, L). Returns (sum_a, sum_ar), each (N, n_level).
    """
    to_inner, to_parent = _aggregators(structure, len(v))
    a = 1.0 / v
    sum_a = np.broadcast_to(to_inner @ a, (resid.shape[0], structure.n_inner))
    sum_ar = (to_inner @ (resid * a).T).T
    for deeper in range(len(structure.levels) - 1, level, -1):
        f = 1.0 / (1 + taus[:, deeper : deeper + 1] ** 2 * sum_a)
        sum_a = (to_parent[deeper] @ (sum_a * f).T).T
        sum_ar = (to_parent[deeper] @ (sum_ar * f).T).T
    return sum_a, sum_ar


def sample_random_effects(
    resid: np.ndarray,
    v: np.ndarray,
    taus: np.ndarray,
    structure: NestedStructure,
    rng: np.random.Generator,
    levels: list[int],
) -> list[np.ndarray]:
    """Draw the effects of ``levels`` (outermost first) from their exact conditional posterior.

    Given beta and the taus (one per draw), each level's effects are Gaussian once every
    deeper level is integrated out; levels are drawn top-down, each given the ones above.
    """
    resid = resid.copy()
    out = []
    for level in levels:
        sum_a, sum_ar = marginal_sums(resid, v, taus, structure, level)
        with np.errstate(divide="ignore"):
            precision = 1.0 / taus[:, level : level + 1] ** 2 + sum_a
        effects = sum_ar / precision + rng.standard_normal(sum_ar.shape) / np.sqrt(precision)
        resid -= effects[:, structure.codes[level]]
        out.append(effects)
    return out
