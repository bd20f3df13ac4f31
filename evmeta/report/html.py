"""Render ``report.html``: one self-contained file (figures inlined as SVG, no network)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.formatting import format_p, number, percent, printed_powers, scientific
from evmeta.report.bias_section import bias_context
from evmeta.report.contents import add_contents
from evmeta.report.interpret import bayes_factor_notes, bias_disagreement, small_study_summary
from evmeta.report.methods import inference_words, methods_paragraph, references
from evmeta.report.sections import captions, render_sections
from evmeta.report.svg import figure_svgs, is_single_column
from evmeta.report.tables import html_table
from evmeta.schema.vocabulary import display_label

if TYPE_CHECKING:  # for the annotations only
    from evmeta.models.bayes.result import BayesResult
    from evmeta.report.run_view import ReportedRun


def _table(
    frame: pd.DataFrame | None,
    digits: int = 2,
    index: bool = False,
    max_rows: int | None = None,
    *,
    level: float,
    interval: str = "CI",
) -> str:
    if frame is not None and index:
        frame = frame.reset_index()
    return html_table(frame, digits, max_rows=max_rows, level=level, interval=interval)


def _interval(mean: float, lower: float, upper: float) -> str:
    return f"{number(mean)} [{number(lower)}, {number(upper)}]"


def _contrast_sentences(run: ReportedRun) -> list[str]:
    frame = run.tables.bayes_contrasts.get("isolation_method")
    if frame is None:
        return []
    return [
        f"{row['level']} minus {row['versus']}: {_interval(row['estimate'], row['ci_low'], row['ci_high'])}, "
        f"P(&gt; 0) = {row['p_gt_0']:.2f}"
        for _, row in frame.iterrows()
    ]


def write_report(run: ReportedRun) -> Path:
    """Write ``report.html`` into the run's output folder and return its path."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("evmeta.report", "templates"), autoescape=True)
    template = env.get_template("report.html.j2")
    path: Path = run.output / "report.html"
    page, _ = add_contents(template.render(**_context(run)))
    path.write_text(page, encoding="utf-8")
    return path


def _context(run: ReportedRun) -> dict[str, Any]:
    """Everything the report template reads, from the run's results."""
    table = run.tables.pooled
    main = run.models.main
    studies = (
        table[["study_id", "first_author", "year"]]
        .drop_duplicates("study_id")
        .sort_values(["first_author", "year"])
    )
    bayes = run.models.bayesian
    level = main.level
    credible = bayes.level if bayes is not None else level
    figures = {name: figure_svgs(paths) for name, paths in run.figures.items()}
    single_figures = {name for name, paths in run.figures.items() if is_single_column(paths)}
    return {
        "title": run.spec.analysis.title or run.spec.analysis.name,
        "question": run.spec.analysis.question,
        "methods": methods_paragraph(run),
        "references": references(run),
        "k": main.k,
        "n_studies": table["study_id"].nunique(),
        "n_experiments": table["experiment_id"].nunique(),
        "main": _main_result(main),
        "small_study": small_study_summary(run),
        "bias_disagreement": bias_disagreement(run),
        "validation_notes": _validation_notes(getattr(run, "validation_notes", [])),
        "multilevel_test": _multilevel_test(run.models.multilevel_regression),
        "bf_notes": bayes_factor_notes(run),
        "captions": captions(level),
        "pct": percent(level),
        "cri_pct": percent(credible),
        "extra_sections": render_sections(run),
        "models_table": _table(_model_overview(run), level=level),
        "meta_regression": _coefficients(run.models.meta_regression, _why_not_fitted(run, "meta-regression")),
        "multilevel": _coefficients(
            run.models.multilevel_regression,
            _why_not_fitted(run, "multilevel meta-regression", "multilevel model", "meta-regression")
            or ("[frequentist] multilevel names no levels" if not run.spec.frequentist.multilevel else None),
        ),
        "subgroups": _subgroup_blocks(run),
        "subgroup_tests": _table(_readable(run.tables.subgroup_tests, "by"), level=level),
        "bayes": bayes is not None,
        "bayes_summary": _table(_bayes_summary(bayes), level=credible, interval="CrI"),
        "bayes_converged": bayes.converged if bayes is not None else None,
        "bayes_method": bayes.method_used if bayes is not None else "",
        "diagnostics": bayes.diagnostics if bayes is not None else {},
        "grid_error": _grid_error(bayes),
        "contrasts": _contrast_sentences(run),
        "contrast_table": _table(run.tables.bayes_contrasts.get("isolation_method"), level=credible, interval="CrI"),
        "bayes_factors": _table(_readable(run.tables.bayes_factors, "term"), level=credible, interval="CrI"),
        "recovery": _recovery(run),
        "coverage": _coverage(run),
        "bias": _table(run.tables.bias, 3, level=level),
        "sensitivity": _table(_sensitivity(run.tables.sensitivity), 2, level=level),
        "prior_sensitivity": _table(_readable_parameters(run), max_rows=60, level=credible, interval="CrI"),
        "exclusions": _table(run.exclusions, 0, max_rows=400, level=level),
        "n_exclusions": len(run.exclusions),
        "studies": [f"{r.first_author} {r.year} ({r.study_id})" for r in studies.itertuples()],
        "notes": [printed_powers(note.replace("ug protein", "µg protein")) for note in run.notes],
        "seeds": ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in run.provenance.get("seeds", {}).items()),
        "figures": figures,
        "single_figures": single_figures,
        "provenance": run.provenance,
        "prisma_counts": _table(run.tables.prisma, 0, level=level) if run.tables.prisma is not None else "",
        "evidence": bias_context(run),
    }


