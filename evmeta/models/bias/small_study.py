"""Small-study effects and sensitivity: Egger-type regression tests, trim-and-fill,
PET-PEESE and cumulative meta-analysis.

References
----------
Egger M et al. (1997). BMJ 315:629-634.
Sterne JAC, Egger M (2005). Regression methods to detect publication and other bias in
meta-analysis. In: Publication Bias in Meta-Analysis, ch. 6 (metafor's ``regtest``).
Duval S, Tweedie R (2000). Biometrics 56:455-463 (trim-and-fill, L0 and R0).
Stanley TD, Doucouliagos H (2014). Res Synth Methods 5:60-78 (PET-PEESE).
Zwetsloot P-P et al. (2017). eLife 6:e24260 (sqrt(1/n) for SMD in animal studies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evmeta.errors import ModelError
from evmeta.models.base.inference import coefficient_table
from evmeta.models.base.protocol import Summary, resolve_level
from evmeta.models.frequentist.meta import MetaResult, fit_design, meta_analysis

PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtninv", "sqrt_inv_n")


@dataclass
class EggerResult:
    """Regression test for funnel-plot asymmetry.

    ``stat``/``pvalue`` test the predictor's coefficient; ``limit_estimate`` is the
    intercept: the effect expected as the predictor goes to 0 (an infinitely large study).
    """

    predictor: str
    model: str
    stat: float
    pvalue: float
    df: float | None
    slope: float
    slope_se: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    limit_se: float = float("nan")
    level: float = 0.95

    def coef_table(self, conf_level: float | None = None, *, prob: float | None = None) -> pd.DataFrame:
        """The limit estimate (intercept) and the predictor's slope: estimate, se, ci_low,
        ci_high, stat, pvalue (z, or t with ``df``)."""
        level = resolve_level(conf_level, prob, self.level)
        beta = np.array([self.limit_estimate, self.slope])
        vb = np.diag(np.array([self.limit_se, self.slope_se]) ** 2)
        return coefficient_table(beta, vb, ["limit estimate", self.predictor], level, self.df)

    def summary(self, conf_level: float | None = None, *, prob: float | None = None) -> Summary:
        """The test of the slope above the coefficient table (:class:`Summary`)."""
        level = resolve_level(conf_level, prob, self.level)
        dist = f"t({self.df:g})" if self.df else "z"
        title = f"Regression test for funnel plot asymmetry ({self.model}, predictor {self.predictor})"
        lines = [
            f"Test for asymmetry: {dist} = {self.stat:.3f}, p = {self.pvalue:.4g}",
            f"Limit estimate (as the predictor goes to 0): {self.limit_estimate:.4f} "
            f"[{self.limit_ci_low:.4f}, {self.limit_ci_high:.4f}]",
        ]
        return Summary(title, lines, self.coef_table(level), level)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient (limit estimate, slope) with the test repeated."""
        out = self.coef_table().reset_index(names="term")
        out["predictor"], out["regression"], out["model"] = self.predictor, self.model, "egger_test"
        return out

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _sample_sizes(result: MetaResult, ni: Any) -> np.ndarray:
    frame = result.data
    if ni is not None:
        values = frame[ni] if isinstance(ni, str) else ni
        return np.asarray(values, dtype=float)
    if {"n_treat", "n_control"} <= set(frame.columns):
        return (frame["n_treat"] + frame["n_control"]).to_numpy(dtype=float)
    if "ni" in frame.columns:
        return frame["ni"].to_numpy(dtype=float)
    raise ModelError("this predictor needs sample sizes: pass ni= or include n_treat and n_control columns")


