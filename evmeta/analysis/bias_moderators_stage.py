"""The ``[bias]`` stage of :func:`evmeta.run_analysis`: the bias-averaged ensemble with the
spec's moderators (docs/bias_moderators.md).

When ``[bias] mods`` is set, :func:`bias_moderators_stage` fits
:func:`evmeta.models.bias_model_averaging` with those moderators (and ``[bias] cluster``)
and the default priors on the run's comparisons, records the result as
``run.models.bias_moderators`` and writes ``bias_moderators.csv`` (prior and posterior
inclusion probability and inclusion Bayes factor of effect, heterogeneity, bias and each
moderator) and ``bias_marginal_means.csv`` (the bias-adjusted mean of each level of the
categorical moderator). What these data cannot support becomes a note and the run goes on:
a moderator that is not a column, has no value or one value only (after the filters), rows
with a missing moderator or cluster (left out, counted), and any refusal of the model
(:class:`~evmeta.errors.ModelError`). Computes no statistics itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from evmeta.analysis.stages import stage
from evmeta.analysis.table import usable_moderators
from evmeta.errors import ModelError

if TYPE_CHECKING:  # the run's state and the result, for the annotations only
    from evmeta.analysis.run_state import RunState
    from evmeta.models.bias.averaging import BiasAveragingResult

#: The stage's name in notes (and the model's in the report).
MODEL = "bias model averaging with moderators"
#: Fewest comparisons the ensemble is fitted on (its own lower bound).
MIN_K = 2


@stage(MODEL)
def bias_moderators_stage(run: RunState, table: pd.DataFrame) -> None:
    """Fit the ensemble of ``[bias] mods`` / ``cluster`` on ``table``, record it on
    ``run.models`` and write its two CSV files (module docstring); nothing when ``mods`` is
    not set (or was removed for a table without EV preparations, with a note then)."""
    from evmeta.models import bias_model_averaging

    s = run.spec.bias
    if s.mods is None:
        return
    subset, mods = _usable(run, table, s.mods, s.cluster)
    if mods is None:
        return
    try:
        # Default priors and level: the Bayesian models' credible intervals are 95% (docs/report.md).
        fit = bias_model_averaging(subset, mods=mods, cluster=s.cluster)
    except ModelError as exc:  # a documented refusal; a bug surfaces as a traceback
        run.notes.append(f"{MODEL}: not fitted ({exc})")
        return
    run.models = run.models.with_(bias_moderators=fit)
    run.notes.extend(f"{MODEL}: {note}" for note in fit.notes)
    numeric = fit.numeric_moderators
    if numeric and fit.cluster is None:
        run.notes.append(
            f"{MODEL}: in each step-selection model the slope(s) of the numeric moderator(s) "
            f"{', '.join(map(repr, numeric))} are integrated with the overall mean by adaptive Gauss-Hermite "
            "quadrature at every (tau, omega) node; the normal models integrate them in closed form."
        )
    _write(run, fit)


def _usable(
    run: RunState, table: pd.DataFrame, formula: str, cluster: str | None
) -> tuple[pd.DataFrame, str | None]:
    """The rows and the formula the ensemble can be fitted on; a note for everything left out."""
    terms = [t.strip() for t in formula.removeprefix("~").split("+")]
    absent = [name for name in [*terms, *([cluster] if cluster else [])] if name not in table.columns]
    if absent:
        run.notes.append(
            f"{MODEL}: not fitted, because the comparisons have no column {', '.join(map(repr, absent))} "
            "(named in [bias])."
        )
        return table, None
    mods, notes = usable_moderators(table, formula, MODEL)  # no value, or one value only
    run.notes.extend(notes)
    if mods is None:
        run.notes.append(
            f"{MODEL}: not fitted, because none of its moderators varies across the comparisons."
        )
        return table, None
    kept = [t.strip() for t in mods.removeprefix("~").split("+")]
    columns = [*kept, *([cluster] if cluster else [])]
    complete = table[columns].notna().all(axis=1)
    if not complete.all():
        missing = [name for name in columns if table[name].isna().any()]
        run.notes.append(
            f"{MODEL}: fitted on {int(complete.sum())} of {len(table)} comparisons; {int((~complete).sum())} "
            f"have no value for {', '.join(map(repr, missing))} and are left out."
        )
        table = table[complete].reset_index(drop=True)
        mods, notes = usable_moderators(table, mods, MODEL)  # a moderator may now be constant
        run.notes.extend(notes)
        if mods is None:
            run.notes.append(
                f"{MODEL}: not fitted, because none of its moderators varies across the comparisons that have them."
            )
            return table, None
    if len(table) < MIN_K:
        run.notes.append(f"{MODEL}: not fitted, because {len(table)} comparison(s) have every moderator.")
        return table, None
    return table, mods


def inclusion_frame(fit: BiasAveragingResult) -> pd.DataFrame:
    """``bias_moderators.csv``: term, prior and posterior inclusion probability, inclusion
    Bayes factor, k."""
    return fit.inclusion_table().reset_index().assign(k=fit.k)


def marginal_means_frame(fit: BiasAveragingResult) -> pd.DataFrame | None:
    """``bias_marginal_means.csv``: one row per level of the categorical moderator (the
    column named after it), k, estimate, posterior_sd, ci_low, ci_high and their
    credible_level; None without a categorical moderator."""
    if fit.marginal_means is None:
        return None
    return fit.marginal_means.reset_index().assign(credible_level=fit.level)


def _write(run: RunState, fit: BiasAveragingResult) -> None:
    from evmeta.sheets.export import write_csv

    run.files.append(write_csv(inclusion_frame(fit), run.output / "bias_moderators.csv"))
    means = marginal_means_frame(fit)
    if means is None:
        run.notes.append(
            f"{MODEL}: no categorical moderator, so no marginal means per level (bias_marginal_means.csv not written)."
        )
        return
    run.files.append(write_csv(means, run.output / "bias_marginal_means.csv"))


__all__ = ["MODEL", "bias_moderators_stage", "inclusion_frame", "marginal_means_frame"]
