"""From the evidence of each outcome (plain numbers from the fitted models) to its
summary of findings: the five suggested judgements, the reviewer's overrides, the certainty."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

import evmeta.report.certainty.rules as rules
from evmeta.report.certainty.result import OutcomeCertainty, Override, SummaryOfFindings, apply_overrides

#: Default important effect per measure, in the measure's own scale: half an SD (Cohen's
#: medium effect) for SMD; a 25% change (GRADE's rough guide of RR 0.75 / 1.25) for the
#: log ratio measures. No default for MD, NMD and RD: their scale is the reviewer's.
DEFAULT_IMPORTANT = {
    "SMD": 0.5,
    "ROM": float(np.log(1.25)),
    "OR": float(np.log(1.25)),
    "RR": float(np.log(1.25)),
}
#: Standardized effect for the optimal information size when the measure is not SMD.
DEFAULT_OIS_SMD = 0.5


@dataclass(frozen=True)
class OutcomeEvidence:
    """What the certainty of one outcome is judged from (NaN / None: not available).

    ``rob`` maps each SYRCLE column to the per-comparison judgements and ``weights`` are the
    per-comparison random-effects weights; ``hed`` the human-equivalent doses per comparison
    (NaN where not converted) in ``hed_unit``; ``scale_taus`` the location-scale model's tau
    per level. Confidence intervals are ``(low, high)`` pairs.
    """

    outcome: str
    measure: str
    k: int
    n_studies: int
    n_animals: int
    estimate: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan
    pi_low: float = np.nan
    pi_high: float = np.nan
    i2: float = np.nan
    level: float = 0.95
    rob: Mapping[str, Sequence[str]] = field(default_factory=dict)
    weights: Sequence[float] = ()
    species: Sequence[str] = ()
    disease_models: Sequence[str] = ()
    hed: Sequence[float] = ()
    hed_unit: str = ""
    scale_taus: Mapping[str, float] | None = None
    egger_pvalue: float = np.nan
    trimfill_k0: int | None = None
    trimfill_ci: tuple[float, float] | None = None
    selection_pvalue: float = np.nan
    selection_ci: tuple[float, float] | None = None
    bias_bf: float = np.nan
    bma_ci: tuple[float, float] | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CertaintySettings:
    """The spec's ``[certainty]`` values the rules use (None: the measure's default)."""

    important_effect: float | None = None
    ois_smd: float | None = None
    alpha: float = 0.05
    power: float = 0.8

    def important(self, measure: str) -> float | None:
        return self.important_effect if self.important_effect is not None else DEFAULT_IMPORTANT.get(measure)

    def ois(self, measure: str) -> int | None:
        smd = self.ois_smd
        if smd is None:
            smd = self.important(measure) if measure == "SMD" else DEFAULT_OIS_SMD
        return None if not smd else rules.optimal_information_size(smd, self.alpha, self.power)


def suggestions(e: OutcomeEvidence, settings: CertaintySettings) -> dict[str, tuple[str, str]]:
    """evmeta's judgement and reason for each of the five domains of one outcome."""
    important = settings.important(e.measure)
    main_ci = (e.ci_low, e.ci_high)
    return {
        "risk_of_bias": rules.risk_of_bias(e.rob, e.weights),
        "indirectness": rules.indirectness(e.species, e.disease_models, e.hed, e.hed_unit),
        "inconsistency": rules.inconsistency(
            e.k, e.i2, e.estimate, e.pi_low, e.pi_high, important, e.scale_taus, level=e.level
        ),
        "imprecision": rules.imprecision(
            e.k, e.n_animals, e.ci_low, e.ci_high, important, settings.ois(e.measure), level=e.level
        ),
        "publication_bias": rules.publication_bias(
            e.k,
            e.egger_pvalue,
            e.trimfill_k0,
            e.trimfill_ci,
            main_ci,
            e.selection_pvalue,
            e.selection_ci,
            e.bias_bf,
            e.bma_ci,
        ),
    }


def summary_of_findings(
    evidence: Iterable[OutcomeEvidence],
    settings: CertaintySettings | None = None,
    overrides: Iterable[Override] = (),
    notes: Sequence[str] = (),
) -> SummaryOfFindings:
    """The summary of findings of every outcome.

    Parameters
    ----------
    evidence : iterable of OutcomeEvidence
        One per outcome, in the order of the table.
    settings : CertaintySettings, optional
        Important effect, OIS effect, alpha and power (default: the measure's defaults,
        alpha 0.05, power 0.8).
    overrides : iterable of Override
        The reviewer's judgements; each replaces evmeta's suggestion for its outcome and domain.

    Returns
    -------
    SummaryOfFindings

    Examples
    --------
    >>> e = OutcomeEvidence("infarct size", "SMD", k=2, n_studies=2, n_animals=24,
    ...                     estimate=1.1, ci_low=-3.0, ci_high=5.2)
    >>> sof = summary_of_findings([e])
    >>> sof.outcomes[0].domain("imprecision").judgement
    'very serious'
    >>> sof.outcomes[0].certainty
    'very low'
    """
    settings = settings or CertaintySettings()
    overrides = list(overrides)
    outcomes = []
    for e in evidence:
        domains = apply_overrides(e.outcome, suggestions(e, settings), overrides)
        outcomes.append(
            OutcomeCertainty(
                e.outcome,
                e.measure,
                e.k,
                e.n_studies,
                e.n_animals,
                e.estimate,
                e.ci_low,
                e.ci_high,
                e.level,
                domains,
                tuple(e.notes),
            ),
        )
    important = settings.important_effect
    return SummaryOfFindings(
        tuple(outcomes), important, settings.ois_smd, settings.alpha, settings.power, tuple(notes)
    )
