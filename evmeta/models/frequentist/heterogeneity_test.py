"""Test whether the between-study variance differs with a moderator (heteroscedasticity of
the random effects): ``heterogeneity_test(data, by="isolation_method")``.

Two tests of H0: alpha_1 = ... = alpha_q = 0 in log tau2_i = alpha_0 + z_i' alpha
(the location-scale model of :mod:`evmeta.models.frequentist.location_scale`):

* the likelihood-ratio test, 2 (l_1 - l_0) ~ chi2(q), with both models fitted by the same
  method (ML or REML: the fixed effects are the same, so REML likelihoods compare);
* the score (Rao) test, U' I^-1 U ~ chi2(q), with the score U and the expected
  information I = 1/2 tr(M V_j M V_l) evaluated at the fit without scale moderators
  (M = W for ML, P for REML). It needs only the null fit, so it stays defined when the
  alternative puts a level's tau2 at 0.

References
----------
Viechtbauer W, Lopez-Lopez JA (2022). Res Synth Methods 13:697-715 (location-scale models;
metafor 5.1's ``hettest`` offers the same pair of tests).
Rao CR (1948). Proc Camb Philos Soc 44:50-57 (score test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from evmeta.errors import ModelError
from evmeta.models.base.protocol import Summary
from evmeta.models.frequentist import location_scale_fit as core
from evmeta.models.frequentist.location_scale import LocationScaleResult, location_scale_analysis


@dataclass(frozen=True, eq=False)
class HeterogeneityTestResult:
    """LRT and score test of a moderator of tau^2 (immutable); ``fit`` is the location-scale
    model under the alternative. ``notes`` explains any test that is not defined."""

    by: str
    method: str
    k: int
    df: int
    lrt: float
    lrt_pvalue: float
    score: float
    score_pvalue: float
    tau2_null: float
    fit: LocationScaleResult = field(repr=False)
    notes: tuple[str, ...] = ()

    frozen = True

    @property
    def level(self) -> float:
        return self.fit.level

    @property
    def measure(self) -> str | None:
        return self.fit.measure

    def to_frame(self) -> pd.DataFrame:
        """One row per test: ``test``, ``stat``, ``df``, ``pvalue``, ``by``, ``method``."""
        return pd.DataFrame(
            {
                "test": ["likelihood ratio", "score"],
                "stat": [self.lrt, self.score],
                "df": [self.df, self.df],
                "pvalue": [self.lrt_pvalue, self.score_pvalue],
                "by": self.by,
                "method": self.method,
                "k": self.k,
            }
        )

    def summary(self, level: float | None = None) -> Summary:
        """Both tests and, as the table, tau per level of ``by`` (from the alternative fit)."""
        level = level or self.level
        lines = [
            f"Likelihood-ratio test: chi2({self.df}) = {self.lrt:.3f}, p = {self.lrt_pvalue:.4g}",
            f"Score test: chi2({self.df}) = {self.score:.3f}, p = {self.score_pvalue:.4g}",
            *self.notes,
        ]
        table = self.fit.heterogeneity_table(level).set_index("label")
        return Summary(f"Test of equal between-study variance across {self.by} (k = {self.k}; {self.method})",
                       lines, table, level)  # fmt: skip


def heterogeneity_test(
    data: Any,
    by: str,
    yi: Any = "yi",
    vi: Any = "vi",
    *,
    mods: str | None = None,
    method: str = "ML",
    level: float = 0.95,
) -> HeterogeneityTestResult:
    """Does the between-study variance differ across ``by``?

    Parameters
    ----------
    data : DataFrame or Comparisons
    by : str
        A column (categorical or continuous) or a formula (``"~ isolation_method"``) for
        the scale part.
    yi, vi : str or array-like
        Effect sizes and sampling variances.
    mods : str, optional
        Moderators of the mean, the same under both hypotheses.
    method : {"ML", "REML"}

    Returns
    -------
    HeterogeneityTestResult
    """
    scale = by if str(by).strip().startswith("~") else f"~ {by}"
    fit = location_scale_analysis(data, yi, vi, scale=scale, mods=mods, method=method, level=level)
    if "intercept" not in fit.scale_model.names:
        raise ModelError(f"the scale formula {scale!r} must keep its intercept for this test")
    score, tau2_null, notes = _score_test(fit)
    df = fit.n_scale - 1
    return HeterogeneityTestResult(
        by=str(by).strip().lstrip("~").strip(), method=fit.method, k=fit.k, df=df, lrt=fit.lrt,
        lrt_pvalue=fit.lrt_pvalue, score=score,
        score_pvalue=float(special.chdtrc(df, score)) if np.isfinite(score) else np.nan,
        tau2_null=tau2_null, fit=fit, notes=notes,
    )  # fmt: skip


def _score_test(fit: LocationScaleResult) -> tuple[float, float, tuple[str, ...]]:
    """Rao score statistic at the fit without scale moderators."""
    y, v, X, Z = fit.yi, fit.vi, fit.X, fit.Z
    reml = fit.method == "REML"
    ones = np.ones((len(y), 1))
    null, _, converged, boundary = core.maximize(y, v, X, ones, core.start(y, v, X, ones), reml)
    tau2_null = float(null.tau2[0])
    if boundary or not converged:
        return (
            np.nan,
            tau2_null,
            (
                "The score test is not defined: without scale moderators tau^2 is estimated at 0, "
                "where the log-linear model has no derivative; use the likelihood-ratio test.",
            ),
        )
    alpha = np.zeros(Z.shape[1])
    alpha[fit.scale_model.names.index("intercept")] = null.alpha[0]
    at_null = core.state(y, v, X, Z, alpha, reml)
    score, _, expected = core.derivatives(at_null, Z, reml)
    stat = float(score @ np.linalg.lstsq(expected, score, rcond=None)[0])
    return max(stat, 0.0), tau2_null, ()
