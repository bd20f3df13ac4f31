"""Nested comparisons: correlated effects of one cohort or study combined into one row.

The CAMARADES "nested comparison" (and metafor ``aggregate.escalc``): several outcomes or
time points measured on the same animals are combined into one effect per group, so that
a univariate model counts each cohort once. Within a group with sampling covariance V
(by default compound symmetry, ``V_ij = rho sqrt(vi_i vi_j)``, metafor's ``struct = "CS"``;
or any V, e.g. from :func:`evmeta.harmonize.sampling_covariance`), the combined effect is
the generalized least squares mean and its variance

    yi = 1' V^-1 y / (1' V^-1 1),        vi = 1 / (1' V^-1 1),

or, with ``weighted=False``, the plain mean with variance 1' V 1 / k^2.

Nothing typed is lost without a word: columns constant within every group are kept,
identifier columns that vary are joined (``"c1 + c2"``), group sizes take the largest n,
and every other column that varies within a group is dropped and named in
``AggregatedComparisons.dropped_columns`` (and per row in ``varied_columns``). Rows that
cannot be combined (no group key, no effect size, mixed measures, a covariance matrix that
is not positive definite) are returned in ``exclusions`` with a reason.

References
----------
Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009). Introduction to Meta-Analysis,
ch. 24 (multiple outcomes or time-points within a study). Wiley.
Vesterinen HM et al. (2014). Meta-analysis of data from animal studies: a practical guide.
J Neurosci Methods 221:92-102 (nested comparisons).
Viechtbauer W. metafor ``aggregate.escalc`` help page (version 3.8-1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from evmeta.errors import InputError

Rule = Literal["join", "max", "drop"]
#: Columns combined by rule when they vary within a group (others: kept when constant,
#: else dropped and listed). Identifiers are joined so every row stays traceable; group
#: sizes take the largest n (the same animals counted once, attrition aside).
DEFAULT_RULES: dict[str, Rule] = {
    **dict.fromkeys(
        [
            "comparison_id",
            "outcome",
            "timepoint_label",
            "label",
            "treat_outcome_id",
            "control_outcome_id",
            "arm_id",
            "control_arm_id",
            "control_group_id",
            "unit",
            "domain",
        ],
        "join",
    ),
    **dict.fromkeys(["n_treat", "n_control", "n_control_reported"], "max"),
}
JOIN = " + "
#: Columns named in the note on varied columns (all are in ``dropped_columns``).
NOTE_COLUMNS = 12
#: Smallest eigenvalue, relative to the largest, of a group's V accepted as positive definite.
PD_TOLERANCE = 1e-10


@dataclass(frozen=True, eq=False)
class AggregatedComparisons:
    """Comparisons combined within groups (:func:`aggregate_comparisons`).

    Attributes
    ----------
    table : DataFrame
        One row per group: the ``by`` columns, ``yi``, ``vi`` (and ``sei`` when the input
        had it), every column constant within every group, the joined and largest-n
        columns, ``k_combined`` (rows combined) and ``varied_columns`` (columns that
        varied in this group, ``", "``-separated).
    exclusions : DataFrame
        Input rows not combined, with all their columns and a ``reason``.
    by : tuple of str
    rho : float or None
        Assumed within-group correlation (None when ``V`` was given).
    weighted : bool
    dropped_columns : dict
        Column -> number of groups in which it varied (dropped from ``table``, or missing
        in those groups with ``varied="missing"``).
    notes : tuple of str
    """

    table: pd.DataFrame
    exclusions: pd.DataFrame
    by: tuple[str, ...]
    rho: float | None
    weighted: bool = True
    dropped_columns: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.table)

    def to_frame(self) -> pd.DataFrame:
        """The combined table (a copy)."""
        return self.table.copy()

    def summary(self) -> str:
        """Rows in, groups out, what was dropped and excluded."""
        combined = int(self.table["k_combined"].sum()) if len(self.table) else 0
        how = f"rho = {self.rho:g}" if self.rho is not None else "the given V"
        lines = [
            f"{combined} rows combined into {len(self.table)} by {', '.join(self.by)} ({how}); "
            f"{len(self.exclusions)} rows excluded"
        ]
        lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)


def aggregate_comparisons(
    table: pd.DataFrame,
    by: str | Sequence[str],
    *,
    rho: float | None = None,
    V: Any = None,
    weighted: bool = True,
    yi: str = "yi",
    vi: str = "vi",
    rules: Mapping[str, Rule] | None = None,
    varied: Literal["drop", "missing"] = "drop",
) -> AggregatedComparisons:
    """Combine the correlated comparisons of each group into one (metafor ``aggregate``).

    Parameters
    ----------
    table : DataFrame
        Comparison rows (:func:`evmeta.build_comparisons`) or any table of ``yi``, ``vi``.
    by : str or list of str
        Columns whose combination is one group: the cohort (``["study_id",
        "experiment_id"]``), the treated arm (``[..., "arm_id"]``) or the study.
    rho : float, optional
        Assumed correlation of the sampling errors within a group, in (-1, 1): compound
        symmetry (metafor's default ``struct = "CS"``). Give ``rho`` or ``V``.
    V : array-like (k x k), optional
        The sampling covariance of the rows (e.g. :func:`sampling_covariance` with rho
        between outcomes and phi between time points, or reported covariances); it must
        not correlate rows of different groups.
    weighted : bool
        Generalized least squares (inverse-variance with the full V, default) or the plain
        mean (variance 1' V 1 / k^2).
    yi, vi : str
        Columns of the effect sizes and their sampling variances.
    rules : mapping, optional
        Column -> ``"join"`` (distinct values joined by ``" + "``), ``"max"`` or ``"drop"``
        for columns that vary within a group; merged over :data:`DEFAULT_RULES`.
    varied : {"drop", "missing"}
        Any other column that varies within some group: dropped from the table (default),
        or kept with a missing value in the groups where it varied (for code that needs
        the column, as ``evmeta run`` does). Either way it is listed in
        ``dropped_columns``, ``notes`` and each row's ``varied_columns``.

    Returns
    -------
    AggregatedComparisons
        ``.table`` one row per group (in order of first appearance), ``.exclusions``,
        ``.dropped_columns``, ``.notes``.

    Raises
    ------
    InputError
        Missing columns, neither or both of ``rho`` and ``V``, ``rho`` outside (-1, 1)
        (``rho = 1`` makes V singular: the GLS mean is undefined), or a ``V`` of the wrong
        shape, not symmetric, or correlating different groups.

    Notes
    -----
    Equals metafor 3.8 ``aggregate(escalc, cluster, rho)`` / ``aggregate(..., V = V)`` /
    ``weighted = FALSE`` to 1e-12 on dat.ishak2007, dat.berkey1998 and dat.assink2016
    (tests/test_aggregate.py). A group of one row is kept as it is.

    Examples
    --------
    >>> t = pd.DataFrame({"experiment_id": ["e1", "e1", "e2"], "outcome": ["a", "b", "a"],
    ...                   "yi": [1.0, 0.6, 0.2], "vi": [0.1, 0.1, 0.2]})
    >>> out = aggregate_comparisons(t, by="experiment_id", rho=0.5)
    >>> out.table[["experiment_id", "outcome", "yi", "vi", "k_combined"]].round(3)
      experiment_id outcome   yi     vi  k_combined
    0            e1   a + b  0.8  0.075           2
    1            e2       a  0.2  0.200           1
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in (*by, yi, vi) if c not in table.columns]
    if missing or not by:
        raise InputError(
            f"aggregate_comparisons: column(s) {', '.join(missing) or '(by is empty)'} not in the table; "
            f"columns: {', '.join(map(str, table.columns))}"
        )
    rho = _check_rho(rho, V)
    frame = table.reset_index(drop=True)
    matrix = None if V is None else _check_V(V, len(frame))
    usable, excluded = _usable_rows(frame, by, yi, vi)
    positions = np.flatnonzero(usable)  # groupby's indices are positions within the usable rows
    groups = [
        positions[i] for i in frame.iloc[positions].groupby(by, sort=False, dropna=False).indices.values()
    ]
    kept, estimates, refused = _combine_groups(frame, groups, rho, matrix, weighted, yi, vi)
    excluded.extend(refused)
    if matrix is not None:
        _refuse_cross_group(matrix, kept)
    if varied not in ("drop", "missing"):
        raise InputError(f"aggregate_comparisons: varied must be 'drop' or 'missing', got {varied!r}")
    merged = {**DEFAULT_RULES, **(rules or {})}
    out, dropped = _group_columns(frame, kept, by, yi, vi, merged, varied == "missing")
    out[yi], out[vi] = estimates[:, 0], estimates[:, 1]
    if "sei" in frame.columns:
        out["sei"] = np.sqrt(out[vi])
    notes = _notes(kept, dropped, rho, varied)
    return AggregatedComparisons(
        out, _exclusion_frame(frame, excluded), tuple(by), rho, weighted, dropped, tuple(notes)
    )


def _check_rho(rho: float | None, V: Any) -> float | None:
    if (rho is None) == (V is None):
        raise InputError(
            "aggregate_comparisons: give rho (an assumed within-group correlation, e.g. 0.5) or V "
            "(the sampling covariance matrix), not " + ("neither" if rho is None else "both")
        )
    if rho is None:
        return None
    rho = float(rho)
    if rho >= 1.0:
        raise InputError(
            f"aggregate_comparisons: rho = {rho:g} makes the comparisons of a group perfectly correlated: "
            "their covariance matrix is singular and the combined estimate undefined; use rho < 1 "
            "(e.g. 0.9 for outcomes that move nearly together)"
        )
    if not rho > -1.0:
        raise InputError(f"aggregate_comparisons: rho must be a correlation in (-1, 1), got {rho:g}")
    return rho


def _check_V(V: Any, k: int) -> np.ndarray:
    matrix = np.asarray(V.toarray() if hasattr(V, "toarray") else V, dtype=float)
    if matrix.shape != (k, k):
        raise InputError(
            f"aggregate_comparisons: V must be {k} x {k} (one row per table row), got {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)) or not np.allclose(matrix, matrix.T):
        raise InputError("aggregate_comparisons: V must be finite and symmetric")
    return matrix


def _usable_rows(frame: pd.DataFrame, by: list[str], yi: str, vi: str) -> tuple[np.ndarray, list]:
    """Rows with a group key and a usable effect size; the others with their reason."""
    excluded = []
    no_key = frame[by].isna().any(axis=1).to_numpy()
    for column in by:
        rows = np.flatnonzero(frame[column].isna().to_numpy())
        if len(rows):
            excluded.append((rows, f"not combined: no {column} to group by"))
    y = pd.to_numeric(frame[yi], errors="coerce").to_numpy(float)
    v = pd.to_numeric(frame[vi], errors="coerce").to_numpy(float)
    no_effect = ~no_key & ~np.isfinite(y)
    bad_variance = ~no_key & ~no_effect & ~(np.isfinite(v) & (v > 0))
    excluded.append((np.flatnonzero(no_effect), f"not combined: no effect size ({yi})"))
    excluded.append((np.flatnonzero(bad_variance), f"not combined: sampling variance ({vi}) not positive"))
    return ~(no_key | no_effect | bad_variance), excluded


def _combine_groups(frame, groups, rho, matrix, weighted, yi, vi):
    """GLS (or plain) mean and variance of each group; groups that cannot be combined."""
    y = frame[yi].to_numpy(float)
    v = frame[vi].to_numpy(float)
    measures = frame["measure"].astype(str).to_numpy() if "measure" in frame.columns else None
    kept, estimates, refused = [], [], []
    for members in groups:
        if measures is not None and len(set(measures[members])) > 1:
            found = ", ".join(sorted(set(measures[members])))
            refused.append((members, f"not combined: the group mixes effect measures ({found})"))
            continue
        if matrix is not None:
            block = matrix[np.ix_(members, members)]
        else:
            sd = np.sqrt(v[members])
            block = rho * np.outer(sd, sd)
            np.fill_diagonal(block, v[members])
        estimate = _combine(y[members], block, weighted)
        if estimate is None:
            refused.append(
                (members, "not combined: the group's sampling covariance matrix is not positive definite")
            )
            continue
        kept.append(members)
        estimates.append(estimate)
    return kept, np.array(estimates, dtype=float).reshape(-1, 2), refused


def _combine(y: np.ndarray, block: np.ndarray, weighted: bool) -> tuple[float, float] | None:
    """(estimate, variance) of one group, or None when its V is not positive definite."""
    eigen = np.linalg.eigvalsh(block)
    if not eigen[0] > PD_TOLERANCE * eigen[-1]:
        return None
    k = len(y)
    if k == 1:  # a group of one is that comparison, bit for bit
        return float(y[0]), float(block[0, 0])
    if not weighted:
        return float(y.mean()), float(block.sum() / k**2)
    chol = np.linalg.cholesky(block)
    ones = np.linalg.solve(chol, np.ones(k))
    whitened = np.linalg.solve(chol, y)
    information = float(ones @ ones)
    return float(ones @ whitened) / information, 1.0 / information


def _refuse_cross_group(matrix: np.ndarray, kept: list[np.ndarray]) -> None:
    """Covariances between groups would be lost in the combined (independent) rows."""
    labels = np.full(len(matrix), -1)
    for code, members in enumerate(kept):
        labels[members] = code
    inside = labels >= 0
    sub, codes = matrix[np.ix_(inside, inside)], labels[inside]
    if np.any(sub[codes[:, None] != codes[None, :]] != 0):
        raise InputError(
            "aggregate_comparisons: V has covariances between rows of different groups; the combined rows "
            "would be treated as independent and those covariances lost. Group by the cluster V was built "
            "for (or a coarser one)"
        )


def _group_columns(frame, kept, by, yi, vi, rules, keep_missing) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per kept group: constant columns, joined or largest-n columns; the dropped."""
    rows = np.concatenate(kept) if kept else np.array([], dtype=int)
    codes = np.repeat(np.arange(len(kept)), [len(m) for m in kept])
    sub = frame.iloc[rows].reset_index(drop=True)
    grouped = sub.groupby(codes, sort=True)
    first = grouped.nth(0).reset_index(drop=True) if len(sub) else sub.iloc[:0]
    others = [c for c in frame.columns if c not in {*by, yi, vi, "sei"}]
    varies = grouped[others].nunique(dropna=False).gt(1) if len(sub) else pd.DataFrame(columns=others)
    out = first[[*by]].copy()
    dropped: dict[str, int] = {}
    for column in frame.columns:
        if column in by:
            continue
        if column in {yi, vi, "sei"}:
            out[column] = np.nan  # filled by the caller
            continue
        n_varied = int(varies[column].sum()) if len(sub) else 0
        rule = rules.get(column, "drop")
        if n_varied == 0:
            out[column] = first[column].to_numpy()
        elif rule == "join":
            out[column] = grouped[column].agg(_joined).to_numpy()
        elif rule == "max":
            out[column] = grouped[column].max().to_numpy()
        else:
            dropped[column] = n_varied
            if keep_missing:  # the value where the group agrees, missing where it varied
                out[column] = first[column].where(~varies[column].to_numpy()).to_numpy()
    out["k_combined"] = np.array([len(m) for m in kept], dtype=int)
    out["varied_columns"] = (
        [", ".join(varies.columns[varies.iloc[i].to_numpy(bool)]) for i in range(len(kept))]
        if len(sub)
        else []
    )
    return out, dropped


def _joined(values: pd.Series) -> str:
    seen = [str(v) for v in pd.unique(values.dropna())]
    return JOIN.join(seen)


def _notes(kept: list[np.ndarray], dropped: dict[str, int], rho: float | None, varied: str) -> list[str]:
    notes = []
    single = sum(len(m) == 1 for m in kept)
    if kept and single == len(kept):
        notes.append("every group has one comparison: nothing was combined")
    elif single:
        notes.append(f"{single} of {len(kept)} groups have one comparison, kept as they are")
    if dropped:
        notes.append(
            "columns that varied within a group were "
            + ("dropped: " if varied == "drop" else "left missing in those groups: ")
            + ", ".join(
                f"{c} (in {n} group{'s' if n > 1 else ''})" for c, n in list(dropped.items())[:NOTE_COLUMNS]
            )
            + (
                f" and {len(dropped) - NOTE_COLUMNS} more (see dropped_columns)"
                if len(dropped) > NOTE_COLUMNS
                else ""
            )
        )
    if rho is not None and rho < 0:
        notes.append(
            f"rho = {rho:g} is negative: effects of one group are assumed to move in opposite directions"
        )
    return notes


def _exclusion_frame(frame: pd.DataFrame, excluded: list) -> pd.DataFrame:
    parts = [frame.iloc[rows].assign(reason=reason) for rows, reason in excluded if len(rows)]
    if not parts:
        return frame.iloc[:0].assign(reason=pd.Series(dtype=str))
    return pd.concat(parts).sort_index(kind="stable")
