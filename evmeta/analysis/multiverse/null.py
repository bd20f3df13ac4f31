"""The inferential specification-curve test (Simonsohn, Simmons & Nelson 2020, section 4).

Under-the-null resampling: each specification's comparisons are shifted by its own pooled
estimate (``yi - estimate``), so the null of no effect holds exactly in every
specification while heterogeneity and the dependence between specifications are kept. In
resample ``b`` the same studies are drawn with replacement for every specification (a
cluster bootstrap by study, so specifications built from the same studies stay dependent as
in the data), every specification is refitted, and the curve's summary statistics are
recomputed, separately for the specifications of each effect measure used (their estimates
are on different scales). The p-value of each statistic is the share of resampled curves at least as
extreme as the observed one, ``(1 + count) / (1 + B)``.

The studies drawn in each resample come from ``SeedSequence(seed, spawn_key=(b,))``, and a
Bayesian refit's seed from the specification's hash and ``b``: the result does not depend
on how the work is split. The outlier rule is not re-applied in resamples (each
specification resamples the comparisons it kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evmeta.analysis.multiverse.fit import BuiltTable, FitContext, checked_fit, derived_seed, prepare


def study_draws(studies: list[str], resamples: int, seed: int) -> np.ndarray:
    """Indices of the studies drawn with replacement in each resample (``resamples x n``)."""
    n = len(studies)
    rows = [
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b,))).integers(0, n, size=n)
        for b in range(resamples)
    ]
    return np.array(rows, dtype=np.int64).reshape(resamples, n)


def resample_rows(codes: np.ndarray, draw: np.ndarray, n_studies: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a table after drawing ``draw`` studies, and the copy number of each row.

    A study drawn m times contributes all its comparisons m times; copy r of its rows forms
    a new cluster (so multilevel models see m independent studies).
    """
    multiplicity = np.bincount(draw, minlength=n_studies)
    repeats = multiplicity[codes]
    rows = np.repeat(np.arange(len(codes)), repeats)
    starts = np.repeat(np.cumsum(repeats) - repeats, repeats)
    return rows, np.arange(len(rows)) - starts


def _resampled_table(table: pd.DataFrame, rows: np.ndarray, copy: np.ndarray, shift: float) -> pd.DataFrame:
    out = table.iloc[rows].reset_index(drop=True)
    suffix = "#" + pd.Series(copy).astype(str)
    for column in ("study_id", "experiment_id", "comparison_id", "control_group_id"):
        if column in out.columns:
            out[column] = out[column].astype(str) + suffix
    out["yi"] = out["yi"] - shift
    return out


def _statistics(values: Mapping[Any, float]) -> tuple[float, float, float]:
    """(estimate, sign of significance, signed z) of one refit (``values``: a fit's result,
    or a row of the observed table keyed by its column labels)."""
    estimate, low, high, p = values["estimate"], values["ci_low"], values["ci_high"], values["p"]
    significant = 1.0 if low > 0 else (-1.0 if high < 0 else 0.0)
    z = float(np.sign(estimate) * stats.norm.isf(p / 2)) if np.isfinite(p) else np.nan
    return estimate, significant, z


def null_one(
    built: BuiltTable,
    item: tuple[int, dict[str, Any], str, float],
    context: FitContext,
    draws: np.ndarray,
    studies: list[str],
    cache: dict[tuple[object, ...], Any],
    batched: bool = True,
) -> np.ndarray:
    """Refits of one specification in every resample: array ``(B, 3)``: estimate, sig, z.

    With ``batched`` (the default), random-effects and three-level specifications are
    refitted in all resamples at once (:mod:`evmeta.analysis.multiverse.null_batched`);
    the other models, and ``batched=False``, refit resample by resample. Both give the
    same numbers (tests/test_batched.py).
    """
    _, settings, hash_, estimate = item
    out = np.full((len(draws), 3), np.nan)
    prepared = prepare(built, settings, context, cache)
    if prepared.reason:
        return out
    table = prepared.table
    position = {study: i for i, study in enumerate(studies)}
    codes = np.array([position[s] for s in table["study_id"].astype(str)], dtype=np.int64)
    todo: Sequence[int] | np.ndarray = range(len(draws))
    if batched:
        from evmeta.analysis.multiverse.null_batched import batched_null

        fast = batched_null(table, settings, context, draws, codes, len(studies), estimate)
        if fast is not None:
            # A resample the batched fit could not do (its variance components did not
            # converge by Fisher scoring alone) is refitted singly, with the single fit's
            # fallback optimizer: the two paths stay identical.
            out, todo = fast, np.flatnonzero(np.isnan(fast[:, 0]))
    for b in todo:
        draw = draws[b]
        rows, copy = resample_rows(codes, draw, len(studies))
        if len(rows) < context.min_k:
            continue
        sample = _resampled_table(table, rows, copy, estimate)
        values, status, _ = checked_fit(sample, settings, context, derived_seed(hash_, context.seed, b + 1))
        if status == "ok":
            out[b] = _statistics(values)
    return out


