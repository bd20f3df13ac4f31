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

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evmeta.errors import ModelError
from evmeta.models.base.design import ModelData
from evmeta.models.base.inference import coefficient_table
from evmeta.models.base.protocol import Summary, empty_heterogeneity, resolve_level
from evmeta.models.base.result_parts import PrintsSummary
from evmeta.models.frequentist.meta import MetaResult, fit_design, meta_analysis

#: Below this many comparisons funnel-plot methods have too little power to tell asymmetry
#: from chance (Sterne et al. 2011, BMJ 343:d4002, recommend at least 10).
MIN_FUNNEL_K = 10


def small_k_notes(k: int, what: str) -> tuple[str, ...]:
    """The usual caveat for funnel-plot methods with fewer than MIN_FUNNEL_K comparisons."""
    if k >= MIN_FUNNEL_K:
        return ()
    return (
        f"{what} with k = {k} comparisons (fewer than {MIN_FUNNEL_K}) has little power to detect "
        "small-study effects and may mislead; read it as descriptive (Sterne et al. 2011)",
    )


PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtninv", "sqrt_inv_n")


def _estimate_row(estimate: float, se: float, ci_low: float, ci_high: float) -> pd.DataFrame:
    """A one-row prediction frame for a bias-adjusted estimate (no prediction interval)."""
    return pd.DataFrame(
        {
            "pred": [estimate],
            "se": [se],
            "ci_low": [ci_low],
            "ci_high": [ci_high],
            "pi_low": [np.nan],
            "pi_high": [np.nan],
        }
    )


class _FromInputs(PrintsSummary):
    """``measure`` and ``k`` of a bias result, from the inputs of the fit it was computed from."""

    inputs: ModelData

    @property
    def measure(self) -> str | None:
        return self.inputs.measure

    @property
    def k(self) -> int:
        return self.inputs.k


