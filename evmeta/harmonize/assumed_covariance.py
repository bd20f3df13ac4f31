"""Sampling covariance of effects measured on the same animals, from assumed correlations.

A cohort of animals measured on several outcomes, or on one outcome at several time points,
gives effect sizes whose sampling errors are correlated; papers do not report those
correlations, so a review assumes them (metafor ``vcalc``). :func:`sampling_covariance`
builds the covariance matrix V, block diagonal by cluster, that
``multilevel_meta_analysis(..., V=V)``, ``bayesian_meta_analysis(..., V=V)`` and
:func:`evmeta.harmonize.aggregate_comparisons` take.

Within one cluster (and subgroup), the correlation of the sampling errors of rows i and j is

    r_ij = c_ij * phi ** |t_i - t_j|,

    c_ij = rho_between  if the rows have different ``outcome`` values (metafor's ``type``),
           rho_within   else if they have different ``obs`` values,
           1            else,

and cov_ij = r_ij sqrt(vi_i vi_j). With only ``outcome`` or only ``obs`` given, ``rho`` is a
single correlation; with both it is ``(rho_within, rho_between)``, as in metafor. The time
factor is 1 without ``time``. Rows in different clusters, or in different subgroups of one
cluster (independent animals), are uncorrelated. These are metafor 3.8's documented vcalc
rules (checked against it: tests/reference/aggregate_vcalc.R).

Two rows of one cluster that agree on every given factor get correlation 1 and make V
singular; that is refused with the rows named, since it means the factors do not tell the
rows apart (give ``obs``, or ``subgroup`` for independent arms).

References
----------
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw
36(3):1-48; metafor ``vcalc`` help page (version 3.8-1).
Pustejovsky JE, Tipton E (2022). Meta-analysis with robust variance estimation: expanding
the range of working models. Prev Sci 23:425-438 (assumed-correlation working models).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import InputError

#: Smallest eigenvalue, relative to the largest, of a cluster's V accepted as positive definite.
PD_TOLERANCE = 1e-10


def _column(table: pd.DataFrame, name: str, role: str) -> pd.Series:
    if name not in table.columns:
        raise InputError(
            f"{role}={name!r} is not a column of the table; columns: {', '.join(map(str, table.columns))}"
        )
    values = table[name]
    missing = values.isna().to_numpy()
    if missing.any():
        rows = ", ".join(str(i) for i in np.flatnonzero(missing)[:8])
        raise InputError(f"column {name!r} ({role}) has no value in row(s) {rows}")
    return values


def _correlations(rho: float | Sequence[float] | None, obs: bool, outcome: bool) -> tuple[float, float]:
    """(rho_within, rho_between) from ``rho`` as the given factors need it."""
    if not obs and not outcome:
        return 1.0, 1.0
    if rho is None:
        raise InputError("rho is needed when obs or outcome is given (the correlation of different effects)")
    values = [float(v) for v in np.atleast_1d(np.asarray(rho, dtype=float))]
    if obs and outcome:
        if len(values) != 2:
            raise InputError(f"with both obs and outcome, rho is (within, between), got {rho!r}")
    elif len(values) != 1:
        raise InputError(
            f"rho is one correlation when only {'obs' if obs else 'outcome'} is given, got {rho!r}"
        )
    for value in values:
        if not -1.0 < value <= 1.0 or not np.isfinite(value):
            raise InputError(f"rho must be a correlation in (-1, 1], got {value!r}")
    within = values[0] if obs else 1.0
    between = values[-1]
    return within, between


def _check_phi(phi: float | None, time: bool) -> float | None:
    if not time:
        return None
    if phi is None:
        raise InputError("phi is needed when time is given (the correlation of effects one time unit apart)")
    phi = float(phi)
    if not 0.0 <= phi <= 1.0:
        raise InputError(f"phi must be an autocorrelation in [0, 1], got {phi!r}")
    return phi


def _codes(table: pd.DataFrame, name: str | None, role: str) -> np.ndarray:
    """Integer codes of the levels of column ``name`` (all 0 without one)."""
    if name is None:
        return np.zeros(len(table), dtype=int)
    return pd.factorize(_column(table, name, role).astype(str))[0]


def sampling_covariance(
    table: pd.DataFrame,
    cluster: str,
    *,
    vi: str = "vi",
    subgroup: str | None = None,
    obs: str | None = None,
    outcome: str | None = None,
    time: str | None = None,
    rho: float | Sequence[float] | None = None,
    phi: float | None = None,
) -> np.ndarray:
    """Sampling covariance matrix V (k x k) from assumed correlations (metafor ``vcalc``).

    Parameters
    ----------
    table : DataFrame
        One row per effect size (a comparison table).
    cluster : str
        Column of the cluster whose rows may be correlated: the animals measured
        (``experiment_id``) or the study (``study_id``). Rows of different clusters are
        independent.
    vi : str
        Column of the sampling variances (the diagonal of V).
    subgroup : str, optional
        Column of independent subgroups within a cluster (different animals, e.g.
        ``arm_id``): rows of different subgroups are uncorrelated.
    obs : str, optional
        Column telling apart several effects of the same outcome (different scales or
        measurements of one construct): correlation ``rho`` (``rho[0]`` with ``outcome``).
    outcome : str, optional
        Column of the outcome (metafor's ``type``): effects on different outcomes of the
        same animals get correlation ``rho`` (``rho[1]`` with ``obs``).
    time : str, optional
        Column of numeric time points (any unit; ``phi`` is per unit of this column):
        effects t time units apart get the factor ``phi ** t``.
    rho : float or (float, float), optional
        Correlation between different effects measured at the same time; a pair
        ``(within, between)`` when both ``obs`` and ``outcome`` are given.
    phi : float, optional
        Autocorrelation of effects one time unit apart, in [0, 1].

    Returns
    -------
    ndarray
        Symmetric positive definite k x k matrix in the row order of ``table``, ``vi`` on
        the diagonal, block diagonal by cluster (and subgroup).

    Raises
    ------
    InputError
        A missing column or value, a ``vi`` that is not positive, ``rho`` or ``phi`` missing
        or out of range, or a cluster whose V is not positive definite (two rows the
        factors do not tell apart, or correlations that contradict each other), naming
        the cluster and rows.

    Notes
    -----
    Equals metafor 3.8 ``vcalc(vi, cluster, subgroup, obs, type = outcome, time1 = time,
    rho, phi)`` (tests/test_assumed_covariance.py, to 1e-12 on dat.ishak2007, dat.berkey1998
    and dat.assink2016). ``grp1``/``grp2`` (a shared control) is
    :func:`evmeta.harmonize.shared_control_covariance`.

    Examples
    --------
    >>> t = pd.DataFrame({"experiment_id": ["e1"] * 3, "outcome": ["a", "a", "b"],
    ...                   "timepoint": [7.0, 14.0, 7.0], "vi": [0.2, 0.2, 0.3]})
    >>> V = sampling_covariance(t, "experiment_id", outcome="outcome", time="timepoint",
    ...                         rho=0.5, phi=0.95)
    >>> round(float(V[0, 1] / 0.2), 4)  # same outcome, 7 days apart: 0.95 ** 7
    0.6983
    """
    variances = _column(table, vi, "vi").astype(float).to_numpy()
    bad = ~(np.isfinite(variances) & (variances > 0))
    if bad.any():
        raise InputError(
            f"vi must be positive and finite; row(s) {', '.join(map(str, np.flatnonzero(bad)[:8]))} are not"
        )
    clusters = _column(table, cluster, "cluster")
    groups = pd.factorize(
        clusters.astype(str) + ("\x00" + _column(table, subgroup, "subgroup").astype(str) if subgroup else "")
    )[0]
    within, between = _correlations(rho, obs is not None, outcome is not None)
    phi = _check_phi(phi, time is not None)
    obs_codes = _codes(table, obs, "obs")
    outcome_codes = _codes(table, outcome, "outcome")
    times = (
        None if time is None else pd.to_numeric(_column(table, time, "time"), errors="coerce").to_numpy(float)
    )
    if times is not None and not np.all(np.isfinite(times)):
        raise InputError(
            f"time column {time!r} must hold numbers; row(s) {np.flatnonzero(~np.isfinite(times))[:8]} do not"
        )
    V = np.diag(variances)
    order = np.argsort(groups, kind="stable")
    for members in np.split(order, np.flatnonzero(np.diff(groups[order])) + 1):
        if len(members) < 2:
            continue
        R = np.where(
            outcome_codes[members, None] != outcome_codes[None, members],
            between,
            np.where(obs_codes[members, None] != obs_codes[None, members], within, 1.0),
        )
        if times is not None:
            R = R * phi ** np.abs(times[members, None] - times[None, members])
        np.fill_diagonal(R, 1.0)
        block = R * np.sqrt(np.outer(variances[members], variances[members]))
        _check_block(block, R, table.index[members], clusters.iloc[members[0]], cluster)
        V[np.ix_(members, members)] = block
    return V


def _check_block(block: np.ndarray, R: np.ndarray, labels: pd.Index, name: Any, cluster: str) -> None:
    """A cluster's V must be positive definite; say which rows make it singular."""
    eigen = np.linalg.eigvalsh(block)
    if eigen[0] > PD_TOLERANCE * eigen[-1]:
        return
    ones = np.argwhere(np.triu(np.isclose(R, 1.0), 1))
    if len(ones):
        pairs = "; ".join(f"rows {labels[i]} and {labels[j]}" for i, j in ones[:4])
        raise InputError(
            f"{cluster} {name!r}: {pairs} get correlation 1 (the same outcome, obs and time, or rho = 1), "
            "so their covariance matrix is singular; tell them apart with obs=, give independent arms "
            "as subgroup=, or use a correlation below 1"
        )
    raise InputError(
        f"{cluster} {name!r}: the assumed correlations give a covariance matrix that is not positive "
        f"definite (smallest eigenvalue {eigen[0]:.3g}); choose rho and phi that are consistent"
    )
