"""The consistency stage of :func:`evmeta.run_analysis`: is the effect more consistent
(smaller between-study variance) with some isolation methods, how heterogeneous is each
level of the multilevel model, and how likely is a new study to show a benefit?

Fits the location-scale model of the spec's ``[frequentist] scale`` (the same moderators
for the mean, so that differences in mean are not read as heterogeneity), tests equal
between-study variance (likelihood ratio and score), tabulates tau and the prediction
interval per level, the probability of a true effect above each ``thresholds`` value, and
the multilevel heterogeneity (I^2 by both methods with bootstrap intervals, CVH, M, R^2).
Writes ``consistency.csv``, ``thresholds.csv`` and ``heterogeneity_levels.csv`` and adds the
report section "Is the effect more consistent with some isolation methods?".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from evmeta.analysis.multilevel_bias import extend_bias_table
from evmeta.errors import EvmetaError
from evmeta.formatting import percent
from evmeta.models import heterogeneity_test, meta_analysis, multilevel_i2, multilevel_r2
from evmeta.models.base.threshold import threshold_table

if TYPE_CHECKING:  # the run's state, for the annotations only
    from evmeta.analysis.run_state import RunState

_T = TypeVar("_T")

__all__ = ["consistency", "consistency_answer", "extend_bias_table", "threshold_sentences"]

TITLE = "Is the effect more consistent with some isolation methods?"
#: The section's title for a table of another intervention (no isolation methods).
TITLE_ANY = "How consistent is the effect?"
#: Parametric-bootstrap refits for the intervals of the multilevel I^2 (a few ms each for
#: k ~ 100 with one BLAS thread; 100 give percentile limits to about +-3 points of I^2).
N_BOOT = 100


def consistency(run: RunState, table: pd.DataFrame) -> None:
    """Fit, tabulate, write the CSV files and append the report section (see module doc)."""
    from evmeta.report.sections import ReportSection

    s = run.spec.frequentist
    context: dict[str, Any] = {"scale": s.scale, "thresholds": list(s.thresholds), "sentences": []}
    probabilities = []
    main = run.models.random_effects
    if main is not None and s.thresholds:
        probabilities.append(threshold_table(main, s.thresholds).assign(model="random_effects"))
    if s.scale:
        probabilities += _scale_model(run, table, context)
    if probabilities:
        frame = pd.concat(probabilities, ignore_index=True)
        run.tables = run.tables.with_(thresholds=frame)
        context["sentences"] += threshold_sentences(frame, _measure(table))
    _multilevel(run, context)
    figures = _figures(run)
    if "caterpillar" in figures:
        from evmeta.report.svg import is_single_column

        context["caterpillar_single"] = is_single_column(run.figures["caterpillar"])
    from evmeta.analysis.intervention import has_ev_preparations

    context["ev"] = has_ev_preparations(table)  # else no isolation method to suggest as the scale
    title = TITLE if context["ev"] or s.scale else TITLE_ANY
    section = ReportSection("consistency", title, "partials/consistency.html.j2", context, figures)
    run.report_sections.append(section)


def _figures(run: RunState) -> list[str]:
    """Orchard plot of the location-scale model and caterpillar plot of the main model,
    in the spec's formats and width (none when the run has no figure settings)."""
    settings = getattr(run.spec, "figures", None)
    if settings is None:
        return []
    from evmeta.plots import save_figure
    from evmeta.plots.caterpillar import caterpillar_plot
    from evmeta.plots.orchard import orchard_plot

    formats, width = tuple(settings.formats), settings.width
    drawn = []
    if run.models.location_scale is not None:
        figure = orchard_plot(run.models.location_scale, width="single")
        run.figures["orchard"] = save_figure(figure, run.output / "orchard", formats)
        drawn.append("orchard")
    if run.models.random_effects is not None:
        figure = caterpillar_plot(run.models.random_effects, width=width)
        run.figures["caterpillar"] = save_figure(figure, run.output / "caterpillar", formats)
        drawn.append("caterpillar")
    return drawn


