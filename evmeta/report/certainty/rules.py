"""The rules behind evmeta's suggested GRADE judgements for animal evidence, one function
per domain, each a pure function of plain numbers returning ``(judgement, reason)``.

GRADE adapted to animal studies (Hooijmans et al. 2018, PLoS ONE 13:e0187271; Wei et al.
2016, J Evid Based Med 9:98-104) keeps the five reasons to rate down of GRADE for
randomized trials: risk of bias (here from the SYRCLE items, Hooijmans et al. 2014, BMC Med
Res Methodol 14:43), indirectness, inconsistency, imprecision (the optimal information size
and the confidence interval against an important effect: Guyatt et al. 2011, J Clin
Epidemiol 64:1283-1293; Zeng et al. 2022, GRADE guidance 34, J Clin Epidemiol 150:216-224)
and publication bias. The thresholds are named constants below; docs/certainty.md states
each with its source. A suggestion is only that: the reviewer overrides it in the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from evmeta.formatting import format_p, number
from evmeta.schema.vocabulary import display_label

NOT_SERIOUS, SERIOUS, VERY_SERIOUS = "not serious", "serious", "very serious"
JUDGEMENTS = (NOT_SERIOUS, SERIOUS, VERY_SERIOUS)

#: SYRCLE items whose high or unclear risk most inflates effects in animal studies
#: (randomization and blinding; the same items as the run's low-risk sensitivity subset).
KEY_ROB_ITEMS = ("rob_sequence_generation", "rob_blinding_caregivers", "rob_blinding_assessor")
#: Share of the weight from comparisons at low (high) risk on every (any) key item at or above
#: which risk of bias is not serious (very serious): the GRADE handbook's "most information" rule.
ROB_MOST = 0.5
#: I^2 (percent) at or above which inconsistency is serious ("substantial") and very serious
#: ("considerable"): the Cochrane Handbook's overlapping ranges 50-90% and 75-100% (section 10.10.2).
I2_SERIOUS, I2_VERY_SERIOUS = 50.0, 75.0
#: Fewest comparisons for a prediction interval and a judgement of consistency.
MIN_K_CONSISTENCY = 3
#: Fewest comparisons for funnel-plot asymmetry tests (Sterne et al. 2011, BMJ 343:d4002).
MIN_K_FUNNEL = 10
#: p below which an asymmetry test (Egger) or the selection model's likelihood-ratio test
#: signals small-study effects: 0.10, as these tests have little power (Egger et al. 1997).
P_BIAS = 0.10
#: Inclusion Bayes factor for publication bias above which the model ensemble signals it
#: ("moderate" evidence on Jeffreys' scale).
BF_BIAS = 3.0
#: Total animals below this share of the optimal information size are "far below" it
#: (GRADE guidance 34: rate down more than one level).
OIS_FAR_BELOW = 0.5


def optimal_information_size(smd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Animals a conventional two-arm trial needs to detect a standardized mean difference.

    n per arm = 2 (z_{1-alpha/2} + z_{power})^2 / d^2 (normal approximation, equal arms,
    two-sided test), rounded up; the total is twice that.

    Parameters
    ----------
    smd : float
        The important effect in units of the outcome's SD (> 0).
    alpha, power : float
        Two-sided type I error and power.

    Returns
    -------
    int
        Total animals (both arms).

    Examples
    --------
    >>> optimal_information_size(0.5)   # 2 x 63 (2 x 7.849 / 0.25 = 62.8 per arm)
    126
    """
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    per_arm = int(np.ceil(2 * z**2 / abs(smd) ** 2 - 1e-9))  # 1e-9: d = 1 gives 15.70, not a float error
    return 2 * per_arm


def _share(weights: np.ndarray, mask: np.ndarray) -> float:
    total = float(np.sum(weights))
    return float(np.sum(weights[mask]) / total) if total > 0 else float(np.mean(mask))


def _item_name(column: str) -> str:
    return column.removeprefix("rob_").replace("_", " ")


def _entered(value: object) -> bool:
    """A judgement cell with something in it (not None, NaN, blank or "not judged")."""
    return value is not None and str(value).strip().lower() not in {"", "nan", "none", "<na>", "not judged"}


