"""Within-study and between-study dose information, and the test of their difference.

A study that gives several doses against one control tells how the effect changes with
dose *within* a laboratory, model and preparation; differences between studies that used
different doses mix dose with everything else that differs between studies. Three fits of
the log-linear slope (per decade of dose on the log10 scale, per unit of dose otherwise):

* **within**: study fixed effects (one intercept per study) and a random effect per
  comparison, with the shared-control covariance; only studies with two or more
  distinct doses inform the slope;
* **between**: the study means (mean effect with variance 1' V_s 1 / n_s^2, mean dose)
  in a random-effects meta-regression;
* **contextual test**: one model with the study-mean dose and the within-study deviation
  from it as two moderators, random study effects and V (Neuhaus & Kalbfleisch 1998;
  the "within-between" decomposition); the Wald z test of the difference of their slopes
  asks whether within- and between-study dose information disagree.

References
----------
Neuhaus JM, Kalbfleisch JD (1998). Between- and within-cluster covariate effects in the
analysis of clustered data. Biometrics 54:638-645.
Fisher DJ, Carpenter JR, Morris TP, Freeman SC, Tierney JF (2017). Meta-analytical methods
to identify who benefits most from treatments: daft, deluded, or deft approach? BMJ 356:j573.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from evmeta.models.frequentist.meta import meta_analysis
from evmeta.models.frequentist.multilevel import multilevel_meta_analysis


@dataclass(frozen=True)
class WithinBetween:
    """Slopes (estimate, se) from within- and between-study information and their test."""

    within: float
    within_se: float
    between: float
    between_se: float
    difference: float
    difference_se: float
    z: float
    pvalue: float
    n_multi_dose_studies: int
    n_studies: int
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "estimate": [self.within, self.between, self.difference],
                "se": [self.within_se, self.between_se, self.difference_se],
                "stat": [np.nan, np.nan, self.z],
                "pvalue": [np.nan, np.nan, self.pvalue],
            },
            index=pd.Index(["within-study slope", "between-study slope", "within - between (contextual)"],
                           name="term"),
        )


def within_between(frame: pd.DataFrame, x: np.ndarray, V: np.ndarray, random: list[str]) -> WithinBetween | None:
    """The three fits on ``frame`` (``yi``, ``vi``, ``study_id``, ``comparison_id``) with dose
    variable ``x``; None when no study gave two distinct doses (no within-study information)."""
    data = frame.assign(x_dose=x)
    data["x_between"] = data.groupby("study_id")["x_dose"].transform("mean")
    data["x_within"] = data["x_dose"] - data["x_between"]
    spread = data.groupby("study_id")["x_dose"].agg(lambda s: np.ptp(s.to_numpy()) > 1e-12)
    multi, studies = int(spread.sum()), len(spread)
    if multi == 0 or studies < 3 or data.groupby("study_id")["x_dose"].mean().nunique() < 2:
        return None
    notes = []
    within = _within(data, V)
    between, between_se = _between(data, V)
    contextual = multilevel_meta_analysis(data, "yi", "vi", random=random, mods="~ x_between + x_within", V=V)
    c = np.array([0.0, -1.0, 1.0])
    diff = float(c @ contextual.coefficients["estimate"].to_numpy())
    diff_se = float(np.sqrt(c @ contextual.vb @ c))
    z = diff / diff_se
    if multi < 3:
        notes.append(f"only {multi} studies gave more than one dose: the within-study slope rests on them alone")
    return WithinBetween(
        within[0], within[1], between, between_se, diff, diff_se, float(z),
        float(2 * special.ndtr(-abs(z))), multi, studies, tuple(notes),
    )


def _within(data: pd.DataFrame, V: np.ndarray) -> tuple[float, float]:
    fit = multilevel_meta_analysis(data, "yi", "vi", random=["study_id", "comparison_id"], mods="~ study_id + x_dose", V=V)
    row = fit.coefficients.loc["x_dose"]
    return float(row["estimate"]), float(row["se"])


def _between(data: pd.DataFrame, V: np.ndarray) -> tuple[float, float]:
    codes, studies = pd.factorize(data["study_id"])
    n = np.bincount(codes).astype(float)
    indicator = (codes[None, :] == np.arange(len(studies))[:, None]).astype(float)
    means = pd.DataFrame(
        {
            "yi": indicator @ data["yi"].to_numpy(float) / n,
            "vi": np.einsum("si,ij,sj->s", indicator, V, indicator) / n**2,
            "x": indicator @ data["x_dose"].to_numpy(float) / n,
        }
    )
    fit = meta_analysis(means, mods="~ x")
    row = fit.coefficients.loc["x"]
    return float(row["estimate"]), float(row["se"])
