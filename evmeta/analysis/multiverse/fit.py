"""Fitting the specifications of a multiverse: data choices, outlier rule, models, results.

The functions here run on Dask workers (they are plain top-level functions of picklable
arguments) and equally in-process for the serial reference run. Work is batched: a
comparisons table is built once per distinct comparisons choice (:func:`build_table`) and a
batch of specifications that share it is fitted in one task (:func:`fit_batch`), reusing the
filtered tables and outlier sets inside the batch.

Timings (``seconds_*`` columns, ``build_seconds``) are CPU seconds of the working thread
(``time.thread_time``), so the cost per step does not depend on how loaded the machine is.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evmeta.errors import ModelError

#: Columns of the comparisons table that the multiverse needs (the rest stays behind).
TABLE_COLUMNS = [
    "comparison_id",
    "study_id",
    "experiment_id",
    "control_group_id",
    "outcome",
    "measure",
    "yi",
    "vi",
    "species",
    "disease_model",
    "isolation_family",
    "quality_score",
    "rob_low_randomization_blinding",
    # The arm statistics of the sampling covariance under shared_control = "keep", and of
    # the re-divided control when the filters remove some arms sharing it.
    "control_split_among",
    "direction_flipped",
    "dispersion_source_treat",
    "mean_treat",
    "events_treat",
    "total_treat",
    "mean_sham",
    "n_treat",
    "n_control",
    "n_control_reported",
    "sd_treat",
    "sd_control",
    "mean_control",
    "events_control",
    "total_control",
]
#: The one model of the multiverse that takes the sampling covariance of comparisons sharing
#: a control (``shared_control = "keep"``): the others assume independent sampling errors.
COVARIANCE_MODELS = ("three_level",)
_FIT_ERRORS = (ModelError, ValueError, np.linalg.LinAlgError, FloatingPointError)


@dataclass(frozen=True)
class FitContext:
    """What every fit needs besides its own settings (shared by all tasks)."""

    min_k: int = 3
    outlier_method: str = "REML"
    outlier_test: str = "knha"
    bayes_random: tuple[str, ...] | None = ("study_id", "experiment_id")
    bayes_priors: tuple[tuple[str, str], ...] = ()
    bayes_draws: int = 1000
    seed: int = 1
    #: Level of every interval (the spec's ``[frequentist] level``; Bayesian: credible).
    level: float = 0.95


@dataclass
class BuiltTable:
    """One comparisons table, reduced to the columns the multiverse needs."""

    table: pd.DataFrame
    measure: str
    build_seconds: float = 0.0


@dataclass
class Prepared:
    """An analysis table after the filters and the outlier rule, ready to fit."""

    table: pd.DataFrame
    n_outliers: int = 0
    reason: str = ""
    fingerprint: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def build_table(extraction: Any, settings: dict[str, Any]) -> BuiltTable:
    """Build the comparisons table of one comparisons choice (``comparisons.*`` settings)."""
    from evmeta.comparisons import build_comparisons  # only the workers that build tables need it

    clock = time.thread_time()
    comparisons = build_comparisons(
        extraction,
        settings["comparisons.measure"],
        outcome=settings["comparisons.outcomes"] or None,
        timepoint=settings["comparisons.timepoint"],
        shared_control=settings["comparisons.shared_control"],
        effect_options=effect_options(settings),
    )
    table = comparisons.table
    table = table[[c for c in TABLE_COLUMNS if c in table.columns]].reset_index(drop=True)
    return BuiltTable(table, comparisons.measure, time.thread_time() - clock)


def apply_filters(table: pd.DataFrame, settings: dict[str, Any]) -> pd.DataFrame:
    """The ``filters.*`` data choices, by the same function as ``evmeta run``
    (:func:`evmeta.analysis.table.filter_comparisons`)."""
    from evmeta.analysis.spec import FiltersSection
    from evmeta.analysis.table import filter_comparisons

    names = FiltersSection.model_fields
    filters = FiltersSection(
        **{name: settings[f"filters.{name}"] for name in names if f"filters.{name}" in settings}
    )
    return filter_comparisons(table, filters, effect_options(settings))[0]


def effect_options(settings: dict[str, Any]) -> Any:
    """The ``comparisons.*`` effect-size options of a specification (:class:`EffectOptions`)."""
    from evmeta.harmonize.effect_options import EffectOptions

    return EffectOptions(
        smd_variant=settings.get("comparisons.smd_variant", "exact"),
        rom_correct=settings.get("comparisons.rom_correct", False),
        binary_to_smd=settings.get("comparisons.binary_to_smd", "none"),
    )


def outlier_threshold(rule: str) -> float | None:
    """``studentized_residual_gt_3`` -> 3.0; ``none`` -> None."""
    match = re.fullmatch(r"studentized_residual_gt_(\d+(?:\.\d+)?)", rule)
    return float(match.group(1)) if match else None


def outlier_mask(table: pd.DataFrame, threshold: float, context: FitContext) -> npt.NDArray[np.bool_]:
    """Comparisons whose studentized deleted residual exceeds ``threshold`` in absolute value.

    Judged once per analysis table on the spec's random-effects model (its ``[frequentist]``
    estimator and test), so every model and estimator of the multiverse sees the same data
    (Viechtbauer & Cheung 2010). The residuals come from the vectorized leave-one-out of
    :mod:`evmeta.analysis.multiverse.outliers` where it covers the estimator, else from
    ``MetaResult.influence()``.
    """
    from evmeta.analysis.multiverse.outliers import MAX_K, VECTORIZED, studentized_deleted_residuals
    from evmeta.models import meta_analysis

    yi, vi = table["yi"].to_numpy(dtype=float), table["vi"].to_numpy(dtype=float)
    method = str(context.outlier_method).upper()
    rstudent: npt.NDArray[np.float64]
    if method in VECTORIZED and len(yi) <= MAX_K:
        if np.any(~np.isfinite(vi) | (vi <= 0)):  # the model's own error message
            meta_analysis(yi=yi, vi=vi, method=method)
        rstudent = studentized_deleted_residuals(yi, vi, method, context.outlier_test)
    else:
        fit = meta_analysis(yi=yi, vi=vi, method=method, test=context.outlier_test)
        rstudent = fit.influence()["rstudent"].to_numpy()
    return np.abs(np.nan_to_num(rstudent, nan=0.0)) > threshold


def table_fingerprint(table: pd.DataFrame) -> str:
    """SHA-256 of the analysed comparisons (ids, yi, vi): equal tables, equal fingerprints."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(table["comparison_id"].astype(str)).encode())
    for column in ("yi", "vi"):
        digest.update(np.ascontiguousarray(table[column].to_numpy(dtype=float)).tobytes())
    return digest.hexdigest()[:16]


