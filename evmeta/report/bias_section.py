"""Context of the optional report section ``templates/bias.html.j2`` (issue 16): selection
model, bias model averaging with the preclinical-prior sensitivity analysis, and the within- vs
between-study isolation-method evidence. Reads what the pipeline stage stored on the run;
computes no statistics."""

from __future__ import annotations

from typing import Any

import pandas as pd

from evmeta.report.svg import figure_svgs


def _html(frame: pd.DataFrame | None, digits: int = 3) -> str:
    if frame is None or len(frame) == 0:
        return ""
    return frame.to_html(
        index=False,
        float_format=lambda x: f"{x:.{digits}g}" if abs(x) >= 1e4 else f"{x:.{digits}f}",
        na_rep="",
        border=0,
        classes="table",
        escape=True,
    )


def bias_context(run: Any) -> dict[str, Any] | None:
    """Values for ``bias.html.j2``, or None when the stage did not run."""
    bma = run.models.get("bias_averaging")
    selection = run.models.get("selection_model")
    evidence = run.tables.get("isolation_evidence")
    if bma is None and selection is None and evidence is None:
        return None
    out: dict[str, Any] = {"selection": None, "averaging": None, "evidence": None}
    if selection is not None:
        out["selection"] = {
            "estimate": f"{selection.estimate:.2f} [{selection.ci_low:.2f}, {selection.ci_high:.2f}]",
            "lrt": f"X2({selection.lrt_df}) = {selection.lrt:.2f}, p = {selection.lrt_pvalue:.3g}",
            "weights": _html(selection.weights_frame().reset_index()),
        }
    if bma is not None:
        shown = bma.models[["model", "prior_prob", "posterior_prob", "log_marginal_likelihood", "mu_mean"]]
        out["averaging"] = {
            "estimate": f"{bma.estimate:.2f} [{bma.ci_low:.2f}, {bma.ci_high:.2f}]",
            "bf": "; ".join(f"{k} {v:.3g}" for k, v in bma.inclusion_bf.items()),
            "models": _html(shown.sort_values("posterior_prob", ascending=False)),
            "sensitivity": _html(run.tables.get("preclinical_prior_sensitivity")),
        }
    if evidence is not None:
        columns = [
            "method",
            "within_estimate",
            "within_ci_low",
            "within_ci_high",
            "k_within_studies",
            "between_estimate",
            "between_ci_low",
            "between_ci_high",
            "difference_pvalue",
        ]
        out["evidence"] = {"table": _html(evidence[columns])}
    out["figures"] = {name: "".join(figure_svgs(run.figures.get(name))) for name in ("bias_panel", "isolation_evidence")}
    return out