def _attempt(run: RunState, name: str, fit: Callable[[], _T]) -> _T | None:
    try:
        return fit()
    except EvmetaError as exc:  # errors raised on purpose become notes; bugs surface
        run.notes.append(f"{name}: not fitted ({exc})")
        return None


def _scale_model(run: RunState, table: pd.DataFrame, context: dict[str, Any]) -> list[pd.DataFrame]:
    s = run.spec.frequentist
    method = s.method if s.method in ("ML", "REML") else "REML"
    if method != s.method:
        context["method_note"] = (
            f"fitted by REML (a location-scale model needs ML or REML, the spec asks {s.method})"
        )
    fit = _attempt(
        run, "location-scale model", lambda: meta_analysis(
            table, mods=s.scale, scale=s.scale, method=method, level=s.level
        ),
    )
    if fit is None:
        context["failed"] = next((n for n in reversed(run.notes) if n.startswith("location-scale")), "")
        return []
    run.models = run.models.with_(location_scale=fit)
    test = _attempt(
        run,
        "test of equal heterogeneity",
        lambda: heterogeneity_test(table, s.scale, mods=s.scale, method=method),
    )
    levels = fit.heterogeneity_table()
    by_level = levels.drop(columns=["first_row"]).assign(scale=s.scale, method=method)
    run.tables = run.tables.with_(consistency=by_level)
    context.update(
        fit=fit, method=method, levels=by_level, notes=list(fit.notes),
        scale_coefficients=fit.scale_coef_table().reset_index(),
        test=None if test is None else test.to_frame(),
        answer=consistency_answer(fit, test, levels),
    )  # fmt: skip
    _bayes_contrasts(run, table, fit, context)
    if not s.thresholds:
        return []
    return [threshold_table(fit, s.thresholds).assign(model="location_scale")]


def _bayes_contrasts(run: RunState, table: pd.DataFrame, fit: Any, context: dict[str, Any]) -> None:
    """P(tau_level < tau_reference) from the exact Bayesian location-scale model, when the
    scale formula is one categorical column (the levels' posteriors then factorize)."""
    from evmeta.models import bayesian_location_scale

    terms = [t for t in fit.scale_model.term_columns if t != "intercept"]
    if len(terms) != 1 or terms[0] not in table.columns or pd.api.types.is_numeric_dtype(table[terms[0]]):
        return
    by = terms[0]
    given = getattr(getattr(run.spec, "bayesian", None), "priors", {})
    given = given if isinstance(given, dict) else {}
    priors = {"mu": given.get("intercept", "normal(0, 5)"), "tau": given.get("tau", "halfnormal(1)")}
    result = _attempt(
        run, "Bayesian location-scale model",
        lambda: bayesian_location_scale(table, by, mu_prior=priors["mu"], tau_prior=priors["tau"]),
    )  # fmt: skip
    if result is None:
        return
    levels = list(result.levels)
    named = {n.split("[T.", 1)[1].rstrip("]") for n in fit.scale_model.names if "[T." in n}
    reference = next((v for v in levels if str(v) not in named), levels[0])
    rows = [
        {"level": v, "versus": reference, "p_tau_less": result.p_tau_less(v, reference)}
        for v in levels
        if v != reference
    ]
    context["bayes_contrasts"] = pd.DataFrame(rows)
    context["bayes_priors"] = priors
    run.tables = run.tables.with_(bayes_tau_contrasts=context["bayes_contrasts"])


