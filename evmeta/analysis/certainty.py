"""The certainty stage of :func:`evmeta.run_analysis`: the summary of findings with GRADE
certainty for animal evidence (:mod:`evmeta.report.certainty`), one row per outcome (and one
for all outcomes pooled when there are several), written to ``certainty.csv``,
``summary_of_findings.docx`` and a report section.

The pooled row reads the run's own models (:func:`_run_models`, the one place that knows
their names); each outcome's row fits the spec's random-effects model, Egger's test,
trim-and-fill, the selection model and bias model averaging on that outcome's comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
from scipy import stats

from evmeta.analysis.spec import DEFAULT_INTERVENTION
from evmeta.errors import EvmetaError, SpecError
from evmeta.harmonize.quality import syrcle_columns
from evmeta.report.certainty import (
    CertaintySettings,
    OutcomeEvidence,
    Override,
    SummaryOfFindings,
    summary_of_findings,
    table_rows,
)
from evmeta.report.certainty.rules import KEY_ROB_ITEMS, MIN_K_FUNNEL
from evmeta.schema.vocabulary import display_label

if TYPE_CHECKING:  # the run's state and its spec, for the annotations only
    from evmeta.analysis.certainty_spec import CertaintySection
    from evmeta.analysis.run_state import RunState
    from evmeta.analysis.spec import AnalysisSpec

_T = TypeVar("_T")

POOLED = "all outcomes"
TITLE = "Summary of findings with certainty (GRADE for animal studies)"
HED = (("dose_hed_ug_protein_per_kg", "µg protein/kg"), ("dose_hed_particles_per_kg", "particles/kg"))


def certainty_stage(run: RunState, table: pd.DataFrame) -> SummaryOfFindings | None:
    """Judge, write ``certainty.csv`` and ``summary_of_findings.docx``, add the report section.

    Raises
    ------
    SpecError
        An override names an outcome the analysis does not have.
    """
    spec = run.spec.certainty
    if not spec.enabled:
        return None
    outcomes, names = _row_names(table)
    overrides = _overrides(spec, names)
    evidence = [_pooled_evidence(run, table, names[0])]
    if len(outcomes) > 1:
        evidence += [_outcome_evidence(run, table[table["outcome"] == o].reset_index(drop=True), o) for o in outcomes]
    settings = CertaintySettings(spec.important_effect, spec.ois_smd, spec.alpha, spec.power)
    summary = summary_of_findings(evidence, settings, overrides)
    _write(run, summary)
    return summary


def _row_names(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The outcomes, and the rows of the table: the outcome, or all outcomes pooled then each."""
    outcomes = [str(o) for o in pd.unique(table["outcome"])]
    return outcomes, outcomes if len(outcomes) == 1 else [POOLED, *outcomes]


def check_overrides(spec: AnalysisSpec, table: pd.DataFrame) -> None:
    """Refuse, before any model is fitted, an override naming an outcome the analysis lacks."""
    if spec.certainty.enabled:
        _overrides(spec.certainty, _row_names(table)[1])


def _overrides(spec: CertaintySection, names: list[str]) -> list[Override]:
    out = []
    for i, entry in enumerate(spec.override):
        if entry.outcome != "*" and entry.outcome not in names:
            valid = ", ".join(repr(n) for n in [*names, "*"])
            raise SpecError(
                f"certainty.override[{i}].outcome: {entry.outcome!r} is not an outcome of this analysis; "
                f"valid: {valid}"
            )
        out.append(Override(entry.outcome, entry.domain, entry.judgement, entry.reason))
    return out


def _run_models(run: RunState) -> dict[str, Any]:
    """The run's fitted models the pooled row reads (None where not fitted)."""
    models = run.models  # evmeta.results.AnalysisModels
    main = models.random_effects
    predictor = "sqrt_inv_n" if getattr(main, "measure", "") == "SMD" else "sei"
    return {
        "main": main,
        "egger": models.egger.get(predictor),
        "trim_and_fill": models.trim_and_fill,
        "selection": models.selection_model,
        "bma": models.bias_averaging.get("default"),
        "location_scale": models.location_scale,
    }


