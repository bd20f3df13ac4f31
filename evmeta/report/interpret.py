"""Sentences that read results together: small-study diagnostics beside the main result,
and why a Bayes factor can disagree with the frequentist test of the same moderator."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evmeta.formatting import format_p, number, percent, significant
from evmeta.report.methods import SMALL_STUDY_MIN_K, prior_words
from evmeta.report.run_view import ReportedRun
from evmeta.schema.vocabulary import display_label

#: Bias-adjusted and unadjusted estimates "disagree strongly" when the adjusted one lies
#: outside the unadjusted confidence interval and differs from it by more than half of the
#: unadjusted estimate (or has the other sign).
DISAGREEMENT_SHARE = 0.5


def small_study_summary(run: ReportedRun) -> str:
    """One sentence: Egger's test, trim-and-fill and PET-PEESE next to the pooled estimate."""
    parts = []
    egger = run.models.egger.get("sei")
    if egger is not None:
        parts.append(f"Egger's regression test {format_p(egger.pvalue)}")
    filled = run.models.trim_and_fill
    if filled is not None:
        parts.append(
            f"trim-and-fill added {filled.k0} comparison(s) on the {filled.side} side, adjusted estimate "
            f"{number(filled.estimate)} [{number(filled.ci_low)}, {number(filled.ci_high)}]"
        )
    pp = run.models.pet_peese
    if pp is not None:
        parts.append(
            f"PET-PEESE ({pp.selected}) estimate {number(pp.estimate)} [{number(pp.ci_low)}, {number(pp.ci_high)}]"
        )
    if not parts:
        return ""
    k = run.models.main.k
    caveat = (
        f" With {k} comparisons (fewer than {SMALL_STUDY_MIN_K}) these diagnostics have little power and the "
        "funnel plot is hard to read: treat them as descriptive (Sterne et al. 2011)."
        if k < SMALL_STUDY_MIN_K
        else ""
    )
    return "Small-study effects: " + "; ".join(parts) + "." + caveat


def _adjusted_estimates(run: ReportedRun) -> list[tuple[str, float]]:
    found = []
    models = run.models
    for model, name in (
        (models.trim_and_fill, "trim-and-fill"),
        (models.pet_peese, "PET-PEESE"),
        (models.selection_model, "the selection model"),
        (models.bias_averaging.get("default"), "bias model averaging"),
    ):
        value = getattr(model, "estimate", None) if model is not None else None
        if value is not None and np.isfinite(value):
            found.append((name, float(value)))
    return found


def bias_disagreement(run: ReportedRun) -> str:
    """A sentence when a bias-adjusted estimate disagrees strongly with the unadjusted one
    (:data:`DISAGREEMENT_SHARE`), and why that may be; empty otherwise."""
    main = run.models.main
    far = [
        (name, value)
        for name, value in _adjusted_estimates(run)
        if not main.ci_low <= value <= main.ci_high
        and (
            abs(value - main.estimate) > DISAGREEMENT_SHARE * abs(main.estimate) or value * main.estimate < 0
        )
    ]
    if not far:
        return ""
    listed = _listing([f"{name} {number(value)}" for name, value in far])
    return (
        f"The bias-adjusted estimates ({listed}) differ strongly from the unadjusted {number(main.estimate)}. "
        "This may be publication bias, but small experiments also differ in other ways (disease severity, dose, "
        "laboratory, quality), the standard error of an SMD grows with the SMD itself, so regression-based "
        "adjustments (PET-PEESE, Egger) can over-correct large preclinical effects (Zwetsloot et al. 2017)"
        + (
            f", and with {main.k} comparisons the adjustments are themselves imprecise"
            if main.k < SMALL_STUDY_MIN_K
            else ""
        )
        + ". Read the unadjusted estimate as an upper bound rather than replacing it with an adjusted one."
    )


def _coefficient_names(names: list[str], term: str) -> list[str]:
    """The coefficients of ``term`` among ``names`` (``term`` itself or ``term[T.level]``)."""
    return [n for n in names if n == term or n.startswith(f"{term}[")]


def _level(name: str, term: str) -> str:
    """'isolation_method[T.SEC]' -> 'SEC'; a continuous term keeps its readable name."""
    if name.startswith(f"{term}[T."):
        return display_label(name[len(term) + 3 : -1], term)
    return term.replace("_", " ")


