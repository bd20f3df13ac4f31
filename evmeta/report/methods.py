"""The generated methods paragraph and its references."""

from __future__ import annotations

from typing import Any

import pandas as pd

from evmeta.report.effect_methods import conversion_sentence, measure_words
from evmeta.report.run_view import ReportedRun

ESTIMATORS = {
    "REML": "restricted maximum likelihood",
    "ML": "maximum likelihood",
    "DL": "the DerSimonian-Laird estimator",
    "PM": "the Paule-Mandel estimator",
    "HE": "the Hedges estimator",
    "SJ": "the Sidik-Jonkman estimator",
    "EB": "the empirical Bayes estimator",
    "EE": "a common-effect (equal-effects) model",
}
REFERENCES = [
    "Hedges LV (1981). Distribution theory for Glass's estimator of effect size and related estimators. J Educ Stat 6:107-128.",
    "Vesterinen HM et al. (2014). Meta-analysis of data from animal studies: a practical guide. J Neurosci Methods 221:92-102.",
    "Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the random-effects model. J Educ Behav Stat 30:261-293.",
    "Hartung J, Knapp G (2001). A refined method for the meta-analysis of controlled clinical trials with binary outcome. Stat Med 20:3875-3889.",
    "Pustejovsky JE, Tipton E (2018). Small-sample methods for cluster-robust variance estimation and hypothesis testing in fixed effects models. J Bus Econ Stat 36:672-683.",
    "Egger M et al. (1997). Bias in meta-analysis detected by a simple, graphical test. BMJ 315:629-634.",
    "Duval S, Tweedie R (2000). Trim and fill. Biometrics 56:455-463.",
    "Sterne JAC et al. (2011). Recommendations for examining and interpreting funnel plot asymmetry in meta-analyses of randomised controlled trials. BMJ 343:d4002.",
    "Stanley TD, Doucouliagos H (2014). Meta-regression approximations to reduce publication selection bias. Res Synth Methods 5:60-78.",
    "Zwetsloot P-P et al. (2017). Standardized mean differences cause funnel plot distortion in publication bias assessments. eLife 6:e24260.",
    "Hooijmans CR et al. (2014). SYRCLE's risk of bias tool for animal studies. BMC Med Res Methodol 14:43.",
    "Théry C et al. (2018). Minimal information for studies of extracellular vesicles 2018 (MISEV2018). J Extracell Vesicles 7:1535750.",
    "Wan X et al. (2014). Estimating the sample mean and standard deviation from the sample size, median, range and/or interquartile range. BMC Med Res Methodol 14:135.",
]


FAMILY_WORDS = {
    "normal": "a normal prior with mean {0:g} and standard deviation {1:g}",
    "halfnormal": "a half-normal prior with scale {0:g}",
    "halfcauchy": "a half-Cauchy prior with scale {0:g}",
    "student_t": "a Student-t prior with {0:g} degrees of freedom, location {1:g} and scale {2:g}",
    "halft": "a half-Student-t prior with {0:g} degrees of freedom and scale {1:g}",
    "exponential": "an exponential prior with rate {0:g}",
    "uniform": "a uniform prior from {0:g} to {1:g}",
    "gamma": "a gamma prior with shape {0:g} and rate {1:g}",
    "lognormal": "a lognormal prior with log-scale mean {0:g} and log-scale standard deviation {1:g}",
}
LEVEL_WORDS = {
    "study_id": "studies",
    "experiment_id": "experiments within studies",
    "comparison": "comparisons",
}


def term_words(formula: str | None) -> str:
    """'~ isolation_method + quality_score' -> 'isolation method and quality score'."""
    if not formula:
        return "no moderators"
    terms = [t.strip().replace("_", " ") for t in formula.strip().lstrip("~").split("+") if t.strip()]
    return terms[0] if len(terms) == 1 else ", ".join(terms[:-1]) + " and " + terms[-1]


def prior_words(text: str) -> str:
    """'normal(0, 2.5)' -> 'a normal prior with mean 0 and standard deviation 2.5'."""
    from evmeta.models.priors import parse_prior

    prior = parse_prior(text)
    template = FAMILY_WORDS.get(prior.family)
    try:
        return template.format(*prior.params) if template else f"a {prior.family} prior"
    except IndexError:
        return f"a {prior.family} prior"


