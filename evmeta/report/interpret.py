"""Sentences that read results together: small-study diagnostics beside the main result,
and why a Bayes factor can disagree with the frequentist test of the same moderator."""

from __future__ import annotations

from typing import Any

import numpy as np

from evmeta.plots._text import format_p, number
from evmeta.report.methods import prior_words


def small_study_summary(run: Any) -> str:
    """One sentence: Egger's test, trim-and-fill and PET-PEESE next to the pooled estimate."""
    parts = []
    egger = run.models.get("egger:sei")
    if egger is not None:
        parts.append(f"Egger's regression test {format_p(egger.pvalue)}")
    filled = run.models.get("trim_and_fill")
    if filled is not None:
        parts.append(
            f"trim-and-fill added {filled.k0} comparison(s) on the {filled.side} side, adjusted estimate "
            f"{number(filled.estimate)} [{number(filled.ci_low)}, {number(filled.ci_high)}]"
        )
    pp = run.models.get("pet_peese")
    if pp is not None:
        parts.append(
            f"PET-PEESE ({pp.selected}) estimate {number(pp.estimate)} [{number(pp.ci_low)}, {number(pp.ci_high)}]"
        )
    if not parts:
        return ""
    return "Small-study effects: " + "; ".join(parts) + "."


def _frequentist_p(run: Any, term: str) -> tuple[float, str] | None:
    """The frequentist p-value for ``term``: the subgroup test (common τ²) for a
    categorical moderator, else the meta-regression coefficient."""
    tests = run.tables.get("subgroup_tests")
    if tests is not None and term in set(tests["by"]):
        row = tests[tests["by"] == term].iloc[0]
        return float(row["pvalue"]), "test for subgroup differences"
    regression = run.models.get("meta_regression")
    if regression is not None and term in regression.coefficients.index:
        return float(regression.coefficients.loc[term, "pvalue"]), "meta-regression"
    return None


def bayes_factor_notes(run: Any) -> list[str]:
    """An explanation for each moderator whose Bayes factor and frequentist test disagree
    (BF₁₀ < 1/3 with p < 0.05, or BF₁₀ > 3 with p > 0.05)."""
    factors = run.tables.get("bayes_factors")
    bayes = run.models.get("bayesian")
    if factors is None or bayes is None:
        return []
    notes = []
    for _, row in factors.iterrows():
        found = _frequentist_p(run, row["term"])
        if found is None or not np.isfinite(row["bf10"]):
            continue
        p, test = found
        against = row["bf10"] < 1 / 3 and p < 0.05
        towards = row["bf10"] > 3 and p > 0.05
        if not (against or towards):
            continue
        given = next(
            (v for k, v in bayes.priors.items() if k.startswith(f"{row['term']}[") or k == row["term"]), ""
        )
        prior = prior_words(given) if given else "the prior"
        name = row["term"].replace("_", " ")
        if against:
            notes.append(
                f"For {name}, the {test} finds differences ({format_p(p)}) while the Bayes factor favours no effect "
                f"(BF₁₀ = {row['bf10']:.3g}). The two answer different questions. The Savage-Dickey Bayes factor "
                f"compares the posterior with the prior density at zero; under a wide prior ({prior} per coefficient) the "
                "alternative spreads its belief over effects far larger than those observed, so moderate, real "
                "differences are penalized (Lindley's paradox), and the more so the more coefficients the term "
                "has. The frequentist test only asks whether zero is compatible with the data. A narrower prior, "
                "closer to the size of the effects observed, typically raises the Bayes factor."
            )
        else:
            notes.append(
                f"For {name}, the Bayes factor favours an effect (BF₁₀ = {row['bf10']:.3g}) while the {test} does "
                f"not reach significance ({format_p(p)}): the prior ({prior}) concentrates the alternative near "
                "the observed effect size, and the Bayes factor weighs that against exactly zero, whereas the "
                "test keeps its 5% error rate with wider, small-sample intervals."
            )
    return notes
