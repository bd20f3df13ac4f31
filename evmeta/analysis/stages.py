"""The stages of :func:`evmeta.run_analysis`: models, bias diagnostics, the Bayesian
model, sensitivity analyses and figures. Each stage records what it fitted on the run
and turns a model that cannot be fitted into a note (the report shows it) instead of a
crash: every model is fitted through :func:`_try`, and a stage that stops on one of
evmeta's own errors (:class:`~evmeta.errors.EvmetaError`: a documented refusal) is noted
by :func:`stage` while the run goes on. Nothing here implements statistics itself.

The spec's ``[frequentist] test`` and ``level`` apply to every model they can
(:func:`model_test`): Knapp-Hartung for the univariate models, its analogue (a t test
with k - p degrees of freedom, metafor's ``test = "t"``) for the multilevel ones.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from evmeta.analysis.figure_jobs import (  # the figure stages of the pipeline, re-exported
    AFTER_BIAS,
    finish_figures,
    start_figures,
    start_posterior_outputs,
)
from evmeta.analysis.table import analysis_table, levels_present, usable_moderators
from evmeta.errors import EvmetaError
from evmeta.harmonize.quality import syrcle_columns
from evmeta.models import (
    adjust_pvalues,
    bayesian_meta_analysis,
    cumulative_meta_analysis,
    egger_test,
    meta_analysis,
    multilevel_meta_analysis,
    pet_peese,
    subgroup_analysis,
    trim_and_fill,
)

if TYPE_CHECKING:  # the run's state and its inputs, for the annotations only
    from evmeta.analysis.figures import FigureBatch
    from evmeta.analysis.run_state import RunState
    from evmeta.analysis.spec import AnalysisSpec
    from evmeta.models.bayes.result import BayesResult
    from evmeta.schema.extraction import Extraction

_T = TypeVar("_T")

#: Comparisons with a dose in ug protein per kg needed for the dose-response model.
MIN_DOSED = 5


def stage(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Run a stage ``fn(run, ...)``; when it stops on one of evmeta's own errors, add a note
    naming the stage and the reason, and let the run go on (anything else is a bug and
    surfaces as a traceback)."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def guarded(run: RunState, *args: Any, **kwargs: Any) -> None:
            try:
                fn(run, *args, **kwargs)
            except EvmetaError as exc:
                run.notes.append(f"{name}: not completed ({exc}); the run went on without it.")

        return guarded

    return wrap


def model_test(spec: AnalysisSpec, multilevel: bool = False) -> str:
    """The test a model of the run uses: the spec's (``knha`` or ``z``) for the univariate
    models; for the multilevel ones, whose engine knows ``z`` and ``t``, ``t`` where the spec
    says Knapp-Hartung (metafor's ``rma.mv(test = "t")``, t with k - p df)."""
    test = spec.frequentist.test
    return ("t" if test == "knha" else "z") if multilevel else test


def _try(run: RunState, name: str, fit: Callable[[], _T]) -> _T | None:
    try:
        return fit()
    except EvmetaError as exc:  # only errors raised on purpose; a bug surfaces as a traceback
        run.notes.append(f"{name}: not fitted ({exc})")
        return None


def _summary_row(name: str, fit: Any) -> dict[str, Any]:
    return {
        "analysis": name,
        "k": fit.k,
        "estimate": fit.estimate,
        "ci_low": fit.ci_low,
        "ci_high": fit.ci_high,
        "pvalue": fit.pvalue,
        "tau2": getattr(fit, "tau2", np.nan),
        "i2": fit.i2,
    }


def frequentist(run: RunState, table: pd.DataFrame) -> None:
    s = run.spec.frequentist
    try:
        main = meta_analysis(table, method=s.method, test=s.test, level=s.level)
    except EvmetaError as exc:
        if s.test != "knha":
            raise
        # Identical effect sizes: Knapp-Hartung's scale factor is 0 (an SE of 0). The z test
        # keeps the inverse-variance SE, as metafor's ad hoc Knapp-Hartung (max(1, s^2)) does,
        # though with normal rather than t(k - 1) quantiles; the note says so, the run goes on.
        main = meta_analysis(table, method=s.method, test="z", level=s.level)
        run.notes.append(
            f"random-effects model: Knapp-Hartung not possible ({exc}); the z test is reported (its "
            "interval is narrower than a t interval on k - 1 degrees of freedom would be)"
        )
    run.models = run.models.with_(random_effects=main)
    pvalues, names = [], []
    for by in s.subgroups:
        if by not in table.columns:
            run.notes.append(
                f"subgroups by {by}: not analysed, because the comparisons have no column {by!r}."
            )
            continue
        if levels_present(table, by) < 2:
            run.notes.append(
                f"subgroups by {by}: not analysed, because every comparison has the same {by} "
                "(a subgroup analysis needs at least two groups)."
            )
            continue
        result = _try(
            run,
            f"subgroups by {by}",
            functools.partial(subgroup_analysis, table, by, method=s.method, test=s.test, level=s.level),
        )
        if result is None:
            continue
        run.models = run.models.adding("subgroups", by, result)
        pvalues.append(result.q_between_common_pvalue)
        names.append(by)
    if pvalues:
        adjusted = adjust_pvalues(pvalues, "bonferroni")
        tests = pd.DataFrame({"by": names, "pvalue": pvalues, "pvalue_bonferroni": adjusted})
        run.tables = run.tables.with_(subgroup_tests=tests)
    mods = _moderators(run, table, s.meta_regression, "meta-regression")
    if mods:
        fit = _try(
            run,
            "meta-regression",
            lambda: meta_analysis(table, mods=mods, method=s.method, test=s.test, level=s.level),
        )
        if fit is not None:
            run.models = run.models.with_(meta_regression=fit)
    if s.multilevel:
        _multilevel(run, table, mods)
    _dose_response(run, table)


def _multilevel(run: RunState, table: pd.DataFrame, mods: str | None) -> None:
    s = run.spec.frequentist
    settings = {
        "random": s.multilevel,
        "robust": s.robust,
        "test": model_test(run.spec, multilevel=True),
        "level": s.level,
    }
    if s.method in {"REML", "ML"}:
        settings["method"] = s.method  # the multilevel engine has no other estimator
    from evmeta.analysis.correlated import correlation_settings

    settings.update(correlation_settings(run, table))  # [comparisons] correlation: V
    fit = _try(run, "multilevel model", lambda: multilevel_meta_analysis(table, **settings))
    if fit is not None:
        run.models = run.models.with_(multilevel=fit)
    if mods:
        fit = _try(
            run, "multilevel meta-regression", lambda: multilevel_meta_analysis(table, mods=mods, **settings)
        )
        if fit is not None:
            run.models = run.models.with_(multilevel_regression=fit)


def _dose_response(run: RunState, table: pd.DataFrame) -> None:
    from evmeta.analysis.intervention import NO_EV, has_ev_preparations

    if not has_ev_preparations(table):  # its doses are drugs', diets' or none: not EV amounts
        run.notes.append(
            f"dose-response: not fitted, because {NO_EV}: its doses are not amounts of EVs "
            "(ug protein, particles)."
        )
        return None
    if run.spec.dose_response is not None:  # the one-stage curve of [dose_response]
        from evmeta.analysis.dose_response import dose_response_stage

        return dose_response_stage(run, table)
    s = run.spec.frequentist
    dosed = table[table["log10_dose_ug_protein_per_kg"].notna()].reset_index(drop=True)
    if len(dosed) < MIN_DOSED:
        run.notes.append(
            f"dose-response: not fitted, because {len(dosed)} of {len(table)} comparisons have a dose "
            f"convertible to ug protein per kg ({MIN_DOSED} needed)."
        )
    elif levels_present(dosed, "log10_dose_ug_protein_per_kg") < 2:
        run.notes.append("dose-response: not fitted, because every comparison with a dose has the same dose.")
    else:
        fit = _try(
            run,
            "dose-response",
            lambda: meta_analysis(
                dosed, mods="~ log10_dose_ug_protein_per_kg", method=s.method, test=s.test, level=s.level
            ),
        )
        if fit is not None:
            run.models = run.models.with_(dose_response=fit)
            run.notes.append(
                f"dose-response: {len(dosed)} of {len(table)} comparisons have a dose convertible to "
                "µg protein per kg"
            )


def _moderators(run: RunState, table: pd.DataFrame, formula: str | None, model: str) -> str | None:
    """The spec's moderator formula without the terms these data cannot estimate (noted)."""
    mods, notes = usable_moderators(table, formula, model)
    run.notes.extend(notes)
    if formula and not mods:
        run.notes.append(
            f"{model}: not fitted, because none of its moderators varies across the comparisons."
        )
    return mods


@stage("bias diagnostics")
def bias(run: RunState) -> None:
    main = run.models.main
    rows = []
    for predictor in ["sei", "sqrt_inv_n"]:
        result = _try(run, f"Egger test ({predictor})", functools.partial(egger_test, main, predictor))
        if result is not None:
            run.models = run.models.adding("egger", predictor, result)
            rows.append(
                {
                    "test": f"Egger regression, predictor {predictor}",
                    "statistic": result.stat,
                    "pvalue": result.pvalue,
                    "estimate": result.limit_estimate,
                    "ci_low": result.limit_ci_low,
                    "ci_high": result.limit_ci_high,
                }
            )
    filled = _try(run, "trim-and-fill", lambda: trim_and_fill(main))
    if filled is not None:
        run.models = run.models.with_(trim_and_fill=filled)
        rows.append(
            {
                "test": f"Trim-and-fill (L0): {filled.k0} filled on the {filled.side}",
                "statistic": np.nan,
                "pvalue": np.nan,
                "estimate": filled.estimate,
                "ci_low": filled.ci_low,
                "ci_high": filled.ci_high,
            }
        )
    pp = _try(run, "PET-PEESE", lambda: pet_peese(main))
    if pp is not None:
        run.models = run.models.with_(pet_peese=pp)
        rows.append(
            {
                "test": f"PET-PEESE ({pp.selected} selected)",
                "statistic": np.nan,
                "pvalue": pp.pet_pvalue,
                "estimate": pp.estimate,
                "ci_low": pp.ci_low,
                "ci_high": pp.ci_high,
            }
        )
    run.tables = run.tables.with_(bias=pd.DataFrame(rows))


def _categorical_terms(fit: BayesResult) -> list[str]:
    return [
        t
        for t, cols in fit.model.term_columns.items()
        if t != "intercept" and fit.names[cols[0]].startswith(f"{t}[T.")
    ]


@stage("Bayesian model")
def bayesian(run: RunState, table: pd.DataFrame) -> None:
    b = run.spec.bayesian
    if not b.enabled:
        return
    mods, notes = usable_moderators(table, b.mods, "Bayesian model")
    run.notes.extend(notes)
    fit = _try(
        run,
        "Bayesian model",
        lambda: bayesian_meta_analysis(
            table,
            mods=mods,
            random=b.random,
            priors=b.priors,
            method=b.method,
            likelihood=b.likelihood,
            draws=b.draws,
            tune=b.tune,
            chains=b.chains,
            seed=b.seed,
            progress=False,
        ),
    )
    if fit is None:
        return
    run.models = run.models.with_(bayesian=fit)
    if not fit.converged:
        run.notes.append("Bayesian model: NOT CONVERGED; its estimates are not final")
    for term in _categorical_terms(fit):
        run.tables = run.tables.with_contrasts(term, fit.contrasts(term))
    factors = [fit.bayes_factor(term) for term in fit.model.term_columns if term != "intercept"]
    if factors:
        run.tables = run.tables.with_(bayes_factors=pd.DataFrame(factors))
    truth_path = run.spec.validation.truth
    if truth_path:
        truth = json.loads(run.spec.resolve(truth_path).read_text(encoding="utf-8"))
        run.recovery = summarize_recovery(
            fit.summary().table, truth, run.spec.moderators.get("isolation_method")
        )


def summarize_recovery(summary: pd.DataFrame, truth: dict[str, Any], reference: str | None) -> pd.DataFrame:
    """Posterior intervals against the generating model's parameters (simulated data)."""
    wanted = []
    effects = truth.get("isolation_effects", {})
    base = effects.get(reference, 0.0) if reference else 0.0
    for method, value in effects.items():
        name = f"isolation_method[T.{method}]"
        if name in summary.index:
            wanted.append((name, value - base))
    if "quality_slope" in truth and "quality_score" in summary.index:
        wanted.append(("quality_score", truth["quality_slope"]))
    rows = []
    for name, value in wanted:
        row = summary.loc[name]
        rows.append(
            {
                "parameter": name,
                "true_value": value,
                "estimate": row["estimate"],
                "ci_low": row["ci_low"],
                "ci_high": row["ci_high"],
                "covered": bool(row["ci_low"] <= value <= row["ci_high"]),
            }
        )
    return pd.DataFrame(rows)


@stage("sensitivity analyses")
def sensitivity(run: RunState, table: pd.DataFrame, extraction: Extraction) -> None:
    s = run.spec.sensitivity
    main = run.models.main
    rows = [_summary_row("main analysis", main)]
    loo = _try(run, "leave-one-out", main.leave_one_out) if s.leave_one_out and main.k >= 3 else None
    if loo is not None:
        run.tables = run.tables.with_(leave_one_out=loo)
        rows.append(
            {
                "analysis": "leave-one-out: range of estimates",
                "k": main.k - 1,
                "estimate": np.nan,
                "ci_low": float(loo["estimate"].min()),
                "ci_high": float(loo["estimate"].max()),
                "pvalue": np.nan,
                "tau2": np.nan,
                "i2": np.nan,
            }
        )
        influence = _try(run, "influence diagnostics", main.influence)
        if influence is not None:
            run.tables = run.tables.with_(influence=influence)
    if s.low_risk_of_bias:
        subset = table[table["rob_low_randomization_blinding"].fillna(False).astype(bool)].reset_index(
            drop=True
        )
        fit = None
        if not table.reindex(columns=syrcle_columns()).notna().any().any():
            run.notes.append(
                "sensitivity analysis at low risk of bias: not run, because no risk-of-bias judgements "
                "are entered."
            )
        elif len(subset) < 2:
            run.notes.append(
                "sensitivity analysis at low risk of bias: not run, because "
                f"{len(subset)} comparison(s) are at low risk on randomization and blinding (2 needed)."
            )
        else:
            fit = _try(
                run,
                "low risk of bias subset",
                lambda: meta_analysis(subset, method=main.method, test=main.test, level=main.level),
            )
        if fit is not None:
            rows.append(_summary_row("low risk on randomization and blinding", fit))
    if s.nmd_vs_smd:
        _nmd_vs_smd(run, extraction, rows)
    run.tables = run.tables.with_(sensitivity=pd.DataFrame(rows))
    bayes = run.models.bayesian
    if bayes is not None and s.alternative_priors:
        alternatives: dict[str, dict[str, str] | str] = dict(s.alternative_priors)
        table_priors = _try(run, "prior sensitivity", lambda: bayes.prior_sensitivity(alternatives))
        if table_priors is not None:
            run.tables = run.tables.with_(prior_sensitivity=table_priors)
    if "year" in table.columns:
        cumulative = _try(
            run, "cumulative meta-analysis", lambda: cumulative_meta_analysis(main, order="year")
        )
        if cumulative is not None:
            run.tables = run.tables.with_(cumulative_by_year=cumulative)


def _nmd_vs_smd(run: RunState, extraction: Extraction, rows: list[dict[str, Any]]) -> None:
    """The main analysis with the measure chosen by the NMD rule, on the same analysis table."""
    main = run.models.main
    try:
        alternative = analysis_table(extraction, run.spec, measure="NMD_or_SMD")
    except EvmetaError as exc:
        run.notes.append(f"NMD vs SMD: not run: {exc}")
        return
    if len(alternative.table) < 2:
        run.notes.append(
            f"NMD vs SMD: not run, because {len(alternative.table)} comparison(s) remain under the NMD rule."
        )
        return
    fit = _try(
        run, "NMD vs SMD", lambda: meta_analysis(alternative.table, method=main.method, test=main.test, level=main.level)
    )
    if fit is not None:
        measure = alternative.comparisons.measure
        share = alternative.comparisons.settings.get("nmd_share", np.nan)
        rows.append(_summary_row(f"measure by the NMD rule: {measure} (sham available for {share:.0%})", fit))


def bayesian_diagnostics(run: RunState) -> dict[str, Any] | None:
    """The Bayesian model's engine and diagnostics for ``provenance.json`` (JSON values), and
    a note when the quadrature grid's refinement error exceeds
    :data:`evmeta.models.bayes.quadrature.GRID_ERROR_LIMIT`.

    Call only after :func:`finish_figures`: the diagnostics were computed in the worker that
    wrote ``posterior.nc`` and adopted there; read earlier, they would be computed again
    here (the ArviZ import and the refined grid, seconds of `evmeta run`).
    """
    from evmeta.models.bayes.quadrature import GRID_ERROR_LIMIT

    bayes = run.models.bayesian
    if bayes is None:
        return None
    found = bayes.diagnostics
    if bayes.method_used == "quadrature":
        # R-hat and ESS of exact quadrature draws say nothing; the grid error is its accuracy.
        wanted = ["grid_error"]
    else:
        wanted = ["max_r_hat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi"]
    values: dict[str, float | int | None] = {}
    for name in wanted:
        value = found.get(name)
        if isinstance(value, (int, np.integer)):
            values[name] = int(value)
        elif value is not None:
            values[name] = float(value) if np.isfinite(value) else None
    error = values.get("grid_error")
    if error is not None and error > GRID_ERROR_LIMIT:
        from evmeta.formatting import scientific

        run.notes.append(
            f"Bayesian model: its reported posterior summaries changed by up to {scientific(error, 1)} when the "
            f"quadrature grid was made twice as dense (more than {GRID_ERROR_LIMIT:g}); the estimates may "
            "be inaccurate to that degree."
        )
    return {"method": bayes.method_used, "sampler": found.get("sampler"), "diagnostics": values}


@stage("selection model, bias model averaging and isolation-method evidence")
def bias_and_isolation_evidence(
    run: RunState, table: pd.DataFrame, batch: FigureBatch | None = None
) -> None:
    """Selection model, bias model averaging (default and preclinical heterogeneity priors),
    within- vs between-study isolation-method contrasts, and their two figures (issue 16),
    drawn in a worker of ``batch`` when one is given."""
    from evmeta.models import bias_model_averaging, isolation_method_evidence, selection_model
    from evmeta.plots import save_figure
    from evmeta.plots.bias_panel import bias_panel
    from evmeta.plots.isolation_evidence import isolation_evidence_plot
    from evmeta.report.bias_section import within_study_comparisons

    main = run.models.main
    selection = _try(run, "step-function selection model", lambda: selection_model(main))
    if selection is not None:
        run.models = run.models.with_(selection_model=selection)
        run.tables = run.tables.with_(selection_weights=selection.weights_frame().reset_index())
    rows = []
    for priors in ("default", "preclinical"):
        bma = _try(
            run,
            f"bias model averaging ({priors} priors)",
            functools.partial(bias_model_averaging, table, priors=priors),
        )
        if bma is None:
            continue
        run.models = run.models.adding("bias_averaging", priors, bma)
        rows.append(
            {
                "priors": priors,
                "tau_prior": bma.priors.describe()["tau"],
                "estimate": bma.estimate,
                "ci_low": bma.ci_low,
                "ci_high": bma.ci_high,
                **{f"bf_{k}": v for k, v in bma.inclusion_bf.items()},
            }
        )
    if rows:
        default = run.models.bias_averaging.get("default")
        run.tables = run.tables.with_(
            bias_averaging_models=None if default is None else default.models,
            preclinical_prior_sensitivity=pd.DataFrame(rows),
        )
    from evmeta.analysis.intervention import NO_EV, has_ev_preparations

    if not has_ev_preparations(table):
        run.notes.append(f"isolation-method evidence: not fitted, because {NO_EV}.")
    elif "isolation_method" in table.columns and "UC" in set(table["isolation_method"]):
        evidence = _try(
            run, "isolation-method evidence", lambda: isolation_method_evidence(table, reference="UC", level=main.level)
        )
        if evidence is not None:
            run.tables = run.tables.with_(isolation_evidence=evidence)
    jobs: dict[str, Callable[[], Any]] = {}
    averaged = run.models.bias_averaging.get("default")
    if averaged is not None:
        jobs["bias_panel"] = lambda: bias_panel(averaged, selection)
    evidence_table = run.tables.isolation_evidence
    if evidence_table is not None and within_study_comparisons(evidence_table):
        # (else the report says so in a sentence)
        jobs["isolation_evidence"] = lambda: isolation_evidence_plot(evidence_table)
    if batch is None:
        formats = tuple(run.spec.figures.formats)
        for name, draw in jobs.items():
            run.figures[name] = save_figure(draw(), run.output / name, formats)
    else:
        from evmeta.analysis import figures as batch_figures

        batch_figures.add(batch, jobs)


__all__ = [
    "AFTER_BIAS",
    "MIN_DOSED",
    "bayesian",
    "bayesian_diagnostics",
    "bias",
    "bias_and_isolation_evidence",
    "finish_figures",
    "frequentist",
    "model_test",
    "sensitivity",
    "stage",
    "start_figures",
    "start_posterior_outputs",
    "summarize_recovery",
]
