"""The generated methods paragraph and its references."""

from __future__ import annotations

from typing import Any

MEASURES = {
    "SMD": "standardized mean differences (Hedges' g with the exact small-sample correction)",
    "MD": "mean differences",
    "ROM": "log ratios of means",
    "NMD": "normalized mean differences",
    "OR": "log odds ratios",
    "RR": "log risk ratios",
    "RD": "risk differences",
}
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
    "Stanley TD, Doucouliagos H (2014). Meta-regression approximations to reduce publication selection bias. Res Synth Methods 5:60-78.",
    "Zwetsloot P-P et al. (2017). Standardized mean differences cause funnel plot distortion in publication bias assessments. eLife 6:e24260.",
    "Hooijmans CR et al. (2014). SYRCLE's risk of bias tool for animal studies. BMC Med Res Methodol 14:43.",
    "Théry C et al. (2018). Minimal information for studies of extracellular vesicles 2018 (MISEV2018). J Extracell Vesicles 7:1535750.",
    "Wan X et al. (2014). Estimating the sample mean and standard deviation from the sample size, median, range and/or interquartile range. BMC Med Res Methodol 14:135.",
]


def methods_paragraph(run: Any) -> str:
    spec = run.spec
    c, f, b = spec.comparisons, spec.frequentist, spec.bayesian
    main = run.models["random_effects"]
    outcomes = ", ".join(c.outcomes) if c.outcomes else "all outcomes"
    parts = [
        f"Effect sizes were {MEASURES.get(main.measure or c.measure, c.measure)} comparing each EV-treated arm with the "
        f"vehicle-control arm of the same experiment ({outcomes}; {c.timepoint} time point), signed so that positive "
        "values favour EVs. Standard deviations reported as SEM or confidence intervals were converted, and medians with "
        "interquartile ranges were converted to means and SDs (Wan et al. 2014).",
        (
            "Control groups shared by several EV arms had their size divided by the number of arms (CAMARADES)."
            if c.shared_control == "split"
            else "Shared control groups were kept whole and modelled as a level of nesting."
        ),
        f"Effects were pooled with a random-effects model, tau² estimated by {ESTIMATORS[f.method]}"
        + (" and confidence intervals by the Knapp-Hartung method" if f.test == "knha" else "")
        + ", with a 95% prediction interval.",
    ]
    if f.subgroups:
        parts.append(
            f"Subgroups ({', '.join(f.subgroups)}) were compared with tests for subgroup differences under separate "
            "and common tau², Bonferroni-corrected for the number of stratifications."
        )
    if f.meta_regression:
        parts.append(f"Meta-regression ({f.meta_regression.strip('~ ')}) was fitted with the same estimator")
        if f.multilevel:
            parts[-1] += (
                f", and as a multilevel model with random effects for {' and '.join(f.multilevel)}"
                + (
                    " and cluster-robust (CR2) standard errors with Satterthwaite degrees of freedom"
                    if f.robust
                    else ""
                )
            )
        parts[-1] += "."
    bayes = run.models.get("bayesian")
    if bayes is not None:
        how = (
            "its exact posterior was computed by numerical integration over the random-effect standard deviations "
            "(no Monte Carlo error)"
            if bayes.method_used == "quadrature"
            else f"it was sampled with NUTS ({bayes.diagnostics['sampler']}), convergence judged by R-hat <= 1.01, "
            "bulk ESS >= 400 and no divergent transitions"
        )
        priors = "; ".join(f"{k} ~ {v}" for k, v in bayes.priors.items())
        parts.append(
            f"A Bayesian hierarchical meta-regression ({b.mods.strip('~ ') if b.mods else 'no moderators'}; "
            f"levels: {', '.join(bayes.levels)}) was fitted with priors {priors}; {how}."
        )
    parts.append(
        "Small-study effects were assessed with Egger regression on the standard error and on sqrt(1/n) "
        "(Zwetsloot et al. 2017), trim-and-fill (L0) and PET-PEESE. Risk of bias was judged with SYRCLE's tool "
        "and characterization quality scored as the fraction of MISEV2018 minimal items reported."
    )
    versions = run.provenance.get("versions", {})
    software = ", ".join(
        f"{k} {v}"
        for k, v in versions.items()
        if k in {"evmeta", "python", "numpy", "scipy", "pymc", "nutpie"}
    )
    parts.append(f"Analyses used {software}.")
    return " ".join(parts)
