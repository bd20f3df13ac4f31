"""R export: a self-contained R script (metafor, clubSandwich) and the data it needs, which
reproduce the frequentist models of ``evmeta run`` for a journal's editor or reviewers.

The script fits what the run fits, with the run's settings: the random-effects model, one
model per subgroup level, the meta-regression, the three-level model and its
meta-regression (``rma.mv``), with cluster-robust CR2 inference through clubSandwich where
the run reported it. It writes ``metafor_results.json`` (one record per model and term:
``model, term, estimate, se, ci_low, ci_high, p, k, test``), with evmeta's model and term
names, so that it can be set beside ``results.csv``.

References
----------
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw
36(3). Pustejovsky JE, Tipton E (2018). Small-sample methods for cluster-robust variance
estimation and hypothesis testing in fixed effects models. J Bus Econ Stat 36(4).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evmeta._outputs import staged
from evmeta._paths import check_output
from evmeta._version import __version__

#: Model families of a run (fields of :class:`~evmeta.results.AnalysisModels`) that
#: the R script reproduces, besides the subgroup analyses.
EXPORTED = ("random_effects", "meta_regression", "multilevel", "multilevel_regression")
DATA_FILE, SCRIPT_FILE, RESULTS_FILE = "comparisons_for_r.csv", "evmeta_models.R", "metafor_results.json"
#: evmeta's own numbers for the exported models (the rows of results.csv), to set beside R's.
EVMETA_FILE = "evmeta_results.csv"


@dataclass(frozen=True)
class RExport:
    """What :func:`export_r` wrote: the script, the data, evmeta's own results for the same
    models (``evmeta_results.csv``, the rows ``results.csv`` has for them) and their names."""

    script: Path
    data: Path
    evmeta_results: Path
    models: tuple[str, ...]


def r_term(name: str) -> str:
    """metafor's coefficient name for an evmeta term (``isolation_method[T.SEC]`` ->
    ``isolation_methodSEC``; ``intercept`` -> ``intrcpt``)."""
    if name == "intercept":
        return "intrcpt"
    match = re.fullmatch(r"(.+)\[T\.(.+)\]", name)
    return f"{match.group(1)}{match.group(2)}" if match else name


def _r_string(value: Any) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _r_vector(values: list[Any]) -> str:
    return "c(" + ", ".join(_r_string(v) for v in values) + ")"


def _factor_lines(table: pd.DataFrame, columns: list[str]) -> list[str]:
    """``d$x <- factor(d$x, levels = ...)`` in evmeta's level order (reference first)."""
    lines = []
    for column in columns:
        values = table[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            levels = [str(v) for v in values.cat.categories if (values == v).any()]
        elif values.dtype == object:
            levels = sorted(values.dropna().astype(str).unique())
        else:
            continue
        lines.append(f"d${column} <- factor(d${column}, levels = {_r_vector(levels)})")
    return lines


def _rename_line(fit: Any) -> str:
    pairs = ", ".join(f"{_r_string(r_term(n))} = {_r_string(n)}" for n in fit.model.names)
    return f"c({pairs})"


def _model_block(name: str, fit: Any, level: float) -> str:
    """R code fitting one evmeta model and adding its rows to ``results``."""
    formula = fit.model.formula
    mods = f", mods = {formula}" if formula and not fit.model.intercept_only else ""
    robust = bool(getattr(fit, "is_robust", False))
    if hasattr(fit, "random"):
        random = "/".join(fit.random)
        test = ', test = "t"' if fit.test in {"knha", "t"} else ""
        call = (
            f'rma.mv(yi, vi{mods}, random = ~ 1 | {random}, data = d, method = "{fit.method}"'
            f"{test}, level = {100 * level:g})"
        )
        cluster = fit.random[0]
    else:
        call = f'rma(yi, vi{mods}, data = d, method = "{fit.method}", test = "{fit.test}", level = {100 * level:g})'
        cluster = None
    inference = (
        f'robust_rows(fit, d${cluster}, "{name}", rename, {level})'
        if robust
        else (f'model_rows(fit, "{name}", rename, "{fit.test}")')
    )
    return f"# {name}\nfit <- {call}\nrename <- {_rename_line(fit)}\nresults <- rbind(results, {inference})\n"


def _subgroup_block(name: str, result: Any, level: float) -> str:
    blocks = []
    for value, fit in result.fits.items():
        if fit is None:
            continue
        call = (
            f"rma(yi, vi, data = d, subset = as.character({result.by}) == {_r_string(value)}, "
            f'method = "{fit.method}", test = "{fit.test}", level = {100 * level:g})'
        )
        term = f"{result.by} = {value}"
        blocks.append(
            f"fit <- {call}\n"
            f'results <- rbind(results, model_rows(fit, "{name}", c(intrcpt = {_r_string(term)}), "{fit.test}"))'
        )
    return f"# {name}: one model per level\n" + "\n".join(blocks) + "\n"


_HELPERS = r"""
model_rows <- function(fit, model, rename, test) {
  b <- coef(summary(fit))
  stopifnot(all(rownames(b) %in% names(rename)))
  data.frame(model = model, term = unname(rename[rownames(b)]), estimate = b$estimate, se = b$se,
             ci_low = b$ci.lb, ci_high = b$ci.ub, p = b$pval, k = fit$k, test = test)
}
robust_rows <- function(fit, cluster, model, rename, level) {
  ct <- clubSandwich::coef_test(fit, vcov = "CR2", cluster = cluster, test = "Satterthwaite")
  ci <- clubSandwich::conf_int(fit, vcov = "CR2", cluster = cluster, level = level)
  terms <- rownames(coef(summary(fit)))
  stopifnot(all(terms %in% names(rename)))
  data.frame(model = model, term = unname(rename[terms]), estimate = ct$beta, se = ct$SE,
             ci_low = ci$CI_L, ci_high = ci$CI_U, p = ct$p_Satt, k = fit$k, test = "CR2")
}
"""


def r_script(run: Any, spec_name: str) -> str:
    """The R script for the models of ``run`` (a :class:`~evmeta.analysis.run_state.RunState`
    whose frequentist stage has been fitted)."""
    level = 0.95
    table = run.tables.pooled
    blocks, columns = [], set()
    exported = run.models.only(*EXPORTED, "subgroups")
    for name, fit in exported.coefficient_models():
        blocks.append(_model_block(name, fit, fit.level))
        columns |= set(fit.model.frame.columns) & set(table.columns)
    for by, subgroups in exported.subgroups.items():
        blocks.append(_subgroup_block(f"subgroup:{by}", subgroups, level))
        columns.add(by)
    categorical = [c for c in sorted(columns) if c in table.columns and c not in {"yi", "vi"}]
    header = (
        f"# Generated by evmeta {__version__} on {dt.date.today().isoformat()} from the analysis spec "
        f"'{spec_name}'.\n# Reproduces the frequentist models of `evmeta run` with metafor (and "
        "clubSandwich for CR2);\n# writes metafor_results.json beside this script. Run: Rscript "
        f"{SCRIPT_FILE}\n"
        "suppressPackageStartupMessages({library(metafor); library(clubSandwich); library(jsonlite)})\n"
        "here <- tryCatch(dirname(normalizePath(sys.frame(1)$ofile)), error = function(e) NULL)\n"
        'if (is.null(here)) { arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)\n'
        '  here <- if (length(arg)) dirname(normalizePath(sub("^--file=", "", arg[1]))) else getwd() }\n'
        f'd <- read.csv(file.path(here, "{DATA_FILE}"), stringsAsFactors = FALSE, check.names = FALSE)\n'
    )
    factors = "\n".join(_factor_lines(table, categorical))
    footer = (
        f'write_json(results, file.path(here, "{RESULTS_FILE}"), digits = NA, dataframe = "rows", '
        "auto_unbox = TRUE, pretty = TRUE)\n"
        f'cat("wrote", file.path(here, "{RESULTS_FILE}"), "\\n")\n'
    )
    return header + factors + "\n" + _HELPERS + "results <- NULL\n\n" + "\n".join(blocks) + "\n" + footer


def export_r(spec_path: str | Path, output: str | Path, *, overwrite: bool = False) -> RExport:
    """Write an R script and its data reproducing the frequentist models of ``evmeta run``.

    Parameters
    ----------
    spec_path : str or Path
        The analysis spec (``analyses/<name>.toml``).
    output : str or Path
        Folder to write ``evmeta_models.R`` and ``comparisons_for_r.csv`` into (created).
    overwrite : bool
        Replace those two files when they exist (otherwise refused, as the CLI without
        ``--force``).

    Returns
    -------
    RExport
    """
    from evmeta.analysis import stages
    from evmeta.analysis.pipeline import RunState
    from evmeta.analysis.spec import load_spec
    from evmeta.analysis.table import analysis_table
    from evmeta.report.results import tidy_results
    from evmeta.schema.validation.validate import read_extraction
    from evmeta.sheets.export import write_csv

    spec = load_spec(spec_path)
    inputs = [Path(spec_path), spec.extraction_path]
    folder = Path(output)
    script_path, data_path, ours_path = folder / SCRIPT_FILE, folder / DATA_FILE, folder / EVMETA_FILE
    for path in (script_path, data_path, ours_path):
        check_output(path, inputs=inputs, force=overwrite)
    built = analysis_table(read_extraction(spec.extraction_path), spec)
    run = RunState(spec, folder, built.comparisons, built.exclusions)
    run.tables = run.tables.with_(analysis_table=built.table)
    stages.frequentist(run, built.table)
    folder.mkdir(parents=True, exist_ok=True)
    exported = run.models.only(*EXPORTED, "subgroups")
    models = tuple(name for name, _ in exported.labelled())
    # Staged beside the targets and moved into place together: never a half export.
    with staged([script_path, data_path, ours_path]) as staging:
        write_csv(built.table, staging.path(data_path))
        staging.path(script_path).write_text(r_script(run, spec.analysis.name), encoding="utf-8")
        write_csv(tidy_results(exported), staging.path(ours_path))
    return RExport(script_path, data_path, ours_path, models)