def prepare(built: BuiltTable, settings: dict[str, Any], context: FitContext, cache: dict[tuple[object, ...], Any]) -> Prepared:
    """Filters and outlier rule for one specification, cached within a batch."""
    key = ("table", *(repr(settings[k]) for k in sorted(settings) if k.startswith("filters.")))
    if key not in cache:
        clock = time.thread_time()
        cache[key] = apply_filters(built.table, settings)
        cache[("seconds", key)] = time.thread_time() - clock
    table = cache[key]
    seconds = {"filter": cache.pop(("seconds", key), 0.0)}
    threshold = outlier_threshold(settings["outliers"])
    if threshold is not None and shares_controls(table, settings):
        return Prepared(
            table,
            reason="the outlier rule's leave-one-out is univariate and does not apply to comparisons "
            "that share a control (shared_control = 'keep')",
            seconds=seconds,
        )
    n_outliers = 0
    if threshold is not None and len(table) >= context.min_k:
        okey = (*key, threshold)
        if okey not in cache:
            clock = time.thread_time()
            try:
                with np.errstate(all="ignore"):
                    cache[okey] = outlier_mask(table, threshold, context)
            except _FIT_ERRORS as exc:
                cache[okey] = f"outlier rule not applied: the random-effects model failed ({exc})"
            seconds["outliers"] = time.thread_time() - clock
        mask = cache[okey]
        if isinstance(mask, str):
            return Prepared(table, reason=mask, seconds=seconds)
        n_outliers = int(mask.sum())
        table = table[~mask].reset_index(drop=True)
    reason = ""
    if len(table) < context.min_k:
        reason = f"k = {len(table)} comparisons after the data choices, fewer than min_k = {context.min_k}"
    return Prepared(table, n_outliers, reason, table_fingerprint(table), seconds)


