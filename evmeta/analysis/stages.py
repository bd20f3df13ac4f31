"""The stages of :func:`evmeta.run_analysis`: models, bias diagnostics, the Bayesian
model, sensitivity analyses and figures. Each stage records what it fitted on the run
and turns a model that cannot be fitted into a note (the report shows it) instead of a
crash; nothing here implements statistics itself.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from evmeta.comparisons import build_comparisons
from evmeta.errors import ModelError
from evmeta.models.bayes.fit import bayesian_meta_analysis
from evmeta.models.bias.small_study import cumulative_meta_analysis, egger_test, pet_peese, trim_and_fill
from evmeta.models.frequentist.meta import meta_analysis
from evmeta.models.frequentist.multilevel import multilevel_meta_analysis
from evmeta.models.frequentist.subgroup import adjust_pvalues, subgroup_analysis


def _try(run, name: str, fit):
    try:
        return fit()
    except (ModelError, ValueError, KeyError) as exc:
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


def frequentist(run, table: pd.DataFrame) -> None:
    s = run.spec.frequentist
    main = meta_analysis(table, method=s.method, test=s.test)
    run.models["random_effects"] = main
    run.tables["results:random_effects"] = main.to_frame()
    pvalues, names = [], []
    for by in s.subgroups:
        if by not in table.columns:
            run.notes.append(f"subgroups by {by}: no such column")
            continue
        result = _try(
            run,
            f"subgroups by {by}",
            lambda by=by: subgroup_analysis(table, by, method=s.method, test=s.test),
        )
        if result is None:
            continue
        run.models[f"subgroup:{by}"] = result
        frame = result.to_frame().assign(
            q_between=result.q_between,
            q_between_pvalue=result.q_between_pvalue,
            q_between_common_pvalue=result.q_between_common_pvalue,
        )
        run.tables[f"results:subgroup:{by}"] = frame
        pvalues.append(result.q_between_common_pvalue)
        names.append(by)
    if pvalues:
        adjusted = adjust_pvalues(pvalues, "bonferroni")
        run.tables["subgroup_tests"] = pd.DataFrame(
            {"by": names, "pvalue": pvalues, "pvalue_bonferroni": adjusted}
        )
    if s.meta_regression:
        fit = _try(
            run,
            "meta-regression",
            lambda: meta_analysis(table, mods=s.meta_regression, method=s.method, test=s.test),
        )
        if fit is not None:
            run.models["meta_regression"] = fit
            run.tables["results:meta_regression"] = fit.to_frame()
    if s.multilevel:
        fit = _try(
            run,
            "multilevel model",
            lambda: multilevel_meta_analysis(table, random=s.multilevel, robust=s.robust),
        )
        if fit is not None:
            run.models["multilevel"] = fit
            run.tables["results:multilevel"] = fit.to_frame()
        if s.meta_regression:
            fit = _try(
                run,
                "multilevel meta-regression",
                lambda: multilevel_meta_analysis(
                    table, random=s.multilevel, mods=s.meta_regression, robust=s.robust
                ),
            )
            if fit is not None:
                run.models["multilevel_regression"] = fit
                run.tables["results:multilevel_regression"] = fit.to_frame()
    dosed = table[table["log10_dose_ug_protein_per_kg"].notna()].reset_index(drop=True)
    if len(dosed) >= 5:
        fit = _try(
            run,
            "dose-response",
            lambda: meta_analysis(dosed, mods="~ log10_dose_ug_protein_per_kg", method=s.method, test=s.test),
        )
        if fit is not None:
            run.models["dose_response"] = fit
            run.tables["results:dose_response"] = fit.to_frame()
            run.notes.append(
                f"dose-response: {len(dosed)} of {len(table)} comparisons have a dose convertible to "
                "µg protein per kg"
            )


def bias(run) -> None:
    main = run.models["random_effects"]
    rows = []
    for predictor in ["sei", "sqrt_inv_n"]:
        result = _try(run, f"Egger test ({predictor})", lambda p=predictor: egger_test(main, p))
        if result is not None:
            run.models[f"egger:{predictor}"] = result
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
        run.models["trim_and_fill"] = filled
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
        run.models["pet_peese"] = pp
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
    run.tables["bias"] = pd.DataFrame(rows)


def _categorical_terms(fit) -> list[str]:
    return [
        t
        for t, cols in fit.model.term_columns.items()
        if t != "intercept" and fit.names[cols[0]].startswith(f"{t}[T.")
    ]


def bayesian(run, table: pd.DataFrame) -> None:
    b = run.spec.bayesian
    if not b.enabled:
        return
    fit = _try(
        run,
        "Bayesian model",
        lambda: bayesian_meta_analysis(
            table,
            mods=b.mods,
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
    run.models["bayesian"] = fit
    run.tables["results:bayesian"] = fit.to_frame()
    if not fit.converged:
        run.notes.append("Bayesian model: NOT CONVERGED; its estimates are not final")
    for term in _categorical_terms(fit):
        run.tables[f"contrasts:{term}"] = fit.contrasts(term)
    factors = [fit.bayes_factor(term) for term in fit.model.term_columns if term != "intercept"]
    if factors:
        run.tables["bayes_factors"] = pd.DataFrame(factors)
    truth_path = run.spec.validation.truth
    if truth_path:
        truth = json.loads(run.spec.resolve(truth_path).read_text(encoding="utf-8"))
        run.recovery = summarize_recovery(fit.summary(), truth, run.spec.moderators.get("isolation_method"))


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
                "mean": row["mean"],
                "lower": row["lower"],
                "upper": row["upper"],
                "covered": bool(row["lower"] <= value <= row["upper"]),
            }
        )
    return pd.DataFrame(rows)


def sensitivity(run, table: pd.DataFrame, extraction) -> None:
    spec, s = run.spec, run.spec.sensitivity
    main = run.models["random_effects"]
    rows = [_summary_row("main analysis", main)]
    if s.leave_one_out and main.k >= 3:
        loo = main.leave_one_out()
        run.tables["leave_one_out"] = loo
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
        run.tables["influence"] = main.influence()
    if s.low_risk_of_bias:
        subset = table[table["rob_low_randomization_blinding"].fillna(False).astype(bool)].reset_index(
            drop=True
        )
        fit = _try(
            run, "low risk of bias subset", lambda: meta_analysis(subset, method=main.method, test=main.test)
        )
        if fit is not None:
            rows.append(_summary_row("low risk on randomization and blinding", fit))
    if s.nmd_vs_smd:
        c = spec.comparisons
        alternative = build_comparisons(
            extraction,
            "NMD_or_SMD",
            outcome=c.outcomes or None,
            timepoint=c.timepoint,
            shared_control=c.shared_control,
        )
        fit = _try(
            run, "NMD vs SMD", lambda: meta_analysis(alternative.table, method=main.method, test=main.test)
        )
        if fit is not None:
            share = alternative.settings.get("nmd_share", np.nan)
            rows.append(
                _summary_row(
                    f"measure by the NMD rule: {alternative.measure} (sham available for {share:.0%})", fit
                )
            )
    run.tables["sensitivity"] = pd.DataFrame(rows)
    bayes = run.models.get("bayesian")
    if bayes is not None and s.alternative_priors:
        table_priors = _try(run, "prior sensitivity", lambda: bayes.prior_sensitivity(s.alternative_priors))
        if table_priors is not None:
            run.tables["prior_sensitivity"] = table_priors
    if "year" in table.columns:
        run.tables["cumulative"] = cumulative_meta_analysis(main, order="year")


def _figure_jobs(run, table: pd.DataFrame) -> dict[str, Any]:
    """The frequentist figures: name -> function that draws it (nothing is drawn here)."""
    from evmeta.plots import dose_response_plot, forest_plot, funnel_plot, moderator_plot, risk_of_bias_plot

    spec = run.spec.figures
    main = run.models["random_effects"]
    by = spec.forest_by if spec.forest_by in table.columns else None
    return {
        "forest": lambda: forest_plot(main, by=by, width=spec.width),
        "funnel": lambda: funnel_plot(main, trim_fill=run.models.get("trim_and_fill"), width="single"),
        "risk_of_bias": lambda: risk_of_bias_plot(table, width=spec.width),
        "dose_response": lambda: dose_response_plot(run.models["dose_response"], total=len(table)),
        "moderators": lambda: moderator_plot(run.models[f"subgroup:{by or 'isolation_method'}"]),
    }


def start_figures(run, table: pd.DataFrame):
    """Start drawing the frequentist figures in worker processes (returns the batch that
    :func:`finish_figures` waits for); call once the frequentist and bias stages are done."""
    from evmeta.analysis import figures as batch_figures

    formats = tuple(run.spec.figures.formats)
    return batch_figures.start(_figure_jobs(run, table), run.output, formats)


def finish_figures(run, batch) -> None:
    """Draw the posterior figure (the Bayesian model is fitted by now) and wait for the rest."""
    from evmeta.analysis import figures as batch_figures
    from evmeta.plots import posterior_plot

    bayes = run.models.get("bayesian")
    if bayes is not None:
        batch_figures.add(batch, {"posterior": lambda: posterior_plot(bayes, width=run.spec.figures.width)})
    else:
        run.notes.append("figure posterior: not drawn (no Bayesian model)")
    paths, notes = batch_figures.collect(batch)
    order = ["forest", "funnel", "risk_of_bias", "dose_response", "moderators", "posterior"]
    run.figures.update({name: paths[name] for name in order if name in paths})
    run.notes.extend(notes)


def figures(run, table: pd.DataFrame, extraction) -> None:
    """Draw and save every figure (all at once; the pipeline starts them earlier instead)."""
    finish_figures(run, start_figures(run, table))