def _grid_accuracy(bayes: Any) -> str:
    """'; on a grid of twice the density ... by more than 4.3e−06' (empty if unknown).
    Reads the fit's diagnostics, so only in the report step (after the worker's were adopted)."""
    import math

    from evmeta.formatting import scientific

    error = bayes.diagnostics.get("grid_error")
    if error is None or math.isnan(error):  # not computed
        return ""
    return (
        "; on a grid of twice the density, no reported posterior summary changed by more than "
        + scientific(error, 1)
    )


def bayesian_sentences(run: ReportedRun, bayes: Any) -> str:
    """The Bayesian model in words: structure, priors in plain language, how it was computed."""
    b = run.spec.bayesian
    given = bayes.priors
    coefficients = [v for k, v in given.items() if not k.startswith("tau") and k != "intercept"]
    taus = [v for k, v in given.items() if k.startswith("tau")]
    levels = " and ".join(LEVEL_WORDS.get(lv, lv.replace("_", " ")) for lv in bayes.levels)
    # a heterogeneity prior named "preclinical" (priors = "preclinical" in the spec) is informative
    preclinical = any(
        k.startswith("tau") and str(v).strip().lower() == "preclinical"
        for k, v in bayes.settings.get("priors_given", {}).items()
    )
    which = (
        "weakly informative priors on the coefficients and the heterogeneity prior derived from published "
        "animal meta-analyses"
        if preclinical
        else "weakly informative priors"
    )
    parts = [
        f"A Bayesian hierarchical meta-regression on {term_words(b.mods)}, with random effects for {levels}, "
        f"was fitted with {which}."
    ]
    plain = []
    if "intercept" in given:
        plain.append(f"the mean effect in the reference group had {prior_words(given['intercept'])}")
    if coefficients and len(set(coefficients)) == 1:
        plain.append(f"each moderator coefficient had {prior_words(coefficients[0])}")
    if taus and len(set(taus)) == 1:
        plain.append(f"each between-group standard deviation had {prior_words(taus[0])}")
    if plain:
        parts.append(
            "In plain terms, " + "; ".join(plain) + ", all on the effect-size scale: these priors rule out "
            "nothing plausible and let the data dominate, while keeping implausibly large effects unlikely."
        )
    if bayes.method_used == "quadrature":
        parts.append(
            "Its posterior was computed exactly by numerical integration over the between-group standard "
            "deviations (quadrature), so it carries no Monte Carlo error and needs no convergence diagnostics"
            + _grid_accuracy(bayes)
            + "."
        )
    else:
        parts.append(
            "It was sampled with the No-U-Turn sampler; convergence was judged by R-hat of at most 1.01, a bulk "
            "effective sample size of at least 400 and no divergent transitions."
        )
    parts.append(
        "Bayes factors for a moderator were computed as Savage-Dickey density ratios (posterior over prior density "
        "of the coefficients at zero)."
    )
    return " ".join(parts)


#: Fewest comparisons for which funnel plots and tests for small-study effects are usually
#: read (Sterne et al. 2011: below ten the tests have too little power to tell chance
#: from asymmetry).
SMALL_STUDY_MIN_K = 10


def inference_words(fit: Any) -> str:
    """The inference a fitted model used, in words (from the fit, not the spec)."""
    if getattr(fit, "is_robust", False):
        moderators = not getattr(getattr(fit, "model", None), "intercept_only", True)
        return "cluster-robust (CR2) standard errors with Satterthwaite degrees of freedom" + (
            " and the HTZ test of the moderators" if moderators else ""
        )
    test = getattr(fit, "test", "z")
    if test == "knha":
        return "Knapp-Hartung confidence intervals and t tests"
    if test == "t":
        return "t tests with k − p degrees of freedom"
    return "Wald z tests"


def _levels(fit: Any) -> str:
    return " and ".join(LEVEL_WORDS.get(lv, lv.replace("_", " ")) for lv in fit.random)