def risk_of_bias(items: Mapping[str, Sequence[object]], weights: Sequence[float]) -> tuple[str, str]:
    """Risk of bias from the SYRCLE judgements of the comparisons pooled.

    Parameters
    ----------
    items : mapping
        SYRCLE column -> per-comparison judgement ("low", "high", "unclear" or missing).
    weights : sequence of float
        Per-comparison weight in the pooled estimate (random-effects 1 / (vi + tau2)).

    Returns
    -------
    (judgement, reason)
        Not serious when at least :data:`ROB_MOST` of the weight is at low risk on every
        key item; very serious when at least that share is at high risk on one; else serious.
    """
    w = np.asarray(weights, dtype=float)
    # An item column with no judgement in it was not scored (an imported table without
    # risk of bias): that is "none entered", not "0% at low risk".
    present = [c for c in KEY_ROB_ITEMS if c in items and any(_entered(v) for v in items[c])]
    if len(w) == 0 or not present:
        return SERIOUS, "no SYRCLE judgements were entered for these comparisons"
    key = np.array([[str(v).strip().lower() for v in items[c]] for c in present])
    low = (key == "low").all(axis=0)
    high = (key == "high").any(axis=0)
    share_low, share_high = _share(w, low), _share(w, high)
    reason = (
        f"{share_low:.0%} of the weight from comparisons at low risk on "
        f"{', '.join(_item_name(c) for c in present)}; {share_high:.0%} at high risk on at least one"
    )
    worst = max(items, key=lambda c: sum(str(v).lower() != "low" for v in items[c]))
    n_worst = sum(str(v).lower() != "low" for v in items[worst])
    if n_worst:
        reason += f"; least often low: {_item_name(worst)} (not low in {n_worst} of {len(w)} comparisons)"
    if share_high >= ROB_MOST:
        return VERY_SERIOUS, reason
    if share_low >= ROB_MOST:
        return NOT_SERIOUS, reason
    return SERIOUS, reason


def indirectness(
    species: Sequence[str], disease_models: Sequence[str], hed: Sequence[float] = (), hed_unit: str = ""
) -> tuple[str, str]:
    """Indirectness of animal evidence for a human question: serious by default.

    GRADE for animal studies treats the step from animal model to patient as indirectness of
    population and intervention (Hooijmans et al. 2018); evmeta names the species, disease
    models and the human-equivalent doses (body-surface-area scaling) in the reason, and the
    reviewer rates it up or down in the spec.
    """
    kinds = sorted({display_label(s, "species") for s in species if str(s) not in {"", "nan", "None"}})
    models = sorted(
        {display_label(m, "disease_model") for m in disease_models if str(m) not in {"", "nan", "None"}}
    )
    reason = (
        f"animal evidence ({', '.join(kinds) or 'species not entered'}; "
        f"{len(models)} disease model{'s' if len(models) != 1 else ''}: {', '.join(models) or 'not entered'}) "
        "for a human question, rated down by default for animal studies (Hooijmans et al. 2018)"
    )
    doses = np.asarray([d for d in hed if d is not None and np.isfinite(d) and d > 0], dtype=float)
    if len(doses):
        reason += (
            f"; human-equivalent dose median {number(float(np.median(doses)), 3 if np.median(doses) < 1 else 0)}"
            f" {hed_unit} (range {number(doses.min(), 3 if doses.min() < 1 else 0)} to "
            f"{number(doses.max(), 0)}; {len(doses)} of {len(hed)} comparisons)"
        )
    elif len(hed):
        reason += "; no dose could be converted to a human-equivalent dose"
    return SERIOUS, reason


def _side(value: float, null: float = 0.0) -> int:
    return int(np.sign(value - null)) if np.isfinite(value) else 0


def inconsistency(
    k: int,
    i2: float,
    estimate: float,
    pi_low: float,
    pi_high: float,
    important: float | None = None,
    scale_taus: Mapping[str, float] | None = None,
    level: float = 0.95,
) -> tuple[str, str]:
    """Inconsistency from I^2 and the prediction interval (and the location-scale model's
    per-level taus, named in the reason).

    Serious when I^2 >= :data:`I2_SERIOUS` or the prediction interval crosses the null;
    very serious when I^2 >= :data:`I2_VERY_SERIOUS` and the prediction interval reaches an
    important effect (``important``) on the other side of the null from the estimate. With
    fewer than :data:`MIN_K_CONSISTENCY` comparisons consistency cannot be judged: serious.
    I^2 in percent.
    """
    if k < MIN_K_CONSISTENCY:
        i2_text = f" (I² = {i2:.0f}% on {max(k - 1, 0)} df)" if np.isfinite(i2) and k > 1 else ""
        return SERIOUS, (
            f"k = {k}: consistency cannot be judged from {k} comparison{'s' if k != 1 else ''}{i2_text}, "
            "and no prediction interval is defined"
        )
    side = _side(estimate) or 1
    crosses = np.isfinite(pi_low) and np.isfinite(pi_high) and pi_low < 0 < pi_high
    reason = f"k = {k}, I² = {i2:.0f}%, {level:.0%} prediction interval {number(pi_low)} to {number(pi_high)}"
    reason += " (crosses the null)" if crosses else " (on one side of the null)"
    if scale_taus:
        taus = "; ".join(f"{name} {number(value)}" for name, value in scale_taus.items())
        reason += f"; τ by level of the location-scale model: {taus}"
    opposite = pi_low if side > 0 else -pi_high
    reaches_harm = important is not None and np.isfinite(opposite) and opposite <= -abs(important)
    if i2 >= I2_VERY_SERIOUS and reaches_harm and important is not None:
        return (
            VERY_SERIOUS,
            reason + f"; new studies may show an important effect of {number(abs(important))} the other way",
        )
    if i2 >= I2_SERIOUS or crosses:
        return SERIOUS, reason
    return NOT_SERIOUS, reason