def shares_controls(table: pd.DataFrame, settings: dict[str, Any]) -> bool:
    """Whether ``shared_control = "keep"`` left comparisons that share a control arm."""
    if settings["comparisons.shared_control"] != "keep" or "control_group_id" not in table.columns:
        return False
    return bool(table["control_group_id"].duplicated().any())


def sampling_covariance(table: pd.DataFrame) -> np.ndarray:
    """V of the comparisons (:func:`evmeta.harmonize.shared_control_covariance`), per effect measure
    where the measure was chosen per comparison (``NMD_or_SMD``)."""
    from evmeta.harmonize.covariance import shared_control_covariance

    measures = table["measure"].astype(str)
    mixed = table.groupby("control_group_id")["measure"].nunique()
    if (mixed > 1).any():
        raise ModelError(
            f"control arm {mixed[mixed > 1].index[0]!r} is shared by comparisons on different "
            "measures; their covariance is not defined"
        )
    V = np.zeros((len(table), len(table)))
    for measure in pd.unique(measures):
        rows = np.flatnonzero((measures == measure).to_numpy())
        part = table.iloc[rows].reset_index(drop=True)
        V[np.ix_(rows, rows)] = shared_control_covariance(part, measure=measure)
    return V


def derived_seed(spec_hash: str, base_seed: int, *spawn: int) -> int:
    """A 32-bit seed from the specification's hash (independent of workers and batches)."""
    entropy = [base_seed, int(spec_hash[:16], 16)]
    sequence = np.random.SeedSequence(entropy, spawn_key=tuple(spawn))
    return int(sequence.generate_state(1)[0])


def fit_model(table: pd.DataFrame, settings: dict[str, Any], context: FitContext, seed: int) -> Any:
    """Fit the specification's model on its analysis table (intercept only: the pooled effect).

    Under ``shared_control = "keep"`` with shared controls, ``three_level`` takes their
    sampling covariance ``V`` (rma.mv's ``V``); the other models are skipped before this.
    """
    model = settings["model"]
    if model == "random_effects":
        from evmeta.models import meta_analysis

        return meta_analysis(
            yi=table["yi"].to_numpy(),
            vi=table["vi"].to_numpy(),
            method=settings["frequentist.method"],
            test=settings["frequentist.test"],
            level=context.level,
        )
    if model == "three_level":
        from evmeta.models import multilevel_meta_analysis

        # Knapp-Hartung has no multilevel form; its small-sample analogue is a t test.
        test = "t" if settings["frequentist.test"] == "knha" else "z"
        return multilevel_meta_analysis(
            table,
            random=list(settings["frequentist.multilevel"]),
            method=settings["frequentist.method"],
            test=test,
            level=context.level,
            V=sampling_covariance(table) if shares_controls(table, settings) else None,
        )
    from evmeta.models import bayesian_meta_analysis

    return bayesian_meta_analysis(
        table,
        random=list(context.bayes_random) if context.bayes_random else None,
        priors=dict(context.bayes_priors),
        method="quadrature",
        draws=context.bayes_draws,
        chains=1,
        seed=seed,
        progress=False,
    )


def typical_variance(vi: np.ndarray) -> float:
    """Higgins & Thompson's (2002) typical within-comparison variance, for I^2."""
    w = 1.0 / vi
    return float((len(vi) - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum()))