def _attempt(run: RunState, name: str, fit: Callable[[], _T]) -> _T | None:
    try:
        return fit()
    except EvmetaError as exc:  # a documented refusal becomes a note; a bug surfaces
        run.notes.append(f"certainty, {name}: not fitted ({exc})")
        return None


def _fit_outcome(run: RunState, sub: pd.DataFrame, outcome: str) -> dict[str, Any]:
    """The models of one outcome's row (bias analyses only from :data:`MIN_K_FUNNEL` comparisons)."""
    from evmeta.models import bias_model_averaging, egger_test, meta_analysis, selection_model, trim_and_fill

    s = run.spec.frequentist
    fits: dict[str, Any] = dict.fromkeys(["main", "egger", "trim_and_fill", "selection", "bma"])
    if len(sub) < 2:
        return fits
    main = _attempt(run, outcome, lambda: meta_analysis(sub, method=s.method, test=s.test, level=s.level))
    fits["main"] = main
    if main is None or len(sub) < MIN_K_FUNNEL:
        return fits
    predictor = "sqrt_inv_n" if main.measure == "SMD" else "sei"
    fits["egger"] = _attempt(run, f"{outcome}: Egger test", lambda: egger_test(main, predictor))
    fits["trim_and_fill"] = _attempt(run, f"{outcome}: trim-and-fill", lambda: trim_and_fill(main))
    fits["selection"] = _attempt(run, f"{outcome}: selection model", lambda: selection_model(main))
    fits["bma"] = _attempt(run, f"{outcome}: bias model averaging", lambda: bias_model_averaging(sub))
    return fits


def _pooled_evidence(run: RunState, table: pd.DataFrame, name: str) -> OutcomeEvidence:
    fits = _run_models(run)
    taus = None
    if fits["location_scale"] is not None:
        levels = fits["location_scale"].heterogeneity_table()
        taus = {str(label): float(tau) for label, tau in zip(levels["label"], levels["tau"], strict=True)}
    return _evidence(table, name, fits, taus, run.spec.frequentist.level)


def _outcome_evidence(run: RunState, sub: pd.DataFrame, outcome: str) -> OutcomeEvidence:
    return _evidence(sub, outcome, _fit_outcome(run, sub, outcome), None, run.spec.frequentist.level)


def _interval(fit: Any) -> tuple[float, float] | None:
    return None if fit is None else (float(fit.ci_low), float(fit.ci_high))


def _evidence(
    sub: pd.DataFrame, name: str, fits: dict[str, Any], taus: dict[str, float] | None, level: float
) -> OutcomeEvidence:
    """Plain numbers of one row from its comparisons and fitted models."""
    main = fits["main"]
    yi, vi = sub["yi"].to_numpy(float), sub["vi"].to_numpy(float)
    measures: list[Any] = list(pd.unique(sub["measure"])) if "measure" in sub else []
    measure = str(measures[0]) if len(measures) == 1 else "/".join(map(str, measures))
    if main is not None:
        effect = dict(
            estimate=main.estimate, ci_low=main.ci_low, ci_high=main.ci_high,
            pi_low=main.pi_low, pi_high=main.pi_high, i2=main.i2,
        )  # fmt: skip
        weights = 1 / (vi + float(getattr(main, "tau2", 0.0)))
    elif len(sub) == 1:  # one comparison: its own estimate and Wald interval
        z = stats.norm.ppf(0.5 + level / 2)
        se = float(np.sqrt(vi[0]))
        effect = dict(estimate=yi[0], ci_low=yi[0] - z * se, ci_high=yi[0] + z * se)
        weights = 1 / vi
    else:
        effect, weights = {}, 1 / vi
    hed_column, hed_unit = next(
        ((c, u) for c, u in HED if c in sub and sub[c].notna().any()), (HED[0][0], HED[0][1])
    )
    egger, tf, sel, bma = fits["egger"], fits["trim_and_fill"], fits["selection"], fits["bma"]
    rob_columns = [c for c in syrcle_columns() if c in sub.columns]
    return OutcomeEvidence(
        outcome=name, measure=measure, k=len(sub), n_studies=int(sub["study_id"].nunique()),
        n_animals=_animals(sub), level=level, **_floats(effect),
        rob={c: sub[c].astype(object).where(sub[c].notna(), "not judged").tolist() for c in rob_columns}, weights=weights.tolist(),
        species=sub.get("species", pd.Series(dtype=object)).astype(str).tolist(),
        disease_models=sub.get("disease_model", pd.Series(dtype=object)).astype(str).tolist(),
        hed=sub[hed_column].astype(float).tolist() if hed_column in sub else [], hed_unit=hed_unit,
        scale_taus=taus,
        egger_pvalue=np.nan if egger is None else float(egger.pvalue),
        trimfill_k0=None if tf is None else int(tf.k0), trimfill_ci=_interval(tf),
        selection_pvalue=np.nan if sel is None else float(sel.lrt_pvalue), selection_ci=_interval(sel),
        bias_bf=np.nan if bma is None else float(bma.inclusion_bf["bias"]), bma_ci=_interval(bma),
    )  # fmt: skip


