"""The derived tables of an analysis run, one typed field each: :class:`RunTables`.

The stages compute these tables (the bias rows, the sensitivity rows, the Bayesian
contrasts, ...) and the report, the living review and the CSV files read them. The field is
the contract between the layers: a table that was not computed is ``None`` (or, for the
per-term Bayesian contrasts, absent from the mapping), and the run's notes say why. Nothing
reads a table by a string key; :meth:`RunTables.csv_files` is the one place the tables
become file names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd


def _frozen_mapping() -> Mapping[str, pd.DataFrame]:
    return MappingProxyType({})


@dataclass(frozen=True, eq=False)
class RunTables:
    """Every derived table of a run; ``None`` when it was not computed (the notes say why).

    Attributes
    ----------
    analysis_table : DataFrame or None
        The comparisons the models pooled, after the spec's filters (``comparisons.csv``).
    subgroup_tests : DataFrame or None
        One row per subgroup column: the test of subgroup differences (``pvalue``, the
        common-tau Q-between test) and its Bonferroni-adjusted p-value.
    bias : DataFrame or None
        Small-study and publication-bias rows: Egger tests, trim-and-fill, PET-PEESE and the
        multilevel Egger/PET-PEESE moderators (``test, statistic, pvalue, estimate, ci_low,
        ci_high``).
    selection_weights : DataFrame or None
        The step-function selection model's weights per p-value interval.
    bias_averaging_models : DataFrame or None
        The models of the bias-averaged ensemble (default priors), with prior and posterior
        probabilities.
    preclinical_prior_sensitivity : DataFrame or None
        The bias-averaged estimate and inclusion Bayes factors under the default and the
        preclinical heterogeneity priors, one row each.
    isolation_evidence : DataFrame or None
        Within- against between-study isolation-method contrasts (reference UC).
    sensitivity : DataFrame or None
        The main analysis beside its sensitivity analyses (leave-one-out range, low risk of
        bias, NMD rule), one row each.
    leave_one_out, influence, cumulative_by_year : DataFrame or None
        The main model's leave-one-out refits, influence diagnostics and cumulative
        meta-analysis by publication year (the living review's ``cumulative.csv`` is by
        search date).
    bayes_contrasts : Mapping[str, DataFrame]
        The Bayesian model's pairwise contrasts, per categorical term.
    bayes_factors : DataFrame or None
        The Bayesian model's Bayes factor per moderator term.
    prior_sensitivity : DataFrame or None
        The Bayesian model refitted under ``[sensitivity] alternative_priors``.
    thresholds : DataFrame or None
        Probabilities that an effect exceeds the spec's thresholds (random-effects and
        location-scale models).
    consistency : DataFrame or None
        The location-scale model's heterogeneity per level of ``[frequentist] scale``.
    bayes_tau_contrasts : DataFrame or None
        P(tau_level < tau_reference) from the exact Bayesian location-scale model.
    heterogeneity_levels : DataFrame or None
        The multilevel model's I² per level with bootstrap intervals.
    correlation_sensitivity : DataFrame or None
        The estimates across assumed within-study correlations.
    certainty : DataFrame or None
        The summary of findings with the GRADE domains per outcome.
    prisma : DataFrame or None
        The PRISMA 2020 counts.
    """

    analysis_table: pd.DataFrame | None = None
    subgroup_tests: pd.DataFrame | None = None
    bias: pd.DataFrame | None = None
    selection_weights: pd.DataFrame | None = None
    bias_averaging_models: pd.DataFrame | None = None
    preclinical_prior_sensitivity: pd.DataFrame | None = None
    isolation_evidence: pd.DataFrame | None = None
    sensitivity: pd.DataFrame | None = None
    leave_one_out: pd.DataFrame | None = None
    influence: pd.DataFrame | None = None
    cumulative_by_year: pd.DataFrame | None = None
    bayes_contrasts: Mapping[str, pd.DataFrame] = field(default_factory=_frozen_mapping)
    bayes_factors: pd.DataFrame | None = None
    prior_sensitivity: pd.DataFrame | None = None
    thresholds: pd.DataFrame | None = None
    consistency: pd.DataFrame | None = None
    bayes_tau_contrasts: pd.DataFrame | None = None
    heterogeneity_levels: pd.DataFrame | None = None
    correlation_sensitivity: pd.DataFrame | None = None
    certainty: pd.DataFrame | None = None
    prisma: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        # Freeze the mapping a caller passed (a dict would stay writable through the field).
        object.__setattr__(self, "bayes_contrasts", MappingProxyType(dict(self.bayes_contrasts)))

    @property
    def pooled(self) -> pd.DataFrame:
        """The analysis table (every run sets it before fitting; ``LookupError`` otherwise)."""
        if self.analysis_table is None:
            raise LookupError("the run has no analysis table yet")
        return self.analysis_table

    def with_(self, **changes: Any) -> RunTables:
        """A copy with ``changes`` (field name -> table); an unknown name is a TypeError."""
        return dataclasses.replace(self, **changes)

    def with_contrasts(self, term: str, frame: pd.DataFrame) -> RunTables:
        """A copy with the Bayesian contrasts of ``term`` added."""
        return self.with_(bayes_contrasts={**self.bayes_contrasts, term: frame})

    def csv_files(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """Each computed table with the file name it is written to (``<field>.csv``; the
        analysis table is ``comparisons.csv``, the contrasts ``bayes_contrasts_<term>.csv``)."""
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.name == "bayes_contrasts":
                for term, frame in value.items():
                    yield f"bayes_contrasts_{term}.csv", frame
            elif value is not None:
                yield ("comparisons.csv" if spec.name == "analysis_table" else f"{spec.name}.csv"), value


__all__ = ["RunTables"]
