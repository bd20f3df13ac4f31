"""Context of the optional report section ``templates/bias.html.j2`` (issue 16): selection
model, bias model averaging with the preclinical-prior sensitivity analysis, the ensemble with
the moderators of ``[bias]`` (inclusion Bayes factors, bias-adjusted marginal means; read from
``run.models.bias_moderators``), and the within- vs between-study isolation-method evidence. Reads what the pipeline stage stored on the run;
computes no statistics. Its tables go through the report's own formatter
(:func:`evmeta.report.tables.html_table`), like every other table of the report."""

from __future__ import annotations

from typing import Any

import pandas as pd

from evmeta.formatting import format_p, number, percent, significant
from evmeta.report.run_view import ReportedRun
from evmeta.report.svg import figure_svgs
from evmeta.report.tables import html_table
from evmeta.schema.vocabulary import display_label

#: The ensemble's publication-bias components in words (as in the bias panel figure).
BIAS_WORDS = {"none": "no bias", "selection": "step selection", "pet": "PET", "peese": "PEESE"}
#: The two heterogeneity priors of the sensitivity analysis.
PRIOR_WORDS = {"default": "weakly informative (RoBMA default)", "preclinical": "preclinical"}

SELECTION_HEADINGS = {
    "interval": "one-sided p-value",
    "delta": "relative publication probability",
    "delta_se": "SE",
}
MODEL_HEADINGS = {"bias": "publication bias", "mu_mean": "mean effect"}
SENSITIVITY_HEADINGS = {
    "priors": "heterogeneity prior",
    "tau_prior": "prior on τ",
    "estimate": "model-averaged effect",
    "bf_effect": "BF₁₀ effect",
    "bf_heterogeneity": "BF₁₀ heterogeneity",
    "bf_bias": "BF₁₀ bias",
}
EVIDENCE_HEADINGS = {
    "method": "method vs UC",
    "within_estimate": "within-study estimate",
    "within_ci_low": "within {pct} CI low",
    "within_ci_high": "within {pct} CI high",
    "k_within_studies": "studies comparing methods",
    "between_estimate": "between-study estimate",
    "between_ci_low": "between {pct} CI low",
    "between_ci_high": "between {pct} CI high",
    "difference_pvalue": "p (within vs between)",
}

#: The ensemble's components in the inclusion table (moderators: their column in words).
COMPONENT_WORDS = {"effect": "effect", "heterogeneity": "heterogeneity", "bias": "publication bias"}
INCLUSION_HEADINGS = {
    "term": "component",
    "prior_prob": "prior inclusion probability",
    "posterior_prob": "posterior inclusion probability",
    "inclusion_bf": "inclusion BF₁₀",
}
MEANS_HEADINGS = {"estimate": "bias-adjusted mean"}

#: The isolation section's one sentence when no study compares isolation methods.
NO_WITHIN_STUDY = (
    "No study compared isolation methods within the same experiment, so within- and between-study "
    "evidence on isolation methods cannot be separated: every isolation-method difference in this report "
    "is a comparison between studies, open to confounding by everything else that differs between them."
)


def within_study_comparisons(evidence: pd.DataFrame | None) -> bool:
    """Whether any study compares isolation methods (a within-study estimate exists)."""
    return evidence is not None and bool((evidence["k_within_studies"].fillna(0) > 0).any())


def _prior_text(text: str) -> str:
    """'inverse_gamma(1, 0.15)' -> 'inverse-gamma(1, 0.15)' (distribution names as printed)."""
    return str(text).replace("inverse_gamma", "inverse-gamma").replace("lognormal", "log-normal")


def _selection_table(selection: Any) -> str:
    frame = selection.weights_frame().reset_index()
    frame["interval"] = frame["interval"].str.replace("<=", "≤", regex=False)
    return html_table(frame, headings=SELECTION_HEADINGS, constant_note=False, level=selection.level)


def _models_table(bma: Any) -> str:
    """The 16 models, most probable first: effect and heterogeneity as yes/no, bias in words."""
    frame = bma.models.sort_values("posterior_prob", ascending=False)
    frame = frame[
        [
            "effect",
            "heterogeneity",
            "bias",
            "prior_prob",
            "posterior_prob",
            "log_marginal_likelihood",
            "mu_mean",
        ]
    ]
    frame = frame.assign(bias=frame["bias"].map(BIAS_WORDS).fillna(frame["bias"]))
    return html_table(frame, headings=MODEL_HEADINGS, constant_note=False, level=bma.level, interval="CrI")


