"""The analysis table: comparisons built, filtered and given reference levels as the spec says.

:func:`analysis_table` is the one place where an analysis spec turns an extraction into the
table the models see. The main analysis and every sensitivity analysis that rebuilds the
comparisons (NMD vs SMD) call it, so they share the outcome and time-point rules, the
``[filters]`` and the ``[moderators]`` reference levels; only what the sensitivity analysis
varies (the measure) differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from evmeta.analysis.spec import AnalysisSpec, FiltersSection
from evmeta.comparisons import Comparisons, build_comparisons
from evmeta.errors import ModelError, SpecError
from evmeta.harmonize.aggregate import AggregatedComparisons
from evmeta.harmonize.control_split import resplit_shared_controls
from evmeta.harmonize.effect_options import EffectOptions
from evmeta.schema.extraction import Extraction


@dataclass
class AnalysisTable:
    """The comparisons after the spec's rules.

    Attributes
    ----------
    table : DataFrame
        Comparison rows that passed the filters, categorical moderators ordered with the
        spec's reference level first.
    exclusions : DataFrame
        Outcome rows not used: those of :class:`Comparisons` plus those removed by a filter.
    comparisons : Comparisons
        The comparisons before the filters.
    combined : AggregatedComparisons or None
        With ``[comparisons] combine_outcomes``: the combination (``table`` is its table).
    uncombined : DataFrame or None
        With ``combine_outcomes``: the filtered comparisons before they were combined.
    """

    table: pd.DataFrame
    exclusions: pd.DataFrame
    comparisons: Comparisons
    combined: AggregatedComparisons | None = None
    uncombined: pd.DataFrame | None = None


def analysis_table(extraction: Extraction, spec: AnalysisSpec, *, measure: str | None = None) -> AnalysisTable:
    """Build the table one analysis fits: comparisons -> filters -> reference levels.

    Parameters
    ----------
    extraction : Extraction
    spec : AnalysisSpec
    measure : str, optional
        Overrides ``[comparisons] measure`` (the NMD-vs-SMD sensitivity analysis).

    Returns
    -------
    AnalysisTable

    Raises
    ------
    SpecError
        An outcome of ``[comparisons] outcomes`` that no outcome row names (with the
        closest one), or ``shared_control = "keep"`` while a control arm is shared (see below).
    ModelError
        A reference level that is not in the data.
    """
    c = spec.comparisons
    check_outcomes(c.outcomes, extraction.outcomes)
    comparisons = build_comparisons(
        extraction,
        measure or c.measure,
        outcome=c.outcomes or None,
        timepoint=c.timepoint,
        shared_control=c.shared_control,
        effect_options=EffectOptions.from_spec(c),
    )
    table, dropped = filter_comparisons(comparisons.table, spec.filters, EffectOptions.from_spec(c))
    _refuse_unmodelled_sharing(table, c.shared_control)
    logs = [comparisons.exclusions, _filter_log(comparisons.table, dropped, table)]
    combined, uncombined = None, None
    if c.combine_outcomes is not None:  # nested comparisons combined per cohort (docs/correlated_effects.md)
        from evmeta.analysis.correlated import combine_outcomes, combined_exclusions

        uncombined, combined = table, combine_outcomes(table, c.combine_outcomes)
        table = combined.table
        logs.append(combined_exclusions(combined))
    exclusions = pd.concat([logs[0], *(log for log in logs[1:] if len(log))], ignore_index=True)
    exclusions = exclusions.sort_values("row", kind="stable").reset_index(drop=True)
    reference = apply_reference_levels(table, spec.moderators)
    return AnalysisTable(reference, exclusions, comparisons, combined, uncombined)


def check_outcomes(wanted: list[str], outcomes: pd.DataFrame) -> None:
    """Every outcome the spec names must match an outcome row (case and surrounding spaces
    ignored, as :func:`build_comparisons` matches them): a typo would silently drop its
    studies and be printed in the report's Methods."""
    if not wanted or "outcome" not in outcomes.columns:
        return
    present = sorted({str(v).strip() for v in outcomes["outcome"].dropna()})
    folded = {v.casefold() for v in present}
    missing = [name for name in wanted if name.strip().casefold() not in folded]
    if not missing:
        return
    from rapidfuzz import process

    parts = []
    for name in missing:
        guess = process.extractOne(name, present, score_cutoff=60)
        parts.append(f"{name!r}" + (f" (did you mean {guess[0]!r}?)" if guess else ""))
    shown = ", ".join(repr(v) for v in present[:12]) + (", ..." if len(present) > 12 else "")
    raise SpecError(
        f"[comparisons] outcomes: {', '.join(parts)} "
        f"{'matches' if len(missing) == 1 else 'match'} no outcome row of the extraction; "
        f"outcomes entered: {shown or 'none'}"
    )


def _refuse_unmodelled_sharing(table: pd.DataFrame, shared_control: str) -> None:
    """``keep`` would count shared control animals more than once in the univariate models."""
    if shared_control != "keep" or not len(table):
        return
    shared = table["control_group_id"].value_counts()
    shared = shared[shared > 1]
    if len(shared):
        raise SpecError(
            f"[comparisons] shared_control = 'keep': {len(shared)} control arm(s) are each shared by "
            "several treated arms, and the random-effects, subgroup, meta-regression and bias analyses of "
            "evmeta run are univariate: they cannot use the covariance of those comparisons and would "
            "count the control animals more than once. Use shared_control = 'split' for evmeta run, or "
            "fit multilevel_meta_analysis or bayesian_meta_analysis from Python with "
            "V = shared_control_covariance(table)."
        )


