"""The frozen result of a one-stage dose-response meta-analysis and its curve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import ModelError
from evmeta.models.base.inference import coefficient_table, critical_value
from evmeta.models.base.protocol import Summary, resolve_level
from evmeta.models.dose_response.effective_dose import EffectiveDose
from evmeta.models.dose_response.emax import jacobian
from evmeta.models.dose_response.spline import NaturalSpline
from evmeta.models.dose_response.within_between import WithinBetween

MODELS = ("linear", "spline", "emax")
SCALES = ("log10", "dose")


def from_dose_scale(scale: str, x: Any) -> np.ndarray:
    """Doses from values ``x`` on the curve's dose scale (``scale``: "log10" or "dose")."""
    return 10 ** np.asarray(x, dtype=float) if scale == "log10" else np.asarray(x, dtype=float)


def curve_design(spline: NaturalSpline | None, x: Any) -> np.ndarray:
    """Design rows (intercept first) of the linear (``spline`` None) or spline curve at
    scale values ``x``."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    columns = spline.basis(x) if spline is not None else x[:, None]
    return np.column_stack([np.ones(len(x)), columns])


@dataclass(frozen=True, eq=False)
class DoseResponseResult:
    """A fitted dose-response curve (immutable).

    Attributes
    ----------
    model : {"linear", "spline", "emax"}
    dose : str
        The dose column (``dose_<basis>``); doses are in its units everywhere.
    scale : {"log10", "dose"}
        Scale of the dose in the linear and spline curves.
    spline : NaturalSpline or None
        Knots (on the dose scale of ``scale``) of the spline curve.
    fit : MultilevelResult
        The multilevel fit behind the curve (for Emax: the fit at the estimated ED50).
    coefficients : DataFrame
        ``estimate, se, stat, pvalue, ci_low, ci_high`` (+ ``df``); for Emax ``emax`` and
        ``log10_ed50``.
    vb : ndarray
        Covariance of the coefficients.
    effective_dose : EffectiveDose
        The dose reaching ``share`` of the maximum predicted effect, with its interval.
    within_between : WithinBetween or None
        Within- vs between-study slopes and their test (None without within-study doses).
    excluded : DataFrame
        Comparisons left out, with the reason.
    V : ndarray
        Sampling covariance of the rows fitted (shared controls).
    """

    model: str
    dose: str
    scale: str
    spline: NaturalSpline | None
    fit: Any = field(repr=False)
    coefficients: pd.DataFrame = field(repr=False)
    vb: np.ndarray = field(repr=False)
    effective_dose: EffectiveDose
    within_between: WithinBetween | None
    excluded: pd.DataFrame = field(repr=False)
    V: np.ndarray = field(repr=False)
    dose_range: tuple[float, float]
    level: float
    method: str
    test: str
    df: float | None
    reported_only: bool = False
    notes: tuple[str, ...] = ()

    # --- stored inputs -------------------------------------------------------------
    @property
    def k(self) -> int:
        return self.fit.k

    @property
    def measure(self) -> str | None:
        return self.fit.measure

    @property
    def data(self) -> pd.DataFrame:
        """The rows fitted (every input column, plus ``dose`` and ``dose_provenance``)."""
        return self.fit.data

    @property
    def yi(self) -> np.ndarray:
        return self.fit.yi

    @property
    def vi(self) -> np.ndarray:
        return self.fit.vi

    @property
    def weights(self) -> np.ndarray:
        return self.fit.weights

    @property
    def random(self) -> list[str]:
        return list(self.fit.random)

    @property
    def sigma2(self) -> list[float]:
        return list(self.fit.sigma2)

    @property
    def tau2(self) -> float:
        return float(np.sum(self.fit.sigma2))

    @property
    def i2_levels(self) -> list[float]:
        return list(self.fit.i2_levels)

    @property
    def q(self) -> float:
        """Residual heterogeneity Q of the fit behind the curve (known V only)."""
        return self.fit.q

    @property
    def q_df(self) -> int:
        return self.fit.q_df

    @property
    def q_pvalue(self) -> float:
        return self.fit.q_pvalue

    @property
    def n_studies(self) -> int:
        return int(self.data["study_id"].nunique())

    # --- the curve -----------------------------------------------------------------
    def to_scale(self, dose: Any) -> np.ndarray:
        dose = np.asarray(dose, dtype=float)
        return np.log10(dose) if self.scale == "log10" else dose

    def from_scale(self, x: Any) -> np.ndarray:
        return from_dose_scale(self.scale, x)

    def design(self, x: Any) -> np.ndarray:
        """Design rows (intercept first) of the linear or spline curve at scale values ``x``."""
        return curve_design(self.spline, x)

    def _doses(self, newmods: Any) -> np.ndarray:
        if newmods is None:
            return self.data["dose"].to_numpy(float)
        if isinstance(newmods, pd.DataFrame):
            for name in ("dose", self.dose):
                if name in newmods.columns:
                    return newmods[name].to_numpy(float)
            raise ModelError(f"newmods has no column 'dose' or {self.dose!r}")
        doses = np.atleast_1d(np.asarray(newmods, dtype=float)).ravel()
        if np.any(~np.isfinite(doses)) or (self.scale == "log10" and np.any(doses <= 0)):
            raise ModelError("newmods must be finite doses (positive on the log10 scale)")
        return doses

    def predict(self, newmods: Any = None, level: float | None = None) -> pd.DataFrame:
        """Predicted effect at doses ``newmods`` (array of doses in the units of ``dose``, or
        a DataFrame with a ``dose`` column; default: the fitted rows): ``dose, pred, se,
        ci_low, ci_high, pi_low, pi_high`` (prediction intervals add every variance
        component, as metafor's ``predict`` for ``rma.mv``)."""
        level = resolve_level(level, self.level)
        doses = self._doses(newmods)
        beta = self.coefficients["estimate"].to_numpy()
        if self.model == "emax":
            G = jacobian(doses, beta[0], beta[1])
            pred = beta[0] * G[:, 0]
        else:
            G = self.design(self.to_scale(doses))
            pred = G @ beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", G, self.vb, G))
        crit = critical_value(level, self.df)
        sd = np.sqrt(se**2 + self.tau2)
        return pd.DataFrame({"dose": doses, "pred": pred, "se": se, "ci_low": pred - crit * se,
                             "ci_high": pred + crit * se, "pi_low": pred - crit * sd, "pi_high": pred + crit * sd})

    def curve(self, n: int = 101, level: float | None = None) -> pd.DataFrame:
        """``predict`` on ``n`` doses evenly spaced (on the model's scale) over the doses studied."""
        lo, hi = self.to_scale(self.dose_range)
        x = np.linspace(lo, hi, n)
        return self.predict(self.from_scale(x), level)

    # --- protocol ------------------------------------------------------------------
    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        level = resolve_level(level, self.level)
        if level == self.level:
            return self.coefficients.copy()
        beta = self.coefficients["estimate"].to_numpy()
        return coefficient_table(beta, self.vb, list(self.coefficients.index), level, self.df)

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """``tau2``, ``tau`` and ``i2`` per random level (REML or ML point estimates; no
        interval is computed for them)."""
        resolve_level(level, self.level)
        return pd.DataFrame(
            {"component": self.random, "tau2": self.sigma2, "tau": np.sqrt(self.sigma2),
             "i2": list(self.fit.i2_levels), "n_groups": list(self.fit.n_groups)}
        )

    def summary(self, level: float | None = None) -> Summary:
        level = resolve_level(level, self.level)
        table = self.coef_table(level)
        taus = pd.DataFrame({"estimate": np.sqrt(self.sigma2)},
                            index=pd.Index([f"tau[{r}]" for r in self.random], name="term"))
        title = (f"Dose-response meta-analysis ({self.model} in {self.scale} {self.dose}; k = {self.k}, "
                 f"{self.n_studies} studies; {self.method})")
        return Summary(title, self._lines(), pd.concat([table, taus]), level)

    def _lines(self) -> list[str]:
        e = self.effective_dose
        lines = [", ".join(f"sigma^2[{r}] = {s:.4f}" for r, s in zip(self.random, self.sigma2, strict=True))]
        if self.spline is not None:
            knots = ", ".join(f"{v:.4g}" for v in self.from_scale([*self.spline.knots]))
            lines.append(f"Spline knots (dose): boundary {self.from_scale(self.spline.boundary).round(4).tolist()}, "
                         f"interior {knots}")
        ed = f"ED{e.share * 100:.0f} = {e.dose:.4g} ({e.level:.0%} CI {e.ci_low:.4g} to {e.ci_high:.4g}; {e.method})"
        if not np.isfinite(e.dose):
            ed = f"ED{e.share * 100:.0f} not located"
        lines.append(ed + (f"; {e.note}" if e.note else ""))
        wb = self.within_between
        if wb is not None:
            lines.append(f"Within-study slope {wb.within:.3f} (SE {wb.within_se:.3f}), between-study slope "
                         f"{wb.between:.3f} (SE {wb.between_se:.3f}); difference z = {wb.z:.2f}, p = {wb.pvalue:.3g}")
        lines.append(f"{len(self.excluded)} comparisons left out (see .excluded)")
        return lines + [f"Note: {n}" for n in self.notes]

    def to_frame(self) -> pd.DataFrame:
        out = self.coefficients.reset_index(names="term")
        out["k"], out["model"], out["dose"], out["scale"] = self.k, self.model, self.dose, self.scale
        for name, value in zip(self.random, self.sigma2, strict=True):
            out[f"sigma2[{name}]"] = value
        return out