def consistency_answer(fit: Any, test: Any, levels: pd.DataFrame) -> str:
    """One paragraph answering the consistency question from the fitted model."""
    ordered = levels.sort_values("tau")
    text = f"Between-study SD (τ) by {fit.scale.lstrip('~ ').strip()}: "
    text += "; ".join(_level_phrase(row, fit.level) for row in ordered.itertuples()) + ". "
    # Rank the levels only when their printed taus differ: "most consistent with rat and least
    # with mouse" under "rat tau = 0.00; mouse tau = 0.00" says what the numbers do not.
    if len(ordered) > 1 and f"{ordered.iloc[0].tau:.2f}" != f"{ordered.iloc[-1].tau:.2f}":
        text += f"Effects are most consistent with {ordered.iloc[0].label} and least with {ordered.iloc[-1].label}. "
    elif len(ordered) > 1:
        text += "The estimated τ is the same (to two decimals) at every level. "
    if test is not None and np.isfinite(test.lrt_pvalue):
        verdict = "give clear evidence" if test.lrt_pvalue < 0.05 else "do not give clear evidence"
        score = f", score test {_p(test.score_pvalue)}" if np.isfinite(test.score_pvalue) else ""
        text += f"The data {verdict} that the between-study variance differs (likelihood-ratio test {_p(test.lrt_pvalue)}{score})."
    if fit.notes:
        text += " " + " ".join(fit.notes)
    return text


def _level_phrase(row: Any, level: float) -> str:
    if np.isfinite(row.tau2_ci_low):
        interval = f"{percent(level)} CI {np.sqrt(row.tau2_ci_low):.2f} to {np.sqrt(row.tau2_ci_high):.2f}"
    else:
        interval = "at the boundary 0, no interval"
    if np.isfinite(row.pred):
        interval += f"; {percent(level)} prediction interval {row.pi_low:.2f} to {row.pi_high:.2f}"
    return f"{row.label} τ = {row.tau:.2f} ({interval}, k = {row.k})"


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _percent(p: float) -> str:
    if p > 0.995:
        return "> 99%"
    if p < 0.005:
        return "< 1%"
    return f"{100 * p:.0f}%"


def threshold_sentences(frame: pd.DataFrame, measure: str | None) -> list[str]:
    """One sentence per model and group: 'A new comparable comparison with SEC has a 99%
    probability of a true benefit (effect above 0) and 84% of one above 0.5 SD (...)'."""
    unit = " SD" if measure == "SMD" else ""
    out = []
    for (model, group), part in frame.groupby(["model", "group"], sort=False):
        where = "" if group == "all" else f" with {group}"
        phrases = [
            f"{_percent(row['p_true_above'])} of a true benefit (effect above 0)"
            if row["threshold"] == 0
            else f"{_percent(row['p_true_above'])} of a true effect above {row['threshold']:g}{unit}"
            for row in part.to_dict("records")
        ]
        source = "location-scale model" if model == "location_scale" else "random-effects model"
        out.append(
            f"A new comparable comparison{where} has a probability of {' and '.join(phrases)} ({source})."
        )
    return out


def _multilevel(run: RunState, context: dict[str, Any]) -> None:
    fit = run.models.multilevel
    if fit is None:
        return
    ratio = _attempt(
        run, "multilevel I² intervals", lambda: multilevel_i2(fit, "ratio", ci=True, n_boot=N_BOOT)
    )
    if ratio is None:
        ratio = multilevel_i2(fit, "ratio")
    matrix = multilevel_i2(fit, "matrix")
    levels = ratio.rename(columns={"i2": "i2_ratio"})
    levels.insert(3, "i2_matrix", matrix["i2"])
    levels.insert(2, "tau", np.sqrt(levels["sigma2"]))
    regression = run.models.multilevel_regression
    if regression is not None:
        r2 = multilevel_r2(regression)
        context["r2"] = r2
        levels["r2_marginal"] = np.where(levels["level"] == "total", r2["r2_marginal"], np.nan)
        levels["r2_conditional"] = np.where(levels["level"] == "total", r2["r2_conditional"], np.nan)
    run.tables = run.tables.with_(heterogeneity_levels=levels.drop(columns=["method"]))
    context["multilevel"] = run.tables.heterogeneity_levels
    context["n_boot"] = int(levels["n_boot"].iloc[0]) if "n_boot" in levels else 0


def _measure(table: pd.DataFrame) -> str | None:
    if "measure" in table.columns and table["measure"].nunique() == 1:
        return str(table["measure"].iloc[0])
    return None
