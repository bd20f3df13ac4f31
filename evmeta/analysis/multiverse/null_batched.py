"""The null test's refits of one specification in all resamples at once.

A resample of :mod:`evmeta.analysis.multiverse.null` is a cluster bootstrap by study:
every drawn study enters with all its comparisons, each copy relabelled as a new study
(and experiment, comparison, control group). So a resample is fully described by how many
times each row of the analysis table is copied, and the models fit it from those counts
without building it:

* ``random_effects``: :func:`evmeta.models.frequentist.batched.batched_meta_analysis`;
* ``three_level``: :func:`evmeta.models.frequentist.batched_multilevel.batched_multilevel_meta_analysis`,
  where the random levels are study_id and levels nested in it that copies relabel
  (experiment_id, comparison_id); with ``shared_control = "keep"`` the sampling covariance
  of the resample consists of copies of the blocks of the table's own (shifted) covariance,
  and a resample in which no drawn study shares a control is fitted with ``vi`` only,
  exactly as the refit loop does.

Anything else returns None and the caller refits resample by resample. The tests
(tests/test_batched.py) require the batched refits to equal the refit loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from evmeta.analysis.multiverse.fit import FitContext, sampling_covariance, shares_controls

#: Random levels whose copies the resampling relabels (so copies are separate groups).
RELABELLED = ("study_id", "experiment_id", "comparison_id")

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
#: Estimate, interval and p-value of every resample (each of length B).
Refits = tuple[Floats, Floats, Floats, Floats]


def batched_null(
    table: pd.DataFrame,
    settings: dict[str, Any],
    context: FitContext,
    draws: np.ndarray,
    codes: np.ndarray,
    n_studies: int,
    shift: float,
) -> np.ndarray | None:
    """``(B, 3)`` refits (estimate, sign of significance, signed z), or None when the
    specification has no batched form.

    Parameters
    ----------
    table : DataFrame
        The specification's analysis table (after filters and outlier rule).
    draws : ndarray (B, n_studies)
        Studies drawn in each resample; ``codes`` maps each row of ``table`` to its study.
    shift : float
        The specification's pooled estimate, subtracted from ``yi`` (the null holds).
    """
    multiplicity = np.stack([np.bincount(draw, minlength=n_studies) for draw in draws])
    counts = multiplicity[:, codes]  # (B, k): copies of each row in each resample
    if settings["model"] == "random_effects":
        fit = _random_effects(table, settings, counts, shift, context.level)
    elif settings["model"] == "three_level":
        fit = _three_level(table, settings, counts, codes, shift, context.level)
    else:
        return None
    if fit is None:
        return None
    estimate, low, high, p = fit
    ok = (counts.sum(axis=1) >= context.min_k) & np.isfinite(estimate) & np.isfinite(low) & np.isfinite(high)
    out = np.full((len(draws), 3), np.nan)
    with np.errstate(invalid="ignore"):
        z = np.where(np.isfinite(p), np.sign(estimate) * stats.norm.isf(p / 2), np.nan)
    significant = np.where(low > 0, 1.0, np.where(high < 0, -1.0, 0.0))
    out[ok] = np.column_stack([estimate, significant, z])[ok]
    return out


def _random_effects(
    table: pd.DataFrame, settings: dict[str, Any], counts: Ints, shift: float, level: float
) -> Refits | None:
    from evmeta.models.frequentist.batched import BATCHED_METHODS, batched_meta_analysis

    if str(settings["frequentist.method"]).upper() not in BATCHED_METHODS:
        return None
    fit = batched_meta_analysis(
        table["yi"].to_numpy(dtype=float) - shift,
        table["vi"].to_numpy(dtype=float),
        counts=counts,
        method=settings["frequentist.method"],
        test=settings["frequentist.test"],
        level=level,
    )
    return fit.estimate, fit.ci_low[:, 0], fit.ci_high[:, 0], fit.pvalue[:, 0]


def _three_level(
    table: pd.DataFrame, settings: dict[str, Any], counts: Ints, codes: Ints, shift: float, level: float
) -> Refits | None:
    """Resamples with and without a drawn study that shares a control, fitted apart."""
    from evmeta.models.base.nesting import nested_structure

    random = list(settings["frequentist.multilevel"])
    if not random or random[0] != "study_id" or any(level not in RELABELLED for level in random):
        return None
    shifted = table.assign(yi=table["yi"].to_numpy(dtype=float) - shift)
    sharing = np.zeros(len(counts), dtype=bool)
    V = None
    if shares_controls(table, settings):
        controls = table["control_group_id"].astype(str)
        if (controls.groupby(codes).nunique().sum()) != controls.nunique():
            return None  # a control shared across studies: copies would not be separate
        per_study = controls.duplicated(keep=False).groupby(codes).any()
        sharing_rows = per_study.reindex(codes).to_numpy()
        sharing = np.any((counts > 0) & sharing_rows[None, :], axis=1)
        V = sampling_covariance(shifted)  # the refit loop's V is of the shifted effect sizes
    estimate, low, high, p = (np.full(len(counts), np.nan) for _ in range(4))
    level_codes = nested_structure(table, random).codes
    for group, covariance in ((~sharing, None), (sharing, V)):
        if group.any():
            part = _fit_three_level(shifted, settings, counts[group], level_codes, covariance, codes, level)
            estimate[group], low[group], high[group], p[group] = part
    return estimate, low, high, p


def _fit_three_level(
    shifted: pd.DataFrame,
    settings: dict[str, Any],
    counts: Ints,
    level_codes: list[np.ndarray],
    V: Floats | None,
    codes: Ints,
    level: float,
) -> list[Floats]:
    from evmeta.models.frequentist.batched_multilevel import batched_multilevel_meta_analysis

    failed = np.zeros(len(counts), dtype=bool)
    if V is not None:  # multilevel_meta_analysis refuses a V that is not positive definite
        bad = [
            s for s in np.unique(codes) if np.any(np.linalg.eigvalsh(V[np.ix_(codes == s, codes == s)]) <= 0)
        ]
        failed = np.any((counts > 0) & np.isin(codes, bad)[None, :], axis=1)
    fit = batched_multilevel_meta_analysis(
        shifted["yi"].to_numpy(dtype=float),
        shifted["vi"].to_numpy(dtype=float),
        level_codes,
        counts,
        V=V,
        method=settings["frequentist.method"],
        test="t" if settings["frequentist.test"] == "knha" else "z",
        level=level,
    )
    values = [fit.estimate, fit.ci_low[:, 0], fit.ci_high[:, 0], fit.pvalue[:, 0]]
    return [np.where(failed, np.nan, v) for v in values]


__all__ = ["RELABELLED", "batched_null"]
