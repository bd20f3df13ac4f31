"""The ``[dose_response]`` stage of :func:`evmeta.run_analysis`: the one-stage dose-response
curve (:func:`evmeta.models.dose_response_meta_analysis`), its sensitivity analysis on doses that
were not imputed, the curve as ``dose_response_curve.csv`` and the report section
(``report/templates/partials/dose_response.html.j2``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.errors import EvmetaError
from evmeta.formatting import amount, percent, printed_powers
from evmeta.harmonize.arm_doses import from_reference_weight
from evmeta.models import dose_response_meta_analysis
from evmeta.models.dose_response.selection import readable_basis
from evmeta.schema.vocabulary import display_label
from evmeta.sheets.export import write_csv

if TYPE_CHECKING:  # for the annotations only
    from evmeta.analysis.run_state import RunState
    from evmeta.models.dose_response.result import DoseResponseResult
    from evmeta.models.dose_response.within_between import WithinBetween

#: Columns of the table of comparisons that entered the curve, in the report.
ENTERED = ["comparison_id", "study_id", "isolation_method", "species", "dose", "dose_provenance", "yi"]


def dose_response_stage(run: RunState, table: pd.DataFrame) -> None:
    """Fit the spec's dose-response curve; a curve that cannot be fitted becomes a note."""
    spec = run.spec.dose_response
    assert spec is not None, "the stage of a [dose_response] section"  # checked by the caller
    settings = dict(
        dose=spec.dose,
        model=spec.model,
        scale=spec.scale,
        knots=tuple(spec.knots),
        share=spec.share,
        method=run.spec.frequentist.method if run.spec.frequentist.method in {"REML", "ML"} else "REML",
        test="t" if run.spec.frequentist.test == "knha" else "z",
        level=run.spec.frequentist.level,
    )
    try:
        fit = dose_response_meta_analysis(table, **settings)
    except EvmetaError as exc:
        run.notes.append(
            f"dose-response ({spec.model} curve on {readable_basis(spec.dose)}): not fitted ({exc})"
        )
        return
    run.models = run.models.with_(dose_response=fit)
    run.notes.extend(f"dose-response: {note}" for note in fit.notes)
    sensitivity = None
    if spec.reported_only_sensitivity:
        try:
            sensitivity = dose_response_meta_analysis(table, reported_only=True, **settings)
        except EvmetaError as exc:
            run.notes.append(f"dose-response on doses not imputed: not fitted ({exc})")
    run.files.append(write_csv(fit.curve(), run.output / "dose_response_curve.csv"))
    from evmeta.report.sections import ReportSection

    run.report_sections.append(
        ReportSection(
            id="dose-response-curve",  # the figure is "dose-response"
            title="Dose-response across and within studies",
            template="partials/dose_response.html.j2",
            context=_context(fit, sensitivity, len(table)),
        )
    )


def _number(value: float) -> str:
    return "not located" if not np.isfinite(value) else amount(value)


def _effective_dose(fit: DoseResponseResult) -> str:
    e = fit.effective_dose
    text = f"ED{e.share * 100:.0f} = {_number(e.dose)}"
    if np.isfinite(e.dose):
        text += f" ({percent(e.level)} CI {_number(e.ci_low)} to {_number(e.ci_high)}; {e.method})"
    return printed_powers(text + (f": {e.note}" if e.note else ""))


def _context(fit: DoseResponseResult, sensitivity: DoseResponseResult | None, total: int) -> dict[str, Any]:
    curve = fit.curve(7)[["dose", "pred", "ci_low", "ci_high", "pi_low", "pi_high"]]
    entered = _entered(fit)
    wb = fit.within_between
    context = {
        "model": fit.model,
        "dose": readable_basis(fit.dose),
        "k": fit.k,
        "total": total,
        "n_studies": fit.n_studies,
        "random": " / ".join(fit.random),
        "shared_v": bool(np.any(fit.V[~np.eye(len(fit.V), dtype=bool)] != 0)),
        "knots": ""
        if fit.spline is None
        else ", ".join(
            amount(v)
            for v in fit.from_scale([fit.spline.boundary[0], *fit.spline.knots, fit.spline.boundary[1]])
        ),
        "coefficients": _coefficients(fit),
        "curve": curve,
        "effective_dose": _effective_dose(fit),
        "within_between": None if wb is None else wb.to_frame().reset_index(),
        "within_between_text": _within_between_text(wb),
        "entered": entered,
        "reference_weight": _reference_weight_sentence(fit),
        "excluded": fit.excluded,
        "notes": [printed_powers(note) for note in fit.notes],
        "sensitivity": None,
    }
    if sensitivity is not None:
        context["sensitivity"] = {
            "k": sensitivity.k,
            "coefficients": _coefficients(sensitivity),
            "effective_dose": _effective_dose(sensitivity),
        }
    return context


def _entered(fit: DoseResponseResult) -> pd.DataFrame:
    """The comparisons in the curve, with whether each dose came from a reference body weight."""
    entered = fit.data[[c for c in ENTERED if c in fit.data.columns]].copy()
    at = list(entered.columns).index("dose") + 1 if "dose" in entered.columns else len(entered.columns)
    entered.insert(at, "reference_weight", from_reference_weight(fit.data, fit.dose).to_numpy())
    return entered


def _reference_weight_sentence(fit: DoseResponseResult) -> str:
    """How many doses are per kg (or per animal) only through the species' reference body
    weight, and which weights those were."""
    marked = from_reference_weight(fit.data, fit.dose).to_numpy()
    if not marked.any():
        return ""
    per, other = ("kg", "animal") if fit.dose.endswith("per_kg") else ("animal", "kg")
    rows = fit.data[marked]
    weights = ""
    if {"species", "dose_body_weight_kg_used"} <= set(rows.columns):
        used = rows.groupby("species", observed=True)["dose_body_weight_kg_used"].first()
        weights = " (" + ", ".join(f"{display_label(s, 'species')} {w:g} kg" for s, w in used.items()) + ")"
    return (
        f"{int(marked.sum())} of the {fit.k} doses were reported per {other} without the animals' body weight: "
        f"they are per {per} only through the species' reference body weight{weights}, an approximation, "
        "and are marked in the table of comparisons below and ringed in the dose-response figure."
    )


def _coefficients(fit: DoseResponseResult) -> pd.DataFrame:
    return fit.coef_table()[["estimate", "se", "ci_low", "ci_high", "pvalue"]].reset_index(names="term")


def _within_between_text(wb: WithinBetween | None) -> str:
    if wb is None:
        return "No study gave two or more doses, so within-study dose information cannot be separated."
    verdict = "disagree" if wb.pvalue < 0.05 else "do not detectably disagree"
    return (
        f"{wb.n_multi_dose_studies} of {wb.n_studies} studies gave two or more doses. The slope per unit of log10 "
        f"dose within studies is {wb.within:.2f} (SE {wb.within_se:.2f}) and between studies {wb.between:.2f} "
        f"(SE {wb.between_se:.2f}); the two sources {verdict} (difference {wb.difference:.2f}, "
        f"z = {wb.z:.2f}, p = {wb.pvalue:.3g})." + "".join(f" {n}." for n in wb.notes)
    )