def _frequentist_sentences(run: ReportedRun) -> list[str]:
    """One sentence per frequentist analysis that was fitted (what was not is in the notes)."""
    main = run.models.main
    level = f"{main.level * 100:.4g}%"
    parts = [
        f"Effects were pooled with a random-effects model, the between-comparison variance (τ²) estimated by "
        f"{ESTIMATORS.get(main.method, main.method)}, with {inference_words(main)} and a {level} prediction interval."
    ]
    fitted = [m.by for m in run.models.subgroups.values()]
    if fitted:
        corrected = len(fitted) > 1 and run.tables.subgroup_tests is not None
        parts.append(
            f"Subgroups ({term_words(' + '.join(fitted))}) were compared with tests for subgroup differences "
            "under separate and common τ²"
            + (", Bonferroni-corrected for the number of stratifications." if corrected else ".")
        )
    regression = run.models.meta_regression
    if regression is not None:
        parts.append(
            f"A meta-regression on {term_words(regression.model.formula)} was fitted with the same estimator and "
            f"{inference_words(regression)}."
        )
    for fit, what, with_mods in (
        (run.models.multilevel, "A multilevel model", False),
        (run.models.multilevel_regression, "A multilevel meta-regression", True),
    ):
        if fit is not None:
            on = f" on {term_words(fit.model.formula)}" if with_mods else ""
            parts.append(
                f"{what}{on} with random effects for {_levels(fit)} was fitted by "
                f"{ESTIMATORS.get(fit.method, fit.method)}, with {inference_words(fit)}."
            )
    dose = run.models.dose_response
    if dose is not None:
        parts.append(
            f"A dose-response meta-regression on log10 dose (µg protein per kg) used {dose.k} comparisons and "
            f"{inference_words(dose)}."
        )
    return parts


def _small_study_sentence(run: ReportedRun) -> str:
    done = []
    egger = run.models.egger
    if egger:
        on = [
            w
            for key, w in (
                ("sei", "the standard error"),
                ("sqrt_inv_n", "the square root of 1/n"),
            )
            if key in egger
        ]
        done.append(
            "Egger regression on "
            + " and on ".join(on)
            + (" (Zwetsloot et al. 2017)" if "sqrt_inv_n" in egger else "")
        )
    if run.models.trim_and_fill is not None:
        done.append("trim-and-fill (L0)")
    if run.models.pet_peese is not None:
        done.append("PET-PEESE")
    if not done:
        return ""
    k = run.models.main.k
    caveat = (
        f" With {k} comparisons (fewer than {SMALL_STUDY_MIN_K}), these tests and the funnel plot have too little "
        "power to distinguish chance from small-study effects and are reported as descriptive only "
        "(Sterne et al. 2011)."
        if k < SMALL_STUDY_MIN_K
        else ""
    )
    listing = done[0] if len(done) == 1 else ", ".join(done[:-1]) + " and " + done[-1]
    return f"Small-study effects were assessed with {listing}.{caveat}"


#: Cited when the run fitted the bias-averaged ensemble with moderators.
BIAS_MODERATORS_REFERENCE = (
    "Bartos F, Maier M, Stanley TD, Wagenmakers E-J (2023). Robust Bayesian meta-regression: model-averaged "
    "moderation analysis in the presence of publication bias. Psychol Methods."
)


def bias_moderators_sentence(run: Any) -> str:
    """The ensemble with the ``[bias]`` moderators in words: which moderators, which priors,
    how the marginal likelihoods were computed, and that a multilevel ensemble has no
    selection models; "" when it was not fitted."""
    fit = run.models.bias_moderators
    if fit is None:
        return ""
    p = fit.priors
    numeric = fit.numeric_moderators
    tau = (
        f"a log-normal prior with log-scale mean {p.tau_lognormal[0]:g} and standard deviation {p.tau_lognormal[1]:g}"
        if p.tau_lognormal
        else f"an inverse-gamma prior with shape {p.tau_shape:g} and scale {p.tau_scale:g}"
    )
    several = len(fit.moderators) > 1
    coefficients = [
        *(["each level's deviation from the overall effect"] if fit.factor else []),
        *(["each numeric moderator's slope per standard deviation"] if numeric else []),
    ]
    bias = (
        "no bias, PET or PEESE"
        if fit.cluster
        else f"no bias, a one-sided step selection at p = {fit.cut:g}, PET or PEESE"
    )
    parts = [
        f"{term_words(' + '.join(fit.moderators)).capitalize()} {'were' if several else 'was'} put into the Bayesian "
        f"model-averaged publication-bias ensemble as {'moderators' if several else 'a moderator'} (Bartos et al. "
        f"2023): every model combined an effect or none, heterogeneity or none, {bias}, and each moderator in or "
        "out with prior probability 1/2.",
        f"The overall effect had a normal prior with mean 0 and standard deviation {p.mu_sd:g}, the "
        f"between-comparison standard deviation {tau}, the PET and PEESE slopes half-normal priors with scales "
        f"{p.pet_sd:g} and {p.peese_sd:g}"
        + ("" if fit.cluster else ", the relative publication probability a uniform prior")
        + f", and {' and '.join(coefficients)} a normal prior with mean 0 and standard deviation {p.moderator_sd:g}.",
    ]
    if fit.cluster is not None:
        parts.append(
            f"Comparisons of one {fit.cluster.replace('_', ' ')} shared a random effect (the share of the "
            "heterogeneity between them with a uniform prior), and the step-selection models were left out of this "
            "multilevel ensemble, whose bias component was PET or PEESE against none."
        )
    computed = (
        "Marginal likelihoods were computed in closed form given the heterogeneity and by converged numerical "
        "integration over the rest, without Markov chain Monte Carlo"
    )
    if numeric and fit.cluster is None:
        computed += (
            f"; in the selection models the slope of {term_words(' + '.join(numeric))} was an extra axis of the "
            "numerical integration"
        )
    parts.append(computed + ".")
    return " ".join(parts)


