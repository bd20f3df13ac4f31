"""Within-study and between-study dose information, and the test of their difference.

A study that gives several doses against one control tells how the effect changes with
dose *within* a laboratory, model and preparation; differences between studies that used
different doses mix dose with everything else that differs between studies. Three fits of
the log-linear slope (per decade of dose on the log10 scale, per unit of dose otherwise):

* **within**: study fixed effects (one intercept per study) and a random effect per
  comparison (REML), with the shared-control covariance; only studies with two or more
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
    """Slope with one fixed intercept per study and a comparison-level variance by REML.

    y = D alpha + x beta + e, e ~ N(0, V + sigma2 I): one variance component over a dense V
    (comparisons sharing a control are correlated, so V is not diagonal by comparison and
    the block algebra of the multilevel fitter does not apply); the REML criterion is
    minimized over sigma2 in [0, 10 var(y) + 1] by bounded Brent search (as metafor's
    ``rma.mv(yi, V, mods = ~ factor(study) + x, random = ~ 1 | comparison)``).
    """
    from scipy import optimize

    y = data["yi"].to_numpy(float)
    codes = pd.factorize(data["study_id"])[0]
    X = np.column_stack([(codes[:, None] == np.arange(codes.max() + 1)[None, :]).astype(float), data["x_dose"]])
    upper = 10 * float(np.var(y)) + 1.0
    found = optimize.minimize_scalar(lambda s2: _reml(y, X, V, s2)[0], bounds=(0.0, upper), method="bounded",
                                     options={"xatol": 1e-10})
    s2 = float(found.x) if _reml(y, X, V, found.x)[0] <= _reml(y, X, V, 0.0)[0] else 0.0
    _, beta, vb = _reml(y, X, V, s2)
    return float(beta[-1]), float(np.sqrt(vb[-1, -1]))


def _reml(y: np.ndarray, X: np.ndarray, V: np.ndarray, s2: float):
    """(REML criterion = -log restricted likelihood up to a constant, beta, cov(beta))."""
    L = np.linalg.cholesky(V + s2 * np.eye(len(y)))
    Xw, yw = np.linalg.solve(L, X), np.linalg.solve(L, y)
    A = Xw.T @ Xw
    vb = np.linalg.inv(A)
    beta = vb @ (Xw.T @ yw)
    r = yw - Xw @ beta
    value = float(np.sum(np.log(np.diag(L))) + 0.5 * np.linalg.slogdet(A)[1] + 0.5 * r @ r)
    return value, beta, vb


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
    row = fit.coefficients.to_dict("index")["x"]
    return float(row["estimate"]), float(row["se"])