def apply_reference_levels(table: pd.DataFrame, reference: dict[str, str]) -> pd.DataFrame:
    """Categorical moderators with the ``[moderators]`` reference level first."""
    table = table.copy()
    for column, level in reference.items():
        if column not in table.columns:
            raise ModelError(f"[moderators] {column!r} is not a column of the comparisons")
        levels = sorted(table[column].dropna().astype(str).unique())
        if level not in levels:
            raise ModelError(
                f"[moderators] reference level {level!r} of {column!r} is not in the data; levels: {', '.join(levels)}"
            )
        table[column] = pd.Categorical(
            table[column].astype(str), categories=[level, *[v for v in levels if v != level]]
        )
    return table


def filter_comparisons(
    table: pd.DataFrame, filters: FiltersSection, effect_options: EffectOptions | None = None
) -> tuple[pd.DataFrame, list[tuple[pd.Index, str]]]:
    """Comparisons that pass ``[filters]``; and (row index, reason) of those that do not.

    The one implementation of the filters: ``evmeta run`` and every multiverse
    specification (:func:`evmeta.analysis.multiverse.fit.apply_filters`) use it. A shared
    control split among comparisons of which some are filtered out is divided again among
    those left (:func:`evmeta.harmonize.control_split.resplit_shared_controls`), with the
    effect-size options the table was built with (``effect_options``).
    """
    f = filters
    dropped = []
    keep = pd.Series(True, index=table.index)
    for column, allowed in [
        ("species", f.species),
        ("disease_model", f.disease_model),
        ("isolation_family", f.isolation_family),
    ]:
        if allowed:
            bad = ~table[column].astype(str).isin(allowed) & keep
            dropped.append((bad, f"filter: {column} not in {allowed}"))
            keep &= ~bad
    if f.min_quality_score > 0:
        bad = (table["quality_score"] < f.min_quality_score) & keep
        dropped.append((bad, f"filter: quality_score < {f.min_quality_score:g}"))
        keep &= ~bad
    if f.low_risk_of_bias_only:
        bad = ~table["rob_low_randomization_blinding"].fillna(False).astype(bool) & keep
        dropped.append((bad, "filter: not at low risk on randomization and blinding"))
        keep &= ~bad
    # A control split among arms the filters removed belongs to the arms left.
    kept = resplit_shared_controls(table[keep].reset_index(drop=True), effect_options)
    return kept, [(mask[mask].index, reason) for mask, reason in dropped]


def _filter_log(table: pd.DataFrame, dropped: list[tuple[pd.Index, str]], kept: pd.DataFrame) -> pd.DataFrame:
    rows = []
    used_controls = set(kept["control_outcome_row"])
    for index, reason in dropped:
        for _, row in table.loc[index].iterrows():
            rows.append(
                {
                    "sheet": "outcomes",
                    "row": row["treat_outcome_row"],
                    "outcome_id": row["treat_outcome_id"],
                    "arm_id": row["arm_id"],
                    "experiment_id": row["experiment_id"],
                    "outcome": row["outcome"],
                    "reason": reason,
                }
            )
            if row["control_outcome_row"] not in used_controls:
                used_controls.add(row["control_outcome_row"])
                rows.append(
                    {
                        "sheet": "outcomes",
                        "row": row["control_outcome_row"],
                        "outcome_id": row["control_outcome_id"],
                        "arm_id": row["control_arm_id"],
                        "experiment_id": row["experiment_id"],
                        "outcome": row["outcome"],
                        "reason": f"control row of comparisons removed by {reason}",
                    }
                )
    return pd.DataFrame(rows)


_TERM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def usable_moderators(table: pd.DataFrame, formula: str | None, model: str) -> tuple[str | None, list[str]]:
    """Drop moderators the data cannot estimate from ``formula``; say why in sentences.

    A plain-column term is dropped when no comparison has a value for it, or when every
    comparison has the same value (one level of a category, a constant score): its effect
    is then not identifiable and the model would fail. Other terms (transformations,
    interactions) are kept as written.

    Returns
    -------
    formula : str or None
        ``"~ a + b"`` with the usable terms, or None when none is left.
    notes : list of str
    """
    if not formula:
        return formula, []
    terms = [t.strip() for t in formula.replace("~", "", 1).split("+") if t.strip()]
    kept, notes = [], []
    for term in terms:
        if not _TERM.match(term) or term not in table.columns:
            kept.append(term)
            continue
        values = table[term].dropna()
        values = values[values.astype(str) != "nan"]
        if values.empty:
            notes.append(f"{model}: moderator '{term}' left out, because no comparison has a value for it.")
        elif values.astype(str).nunique() == 1:
            value = values.iloc[0]
            shown = f"{value:g}" if isinstance(value, (int, float)) else repr(str(value))
            notes.append(
                f"{model}: moderator '{term}' left out, because every comparison has the same value "
                f"({shown}), so its effect cannot be estimated."
            )
        else:
            kept.append(term)
    return ("~ " + " + ".join(kept)) if kept else None, notes


def levels_present(table: pd.DataFrame, column: str | None) -> int:
    """Number of distinct observed values of ``column`` (0 when it is not a column)."""
    if not column or column not in table.columns:
        return 0
    return int(table[column].dropna().astype(str).nunique())
