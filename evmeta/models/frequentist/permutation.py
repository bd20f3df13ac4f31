"""Permutation tests of a random-effects model, with every permuted refit batched.

As metafor's ``permutest``: a model without moderators is refitted with the signs of the
effect sizes permuted (Follmann & Proschan 1999); a meta-regression with the rows of the
design matrix permuted (Higgins & Thompson 2004). The two-sided p-value of a coefficient
is the share of permutations whose |test statistic| is at least the observed one, the
omnibus test's the share whose QM is at least the observed QM. The exact test goes
through all 2^k sign patterns or all distinct row permutations (rows of X that are equal
give the same permutation); otherwise ``permutations`` random ones are drawn, the first
being the observed data (so no p-value is 0). All refits are one call of
:func:`evmeta.models.frequentist.batched.batched_meta_analysis`.

References
----------
Follmann DA, Proschan MA (1999). Biometrics 55:1287-1292.
Higgins JPT, Thompson SG (2004). Stat Med 23:1663-1682.
Viechtbauer W, Lopez-Lopez JA, Sanchez-Meca J, Marin-Martinez F (2015). Psychol Methods
20:360-374.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import ModelError
from evmeta.models.frequentist.batched import BATCHED_METHODS, batched_meta_analysis

#: Exact tests with more permutations than this are refused (use random permutations).
MAX_EXACT = 2_000_000
#: Ties: a permuted statistic within this of the observed one counts as "as extreme"
#: (rounding of equal statistics computed in a different order, ~1e-14, must not decide).
COMPTOL = 1.5e-8


@dataclass(frozen=True)
class PermutationTest:
    """``coefficients``: estimate, stat, pvalue (parametric) and pvalue_perm per coefficient;
    ``qm``/``qm_pvalue_perm``: the omnibus test of the moderators (NaN without moderators);
    ``permutations``: refits used (failed refits are left out, ``failed`` counts them)."""

    coefficients: pd.DataFrame
    qm: float
    qm_pvalue_perm: float
    permutations: int
    exact: bool
    failed: int


def permutation_test(
    result: Any, permutations: int = 1000, *, exact: bool = False, seed: Any = None
) -> PermutationTest:
    """Permutation p-values of a fitted ``meta_analysis`` result.

    Parameters
    ----------
    result : MetaResult
        A random-effects model or meta-regression (tau^2 estimator with a batched form:
        EE, DL, HE, PM, EB, ML, REML; test z or knha).
    permutations : int
        Random permutations (the observed data included) when not exact; an exact test is
        done instead when it needs no more refits than this.
    exact : bool
        Go through every sign pattern / distinct row permutation.
    seed : int or numpy Generator, optional
        Seed of the random permutations.

    Raises
    ------
    ModelError
        An estimator or test without a batched form, fewer than 2 permutations, or an
        exact test with more than MAX_EXACT permutations.
    """
    if result.method not in BATCHED_METHODS or result.test not in ("z", "knha"):
        raise ModelError(
            f"permutation tests support the methods {', '.join(BATCHED_METHODS)} and tests z, knha"
        )
    if permutations < 2:
        raise ModelError(f"permutations must be at least 2, got {permutations}")
    model = result.model
    y, v, X = model.yi, model.vi, model.X
    rng = np.random.default_rng(seed)
    settings = dict(method=result.method, test=result.test, level=result.level)
    if model.intercept_only:
        exact = exact or 2**model.k <= permutations
        signs = _all_signs(model.k) if exact else _random_signs(model.k, permutations, rng)
        fit = batched_meta_analysis(signs * y, v, X, **settings)
    else:
        orders = _distinct_orders(X, exact, permutations, rng)
        exact = orders is not None
        if orders is None:
            orders = np.vstack(
                [np.arange(model.k), np.argsort(rng.random((permutations - 1, model.k)), axis=1)]
            )
        fit = batched_meta_analysis(y, v, X[orders], **settings)
    return _summary(result, fit, exact)


def _all_signs(k: int) -> np.ndarray:
    if 2**k > MAX_EXACT:
        raise ModelError(
            f"an exact test needs 2^{k} sign patterns (over {MAX_EXACT:,}); use random permutations"
        )
    codes = np.arange(2**k)[:, None] >> np.arange(k)[None, :] & 1
    return 1.0 - 2.0 * codes  # row 0: the observed signs


def _random_signs(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    signs = rng.choice([-1.0, 1.0], size=(n, k))
    signs[0] = 1.0
    return signs


def _distinct_orders(X: np.ndarray, exact: bool, n: int, rng) -> np.ndarray | None:
    """Every distinct permutation of the rows of X (first: the identity), or None when a
    random test is wanted (not ``exact`` and more distinct permutations than ``n``)."""
    _, labels = np.unique(X, axis=0, return_inverse=True)
    labels = labels.ravel()
    count = math.factorial(len(labels)) // math.prod(math.factorial(c) for c in np.bincount(labels))
    if not exact and count > n:
        return None
    if count > MAX_EXACT:
        raise ModelError(
            f"an exact test needs {count:,} permutations (over {MAX_EXACT:,}); use random permutations"
        )
    rows_of = {label: list(np.flatnonzero(labels == label)) for label in np.unique(labels)}
    out = []
    current = np.sort(labels)
    while True:
        out.append(current.copy())
        if not _next_permutation(current):
            break
    # Map label sequences to row orders: the j-th occurrence of a label takes that label's j-th row.
    orders = np.empty((len(out), len(labels)), dtype=np.int64)
    for i, sequence in enumerate(out):
        used = {label: 0 for label in rows_of}
        for position, label in enumerate(sequence):
            orders[i, position] = rows_of[label][used[label]]
            used[label] += 1
    identity = np.flatnonzero((np.asarray(out) == labels).all(axis=1))[0]
    return np.vstack([np.arange(len(labels)), np.delete(orders, identity, axis=0)])


def _next_permutation(a: np.ndarray) -> bool:
    """Next lexicographic permutation of ``a`` in place (distinct ones only); False at the last."""
    i = len(a) - 2
    while i >= 0 and a[i] >= a[i + 1]:
        i -= 1
    if i < 0:
        return False
    j = len(a) - 1
    while a[j] <= a[i]:
        j -= 1
    a[i], a[j] = a[j], a[i]
    a[i + 1 :] = a[i + 1 :][::-1].copy()
    return True


def _summary(result: Any, fit, exact: bool) -> PermutationTest:
    valid = fit.valid
    observed = result.coefficients
    stat = fit.stat[valid]
    p_perm = np.mean(np.abs(stat) >= np.abs(observed["stat"].to_numpy())[None, :] - COMPTOL, axis=0)
    table = observed[["estimate", "stat", "pvalue"]].assign(pvalue_perm=p_perm)
    qm, qm_p = np.nan, np.nan
    if not result.model.intercept_only:
        tested = result.model.moderator_columns
        b = fit.beta[valid][:, tested]
        vb = fit.vb[valid][:, tested][:, :, tested]
        qm_perm = np.einsum("ni,ni->n", b, np.linalg.solve(vb, b[:, :, None])[:, :, 0])
        if result.test == "knha":
            qm_perm = qm_perm / len(tested)
        qm = float(result.qm)
        qm_p = float(np.mean(qm_perm >= qm - COMPTOL))
    return PermutationTest(table, qm, qm_p, int(valid.sum()), bool(exact), int((~valid).sum()))


__all__ = ["MAX_EXACT", "PermutationTest", "permutation_test"]
