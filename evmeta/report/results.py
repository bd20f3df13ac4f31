"""``results.csv`` and ``heterogeneity.csv``: every fitted model in tidy long form.

``results.csv`` has one row per model x term with the columns ``model, term, estimate,
se, ci_low, ci_high, p, k, test`` (k an integer; test ``knha`` = Knapp-Hartung t, ``z`` =
Wald z (also the step-function selection model's coefficients, with standard errors from
its likelihood; its likelihood-ratio test for selection is in the report), ``CR2`` =
cluster-robust with Satterthwaite df, ``posterior`` = Bayesian posterior mean, SD and 95%
credible interval). ``heterogeneity.csv`` has one row per model and variance component:
``model, component, k, tau2, tau, tau_ci_low, tau_ci_high, i2, i2_ratio, q, q_df, q_p``
(``i2`` is the matrix-method I², ``i2_ratio`` Nakagawa & Santos' ratio method, for the
multilevel models; a location-scale model gives one row per value of its scale moderators
with tau's Wald interval from the log scale). For the
frequentist models tau is the square root of the estimated tau2 (no interval); for the
Bayesian model (``model = bayesian``, one row per level) tau is the posterior mean of each
level's standard deviation and ``tau_ci_low``/``tau_ci_high`` its 95% credible interval,
with tau2, I² and Q left empty (the posterior mean of tau² is not the square of tau's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.models.frequentist.subgroup import SubgroupResult

if TYPE_CHECKING:
    from evmeta.results import AnalysisModels

RESULT_COLUMNS = ["model", "term", "estimate", "se", "ci_low", "ci_high", "p", "k", "test"]
HETEROGENEITY_COLUMNS = [
    "model",
    "component",
    "k",
    "tau2",
    "tau",
    "tau_ci_low",
    "tau_ci_high",
    "i2",
    "i2_ratio",
    "q",
    "q_df",
    "q_p",
]


def _test(fit: Any) -> str:
    if getattr(fit, "is_robust", False):
        return "CR2"
    test = getattr(fit, "test", None)
    if test:
        return str(test)
    # No test attribute (a selection model): coefficient_table gives t with a df column, else z.
    return "t" if "df" in fit.coefficients.columns else "z"


def _coefficient_rows(name: str, fit: Any) -> list[dict[str, Any]]:
    table = fit.coefficients
    scale = getattr(fit, "scale_coefficients", None)  # location-scale: log tau² terms too
    if scale is not None:
        table = pd.concat([table, scale.rename(index=lambda term: f"log tau2: {term}")])
    return [
        {
            "model": name,
            "term": term,
            "estimate": row["estimate"],
            "se": row["se"],
            "ci_low": row["ci_low"],
            "ci_high": row["ci_high"],
            "p": row["pvalue"],
            "k": int(fit.k),
            "test": _test(fit),
        }
        for term, row in table.iterrows()
    ]


def _subgroup_rows(name: str, result: Any) -> list[dict[str, Any]]:
    rows = []
    for level, fit in result.fits.items():
        if fit is None:
            continue
        for row in _coefficient_rows(name, fit):
            row["term"] = f"{result.by} = {level}"
            rows.append(row)
    return rows


def _bayes_rows(name: str, fit: Any) -> list[dict[str, Any]]:
    summary = fit.summary().table
    return [
        {
            "model": name,
            "term": term,
            "estimate": summary.loc[term, "estimate"],
            "se": summary.loc[term, "posterior_sd"],  # results.csv: se is the posterior SD here
            "ci_low": summary.loc[term, "ci_low"],
            "ci_high": summary.loc[term, "ci_high"],
            "p": np.nan,
            "k": int(fit.k),
            "test": "posterior",
        }
        for term in fit.names
    ]


def tidy_results(models: AnalysisModels) -> pd.DataFrame:
    """One row per model x term for every model of a run (``run.models``): the frequentist
    models with coefficients, each subgroup, the Bayesian model (bias diagnostics have
    their own table)."""
    rows: list[dict[str, Any]] = []
    coefficient = dict(models.coefficient_models())
    for name, fit in models.labelled():
        if name in coefficient:
            rows += _coefficient_rows(name, fit)
        elif fit is models.bayesian:
            rows += _bayes_rows(name, fit)
        elif isinstance(fit, SubgroupResult):
            rows += _subgroup_rows(name, fit)
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    frame["k"] = frame["k"].astype("int64")
    return frame


def _components(name: str, fit: Any) -> list[dict[str, Any]]:
    # Models without a Q test (e.g. a selection model) leave those columns empty.
    q_df = getattr(fit, "q_df", None)
    base = {
        "model": name,
        "k": int(fit.k),
        "q": getattr(fit, "q", np.nan),
        "q_df": pd.NA if q_df is None else int(q_df),
        "q_p": getattr(fit, "q_pvalue", np.nan),
    }
    if hasattr(fit, "scale_model"):  # location-scale: tau per value of the scale moderators
        return [
            {**base, "component": f"{fit.scale} : {row.label}", "tau2": row.tau2, "tau": row.tau,
             "tau_ci_low": np.sqrt(row.tau2_ci_low), "tau_ci_high": np.sqrt(row.tau2_ci_high)}
            for row in fit.heterogeneity_table().itertuples()
        ]  # fmt: skip
    if hasattr(fit, "sigma2"):
        from evmeta.models import multilevel_i2

        ratio = multilevel_i2(fit, method="ratio")["i2"]
        return [
            {**base, "component": level, "tau2": s2, "tau": np.sqrt(s2), "i2": i2, "i2_ratio": r}
            for level, s2, i2, r in zip(fit.random, fit.sigma2, fit.i2_levels, ratio, strict=False)
        ]
    return [
        {
            **base,
            "component": "between comparisons",
            "tau2": fit.tau2,
            "tau": np.sqrt(fit.tau2),
            "i2": getattr(fit, "i2", np.nan),
        }
    ]


def _bayes_components(name: str, fit: Any) -> list[dict[str, Any]]:
    """Posterior mean and 95% credible interval of each level's tau (named like the
    multilevel model's components: ``study_id``, ``experiment_id``, ``comparison``)."""
    summary = fit.summary().table
    return [
        {
            "model": name,
            "component": level,
            "k": int(fit.k),
            "tau": summary.loc[tau, "estimate"],
            "tau_ci_low": summary.loc[tau, "ci_low"],
            "tau_ci_high": summary.loc[tau, "ci_high"],
        }
        for level, tau in zip(fit.levels, fit.tau_names, strict=True)
    ]


def heterogeneity_table(models: AnalysisModels) -> pd.DataFrame:
    """tau², tau, I² and Q for every frequentist model (per level for multilevel models, per
    subgroup for subgroup analyses), and the Bayesian model's tau per level (posterior mean
    and 95% credible interval)."""
    rows: list[dict[str, Any]] = []
    coefficient = dict(models.coefficient_models())
    for name, fit in models.labelled():
        if name in coefficient:
            rows += _components(name, fit)
        elif fit is models.bayesian:
            rows += _bayes_components(name, fit)
        elif isinstance(fit, SubgroupResult):
            for level, part in fit.fits.items():
                if part is not None:
                    rows += [{**r, "component": f"{fit.by} = {level}"} for r in _components(name, part)]
    frame = pd.DataFrame(rows, columns=HETEROGENEITY_COLUMNS)
    frame["k"] = frame["k"].astype("int64")
    frame["q_df"] = frame["q_df"].astype("Int64")
    return frame