def egger_test(
    result: MetaResult, predictor: str = "sei", *, model: str = "rma", ni: Any = None
) -> EggerResult:
    """Egger-type regression test, as metafor's ``regtest``.

    Parameters
    ----------
    result : MetaResult
        The fitted model (its moderators are kept).
    predictor : {"sei", "vi", "ni", "ninv", "sqrt_inv_n"}
        ``sei`` is metafor's default; ``sqrt_inv_n`` (sqrt(1 / n), n = total animals) is
        what CAMARADES advise for SMD, whose SE depends on the effect itself.
    model : {"rma", "lm"}
        ``rma``: a mixed-effects meta-regression with the same tau^2 estimator and test
        (metafor's default). ``lm``: the classic Egger test, weighted least squares with
        weights 1 / vi and a t test (statsmodels WLS).
    ni : str or array, optional
        Total sample sizes, for the sample-size predictors.
    """
    name = "sqrtninv" if predictor == "sqrt_inv_n" else predictor
    if name not in PREDICTORS:
        raise ModelError(f"unknown predictor {predictor!r}; valid predictors: sei, vi, ni, ninv, sqrt_inv_n")
    vi = result.vi
    if name == "sei":
        x = np.sqrt(vi)
    elif name == "vi":
        x = vi
    else:
        n = _sample_sizes(result, ni)
        x = {"ni": n, "ninv": 1 / n, "sqrtninv": np.sqrt(1 / n)}[name]
    X = np.column_stack([result.model.X, x])
    names = [*result.model.names, "predictor"]
    if model == "lm":
        import statsmodels.api as sm

        fit = sm.WLS(result.yi, X, weights=1 / vi).fit()
        ci = fit.conf_int(alpha=1 - result.level)
        return EggerResult(
            predictor,
            "lm",
            float(fit.tvalues[-1]),
            float(fit.pvalues[-1]),
            float(fit.df_resid),
            float(fit.params[-1]),
            float(fit.bse[-1]),
            float(fit.params[0]),
            float(ci[0, 0]),
            float(ci[0, 1]),
            float(fit.bse[0]),
            result.level,
        )
    if model != "rma":
        raise ModelError(f"unknown model {model!r}; valid models: rma, lm")
    fit = fit_design(result.yi, vi, X, names, method=result.method, test=result.test, level=result.level)
    coefs = fit.coefficients
    slope = coefs.loc["predictor"]
    limit = coefs.iloc[0]
    return EggerResult(
        predictor,
        "rma",
        float(slope["stat"]),
        float(slope["pvalue"]),
        fit.df,
        float(slope["estimate"]),
        float(slope["se"]),
        float(limit["estimate"]),
        float(limit["ci_low"]),
        float(limit["ci_high"]),
        float(limit["se"]),
        result.level,
    )


@dataclass
class TrimFillResult:
    """Trim-and-fill: number and side of the filled comparisons and the adjusted estimate."""

    estimator: str
    k0: int
    side: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float
    filled: pd.DataFrame
    fit: MetaResult = field(repr=False)

    def coef_table(self, conf_level: float | None = None, *, prob: float | None = None) -> pd.DataFrame:
        """The adjusted estimate (the filled model's intercept): estimate, se, ci_low, ci_high, ..."""
        return self.fit.coef_table(conf_level, prob=prob)

    def summary(self, conf_level: float | None = None, *, prob: float | None = None) -> Summary:
        """The number of filled comparisons above the filled model's table (:class:`Summary`)."""
        level = resolve_level(conf_level, prob, self.fit.level)
        title = f"Trim-and-fill ({self.estimator}): {self.k0} comparison(s) filled on the {self.side}"
        lines = [f"Filled model: k = {self.fit.k}; tau^2 = {self.tau2:.4f}"]
        return Summary(title, lines, self.coef_table(level), level)

    def to_frame(self) -> pd.DataFrame:
        """The adjusted estimate with the estimator, k0 and side."""
        out = self.coef_table().reset_index(names="term")
        for name in ["estimator", "k0", "side", "tau2"]:
            out[name] = getattr(self, name)
        out["model"] = "trim_and_fill"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "k0": self.k0,
            "side": self.side,
            "estimate": self.estimate,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "tau2": self.tau2,
            "filled": self.filled.to_dict(orient="records"),
        }