def _main_result(main: Any) -> dict[str, Any]:
    """The pooled random-effects result as the report prints it."""
    return {
        "estimate": _interval(main.estimate, main.ci_low, main.ci_high),
        "pi": f"[{number(main.pi_low)}, {number(main.pi_high)}]",
        "tau2": f"{main.tau2:.3f}",
        "i2": f"{main.i2:.1f}",
        "q": f"{main.q:.2f}",
        "q_df": main.q_df,
        "q_p": format_p(main.q_pvalue),
        "p": format_p(main.pvalue),
        "method": main.method,
        "test": main.test,
        "level": f"{main.level * 100:.4g}%",
    }


def _coverage(run: ReportedRun) -> str | None:
    """Whether the credible intervals cover the simulated truth (simulated data only)."""
    bayes = run.models.bayesian
    if run.recovery is None or not len(run.recovery) or bayes is None:
        return None
    covered = int(run.recovery["covered"].sum())
    return (
        f"{covered} of {len(run.recovery)} generating effects (isolation-method contrasts and the quality slope) "
        f"lie within their {percent(bayes.level)} credible intervals"
        + (": the model recovers the simulated truth." if covered == len(run.recovery) else ".")
    )


def _subgroup_blocks(run: ReportedRun) -> list[dict[str, Any]]:
    """One block per subgroup analysis: its table and its test for subgroup differences."""
    return [
        {
            "by": model.by.replace("_", " "),
            "table": _table(_subgroup_table(model), level=model.level),
            "test": html.escape(
                f"Test for subgroup differences: Q = {model.q_between:.2f}, df = {model.q_between_df}, "
                f"{format_p(model.q_between_pvalue)} (separate τ²); "
                f"{format_p(model.q_between_common_pvalue)} (common τ²)"
            ),
        }
        for model in run.models.subgroups.values()
    ]


def _subgroup_table(model: Any) -> pd.DataFrame:
    """A subgroup analysis' table with its levels in words (``focal cerebral ischaemia``)."""
    table: pd.DataFrame = model.table.reset_index()
    table[model.by] = [display_label(level, model.by) for level in table[model.by]]
    return table.rename(columns={model.by: model.by.replace("_", " ")})


def term_words(term: str) -> str:
    """A model term as the report writes it: ``disease_model[T.focal_cerebral_ischemia]`` ->
    ``disease model: focal cerebral ischaemia``, ``quality_score`` -> ``quality score``."""
    if "[T." in term and term.endswith("]"):
        name, level = term[:-1].split("[T.", 1)
        return f"{name.replace('_', ' ')}: {display_label(level, name)}"
    return term.replace("_", " ")


#: Most validation notes listed in the report (``evmeta validate`` lists them all).
MAX_VALIDATION_NOTES = 100


def _validation_notes(notes: list[Any]) -> list[str]:
    shown = [printed_powers(str(note)) for note in notes[:MAX_VALIDATION_NOTES]]
    if len(notes) > MAX_VALIDATION_NOTES:
        shown.append(
            f"... and {len(notes) - MAX_VALIDATION_NOTES} more: run evmeta validate for the full list."
        )
    return shown


def _multilevel_test(fit: Any) -> str:
    """'experiments within studies; cluster-robust (CR2) ...': what the heading says of the fit."""
    if fit is None:
        return ""
    from evmeta.report.methods import LEVEL_WORDS

    levels = " and ".join(LEVEL_WORDS.get(lv, lv.replace("_", " ")) for lv in fit.random)
    return f"random effects for {levels}; {inference_words(fit)}"


def _readable(frame: pd.DataFrame | None, column: str) -> pd.DataFrame | None:
    if frame is None:
        return None
    return frame.assign(**{column: [term_words(str(value)) for value in frame[column]]})


