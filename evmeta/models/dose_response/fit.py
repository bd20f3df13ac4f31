"""One-stage dose-response meta-analysis: ``dose_response_meta_analysis``.

Every comparison (EV arm vs its control) is one point of the study's dose-response curve.
The curve f(dose) - linear or a natural cubic spline in log10 dose (or dose), or a
hyperbolic Emax curve in dose - is the mean of a multilevel model with random intercepts
per study (and per experiment within study where studies have several experiments) and
the known sampling covariance V of comparisons sharing a control arm (Gleser & Olkin
2009, :func:`evmeta.harmonize.shared_control_covariance`); in metafor,
``rma.mv(yi, V, mods = ~ ns(log10(dose), knots, Boundary.knots), random = ~ 1 | study)``.
This is the one-stage approach of Crippa, Discacciati, Bottai, Spiegelman & Orsini (2019)
for differences in means (Crippa & Orsini 2016) with the study's arms as the dose points.

References
----------
Crippa A, Orsini N (2016). Dose-response meta-analysis of differences in means. BMC Med
Res Methodol 16:91.
Crippa A, Discacciati A, Bottai M, Spiegelman D, Orsini N (2019). One-stage dose-response
meta-analysis for aggregated data. Stat Methods Med Res 28:1579-1596.
Greenland S, Longnecker MP (1992). Methods for trend estimation from summarized
dose-response data. Am J Epidemiol 135:1301-1309.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import InputError, ModelError
from evmeta.harmonize.covariance import shared_control_covariance
from evmeta.models.base.inference import coefficient_table
from evmeta.models.dose_response.effective_dose import curve_effective_dose, emax_effective_dose
from evmeta.models.dose_response.emax import fit_emax
from evmeta.models.dose_response.result import (
    MODELS,
    SCALES,
    DoseResponseResult,
    curve_design,
    from_dose_scale,
)
from evmeta.models.dose_response.selection import DoseSelection, select_dosed
from evmeta.models.dose_response.spline import DEFAULT_QUANTILES, spline_at_quantiles
from evmeta.models.dose_response.within_between import within_between
from evmeta.models.frequentist.multilevel import multilevel_meta_analysis

#: Fewest comparisons, studies and distinct doses a curve is fitted to.
MIN_COMPARISONS = 4
MIN_DOSES = {"linear": 2, "spline": 4, "emax": 3}


def dose_response_meta_analysis(
    table: Any,
    dose: str = "dose_ug_protein_per_kg",
    model: str = "spline",
    *,
    scale: str = "log10",
    knots: tuple[float, ...] = DEFAULT_QUANTILES,
    random: list[str] | str = "auto",
    method: str = "REML",
    test: str = "z",
    shared_control: bool = True,
    reported_only: bool = False,
    share: float = 0.5,
    contrast_within_between: bool = True,
    level: float = 0.95,
) -> DoseResponseResult:
    """Fit a dose-response curve across and within studies on a harmonized dose.

    Parameters
    ----------
    table : DataFrame or Comparisons
        Comparison table of :func:`evmeta.build_comparisons` (``yi``, ``vi``, ``study_id``,
        ``experiment_id``, ``comparison_id``, the dose columns; built with
        ``shared_control="keep"`` for the shared-control covariance).
    dose : str
        Harmonized dose column, e.g. ``dose_ug_protein_per_kg``, ``dose_particles_per_kg``,
        ``dose_hed_ug_protein_per_kg``, ``dose_total_ug_protein_per_kg`` (see
        :data:`evmeta.models.dose_response.selection.DOSE_BASES`). Only comparisons whose
        dose was converted to it enter; the others are in ``result.excluded`` with why.
    model : {"linear", "spline", "emax"}
        Linear in the dose scale, natural cubic spline in it, or E(d) = Emax d / (ED50 + d).
    scale : {"log10", "dose"}
        Dose scale of the linear and spline curves (``log10``: per decade of dose).
    knots : sequence of float
        Quantiles of the fitted rows' dose scale for the spline knots; the outer two are
        the boundary knots (default 10%, 50%, 90%: two basis columns).
    random : list of str or "auto"
        Nested grouping columns, outermost first; ``auto``: ``study_id``, plus
        ``experiment_id`` when some study has several experiments.
    method, test : str
        REML or ML variance components (Emax: always ML); z or t (k - p df) inference.
    shared_control : bool
        Model comparisons that share a control arm by their covariance (needs a table
        built with ``shared_control="keep"``; otherwise V = diag(vi) with a note).
    reported_only : bool
        Sensitivity analysis: leave out doses that were imputed (reference body weights,
        assumed numbers of administrations).
    share : float
        The share of the maximum effect for the effective dose (0.5: ED50).
    contrast_within_between : bool
        Also fit the within-study (study fixed effects) and between-study (study means)
        slopes and test their difference (``result.within_between``; three more fits).
    level : float
        Confidence level. See docs/dose_response.md for the methods.

    Returns
    -------
    DoseResponseResult

    Raises
    ------
    ModelError
        Unknown model, scale or dose; too few comparisons, studies or distinct doses.
    """
    _check(model, scale, share)
    selection, rows = entering(table, dose, model, reported_only)
    random = random_levels(rows, random)
    V, notes = shared_covariance(rows, shared_control)
    doses = rows["dose"].to_numpy(float)
    x = np.log10(doses) if scale == "log10" else doses
    common = dict(dose=selection.column, scale=scale, excluded=selection.excluded, V=V,
                  dose_range=(float(doses.min()), float(doses.max())), level=level, test=test,
                  reported_only=reported_only)
    wb = within_between(rows, x, V, random) if contrast_within_between else None
    if model == "emax":
        return _emax(rows, doses, random, wb, notes, share, **common)
    spline = spline_at_quantiles(x, knots) if model == "spline" else None
    return _curve(rows, x, spline, random, method, wb, notes, share, **common)


def _curve(rows, x, spline, random, method, wb, notes, share, **common) -> DoseResponseResult:
    """The linear (``spline`` None) or spline curve by ``multilevel_meta_analysis``, and its ED-p."""
    name = "log10_dose" if common["scale"] == "log10" else "dose_value"
    columns = spline.basis(x) if spline is not None else x[:, None]
    names = spline.names if spline is not None else [name]
    data = rows.assign(**{n: columns[:, j] for j, n in enumerate(names)})
    fit = multilevel_meta_analysis(data, "yi", "vi", random=random, mods="~ " + " + ".join(names),
                                   V=common["V"], method=method, test=common["test"], level=common["level"])
    ed = curve_effective_dose(partial(curve_design, spline), fit.coefficients["estimate"].to_numpy(), fit.vb,
                              (float(x.min()), float(x.max())), partial(from_dose_scale, common["scale"]), share,
                              common["level"])
    return DoseResponseResult("spline" if spline is not None else "linear", spline=spline, fit=fit,
                              coefficients=fit.coefficients, vb=fit.vb, effective_dose=ed, within_between=wb,
                              method=fit.method, df=fit.df, notes=tuple(notes) + tuple(fit.notes), **common)


def entering(table: Any, dose: str, model: str, reported_only: bool) -> tuple[DoseSelection, pd.DataFrame]:
    """(the DoseSelection, its rows renumbered with a ``comparison_id``), checked for size."""
    selection = select_dosed(getattr(table, "table", table), dose, reported_only=reported_only)
    rows = selection.rows.reset_index(drop=True)
    if "comparison_id" not in rows.columns:
        rows["comparison_id"] = [f"row{i + 1}" for i in range(len(rows))]
    check_size(rows, model, selection.column)
    return selection, rows


def _emax(rows, doses, random, wb, notes, share, **common) -> DoseResponseResult:
    fitted = fit_emax(rows, doses, random, common["V"], common["level"])
    beta = np.array([fitted.emax, fitted.log10_ed50])
    df = float(len(rows) - 2) if common["test"] == "t" else None
    coefficients = coefficient_table(beta, fitted.vcov, ["emax", "log10_ed50"], common["level"], df)
    if df is not None:
        coefficients["df"] = df
    ed = emax_effective_dose(fitted.log10_ed50, fitted.profile_interval, share, common["level"], fitted.at_bound)
    notes = list(notes) + list(fitted.fit.notes)
    if fitted.at_bound:
        notes.append(
            "the Emax curve's ED50 is at the edge of the doses searched: the data show no "
            "saturation within two decades of the doses studied, so ED50 and Emax are not estimable"
        )
    return DoseResponseResult("emax", spline=None, fit=fitted.fit, coefficients=coefficients, vb=fitted.vcov,
                              effective_dose=ed, within_between=wb, method="ML", df=df, notes=tuple(notes),
                              **common)


def _check(model: str, scale: str, share: float) -> None:
    if model not in MODELS:
        raise ModelError(f"unknown dose-response model {model!r}; valid models: {', '.join(MODELS)}")
    if scale not in SCALES:
        raise ModelError(f"unknown dose scale {scale!r}; valid scales: {', '.join(SCALES)}")
    if not 0 < float(share) < 1:
        raise ModelError(f"share must lie strictly between 0 and 1, got {share}")


def check_size(rows: pd.DataFrame, model: str, column: str) -> None:
    distinct = rows["dose"].round(12).nunique()
    if len(rows) < MIN_COMPARISONS or distinct < MIN_DOSES[model] or rows["study_id"].nunique() < 2:
        raise ModelError(
            f"a {model} dose-response curve needs at least {MIN_COMPARISONS} comparisons from 2 or more "
            f"studies with {MIN_DOSES[model]} or more distinct doses in {column}; there are {len(rows)} "
            f"comparisons from {rows['study_id'].nunique()} studies with {distinct} distinct doses"
        )


def random_levels(rows: pd.DataFrame, random: list[str] | str) -> list[str]:
    if random != "auto":
        return [random] if isinstance(random, str) else list(random)
    if "experiment_id" in rows.columns and (rows.groupby("study_id")["experiment_id"].nunique() > 1).any():
        return ["study_id", "experiment_id"]
    return ["study_id"]


def shared_covariance(rows: pd.DataFrame, shared_control: bool) -> tuple[np.ndarray, list[str]]:
    diagonal = np.diag(rows["vi"].to_numpy(float))
    if not shared_control:
        return diagonal, []
    if "control_group_id" not in rows.columns:
        return diagonal, ["no control_group_id column: comparisons are treated as independent (V = diag(vi))"]
    try:
        return shared_control_covariance(rows), []
    except InputError as exc:
        if "split" in str(exc):
            return diagonal, [
                "the shared controls were split among their arms (shared_control='split'), which approximates "
                "their correlation, so V = diag(vi); build the comparisons with shared_control='keep' to "
                "model it by the shared-control covariance"
            ]
        return diagonal, [f"V = diag(vi), not the shared-control covariance: {exc}"]