def trim_and_fill(
    result: MetaResult, estimator: str = "L0", side: str | None = None, max_iter: int = 100
) -> TrimFillResult:
    """Duval & Tweedie's trim-and-fill for a model without moderators (as metafor's ``trimfill``).

    The side is chosen, when not given, by the sign of the slope of y on sqrt(v) in a
    meta-regression with the model's estimator: a positive slope means missing
    comparisons on the left.
    """
    if not result.model.intercept_only:
        raise ModelError("trim-and-fill is defined for models without moderators")
    if estimator not in {"L0", "R0"}:
        raise ModelError(f"unknown estimator {estimator!r}; valid estimators: L0, R0")
    y, v = result.yi.copy(), result.vi.copy()
    method = result.method
    if side is None:
        frame = pd.DataFrame({"yi": y, "vi": v, "sei": np.sqrt(v)})
        slope = meta_analysis(frame, mods="~ sei", method=method).coefficients["estimate"].iloc[1]
        side = "right" if slope < 0 else "left"
    if side not in {"left", "right"}:
        raise ModelError(f"side must be 'left' or 'right', got {side!r}")
    flipped = -y if side == "right" else y
    order = np.argsort(flipped, kind="stable")
    ys, vs = flipped[order], v[order]
    k = len(ys)
    k0, previous = 0, -1
    beta = 0.0
    for _ in range(max_iter):
        if k0 == previous:
            break
        previous = k0
        beta = meta_analysis(yi=ys[: k - k0], vi=vs[: k - k0], method=method).estimate
        centred = ys - beta
        ranks = stats.rankdata(np.abs(centred), method="ordinal")
        signed = np.sign(centred) * ranks
        if estimator == "L0":
            k0_raw = (4 * signed[signed > 0].sum() - k * (k + 1)) / (2 * k - 1)
        else:
            k0_raw = (k - np.max(-signed[signed < 0])) - 1 if (signed < 0).any() else k - 1
        k0 = max(0, int(np.round(k0_raw)))
    else:
        raise ModelError("trim-and-fill did not converge")
    if k0 > 0:
        extreme = ys[k - k0 :]
        filled_y = 2 * beta - extreme
        filled_y = -filled_y if side == "right" else filled_y
        filled = pd.DataFrame({"yi": filled_y, "vi": vs[k - k0 :]})
        fit = meta_analysis(
            yi=np.concatenate([y, filled_y]),
            vi=np.concatenate([v, filled["vi"].to_numpy()]),
            method=method,
            test=result.test,
            level=result.level,
        )
    else:
        filled = pd.DataFrame({"yi": [], "vi": []})
        fit = result
    return TrimFillResult(
        estimator, k0, side, fit.estimate, fit.se, fit.ci_low, fit.ci_high, fit.tau2, filled, fit
    )


@dataclass
class PetPeeseResult:
    """PET and PEESE estimates and which one the conditional rule selects.

    ``estimate``/``ci_low``/``ci_high`` are the selected model's intercept; ``df`` is the
    residual df of the weighted least-squares fits (t intervals and tests).
    """

    pet_estimate: float
    pet_se: float
    pet_pvalue: float
    peese_estimate: float
    peese_se: float
    selected: str
    estimate: float
    ci_low: float
    ci_high: float
    df: float | None = None
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def coef_table(self, conf_level: float | None = None, *, prob: float | None = None) -> pd.DataFrame:
        """PET and PEESE intercepts: estimate, se, ci_low, ci_high, stat, pvalue, selected."""
        level = resolve_level(conf_level, prob, self.level)
        beta = np.array([self.pet_estimate, self.peese_estimate])
        vb = np.diag(np.array([self.pet_se, self.peese_se]) ** 2)
        table = coefficient_table(beta, vb, ["PET", "PEESE"], level, self.df)
        table["selected"] = table.index == self.selected
        return table

    def summary(self, conf_level: float | None = None, *, prob: float | None = None) -> Summary:
        """The selected estimate above both intercepts (:class:`Summary`)."""
        level = resolve_level(conf_level, prob, self.level)
        title = "PET-PEESE (weighted least squares, weights 1 / vi)"
        lines = [
            f"PET intercept p = {self.pet_pvalue:.4g}; selected {self.selected}: {self.estimate:.4f} "
            f"[{self.ci_low:.4f}, {self.ci_high:.4f}]"
        ]
        return Summary(title, lines, self.coef_table(level), level)

    def to_frame(self) -> pd.DataFrame:
        """One row each for PET and PEESE."""
        out = self.coef_table().reset_index(names="term")
        out["model"] = "pet_peese"
        return out


