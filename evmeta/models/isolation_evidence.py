"""Within- versus between-study evidence on isolation methods (``isolation_method_evidence``).

Isolation methods are mostly compared *between* studies, where the method travels with the
lab's disease model, dose and skill. Studies that test two or more methods on the same animals'
model give *within-study* contrasts free of that confounding. For every non-reference method m
the dummy ``d_i = [method_i == m]`` is split into its study mean ``dbar_s`` (the between-study
part) and the deviation ``d_i - dbar_s`` (the within-study part); both enter one multilevel
meta-regression (random study and experiment effects, REML). The within coefficient is
identified only by studies in which ``d`` varies, and it is the estimate to trust: study-level
confounders cancel in it. The between coefficient carries every study-level confounder; a Wald
test of ``within = between`` tests for that ecological bias (the meta-analytic form of the
Mundlak / within-between decomposition).

References
----------
Neuhaus JM, Kalbfleisch JD (1998). Between- and within-cluster covariate effects in the analysis
of clustered data. Biometrics 54:638-645. Fisher DJ, Carpenter JR, Morris TP, Freeman SC, Tierney
JF (2017). Meta-analytical methods to identify who benefits most from treatments: daft, deluded, or
deft approach? BMJ 356:j573.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evmeta.errors import ModelError

COLUMNS = [
    "method",
    "reference",
    "within_estimate",
    "within_se",
    "within_ci_low",
    "within_ci_high",
    "k_within_studies",
    "between_estimate",
    "between_se",
    "between_ci_low",
    "between_ci_high",
    "k_between_studies",
    "difference",
    "difference_pvalue",
]


def centred_moderators(
    frame: pd.DataFrame, reference: str, method: str = "isolation_method", study: str = "study_id"
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """Within- and between-study parts of every non-reference method dummy.

    Returns the frame with columns ``within_j`` / ``between_j`` added and a map
    ``method -> (within column, between column)``. Methods whose dummy never varies within a
    study get no within column (their within contrast is not identified).
    """
    out = frame.copy()
    columns: dict[str, tuple[str, str]] = {}
    levels = sorted(m for m in out[method].dropna().unique() if m != reference)
    for j, level in enumerate(levels):
        dummy = (out[method] == level).astype(float)
        study_mean = dummy.groupby(out[study]).transform("mean")
        within, between = f"within_{j}", f"between_{j}"
        out[between] = study_mean
        deviation = dummy - study_mean
        out[within] = deviation
        columns[str(level)] = (within if np.any(np.abs(deviation) > 1e-12) else "", between)
    return out, columns


def isolation_method_evidence(
    comparisons: Any,
    reference: str = "UC",
    *,
    yi: str = "yi",
    vi: str = "vi",
    method: str = "isolation_method",
    random: tuple[str, ...] = ("study_id", "experiment_id"),
    level: float = 0.95,
) -> pd.DataFrame:
    """Within-study and between-study contrasts of each isolation method against ``reference``.

    Parameters
    ----------
    comparisons : Comparisons or DataFrame
        One row per comparison with ``yi``, ``vi``, ``method`` and the ``random`` columns.
    reference : str
        The reference method (default ``"UC"``, differential ultracentrifugation).
    yi, vi, method : str
        Column names.
    random : tuple of str
        Nested grouping columns, outermost (the study) first.
    level : float
        Confidence level.

    Returns
    -------
    DataFrame
        One row per contrast (method vs reference): ``within_estimate``, ``within_ci_low``,
        ``within_ci_high``, ``k_within_studies`` (studies in which the method and another method
        are compared head to head), ``between_estimate``, ``between_ci_low``,
        ``between_ci_high``, ``k_between_studies``, ``difference`` (within - between) and
        ``difference_pvalue`` (Wald test of equality), with standard errors. The frame's
        ``attrs["fit"]`` holds the multilevel fit and ``attrs["notes"]`` sentences about
        rows left out (e.g. comparisons without an isolation method), never dropped silently.

    Raises
    ------
    ModelError
        Missing columns, an unknown reference, or no second method.
    """
    from evmeta.models.frequentist.multilevel import multilevel_meta_analysis

    frame = comparisons.table if hasattr(comparisons, "table") else pd.DataFrame(comparisons)
    needed = [yi, vi, method, *random]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ModelError(f"isolation_method_evidence: missing column(s) {', '.join(missing)}")
    frame, notes = _complete_rows(frame, needed, method)
    methods = sorted(frame[method].unique())
    if reference not in methods:
        raise ModelError(
            f"reference {reference!r} is not an isolation method here; found: {', '.join(methods)}"
        )
    if len(methods) < 2:
        raise ModelError("isolation_method_evidence needs at least two isolation methods")
    data, columns = centred_moderators(frame, reference, method, random[0])
    terms = [c for pair in columns.values() for c in pair if c]
    try:
        fit = multilevel_meta_analysis(
            data, yi, vi, random=list(random), mods="~ " + " + ".join(terms), level=level
        )
    except ModelError as exc:  # say it in the reader's words, not the internal column names
        raise ModelError(_readable(str(exc), columns)) from None
    table = fit.coefficients
    rows = []
    for name, (within, between) in columns.items():
        has = data[method] == name
        by_study = has.groupby(data[random[0]])
        per_study = by_study.any() & ~by_study.all()  # studies with this method and another one
        row = {
            "method": name,
            "reference": reference,
            "k_within_studies": int(per_study.sum()),
            "k_between_studies": int(data.loc[has, random[0]].nunique()),
        }
        row.update(_terms(table, fit.vb, list(table.index), within, between))
        rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS)
    out.attrs["fit"] = fit
    out.attrs["notes"] = notes
    return out


def _readable(message: str, columns: dict[str, tuple[str, str]]) -> str:
    """A message about the centred moderators with ``within_j``/``between_j`` named by their
    isolation method ("the within-study SEC contrast")."""
    for name, (within, between) in columns.items():
        if within:
            message = re.sub(rf"\b{within}\b", f"the within-study {name} contrast", message)
        message = re.sub(rf"\b{between}\b", f"the between-study {name} contrast", message)
    return message


def _complete_rows(frame: pd.DataFrame, needed: list[str], method: str) -> tuple[pd.DataFrame, list[str]]:
    """The rows with every needed value, and one sentence per reason a row was left out."""
    notes = []
    for column in needed:
        missing = frame[column].isna()
        if missing.any():
            ids = (
                frame.loc[missing, "comparison_id"]
                if "comparison_id" in frame.columns
                else frame.index[missing]
            )
            shown = ", ".join(map(str, list(ids)[:5])) + (" and more" if missing.sum() > 5 else "")
            what = "an isolation method" if column == method else f"a value of {column}"
            notes.append(
                f"{int(missing.sum())} comparison(s) without {what} left out of the within- vs "
                f"between-study isolation analysis ({shown})"
            )
    return frame.dropna(subset=needed), notes


def _terms(table: pd.DataFrame, vb: np.ndarray, names: list[str], within: str, between: str) -> dict:
    """Estimates, intervals and the Wald test of within = between for one method."""
    out: dict[str, float] = {}
    for part, column in (("within", within), ("between", between)):
        if column and column in names:
            row = table.to_dict("index")[column]
            out.update(
                {f"{part}_{name}": float(row[name]) for name in ("estimate", "se", "ci_low", "ci_high")}
            )
        else:
            out.update({f"{part}_{s}": np.nan for s in ("estimate", "se", "ci_low", "ci_high")})
    if within and within in names:
        i, j = names.index(within), names.index(between)
        diff = out["within_estimate"] - out["between_estimate"]
        se = float(np.sqrt(vb[i, i] + vb[j, j] - 2 * vb[i, j]))
        out["difference"] = diff
        out["difference_pvalue"] = float(2 * stats.norm.sf(abs(diff) / se))
    else:
        out["difference"] = out["difference_pvalue"] = np.nan
    return out