def extract_result(result: Any, vi: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Estimate, interval, p, tau^2 and I^2 of a fitted model, read through the fitted-result
    protocol (:class:`evmeta.models.base.protocol.FitResult`). Frequentist intervals are at
    the fit's own level (set from the same ``level`` when it was fitted), Bayesian credible
    intervals at ``level``.

    Frequentist fits (univariate or multilevel) give their pooled coefficient, its interval
    and p-value, tau^2 (multilevel: the sum of the variance components) and I^2. Bayesian fits
    give the posterior mean and equal-tailed credible interval of the pooled effect, the
    posterior mean of the total tau^2 (sum over levels) and I^2 from it with the typical
    within-comparison variance; they have no p-value.
    """
    from evmeta.models.bayes.result import BayesResult

    if isinstance(result, BayesResult):
        average = result.predict(level=level).iloc[0]
        draws = np.asarray(result.tau_draws, dtype=float)
        tau2 = float(np.mean(np.sum(draws.reshape(-1, draws.shape[-1]) ** 2, axis=1)))
        return {
            "estimate": float(average["pred"]),
            "ci_low": float(average["ci_low"]),
            "ci_high": float(average["ci_high"]),
            "p": float("nan"),
            "tau2": tau2,
            "i2": 100 * tau2 / (tau2 + typical_variance(vi)),
        }
    return {
        "estimate": float(result.estimate),
        "ci_low": float(result.ci_low),
        "ci_high": float(result.ci_high),
        "p": float(result.pvalue),
        "tau2": float(result.tau2),
        "i2": float(result.i2),
    }


def checked_fit(
    table: pd.DataFrame, settings: dict[str, Any], context: FitContext, seed: int
) -> tuple[dict[str, float], str, str]:
    """Fit and extract; a model that fails or gives a non-finite estimate is ``failed``.

    Floating-point warnings are silenced (``np.errstate`` is thread-local, unlike the
    warnings filters) because the outcome is judged from the result instead.
    """
    try:
        with np.errstate(all="ignore"):
            result = fit_model(table, settings, context, seed)
            values = extract_result(result, table["vi"].to_numpy(), context.level)
    except _FIT_ERRORS as exc:
        return EMPTY_RESULT, "failed", f"{settings['model']}: {exc}"
    if not all(np.isfinite(values[name]) for name in ("estimate", "ci_low", "ci_high")):
        return EMPTY_RESULT, "failed", f"{settings['model']}: non-finite estimate or interval"
    return values, "ok", ""


EMPTY_RESULT = {name: float("nan") for name in ("estimate", "ci_low", "ci_high", "p", "tau2", "i2")}


def fit_one(
    built: BuiltTable,
    item: tuple[int, dict[str, Any], str],
    context: FitContext,
    cache: dict[tuple[object, ...], Any],
) -> dict[str, Any]:
    """One specification: its row of ``multiverse.csv`` (and timings in seconds)."""
    spec_id, settings, hash_ = item
    row: dict[str, Any] = {"spec_id": spec_id, "measure_used": built.measure}
    prepared = prepare(built, settings, context, cache)
    row.update(k=len(prepared.table), n_outliers=prepared.n_outliers, fingerprint=prepared.fingerprint)
    row.update({f"seconds_{name}": value for name, value in prepared.seconds.items()})
    if prepared.reason:
        return {**row, **EMPTY_RESULT, "status": "skipped", "reason": prepared.reason}
    if settings["model"] not in COVARIANCE_MODELS and shares_controls(prepared.table, settings):
        reason = (
            f"{settings['model']} assumes independent sampling errors, but comparisons share a "
            "control (shared_control = 'keep'); three_level fits them with their covariance"
        )
        return {**row, **EMPTY_RESULT, "status": "skipped", "reason": reason}
    clock = time.thread_time()
    values, status, reason = checked_fit(prepared.table, settings, context, derived_seed(hash_, context.seed))
    row["seconds_fit"] = time.thread_time() - clock
    return {**row, **values, "status": status, "reason": reason}


def fit_batch(
    built: BuiltTable, items: list[tuple[int, dict[str, Any], str]], context: FitContext
) -> list[dict[str, Any]]:
    """Fit a batch of specifications that share one comparisons table (one Dask task)."""
    cache: dict[tuple[object, ...], Any] = {}  # filtered tables, their timings, outlier masks
    return [fit_one(built, item, context, cache) for item in items]


__all__ = [
    "BuiltTable",
    "FitContext",
    "apply_filters",
    "build_table",
    "derived_seed",
    "extract_result",
    "fit_batch",
    "fit_model",
    "outlier_mask",
    "prepare",
    "sampling_covariance",
    "shares_controls",
]