#: The references that only a table with those items scored cites.
SYRCLE_REFERENCE = next(r for r in REFERENCES if "SYRCLE" in r)
MISEV_REFERENCE = next(r for r in REFERENCES if "MISEV" in r)


def scored(table: pd.DataFrame) -> tuple[bool, bool]:
    """Whether the comparisons have SYRCLE judgements entered, and MISEV items scored (an
    MSC-EV preparation reporting at least one item; a non-EV table has none)."""
    from evmeta.harmonize.quality import syrcle_columns

    syrcle = bool(table.reindex(columns=syrcle_columns()).notna().any().any())
    items = table.get("misev_items_reported")
    misev = bool(items is not None and (items.astype(float) > 0).any())
    return syrcle, misev


def scoring_sentence(table: pd.DataFrame) -> str:
    """What was scored, only what was: SYRCLE risk of bias, MISEV2018 characterization
    quality, both, or neither ("" then)."""
    syrcle, misev = scored(table)
    if syrcle and misev:
        return (
            "Risk of bias was judged with SYRCLE's tool and characterization quality scored as the fraction of "
            "MISEV2018 minimal items reported."
        )
    if syrcle:
        return "Risk of bias was judged with SYRCLE's tool."
    if misev:
        return "Characterization quality was scored as the fraction of MISEV2018 minimal items reported."
    return ""


def references(run: ReportedRun) -> list[str]:
    """:data:`REFERENCES` without SYRCLE's and MISEV's when the run's table did not score them."""
    syrcle, misev = scored(run.tables.pooled)
    left_out = {ref for ref, used in ((SYRCLE_REFERENCE, syrcle), (MISEV_REFERENCE, misev)) if not used}
    cited = [ref for ref in REFERENCES if ref not in left_out]
    if run.models.bias_moderators is not None:
        cited.append(BIAS_MODERATORS_REFERENCE)
    return cited


def methods_paragraph(run: ReportedRun) -> str:
    """The Methods text in words (no code identifiers): only the analyses that were fitted,
    each with the test it used (read from the fitted result)."""
    spec = run.spec
    c = spec.comparisons
    main = run.models.main
    outcomes = ", ".join(c.outcomes) if c.outcomes else "all outcomes"
    treatment, treated = spec.analysis.intervention, spec.analysis.treated
    parts = [
        f"Effect sizes were {measure_words(main.measure or c.measure, c)} comparing each arm given {treatment} with "
        f"the control arm of the same experiment ({outcomes}; {c.timepoint} time point), signed so that positive "
        f"values favour {treatment}. Standard deviations reported as SEM or confidence intervals were converted, and "
        "medians with interquartile ranges were converted to means and SDs (Wan et al. 2014).",
        *filter(None, [conversion_sentence(run)]),
        (
            f"Control groups shared by several {treated} arms had their size divided by the number of arms (CAMARADES)."
            if c.shared_control == "split"
            else "Shared control groups were kept whole and modelled as a level of nesting."
        ),
        *_frequentist_sentences(run),
    ]
    bayes = run.models.bayesian
    if bayes is not None:
        parts.append(bayesian_sentences(run, bayes))
    small = _small_study_sentence(run)
    if small:
        parts.append(small)
    moderated = bias_moderators_sentence(run)
    if moderated:
        parts.append(moderated)
    scoring = scoring_sentence(run.tables.pooled)
    if scoring:
        parts.append(scoring)
    versions = run.provenance.get("versions", {})
    software = ", ".join(
        f"{k} {v}"
        for k, v in versions.items()
        if k in {"evmeta", "python", "numpy", "scipy", "pymc", "nutpie"}
    )
    parts.append(f"Analyses used {software}.")
    return " ".join(parts)