@dataclass(frozen=True, eq=False, repr=False)
class EggerResult(_FromInputs):
    """Regression test for funnel-plot asymmetry (immutable).

    ``stat``/``pvalue`` test the predictor's coefficient; ``limit_estimate`` is the
    intercept: the effect expected as the predictor goes to 0 (an infinitely large study).
    ``inputs`` are those of the fit tested; ``tau2`` is the regression's residual
    heterogeneity (NaN for the classic ``lm`` test); ``notes`` carry caveats.
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
    limit_se: float
    level: float
    inputs: ModelData = field(repr=False)
    tau2: float = float("nan")
    notes: tuple[str, ...] = ()

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """The limit estimate (intercept) and the predictor's slope: estimate, se, ci_low,
        ci_high, stat, pvalue (z, or t with ``df``)."""
        level = resolve_level(level, self.level)
        beta = np.array([self.limit_estimate, self.slope])
        vb = np.diag(np.array([self.limit_se, self.slope_se]) ** 2)
        return coefficient_table(beta, vb, ["limit estimate", self.predictor], level, self.df)

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """The regression's residual tau^2 (``rma``); no rows for the weighted ``lm`` test."""
        if not np.isfinite(self.tau2):
            return empty_heterogeneity()
        row = {"tau2": self.tau2, "tau": float(np.sqrt(self.tau2)), "ci_low": np.nan, "ci_high": np.nan}
        return pd.DataFrame([row], index=pd.Index(["residual"], name="component"))

    def predict(self, newmods: Any = None, level: float | None = None) -> pd.DataFrame:
        """The limit estimate (the effect of an infinitely precise study), one row."""
        if newmods is not None:
            raise ModelError("Egger's test predicts only its limit estimate; it takes no newmods")
        row = self.coef_table(level).iloc[0]
        return _estimate_row(row["estimate"], row["se"], row["ci_low"], row["ci_high"])

    def summary(self, level: float | None = None) -> Summary:
        """The test of the slope above the coefficient table (:class:`Summary`)."""
        level = resolve_level(level, self.level)
        dist = f"t({self.df:g})" if self.df else "z"
        title = f"Regression test for funnel plot asymmetry ({self.model}, predictor {self.predictor})"
        limit = self.coef_table(level).iloc[0]
        lines = [
            f"Test for asymmetry: {dist} = {self.stat:.3f}, p = {self.pvalue:.4g}",
            f"Limit estimate (as the predictor goes to 0): {self.limit_estimate:.4f} "
            f"[{limit['ci_low']:.4f}, {limit['ci_high']:.4f}]",
            *(f"Note: {note}" for note in self.notes),
        ]
        return Summary(title, lines, self.coef_table(level), level)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient (limit estimate, slope) with the test repeated."""
        out = self.coef_table().reset_index(names="term")
        out["predictor"], out["regression"], out["model"] = self.predictor, self.model, "egger_test"
        return out

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "inputs"}
        out["notes"] = list(self.notes)
        return out


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


def _predictor_values(result: MetaResult, predictor: str, ni: Any) -> np.ndarray:
    """The Egger predictor of every comparison (``sei``, ``vi`` or a sample-size function)."""
    name = "sqrtninv" if predictor == "sqrt_inv_n" else predictor
    if name not in PREDICTORS:
        raise ModelError(f"unknown predictor {predictor!r}; valid predictors: sei, vi, ni, ninv, sqrt_inv_n")
    if name == "sei":
        return np.sqrt(result.vi)
    if name == "vi":
        return result.vi
    n = _sample_sizes(result, ni)
    return {"ni": n, "ninv": 1 / n, "sqrtninv": np.sqrt(1 / n)}[name]


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
    vi = result.vi
    x = _predictor_values(result, predictor, ni)
    if np.ptp(x) <= 1e-12 * np.max(np.abs(x)):
        raise ModelError(
            f"Egger's test is not identified: every comparison has the same {predictor}, so it cannot "
            "predict the effect (no funnel to be asymmetric)"
        )
    notes = small_k_notes(result.k, "Egger's regression test")
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
            result.inputs,
            notes=notes,
        )
    if model != "rma":
        raise ModelError(f"unknown model {model!r}; valid models: rma, lm")
    fit = fit_design(result.yi, vi, X, names, method=result.method, test=result.test, level=result.level)
    coefs = fit.coefficients
    slope = coefs.to_dict("index")["predictor"]
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
        result.inputs,
        tau2=fit.tau2,
        notes=notes,
    )


@dataclass(frozen=True, eq=False, repr=False)
class TrimFillResult(_FromInputs):
    """Trim-and-fill (immutable): the number and side of the filled comparisons and the
    filled model ``fit``, whose intercept is the adjusted estimate (``estimate``, ``se``,
    ``ci_low``, ``ci_high`` and ``tau2`` are read from it). ``inputs`` are the original
    fit's; ``notes`` carry caveats."""

    estimator: str
    k0: int
    side: str
    filled: pd.DataFrame
    fit: MetaResult = field(repr=False)
    inputs: ModelData = field(repr=False)
    notes: tuple[str, ...] = ()

    @property
    def level(self) -> float:
        return self.fit.level

    @property
    def estimate(self) -> float:
        return self.fit.estimate

    @property
    def se(self) -> float:
        return self.fit.se

    @property
    def ci_low(self) -> float:
        return self.fit.ci_low

    @property
    def ci_high(self) -> float:
        return self.fit.ci_high

    @property
    def tau2(self) -> float:
        return self.fit.tau2

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """The adjusted estimate (the filled model's intercept): estimate, se, ci_low, ci_high, ..."""
        return self.fit.coef_table(level)

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """The filled model's heterogeneity."""
        return self.fit.heterogeneity_table(level)

    def predict(self, newmods: Any = None, level: float | None = None) -> pd.DataFrame:
        """The filled model's pooled effect and prediction interval."""
        return self.fit.predict(newmods, level)

    def summary(self, level: float | None = None) -> Summary:
        """The number of filled comparisons above the filled model's table (:class:`Summary`)."""
        level = resolve_level(level, self.fit.level)
        title = f"Trim-and-fill ({self.estimator}): {self.k0} comparison(s) filled on the {self.side}"
        lines = [
            f"Filled model: k = {self.fit.k}; tau^2 = {self.tau2:.4f}",
            *(f"Note: {n}" for n in self.notes),
        ]
        return Summary(title, lines, self.coef_table(level), level)

    def to_frame(self) -> pd.DataFrame:
        """The adjusted estimate with the estimator, k0 and side."""
        out = self.coef_table().reset_index(names="term")
        for name in ["estimator", "k0", "side", "tau2"]:
            out[name] = getattr(self, name)
        out["model"] = "trim_and_fill"
        return out

    def to_dict(self) -> dict[str, Any]:
        names = ["estimator", "k0", "side", "estimate", "se", "ci_low", "ci_high", "tau2"]
        out: dict[str, Any] = {name: getattr(self, name) for name in names}
        out["filled"] = self.filled.to_dict(orient="records")
        out["notes"] = list(self.notes)
        return out


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
    return TrimFillResult(estimator, k0, side, filled, fit, result.inputs, small_k_notes(k, "Trim-and-fill"))