def pet_peese(result: MetaResult, alpha: float = 0.10) -> PetPeeseResult:
    """PET-PEESE (Stanley & Doucouliagos 2014) by weighted least squares (weights 1 / vi).

    PET regresses y on the standard error, PEESE on the variance; the intercepts estimate
    the effect of a perfectly precise study. PEESE is selected when PET's intercept differs
    from 0 at two-sided ``alpha`` = 0.10 (a one-sided 5% test), else PET.
    """
    import statsmodels.api as sm

    y, v = result.yi, result.vi
    pet = sm.WLS(y, sm.add_constant(np.sqrt(v)), weights=1 / v).fit()
    peese = sm.WLS(y, sm.add_constant(v), weights=1 / v).fit()
    use_peese = pet.pvalues[0] < alpha
    chosen = peese if use_peese else pet
    ci = chosen.conf_int(alpha=1 - result.level)[0]
    return PetPeeseResult(
        float(pet.params[0]),
        float(pet.bse[0]),
        float(pet.pvalues[0]),
        float(peese.params[0]),
        float(peese.bse[0]),
        "PEESE" if use_peese else "PET",
        float(chosen.params[0]),
        float(ci[0]),
        float(ci[1]),
        float(chosen.df_resid),
        result.level,
    )


def cumulative_meta_analysis(result: MetaResult, order: Any = None) -> pd.DataFrame:
    """Refit adding one comparison at a time, in ``order`` (a column name, e.g. ``year``, or
    an array of sort keys); one row per step with the estimate and heterogeneity."""
    if not result.model.intercept_only:
        raise ModelError("cumulative meta-analysis is defined for models without moderators")
    frame = result.data
    if order is None:
        keys = np.arange(result.k)
    elif isinstance(order, str):
        if order not in frame.columns:
            raise ModelError(f"order={order!r} is not a column of data")
        keys = frame[order].to_numpy()
    else:
        keys = np.asarray(order)
    sequence = np.argsort(keys, kind="stable")
    rows = []
    for step in range(1, len(sequence) + 1):
        take = sequence[:step]
        if step == 1:
            se = float(np.sqrt(result.vi[take[0]]))
            crit = stats.norm.ppf(1 - (1 - result.level) / 2)
            rows.append(
                {
                    "added": frame.index[take[-1]],
                    "k": 1,
                    "estimate": float(result.yi[take[0]]),
                    "se": se,
                    "ci_low": result.yi[take[0]] - crit * se,
                    "ci_high": result.yi[take[0]] + crit * se,
                    "pvalue": float(2 * stats.norm.sf(abs(result.yi[take[0]]) / se)),
                    "tau2": 0.0,
                    "i2": 0.0,
                }
            )
            continue
        fit = meta_analysis(
            yi=result.yi[take], vi=result.vi[take], method=result.method, test=result.test, level=result.level
        )
        rows.append(
            {
                "added": frame.index[take[-1]],
                "k": step,
                "estimate": fit.estimate,
                "se": fit.se,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "pvalue": fit.pvalue,
                "tau2": fit.tau2,
                "i2": fit.i2,
            }
        )
    out = pd.DataFrame(rows)
    if "label" in frame.columns:
        out.insert(1, "label", frame["label"].to_numpy()[sequence])
    return out