def _floats(values: dict[str, Any]) -> dict[str, Any]:
    return {k: float(v) for k, v in values.items()}


def _animals(sub: pd.DataFrame) -> int:
    """Animals behind the comparisons, each arm counted once: a treated arm measured on several
    outcomes or time points, and a control shared by several treated arms (whose n the comparisons
    split), count their animals once. Without arm ids: the sum of the comparisons' n."""
    if {"arm_id", "control_arm_id", "n_treat", "n_control_reported"} <= set(sub.columns):
        ev = sub.drop_duplicates("arm_id")["n_treat"]
        control = sub.drop_duplicates("control_arm_id")["n_control_reported"]
        return round(float(ev.fillna(0).sum() + control.fillna(0).sum()))
    n = [sub[c].fillna(0) for c in ("n_treat", "n_control") if c in sub.columns]
    return round(float(sum(x.sum() for x in n))) if n else 0


#: How the summary of findings spells an intervention out.
_INTERVENTION_WORDS = {DEFAULT_INTERVENTION: "MSC-derived extracellular vesicles"}


def _setting(table: pd.DataFrame, intervention: str = DEFAULT_INTERVENTION) -> list[tuple[str, str]]:
    """Population, intervention and comparison of the table's head, from the comparisons
    (the isolation methods only for a table of MSC-EV preparations)."""
    from evmeta.analysis.intervention import has_ev_preparations

    def listed(column: str) -> str:
        values = sorted({display_label(v, column) for v in table.get(column, pd.Series(dtype=object)).dropna()})
        return ", ".join(values) or "not entered"

    return [
        ("Population", f"animal models: {listed('disease_model')} ({listed('species')})"),
        (
            "Intervention",
            f"{_INTERVENTION_WORDS.get(intervention, intervention)}"
            + (f" (isolation: {listed('isolation_method')})" if has_ev_preparations(table) else ""),
        ),
        ("Comparison", "the control arm of each experiment (vehicle or sham)"),
        ("Outcomes", listed("outcome")),
    ]


def _write(run: RunState, summary: SummaryOfFindings) -> None:
    from evmeta.report.certainty.word import write_summary_docx
    from evmeta.report.sections import ReportSection

    frame = summary.to_frame()
    run.tables = run.tables.with_(certainty=frame)
    a = run.spec.analysis
    docx_path = run.output / "summary_of_findings.docx"
    setting = _setting(run.tables.pooled, a.intervention)
    run.files.append(write_summary_docx(summary, docx_path, a.title, a.question, setting))
    rows, notes = table_rows(summary)
    context = {
        "rows": rows,
        "notes": notes,
        "overridden": summary.overridden(),
        "key_items": ", ".join(c.removeprefix("rob_").replace("_", " ") for c in KEY_ROB_ITEMS),
        "important_effect": summary.important_effect,
        "alpha": summary.alpha,
        "power": summary.power,
    }
    run.report_sections.append(ReportSection("certainty", TITLE, "partials/certainty.html.j2", context))
