"""A summary of findings with certainty: the frozen result types, the overall certainty
from the five domains, and the reviewer's overrides.

The certainty starts at high, as GRADE for animal studies starts controlled animal
experiments (Hooijmans et al. 2018, PLoS ONE 13:e0187271), and goes down one level per
serious and two per very serious domain, to very low at most.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

import evmeta.report.certainty.rules as rules
from evmeta.formatting import number, percent

DOMAINS = ("risk_of_bias", "indirectness", "inconsistency", "imprecision", "publication_bias")
DOMAIN_TITLES = {
    "risk_of_bias": "Risk of bias",
    "indirectness": "Indirectness",
    "inconsistency": "Inconsistency",
    "imprecision": "Imprecision",
    "publication_bias": "Publication bias",
}
LEVELS = ("high", "moderate", "low", "very low")
STEPS = {rules.NOT_SERIOUS: 0, rules.SERIOUS: 1, rules.VERY_SERIOUS: 2}
START = "high"


@dataclass(frozen=True)
class DomainJudgement:
    """One GRADE domain of one outcome: the judgement in force with its reason, and what
    evmeta suggested (the same unless the reviewer overrode it)."""

    domain: str
    judgement: str
    reason: str
    suggested: str
    suggested_reason: str
    overridden: bool = False

    @property
    def steps(self) -> int:
        """Levels this domain takes off the certainty (0, 1 or 2)."""
        return STEPS[self.judgement]


@dataclass(frozen=True)
class Override:
    """The reviewer's judgement of one domain (``outcome = "*"``: every outcome)."""

    outcome: str
    domain: str
    judgement: str
    reason: str


@dataclass(frozen=True)
class OutcomeCertainty:
    """The summary of findings of one outcome: the pooled effect in the analysis measure,
    the evidence behind it, the five domains and the certainty."""

    outcome: str
    measure: str
    k: int
    n_studies: int
    n_animals: int
    estimate: float
    ci_low: float
    ci_high: float
    level: float
    domains: tuple[DomainJudgement, ...]
    notes: tuple[str, ...] = ()

    @property
    def downgrades(self) -> int:
        return sum(d.steps for d in self.domains)

    @property
    def certainty(self) -> str:
        """high, moderate, low or very low."""
        return LEVELS[min(self.downgrades, len(LEVELS) - 1)]

    def domain(self, name: str) -> DomainJudgement:
        return next(d for d in self.domains if d.domain == name)

    def effect_text(self) -> str:
        """``SMD 0.84 (95% CI 0.61 to 1.07)``, or a sentence when there is no estimate."""
        if not np.isfinite(self.estimate):
            return "not estimable"
        ci = f"{percent(self.level)} CI {number(self.ci_low)} to {number(self.ci_high)}"
        return f"{self.measure} {number(self.estimate)} ({ci})"


@dataclass(frozen=True)
class SummaryOfFindings:
    """Every outcome's certainty, in order, with the settings that produced the suggestions."""

    outcomes: tuple[OutcomeCertainty, ...]
    important_effect: float | None
    ois_smd: float | None
    alpha: float
    power: float
    notes: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """One row per outcome and domain (the CSV ``certainty.csv``)."""
        rows = []
        for o in self.outcomes:
            for d in o.domains:
                rows.append(
                    {
                        "outcome": o.outcome, "measure": o.measure, "k": o.k, "n_studies": o.n_studies,
                        "n_animals": o.n_animals, "estimate": o.estimate, "ci_low": o.ci_low,
                        "ci_high": o.ci_high, "domain": d.domain, "judgement": d.judgement,
                        "reason": d.reason, "overridden": d.overridden, "suggested": d.suggested,
                        "suggested_reason": d.suggested_reason, "starting_certainty": START,
                        "certainty": o.certainty,
                    }
                )  # fmt: skip
        return pd.DataFrame(rows)

    def overridden(self) -> list[tuple[str, DomainJudgement]]:
        return [(o.outcome, d) for o in self.outcomes for d in o.domains if d.overridden]


def apply_overrides(
    outcome: str, suggestions: Mapping[str, tuple[str, str]], overrides: Iterable[Override]
) -> tuple[DomainJudgement, ...]:
    """The five domains of ``outcome``: evmeta's suggestion, replaced by the reviewer's
    judgement where an override names this outcome (or ``"*"``) and the domain; an override
    for the outcome itself wins over one for every outcome."""
    chosen: dict[str, Override] = {}
    for o in overrides:
        if o.outcome == "*" and o.domain not in chosen:
            chosen[o.domain] = o
    for o in overrides:
        if o.outcome == outcome:
            chosen[o.domain] = o
    out = []
    for name in DOMAINS:
        judgement, reason = suggestions[name]
        base = DomainJudgement(name, judgement, reason, judgement, reason)
        given = chosen.get(name)
        if given is not None:
            base = replace(base, judgement=given.judgement, reason=given.reason.strip(), overridden=True)
        out.append(base)
    return tuple(out)


def footnotes(summary: SummaryOfFindings) -> list[tuple[str, str, str, str]]:
    """``(letter, outcome, domain, text)`` for every domain that was rated down or
    overridden, lettered a, b, ..., z, aa, ... in table order."""
    out: list[tuple[str, str, str, str]] = []
    for o in summary.outcomes:
        for d in o.domains:
            if d.steps == 0 and not d.overridden:
                continue
            text = f"{DOMAIN_TITLES[d.domain]}, {d.judgement}: {d.reason}."
            if d.overridden:
                text += f" Reviewer's judgement; evmeta suggested {d.suggested} ({d.suggested_reason})."
            out.append((_letter(len(out)), o.outcome, d.domain, text))
    return out


def _letter(i: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return letters[i] if i < 26 else _letter(i // 26 - 1) + letters[i % 26]


def judgement_cell(d: DomainJudgement, letter: str | None) -> str:
    """A domain cell of the table: ``serious (−1)ᵃ``-like text: judgement, levels and mark."""
    steps = f" (−{d.steps})" if d.steps else ""
    mark = "*" if d.overridden else ""
    return f"{d.judgement}{steps}{mark}" + (f" [{letter}]" if letter else "")


def table_rows(summary: SummaryOfFindings) -> tuple[pd.DataFrame, list[tuple[str, str, str, str]]]:
    """The summary-of-findings table (one row per outcome, as in the report and the Word
    document) and its footnotes."""
    notes = footnotes(summary)
    letter = {(outcome, domain): mark for mark, outcome, domain, _ in notes}
    rows = []
    for o in summary.outcomes:
        row: dict[str, Any] = {
            "Outcome": o.outcome,
            "Comparisons (studies)": f"{o.k} ({o.n_studies})",
            "Animals": str(o.n_animals),
            "Effect": o.effect_text(),
        }
        for d in o.domains:
            row[DOMAIN_TITLES[d.domain]] = judgement_cell(d, letter.get((o.outcome, d.domain)))
        row["Certainty"] = o.certainty
        rows.append(row)
    return pd.DataFrame(rows), notes
