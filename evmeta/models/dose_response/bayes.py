"""The Bayesian counterpart of the one-stage dose-response curve, with a moderator (default
isolation method) that shifts the curve's level.

The same curve (linear or natural cubic spline in log10 dose, the knots of
:mod:`.spline`) and random intercepts as :func:`.fit.dose_response_meta_analysis`, fitted
by :func:`evmeta.bayesian_meta_analysis` with ``mods = ~ <curve columns> + isolation_method``:
the methods share the curve's shape and differ by a constant, so ``curve(at="SEC")`` is the
curve of SEC-isolated EVs. When no comparisons share a control (or the controls were
split), the posterior is exact (quadrature over the one or two heterogeneity SDs, the
coefficients integrated analytically); with a shared-control covariance V the engine
needs NUTS (the existing PyMC backend). The Emax curve is nonlinear in ED50 and not
offered here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import ModelError
from evmeta.models.base.protocol import POSTERIOR_SD, Summary, resolve_level
from evmeta.models.bayes.fit import bayesian_meta_analysis
from evmeta.models.dose_response.fit import entering, random_levels, shared_covariance
from evmeta.models.dose_response.spline import DEFAULT_QUANTILES, NaturalSpline, spline_at_quantiles


@dataclass(frozen=True, eq=False)
class BayesDoseResponseResult:
    """A Bayesian dose-response curve (immutable): ``fit`` is the BayesResult behind it;
    ``level_by`` the moderator of the curve's level (None when it does not vary) with
    ``levels`` (reference first)."""

    model: str
    dose: str
    scale: str
    spline: NaturalSpline | None
    fit: Any = field(repr=False)
    curve_columns: tuple[str, ...]
    level_by: str | None
    levels: tuple[str, ...]
    dose_range: tuple[float, float]
    excluded: pd.DataFrame = field(repr=False)
    level: float = 0.95
    notes: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        return self.fit.k

    @property
    def measure(self) -> str | None:
        return self.fit.measure

    @property
    def method(self) -> str:
        return self.fit.method

    def _columns(self, doses: np.ndarray) -> dict[str, np.ndarray]:
        x = np.log10(doses) if self.scale == "log10" else doses
        values = self.spline.basis(x) if self.spline is not None else x[:, None]
        return {name: values[:, j] for j, name in enumerate(self.curve_columns)}

    def predict(self, newmods: Any = None, level: float | None = None, *, at: str | None = None) -> pd.DataFrame:
        """Posterior of the curve at doses ``newmods`` (default: the fitted rows' doses) for
        the level ``at`` of ``level_by`` (default: its reference level): ``dose, pred, se,
        ci_low, ci_high, pi_low, pi_high`` (+ ``pred_sd``, ``p_effect_gt_threshold``)."""
        level = resolve_level(level, self.level)
        if newmods is None:
            doses = self.fit.data["dose"].to_numpy(float)
        else:
            doses = np.atleast_1d(np.asarray(newmods, dtype=float)).ravel()
        if np.any(~np.isfinite(doses)) or (self.scale == "log10" and np.any(doses <= 0)):
            raise ModelError("newmods must be finite doses (positive on the log10 scale)")
        frame = pd.DataFrame(self._columns(doses))
        if self.level_by is not None:
            at = self.levels[0] if at is None else at
            if at not in self.levels:
                raise ModelError(f"{self.level_by} level {at!r} is not in the model; levels: {', '.join(self.levels)}")
            frame[self.level_by] = at
        out = self.fit.predict(frame, level)
        out.insert(0, "dose", doses)
        return out

    def curve(self, n: int = 101, level: float | None = None, *, at: str | None = None) -> pd.DataFrame:
        """:meth:`predict` on ``n`` doses evenly spaced (on the model's scale) over the doses studied."""
        lo, hi = self.dose_range
        grid = np.geomspace(lo, hi, n) if self.scale == "log10" else np.linspace(lo, hi, n)
        return self.predict(grid, level, at=at)

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        return self.fit.coef_table(level)

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """Posterior mean, SD and credible interval of each level's tau."""
        table = self.fit.summary(level).table
        taus = table.loc[list(self.fit.tau_names), ["estimate", POSTERIOR_SD, "ci_low", "ci_high"]]
        return taus.rename(columns={"estimate": "tau", POSTERIOR_SD: "tau_sd"}).reset_index(names="component")

    def summary(self, level: float | None = None) -> Summary:
        inner = self.fit.summary(level)
        title = f"Bayesian dose-response ({self.model} in {self.scale} {self.dose}; {inner.title})"
        lines = inner.lines + [f"Note: {n}" for n in self.notes]
        return Summary(title, lines, inner.table, inner.level)

    def to_frame(self) -> pd.DataFrame:
        out = self.fit.to_frame()
        out["model"], out["dose"] = f"bayesian_dose_response:{self.model}", self.dose
        return out


def bayesian_dose_response(
    table: Any,
    dose: str = "dose_ug_protein_per_kg",
    model: str = "spline",
    *,
    level_by: str | None = "isolation_method",
    reference: str | None = None,
    scale: str = "log10",
    knots: tuple[float, ...] = DEFAULT_QUANTILES,
    random: list[str] | str = "auto",
    priors: dict[str, str] | str | None = None,
    method: str = "auto",
    shared_control: bool = True,
    reported_only: bool = False,
    draws: int = 2000,
    seed: int | None = None,
    progress: bool = False,
) -> BayesDoseResponseResult:
    """Bayesian dose-response curve with ``level_by`` as a moderator of its level.

    Arguments as :func:`evmeta.models.dose_response_meta_analysis` (``model`` linear or spline),
    plus ``reference`` (the reference level of ``level_by``; default: the first in sorted
    order) and ``priors``, ``method``, ``draws``, ``seed`` and ``progress`` as
    :func:`evmeta.bayesian_meta_analysis` (curve coefficients get the default coefficient
    prior unless ``priors`` names them: ``ns1``, ``ns2``, ... or ``log10_dose``).
    """
    if model not in {"linear", "spline"}:
        raise ModelError(f"the Bayesian dose-response curve is linear or spline, got {model!r}")
    if scale not in {"log10", "dose"}:
        raise ModelError(f"unknown dose scale {scale!r}; valid scales: log10, dose")
    selection, rows = entering(table, dose, model, reported_only)
    random = random_levels(rows, random)
    V, notes = shared_covariance(rows, shared_control)
    shared = bool(np.any(V[~np.eye(len(V), dtype=bool)] != 0))
    doses = rows["dose"].to_numpy(float)
    x = np.log10(doses) if scale == "log10" else doses
    spline = spline_at_quantiles(x, knots) if model == "spline" else None
    names = spline.names if spline is not None else ["log10_dose" if scale == "log10" else "dose_value"]
    values = spline.basis(x) if spline is not None else x[:, None]
    data = rows.assign(**{n: values[:, j] for j, n in enumerate(names)})
    levels: tuple[str, ...] = ()
    if level_by is not None and level_by in data.columns and data[level_by].nunique() >= 2:
        present = sorted(data[level_by].astype(str).unique())
        if reference is not None and reference not in present:
            raise ModelError(f"reference {reference!r} is not a level of {level_by}; levels: {', '.join(present)}")
        levels = tuple(([reference] if reference else []) + [v for v in present if v != reference])
        data[level_by] = pd.Categorical(data[level_by].astype(str), categories=list(levels))
        mods = "~ " + " + ".join([*names, level_by])
    else:
        if level_by is not None:
            notes.append(f"{level_by} does not vary among the comparisons with a dose: not a moderator")
        level_by, mods = None, "~ " + " + ".join(names)
    fit = bayesian_meta_analysis(data, mods=mods, random=random, priors=priors, method=method, draws=draws,
                                 seed=seed, progress=progress, V=V if shared else None)
    return BayesDoseResponseResult(model, selection.column, scale, spline, fit, tuple(names), level_by, levels,
                                   (float(doses.min()), float(doses.max())), selection.excluded, notes=tuple(notes))