def _readable_parameters(run: ReportedRun) -> pd.DataFrame | None:
    frame = run.tables.prior_sensitivity
    bayes = run.models.bayesian
    if frame is None or bayes is None or "parameter" not in frame.columns:
        return frame
    from evmeta.plots.posterior import _reference_levels, readable_name

    references = _reference_levels(bayes)
    return frame.assign(parameter=[readable_name(str(n), references) for n in frame["parameter"]])


def _recovery(run: ReportedRun) -> str:
    """Recovery of the simulated truth, terms named as in the rest of the report."""
    frame, bayes = run.recovery, run.models.bayesian
    if frame is None or bayes is None or "parameter" not in frame.columns:
        return _table(frame, 3, level=bayes.level if bayes is not None else 0.95, interval="CrI")
    from evmeta.plots.posterior import _reference_levels, readable_name

    references = _reference_levels(bayes)
    frame = frame.assign(parameter=[readable_name(str(n), references) for n in frame["parameter"]])
    headings = {
        "estimate": "posterior mean",
        "ci_low": f"{percent(bayes.level)} CrI low",
        "ci_high": f"{percent(bayes.level)} CrI high",
        "covered": "in the interval",
    }
    return html_table(frame, 3, headings=headings, level=bayes.level, interval="CrI")


def _grid_error(bayes: BayesResult | None) -> dict[str, Any] | None:
    """The quadrature grid's refinement error as text, and whether it exceeds the limit
    (read in the report step, after the worker's diagnostics were adopted)."""
    if bayes is None or bayes.method_used != "quadrature":
        return None
    from evmeta.models.bayes.quadrature import GRID_ERROR_LIMIT

    error = bayes.diagnostics.get("grid_error")
    if error is None or not np.isfinite(error):
        return None
    return {
        "text": scientific(error, 1),
        "large": bool(error > GRID_ERROR_LIMIT),
        "limit": f"{GRID_ERROR_LIMIT:g}",
    }


def _bayes_summary(bayes: BayesResult | None) -> pd.DataFrame | None:
    """Posterior summary with readable parameter names; no sampler diagnostics under quadrature."""
    if bayes is None:
        return None
    from evmeta.plots.posterior import _reference_levels, readable_name

    references = _reference_levels(bayes)
    table = bayes.summary().table.reset_index(names="parameter")
    table["parameter"] = [readable_name(name, references) for name in table["parameter"]]
    if bayes.method_used == "quadrature":
        table = table.drop(columns=[c for c in ("r_hat", "ess_bulk", "ess_tail") if c in table.columns])
    return table


def _why_not_fitted(run: ReportedRun, *models: str) -> str | None:
    """The reason the run's notes give for not fitting the first of ``models`` noted."""
    notes: Sequence[str] = run.notes
    for model in models:
        for note in notes:
            if note.startswith(f"{model}: not fitted"):
                return (
                    note[len(model) + 2 :].removeprefix("not fitted").strip(" ,()").removeprefix("because ")
                )
    return None


def _coefficients(fit: Any, why: str | None = None) -> str:
    """A model's coefficient table (the model-level statistics are stated in its heading), or
    why it was not fitted."""
    if fit is None:
        return f"<p><em>not fitted{f': {html.escape(why)}' if why else ''}</em></p>"
    table = fit.coefficients.reset_index(names="term")
    table["term"] = [term_words(str(term)) for term in table["term"]]
    t_based = fit.test in {"knha", "t"} or getattr(fit, "is_robust", False)
    return _table(table.rename(columns={"stat": "t" if t_based else "z"}), level=fit.level)


def _sensitivity(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """The leave-one-out range goes in its own column, not in the CI columns."""
    if frame is None:
        return None
    frame = frame.copy()
    loo = frame["analysis"].str.startswith("leave-one-out")
    frame["range"] = ""
    frame.loc[loo, "range"] = [
        f"{number(lo)} to {number(hi)}" for lo, hi in frame.loc[loo, ["ci_low", "ci_high"]].to_numpy()
    ]
    frame.loc[loo, ["ci_low", "ci_high"]] = np.nan
    if not frame["range"].str.len().any():
        frame = frame.drop(columns="range")
    return frame


def _model_overview(run: ReportedRun) -> pd.DataFrame:
    rows = []
    for name, model in (("random_effects", run.models.random_effects), ("multilevel", run.models.multilevel)):
        if model is not None:
            rows.append(
                {
                    "model": name.replace("_", " "),
                    "k": model.k,
                    "estimate": model.estimate,
                    "ci_low": model.ci_low,
                    "ci_high": model.ci_high,
                    "pi_low": model.pi_low,
                    "pi_high": model.pi_high,
                    "I2 (%)": model.i2,
                    "inference": inference_words(model),
                }
            )
    return pd.DataFrame(rows)
