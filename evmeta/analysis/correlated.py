"""Correlated effects in :func:`evmeta.run_analysis`: ``[comparisons] combine_outcomes``
(nested comparisons combined per cohort before every model), ``[comparisons] correlation``
(an assumed sampling covariance V for the multilevel models) and the sensitivity sweep over
the assumed correlation, written as ``correlation_sensitivity.csv`` and shown in the report
(``report/templates/partials/correlated_effects.html.j2``; docs/correlated_effects.md).

Rows of one group (or of one experiment, for ``correlation``): different treated arms are
told apart as ``obs`` (correlation ``rho``: they share the control animals), different
outcomes as ``outcome`` (``rho``), time points by ``phi`` per ``time_unit``; without
``phi`` every pair of a group gets ``rho`` (compound symmetry, metafor's default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.errors import EvmetaError, InputError, SpecError
from evmeta.harmonize.aggregate import AggregatedComparisons, aggregate_comparisons
from evmeta.harmonize.assumed_covariance import sampling_covariance

if TYPE_CHECKING:  # the run's state, for the annotations only
    from evmeta.analysis.run_state import RunState
    from evmeta.analysis.spec_correlation import CombineOutcomesSection, CorrelationSection

_DAYS = {"days": 1.0, "weeks": 7.0}
_GROUP_KEY = "_correlated_group"
#: Columns of the sensitivity table (and correlation_sensitivity.csv).
COLUMNS = ["model", "rho", "phi", "k", "estimate", "ci_low", "ci_high", "pvalue", "tau2", "used"]


def _covariance(table: pd.DataFrame, cluster: str, rho: float, phi: float | None, unit: str) -> np.ndarray:
    """V of ``table``: arms as obs, outcomes as outcome (both ``rho``), time points by ``phi``."""
    needed = ["arm_id", "outcome", *(["timepoint"] if phi is not None else [])]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(
            f"the comparisons have no column {', '.join(missing)}; the correlation needs arms, outcomes "
            "and, with phi, time points"
        )
    frame = table
    if phi is not None:
        days = pd.to_numeric(table["timepoint"], errors="coerce")
        if days.isna().any():
            shown = ", ".join(map(str, table.loc[days.isna(), "comparison_id"].head(4)))
            raise InputError(
                f"{int(days.isna().sum())} comparison(s) have no time point ({shown}); phi needs every time "
                "point (combine_outcomes leaves it missing where a group spans several)"
            )
        frame = table.assign(_time=days / _DAYS[unit])
    return sampling_covariance(
        frame,
        cluster,
        obs="arm_id",
        outcome="outcome",
        time="_time" if phi is not None else None,
        rho=(rho, rho),
        phi=phi,
    )


def combine_outcomes(table: pd.DataFrame, section: CombineOutcomesSection, rho: float | None = None) -> AggregatedComparisons:
    """The comparisons of ``table`` combined as ``[comparisons] combine_outcomes`` says.

    Parameters
    ----------
    table : DataFrame
        The filtered comparison table.
    section : CombineOutcomesSection
    rho : float, optional
        Overrides ``section.rho`` (the sensitivity sweep).

    Raises
    ------
    SpecError
        A ``by`` column the comparisons lack, or a covariance that cannot be built (a time
        point not given, two rows the factors do not tell apart), with the reason.
    """
    rho = section.rho if rho is None else rho
    missing = [c for c in section.by if c not in table.columns]
    if missing:
        raise SpecError(
            f"[comparisons] combine_outcomes.by: {', '.join(missing)} not a column of the comparisons"
        )
    try:
        if section.phi is None:
            return aggregate_comparisons(table, section.by, rho=rho, varied="missing")
        keyed = table.assign(**{_GROUP_KEY: table[section.by].astype(str).agg("\x00".join, axis=1)})
        V = _covariance(keyed, _GROUP_KEY, rho, section.phi, section.time_unit)
        return aggregate_comparisons(table, section.by, V=V, varied="missing")
    except InputError as exc:
        raise SpecError(f"[comparisons] combine_outcomes: {exc}") from None


def combined_exclusions(combined: AggregatedComparisons) -> pd.DataFrame:
    """The rows :func:`combine_outcomes` could not combine, as ``exclusions.csv`` rows."""
    e = combined.exclusions
    if not len(e):
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "sheet": "outcomes",
            "row": e["treat_outcome_row"].to_numpy() if "treat_outcome_row" in e else np.nan,
            "outcome_id": e.get("treat_outcome_id", e.get("comparison_id")),
            "arm_id": e.get("arm_id"),
            "experiment_id": e.get("experiment_id"),
            "outcome": e.get("outcome"),
            "reason": "[comparisons] combine_outcomes: " + e["reason"].astype(str),
        }
    )


def correlation_settings(run: RunState, table: pd.DataFrame) -> dict[str, Any]:
    """``{"V": V}`` for the multilevel models when ``[comparisons] correlation`` is set (else
    ``{}``); a V that cannot be built becomes a note and the models assume independence."""
    section = run.spec.comparisons.correlation
    if section is None:
        return {}
    try:
        return {"V": _covariance(table, "experiment_id", section.rho, section.phi, section.time_unit)}
    except EvmetaError as exc:
        run.notes.append(
            f"[comparisons] correlation: not applied ({exc}); the multilevel models assume independent "
            "sampling errors."
        )
        return {}


def _fitted_row(model: str, rho: float, phi: float | None, fit: Any, used: bool) -> dict[str, Any]:
    sigma2 = getattr(fit, "sigma2", None)
    tau2 = float(np.sum(sigma2)) if sigma2 is not None else float(getattr(fit, "tau2", np.nan))
    return {
        "model": model,
        "rho": rho,
        "phi": np.nan if phi is None else phi,
        "k": fit.k,
        "estimate": fit.estimate,
        "ci_low": fit.ci_low,
        "ci_high": fit.ci_high,
        "pvalue": fit.pvalue,
        "tau2": tau2,
        "used": used,
    }


def _sweep(section: CombineOutcomesSection | CorrelationSection) -> list[float]:
    return sorted({*section.sensitivity, section.rho})


def _combined_sweep(
    run: RunState, section: CombineOutcomesSection, uncombined: pd.DataFrame
) -> list[dict[str, Any]]:
    """The main random-effects model refitted on the comparisons combined at each rho."""
    from evmeta.models import meta_analysis

    s = run.spec.frequentist
    rows = []
    for rho in _sweep(section):
        try:
            combined = combine_outcomes(uncombined, section, rho=rho)
            fit = meta_analysis(combined.table, method=s.method, test=s.test, level=s.level)
        except EvmetaError as exc:
            run.notes.append(
                f"correlation sensitivity (combined comparisons, rho = {rho:g}): not fitted ({exc})"
            )
            continue
        rows.append(
            _fitted_row("random effects, combined comparisons", rho, section.phi, fit, rho == section.rho)
        )
    return rows


def _multilevel_sweep(run: RunState, section: CorrelationSection, table: pd.DataFrame) -> list[dict[str, Any]]:
    """The multilevel model refitted with V built at each rho."""
    from evmeta.models import multilevel_meta_analysis

    s = run.spec.frequentist
    if not s.multilevel:
        run.notes.append(
            "correlation sensitivity: no multilevel model in the spec ([frequentist] multilevel)"
        )
        return []
    # As the run's multilevel models (stages.model_test): Knapp-Hartung is rma.mv's t test.
    settings = {"random": s.multilevel, "test": "t" if s.test == "knha" else "z", "level": s.level}
    if s.method in {"REML", "ML"}:
        settings["method"] = s.method
    rows = []
    for rho in _sweep(section):
        try:
            V = _covariance(table, "experiment_id", rho, section.phi, section.time_unit)
            fit = multilevel_meta_analysis(table, V=V, **settings)
        except EvmetaError as exc:
            run.notes.append(f"correlation sensitivity (multilevel, rho = {rho:g}): not fitted ({exc})")
            continue
        rows.append(_fitted_row("multilevel with assumed V", rho, section.phi, fit, rho == section.rho))
    return rows


def correlated_effects(run: RunState, built: Any) -> None:
    """Notes of the combination, the sweep over the assumed correlation, its CSV and its
    report section; nothing when neither ``combine_outcomes`` nor ``correlation`` is set."""
    c = run.spec.comparisons
    if c.combine_outcomes is None and c.correlation is None:
        return
    rows = []
    if c.combine_outcomes is not None and built.combined is not None:
        run.notes.extend(f"combine_outcomes: {note}" for note in built.combined.notes)
        rows += _combined_sweep(run, c.combine_outcomes, built.uncombined)
    if c.correlation is not None:
        rows += _multilevel_sweep(run, c.correlation, built.table)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    run.tables = run.tables.with_(correlation_sensitivity=frame)
    from evmeta.report.sections import ReportSection

    run.report_sections.append(
        ReportSection(
            id="correlated-effects",
            title="Correlated effects: sensitivity to the assumed correlation",
            template="partials/correlated_effects.html.j2",
            context=_context(run, built, frame),
        )
    )


def _context(run: RunState, built: Any, frame: pd.DataFrame) -> dict[str, Any]:
    c = run.spec.comparisons
    combined, section = built.combined, c.combine_outcomes
    context: dict[str, Any] = {"table": frame.drop(columns="phi" if frame["phi"].isna().all() else [])}
    if combined is not None and section is not None:  # combined only under combine_outcomes
        context["combine"] = {
            "by": ", ".join(combined.by),
            "rho": section.rho,
            "phi": section.phi,
            "time_unit": section.time_unit,
            "rows_in": int(combined.table["k_combined"].sum()) + len(combined.exclusions),
            "groups": len(combined.table),
            "excluded": len(combined.exclusions),
            "dropped": ", ".join(f"{k} ({n})" for k, n in combined.dropped_columns.items()),
        }
    if c.correlation is not None:
        context["correlation"] = {
            "rho": c.correlation.rho,
            "phi": c.correlation.phi,
            "time_unit": c.correlation.time_unit,
        }
    return context