def imprecision(
    k: int,
    n_animals: int,
    ci_low: float,
    ci_high: float,
    important: float | None,
    ois: int | None,
    level: float = 0.95,
) -> tuple[str, str]:
    """Imprecision from the interval against the null and the important effect, and the
    animals against the optimal information size (GRADE guidance 34's CI and OIS approaches).

    Problems: (a) the interval includes the null or straddles the important effect; (b) the
    animals fall short of the OIS. Very serious when the interval includes both an important
    benefit and an important harm, the animals are below :data:`OIS_FAR_BELOW` x OIS, or
    both (a) and (b) hold; serious with one problem; else not serious.
    """
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return VERY_SERIOUS, f"k = {k}, {n_animals} animals: no confidence interval could be computed"
    reason = f"k = {k}, {n_animals} animals; {level:.0%} CI {number(ci_low)} to {number(ci_high)}"
    includes_null = ci_low <= 0 <= ci_high
    d = abs(important) if important is not None else None
    straddles = d is not None and ci_low < d < ci_high
    both_ways = d is not None and ci_low <= -d and ci_high >= d
    if includes_null:
        reason += " includes no effect"
    elif straddles and d is not None:
        reason += f" includes effects below and above the important effect {number(d)}"
    short = far = False
    if ois is not None:
        short, far = n_animals < ois, n_animals < OIS_FAR_BELOW * ois
        reason += f"; optimal information size {ois} animals" + (
            f" ({n_animals / ois:.0%} reached)" if short else " (reached)"
        )
    else:
        reason += "; no optimal information size (no standardized important effect)"
    interval_problem = includes_null or straddles
    if both_ways or far or (interval_problem and short):
        return VERY_SERIOUS, reason
    if interval_problem or short:
        return SERIOUS, reason
    return NOT_SERIOUS, reason


def publication_bias(
    k: int,
    egger_pvalue: float = np.nan,
    trimfill_k0: int | None = None,
    trimfill_ci: tuple[float, float] | None = None,
    main_ci: tuple[float, float] | None = None,
    selection_pvalue: float = np.nan,
    selection_ci: tuple[float, float] | None = None,
    bias_bf: float = np.nan,
    bma_ci: tuple[float, float] | None = None,
) -> tuple[str, str]:
    """Publication bias from the bias analyses that were fitted.

    Signals: Egger p < :data:`P_BIAS`; trim-and-fill filling comparisons and its interval
    including the null where the main one does not; the selection model's likelihood-ratio
    p < :data:`P_BIAS`; the ensemble's inclusion Bayes factor for bias > :data:`BF_BIAS`.
    None: not serious; one: serious; two or more with a bias-adjusted interval including the
    null: very serious. With fewer than :data:`MIN_K_FUNNEL` comparisons the tests cannot
    detect it, and as it is common in animal research (Sena et al. 2010) the default is serious.
    """
    if k < MIN_K_FUNNEL:
        return SERIOUS, (
            f"k = {k}: fewer than {MIN_K_FUNNEL} comparisons, too few to test for small-study effects; "
            "publication bias is common in animal research and cannot be excluded"
        )
    signals, facts = [], []

    def null_in(ci: tuple[float, float] | None) -> bool:
        return ci is not None and bool(np.isfinite(ci[0])) and ci[0] <= 0 <= ci[1]

    if np.isfinite(egger_pvalue):
        facts.append(f"Egger test {format_p(egger_pvalue)}")
        if egger_pvalue < P_BIAS:
            signals.append("funnel asymmetry")
    if trimfill_k0 is not None:
        facts.append(f"trim-and-fill filled {trimfill_k0}")
        if trimfill_k0 > 0 and null_in(trimfill_ci) and not null_in(main_ci):
            signals.append("trim-and-fill interval includes no effect")
    if np.isfinite(selection_pvalue):
        facts.append(f"selection model LRT {format_p(selection_pvalue)}")
        if selection_pvalue < P_BIAS:
            signals.append("selection on significance")
    if np.isfinite(bias_bf):
        facts.append(f"inclusion BF for bias {bias_bf:.2g}")
        if bias_bf > BF_BIAS:
            signals.append("bias models favoured")
    if not facts:
        return SERIOUS, f"k = {k}: no bias analysis could be fitted"
    reason = "; ".join(facts) + (f" (signals: {', '.join(signals)})" if signals else " (no signal)")
    adjusted = {"trim-and-fill": trimfill_ci, "selection model": selection_ci, "model-averaged": bma_ci}
    including = [name for name, ci in adjusted.items() if null_in(ci)]
    if len(signals) >= 2 and including:
        return VERY_SERIOUS, reason + f"; the {' and '.join(including)} interval includes no effect"
    return (SERIOUS if signals else NOT_SERIOUS), reason