def null_batch(
    built: BuiltTable,
    items: list[tuple[int, dict[str, Any], str, float]],
    context: FitContext,
    draws: np.ndarray,
    studies: list[str],
    batched: bool = True,
) -> dict[int, np.ndarray]:
    """One Dask task: the null refits of a batch of specifications sharing a table
    (``batched``: see :func:`null_one`)."""
    cache: dict[tuple[object, ...], Any] = {}  # as fit.fit_batch's: filtered tables, outlier masks
    return {item[0]: null_one(built, item, context, draws, studies, cache, batched) for item in items}


def curve_statistics(
    estimate: np.ndarray, significant: np.ndarray, z: np.ndarray, direction: float
) -> np.ndarray:
    """Median estimate, share significant in ``direction`` and Stouffer's Z of one curve."""
    finite = np.isfinite(estimate)
    if not finite.any():
        return np.full(3, np.nan)
    zs = z[np.isfinite(z)]
    stouffer = float(zs.sum() / np.sqrt(len(zs))) if len(zs) else np.nan
    share = float(np.mean(significant[finite] == direction))
    return np.array([float(np.median(estimate[finite])), share, stouffer])


def null_test(observed: pd.DataFrame, null: dict[int, np.ndarray]) -> pd.DataFrame:
    """Observed curve statistics against their under-the-null distribution, per measure used.

    Estimates of different effect measures (SMD, ROM, NMD) are on different scales, so the
    curve statistics are computed separately for the specifications of each measure used
    (``measure_used``), each with its own observed direction; resample ``b`` uses the same
    study draw for every measure.

    Parameters
    ----------
    observed : DataFrame
        The ``ok`` rows of ``multiverse.csv`` (spec_id, estimate, ci_low, ci_high, p,
        measure_used).
    null : dict
        spec_id -> ``(B, 3)`` array from :func:`null_batch`.

    Returns
    -------
    DataFrame
        One row per measure used and statistic: ``measure_used``, ``statistic``,
        ``observed``, ``null_median``, ``null_q95`` (in the observed direction), ``p`` and
        ``resamples`` (curves with at least one refit).
    """
    if "measure_used" in observed:
        measure = observed["measure_used"].astype(str)
    else:
        measure = pd.Series("", index=observed.index)
    frames = [
        _null_test_one(group, null).assign(measure_used=name)
        for name, group in observed.groupby(measure, sort=True)
    ]
    out = pd.concat(frames, ignore_index=True)
    return out[["measure_used", *[c for c in out.columns if c != "measure_used"]]]


def _null_test_one(observed: pd.DataFrame, null: dict[int, np.ndarray]) -> pd.DataFrame:
    """The test over the specifications of one measure."""
    ids = observed["spec_id"].to_numpy()
    obs = np.array(
        [_statistics(r) for r in observed[["estimate", "ci_low", "ci_high", "p"]].to_dict("records")]
    )
    direction = 1.0 if np.median(obs[:, 0]) >= 0 else -1.0
    observed_stats = curve_statistics(obs[:, 0], obs[:, 1], obs[:, 2], direction)
    stacked = np.stack([null[i] for i in ids], axis=1)  # (B, specs, 3)
    curves = np.array([curve_statistics(s[:, 0], s[:, 1], s[:, 2], direction) for s in stacked])
    signs = np.array([direction, 1.0, direction])  # share significant is already directional
    rows = []
    names = ["median estimate", "share significant in the observed direction", "Stouffer's Z"]
    for j, name in enumerate(names):
        values = curves[:, j][np.isfinite(curves[:, j])]
        extreme = int(np.sum(signs[j] * values >= signs[j] * observed_stats[j] - 1e-12))
        rows.append(
            {
                "statistic": name,
                "observed": observed_stats[j],
                "null_median": float(np.median(values)) if len(values) else np.nan,
                "null_q95": float(np.quantile(signs[j] * values, 0.95) * signs[j]) if len(values) else np.nan,
                "p": (1 + extreme) / (1 + len(values))
                if len(values) and np.isfinite(observed_stats[j])
                else np.nan,
                "resamples": len(values),
            }
        )
    return pd.DataFrame(rows)


__all__ = ["curve_statistics", "null_batch", "null_test", "resample_rows", "study_draws"]
