"""Context of the optional report section ``templates/bias.html.j2`` (issue 16): selection
model, bias model averaging with the preclinical-prior sensitivity analysis, and the within- vs
between-study isolation-method evidence. Reads what the pipeline stage stored on the run;
computes no statistics. Its tables go through the report's own formatter
(:func:`evmeta.report.tables.html_table`), like every other table of the report."""

from __future__ import annotations

from typing import Any

import pandas as pd

from evmeta.formatting import format_p, number, percent, significant
from evmeta.report.run_view import ReportedRun
from evmeta.report.svg import figure_svgs
from evmeta.report.tables import html_table

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


def bias_context(run: ReportedRun) -> dict[str, Any] | None:
    """Values for ``bias.html.j2``, or None when the stage did not run."""
    bma = run.models.bias_averaging.get("default")
    selection = run.models.selection_model
    evidence = run.tables.isolation_evidence
    if bma is None and selection is None and evidence is None:
        return None
    out: dict[str, Any] = {"selection": None, "averaging": None, "evidence": None, "evidence_sentence": None}
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