def _sensitivity_table(frame: pd.DataFrame | None, level: float) -> str:
    if frame is None or len(frame) == 0:
        return ""
    frame = frame.assign(
        priors=frame["priors"].map(PRIOR_WORDS).fillna(frame["priors"]),
        tau_prior=frame["tau_prior"].map(_prior_text),
    )
    return html_table(frame, headings=SENSITIVITY_HEADINGS, constant_note=False, level=level, interval="CrI")


def _column_words(name: str) -> str:
    return name.replace("_", " ")


def _inclusion_table(fit: Any) -> str:
    """Inclusion probabilities and Bayes factors of effect, heterogeneity, bias, each moderator."""
    frame = fit.inclusion_table().reset_index()
    frame = frame.rename(
        columns={"prior_inclusion_prob": "prior_prob", "posterior_inclusion_prob": "posterior_prob"}
    )
    frame["term"] = [COMPONENT_WORDS.get(term, _column_words(term)) for term in frame["term"]]
    return html_table(
        frame, headings=INCLUSION_HEADINGS, constant_note=False, level=fit.level, interval="CrI"
    )


def _means_table(fit: Any) -> str:
    """The bias-adjusted mean of each level (level codes in words through the table's
    vocabulary formatting), its posterior SD and credible interval at the fit's level."""
    frame = fit.marginal_means.reset_index()
    factor = str(fit.factor)
    headings = {**MEANS_HEADINGS, factor: _column_words(factor)}
    return html_table(frame, headings=headings, constant_note=False, level=fit.level, interval="CrI")


def moderators_context(fit: Any) -> dict[str, Any]:
    """Values of the subsection on the ensemble with moderators (``fit`` a
    :class:`~evmeta.models.bias.averaging.BiasAveragingResult` fitted with ``mods=``)."""
    factor = fit.factor
    return {
        "moderators": ", ".join(_column_words(name) for name in fit.moderators),
        "factor": _column_words(factor) if factor else None,
        "numeric": bool(fit.numeric_moderators),
        "several": len(fit.moderators) > 1,
        "prior": f"normal(0, {fit.priors.moderator_sd:g})",
        "cluster": _column_words(fit.cluster) if fit.cluster else None,
        "k": fit.k,
        "n_models": len(fit.models),
        "pct": percent(fit.level),
        "estimate": f"{number(fit.estimate)} [{number(fit.ci_low)}, {number(fit.ci_high)}]",
        "inclusion": _inclusion_table(fit),
        "means": _means_table(fit) if factor else None,
        "single": _single_levels(fit),
        "notes": list(fit.notes),
    }


def _single_levels(fit: Any) -> str:
    """The levels whose mean rests on one comparison, in words ("" when none)."""
    if fit.marginal_means is None:
        return ""
    means = fit.marginal_means
    return ", ".join(display_label(str(level), fit.factor) for level in means.index[means["k"] == 1])


def bias_context(run: ReportedRun) -> dict[str, Any] | None:
    """Values for ``bias.html.j2``, or None when the stage did not run."""
    bma = run.models.bias_averaging.get("default")
    moderated = run.models.bias_moderators
    selection = run.models.selection_model
    evidence = run.tables.isolation_evidence
    if bma is None and moderated is None and selection is None and evidence is None:
        return None
    out: dict[str, Any] = {
        "selection": None,
        "averaging": None,
        "moderators": moderators_context(moderated) if moderated is not None else None,
        "evidence": None,
        "evidence_sentence": None,
    }
    if selection is not None:
        out["selection"] = {
            "estimate": f"{number(selection.estimate)} [{number(selection.ci_low)}, {number(selection.ci_high)}]",
            "lrt": f"χ²({selection.lrt_df}) = {selection.lrt:.2f}, {format_p(selection.lrt_pvalue)}",
            "weights": _selection_table(selection),
        }
    if bma is not None:
        out["averaging"] = {
            "estimate": f"{number(bma.estimate)} [{number(bma.ci_low)}, {number(bma.ci_high)}]",
            "pct": percent(bma.level),
            "bf": "; ".join(f"{k} {significant(v)}" for k, v in bma.inclusion_bf.items()),
            "models": _models_table(bma),
            "sensitivity": _sensitivity_table(run.tables.preclinical_prior_sensitivity, bma.level),
        }
    if evidence is not None and not within_study_comparisons(evidence):
        out["evidence_sentence"] = NO_WITHIN_STUDY
    elif evidence is not None:
        level = run.models.main.level  # the stage fits the evidence at the analysis' level
        headings = {name: text.replace("{pct}", percent(level)) for name, text in EVIDENCE_HEADINGS.items()}
        out["evidence"] = {"table": html_table(evidence[list(EVIDENCE_HEADINGS)], headings=headings, level=level)}
    out["figures"] = {
        name: "".join(figure_svgs(run.figures.get(name))) for name in ("bias_panel", "isolation_evidence")
    }
    return out