@dataclass(frozen=True, eq=False, repr=False)
class PetPeeseResult(_FromInputs):
    """PET and PEESE estimates and which one the conditional rule selects (immutable).

    ``estimate``/``ci_low``/``ci_high`` are the selected model's intercept; ``df`` is the
    residual df of the weighted least-squares fits (t intervals and tests). Where PET and
    PEESE are not identified (every variance equal) the estimates are NaN, ``selected`` is
    ``"none"`` and ``notes`` say why.
    """

    pet_estimate: float
    pet_se: float
    pet_pvalue: float
    peese_estimate: float
    peese_se: float
    selected: str
    df: float | None
    level: float
    inputs: ModelData = field(repr=False)
    notes: tuple[str, ...] = ()

    def _selected_row(self, level: float | None = None) -> dict[str, float]:
        """Estimate, se and interval of the selected model (NaN when it has none)."""
        table = self.coef_table(level)
        columns = ("estimate", "se", "ci_low", "ci_high")
        if self.selected not in table.index:
            return dict.fromkeys(columns, np.nan)
        row = table.to_dict("index")[self.selected]
        return {column: float(row[column]) for column in columns}

    @property
    def estimate(self) -> float:
        return float(self._selected_row()["estimate"])

    @property
    def ci_low(self) -> float:
        return float(self._selected_row()["ci_low"])

    @property
    def ci_high(self) -> float:
        return float(self._selected_row()["ci_high"])

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "inputs"}
        out.update(estimate=self.estimate, ci_low=self.ci_low, ci_high=self.ci_high, notes=list(self.notes))
        return out

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """PET and PEESE intercepts: estimate, se, ci_low, ci_high, stat, pvalue, selected."""
        level = resolve_level(level, self.level)
        beta = np.array([self.pet_estimate, self.peese_estimate])
        vb = np.diag(np.array([self.pet_se, self.peese_se]) ** 2)
        with np.errstate(invalid="ignore"):
            table = coefficient_table(beta, vb, ["PET", "PEESE"], level, self.df)
        table["selected"] = table.index == self.selected
        return table

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """No variance components: PET and PEESE are weighted least-squares fits."""
        return empty_heterogeneity()

    def predict(self, newmods: Any = None, level: float | None = None) -> pd.DataFrame:
        """The selected intercept (the effect of a perfectly precise study), one row."""
        if newmods is not None:
            raise ModelError("PET-PEESE predicts only its adjusted estimate; it takes no newmods")
        row = self._selected_row(level)
        return _estimate_row(row["estimate"], row["se"], row["ci_low"], row["ci_high"])

    def summary(self, level: float | None = None) -> Summary:
        """The selected estimate above both intercepts (:class:`Summary`)."""
        level = resolve_level(level, self.level)
        title = "PET-PEESE (weighted least squares, weights 1 / vi)"
        row = self._selected_row(level)
        lines = [
            f"PET intercept p = {self.pet_pvalue:.4g}; selected {self.selected}: {row['estimate']:.4f} "
            f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]",
            *(f"Note: {note}" for note in self.notes),
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
    notes = small_k_notes(result.k, "PET-PEESE")
    if np.ptp(v) <= 1e-12 * np.max(v):
        why = (
            "PET and PEESE are not identified: every comparison has the same variance, so the "
            "standard error cannot predict the effect; no bias-adjusted estimate"
        )
        nan = float("nan")
        return PetPeeseResult(
            nan, nan, nan, nan, nan, "none", None, result.level, result.inputs, (why, *notes)
        )
    ones = np.ones_like(v)
    pet = sm.WLS(y, np.column_stack([ones, np.sqrt(v)]), weights=1 / v).fit()
    peese = sm.WLS(y, np.column_stack([ones, v]), weights=1 / v).fit()
    use_peese = bool(pet.pvalues[0] < alpha)
    return PetPeeseResult(
        float(pet.params[0]),
        float(pet.bse[0]),
        float(pet.pvalues[0]),
        float(peese.params[0]),
        float(peese.bse[0]),
        "PEESE" if use_peese else "PET",
        float((peese if use_peese else pet).df_resid),
        result.level,
        result.inputs,
        notes,
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