def term_evidence(run: ReportedRun, term: str) -> list[tuple[str, bool]]:
    """Every frequentist p-value the report shows for ``term`` and every 95% credible
    interval of its Bayesian contrasts (of its coefficients for a continuous term), each as
    (words for the report, whether it points to an effect: p < 0.05 or the interval
    excludes 0)."""
    found: list[tuple[str, bool]] = []
    subgroups = run.models.subgroups.get(term)
    if subgroups is not None:
        for p, variance in (
            (subgroups.q_between_pvalue, "separate"),
            (subgroups.q_between_common_pvalue, "common"),
        ):
            if p is not None and np.isfinite(p):
                found.append(
                    (f"the test for subgroup differences under {variance} τ² ({format_p(p)})", p < 0.05)
                )
    tests = run.tables.subgroup_tests
    if tests is not None and term in set(tests["by"]):
        p = float(tests.loc[tests["by"] == term, "pvalue_bonferroni"].iloc[0])
        found.append((f"the Bonferroni-corrected subgroup test ({format_p(p)})", p < 0.05))
    for fit, model in (
        (run.models.meta_regression, "meta-regression"),
        (run.models.multilevel_regression, "multilevel meta-regression"),
    ):
        if fit is None:
            continue
        table = fit.coefficients
        for name in _coefficient_names(list(table.index), term):
            p = float(table["pvalue"].loc[name])
            found.append((f"the {model} coefficient for {_level(name, term)} ({format_p(p)})", p < 0.05))
    contrasts = run.tables.bayes_contrasts.get(term)
    if contrasts is not None:
        intervals = [
            (f"{row['level']} minus {row['versus']}", row["ci_low"], row["ci_high"])
            for _, row in contrasts.iterrows()
        ]
    else:
        bayes = run.models.bayesian
        table = bayes.coef_table() if bayes is not None else pd.DataFrame(columns=["ci_low", "ci_high"])
        names = _coefficient_names(list(table.index), term)
        intervals = [(_level(n, term), table.loc[n, "ci_low"], table.loc[n, "ci_high"]) for n in names]
    level = getattr(run.models.bayesian, "level", 0.95)  # contrasts and coefficients are at the fit's level
    for label, lower, upper in intervals:
        words = f"the {percent(level)} credible interval of {label} [{number(lower)}, {number(upper)}]"
        found.append((words, bool(lower > 0 or upper < 0)))
    return found


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def bayes_factor_notes(run: ReportedRun) -> list[str]:
    """An explanation for each moderator whose Bayes factor disagrees with any frequentist
    p-value or Bayesian credible interval the report shows for it (:func:`term_evidence`):
    BF₁₀ < 1/3 while some p < 0.05 or some interval excludes 0, or BF₁₀ > 3 while none does."""
    factors = run.tables.bayes_factors
    bayes = run.models.bayesian
    if factors is None or bayes is None:
        return []
    level = bayes.level
    notes = []
    for _, row in factors.iterrows():
        term, bf = row["term"], row["bf10"]
        evidence = term_evidence(run, term)
        if not evidence or not np.isfinite(bf):
            continue
        effect = [words for words, finds in evidence if finds]
        against = bf < 1 / 3 and bool(effect)
        towards = bf > 3 and not effect
        if not (against or towards):
            continue
        given = next((v for k, v in bayes.priors.items() if k.startswith(f"{term}[") or k == term), "")
        prior = prior_words(given) if given else "the prior"
        name = term.replace("_", " ")
        n_coefficients = len(bayes.model.term_columns.get(term, [term]))
        jointly = f", jointly for its {n_coefficients} coefficients" if n_coefficients > 1 else ""
        if against:
            notes.append(
                f"For {name}, the Bayes factor favours no effect (BF₁₀ = {significant(bf)}) while "
                f"{_listing(effect)} point to an effect. They answer different questions. The Savage-Dickey "
                f"Bayes factor compares the posterior with the prior density at zero{jointly}; under a wide prior "
                f"({prior} per coefficient) the alternative spreads its belief over effects far larger than those "
                "observed, so moderate, real differences are penalized (Lindley's paradox), and the more so the "
                "more coefficients the term has. A p-value only asks whether zero is compatible with the data, and "
                "a credible interval says where a contrast lies if the moderator matters (with many pairwise "
                "contrasts, one excluding 0 is also less surprising); neither weighs an exact zero against the "
                "prior's spread. A narrower prior, closer to the size of the effects observed, typically raises "
                "the Bayes factor."
            )
        else:
            notes.append(
                f"For {name}, the Bayes factor favours an effect (BF₁₀ = {significant(bf)}) while no p-value "
                f"reported for it is below 0.05 and every {percent(level)} credible interval of its contrasts includes 0: "
                f"the prior ({prior}) concentrates the alternative near the observed effect size, and the "
                "Bayes factor weighs that against exactly zero, whereas the test keeps its 5% error rate with "
                "wider, small-sample intervals."
            )
    return notes
