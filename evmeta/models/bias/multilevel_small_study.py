"""Small-study effects in a multilevel model: Egger's test and PET-PEESE as moderators of
the three-level model, with the bias-corrected mean (Nakagawa et al. 2022).

The multilevel model is refitted with a precision term added to its moderators:

* PET / Egger: the standard error (``predictor="sei"``) or sqrt(1/n~) with the effective
  sample size n~ = n_e n_c / (n_e + n_c) (``"sqrt_inv_n"``, recommended for SMDs whose SE
  depends on the effect itself). The slope's test is the multilevel Egger test; the
  intercept is the mean of an infinitely precise study;
* PEESE: the sampling variance (``"sei"``) or 1/n~ (``"sqrt_inv_n"``).

The bias-corrected mean is PEESE's intercept when PET's intercept differs from 0 at
two-sided ``alpha`` (0.10: a one-sided 5% test, Stanley & Doucouliagos 2014), else PET's.
With other moderators in the model the intercept is the reference level's corrected mean.
Inference follows the fitted model (z, t, or cluster-robust CR2 when the model was robust).

References
----------
Nakagawa S, Lagisz M, Jennions MD, et al. (2022). Methods for testing publication bias in
ecological and evolutionary meta-analyses. Methods Ecol Evol 13:4-21.
Stanley TD, Doucouliagos H (2014). Res Synth Methods 5:60-78.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evmeta.errors import ModelError
from evmeta.models.base.protocol import Summary, resolve_level
from evmeta.models.frequentist.multilevel import MultilevelResult, multilevel_meta_analysis

PREDICTORS = ("sei", "sqrt_inv_n")


@dataclass(frozen=True, eq=False)
class MultilevelSmallStudyResult:
    """Multilevel Egger test and PET-PEESE (immutable); ``pet``/``peese`` are the refits."""

    predictor: str
    k: int
    slope: float
    slope_se: float
    slope_pvalue: float
    pet_estimate: float
    pet_se: float
    pet_pvalue: float
    peese_estimate: float
    peese_se: float
    selected: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    level: float
    pet: MultilevelResult = field(repr=False)
    peese: MultilevelResult = field(repr=False)
    measure: str | None = None

    frozen = True

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """The selected model's coefficients (the bias-corrected ones and the precision term)."""
        chosen = self.peese if self.selected == "PEESE" else self.pet
        return chosen.coef_table(resolve_level(level, self.level))

    def summary(self, level: float | None = None) -> Summary:
        level = resolve_level(level, self.level)
        lines = [
            f"Multilevel Egger test ({self.predictor}): slope = {self.slope:.3f} (SE {self.slope_se:.3f}), "
            f"p = {self.slope_pvalue:.4g}",
            f"PET intercept {self.pet_estimate:.3f} (p = {self.pet_pvalue:.4g}); PEESE intercept "
            f"{self.peese_estimate:.3f}; {self.selected} selected",
        ]
        title = f"Multilevel small-study effects (k = {self.k}; bias-corrected mean {self.estimate:.3f})"
        return Summary(title, lines, self.coef_table(level), level)

    def to_frame(self) -> pd.DataFrame:
        """One row: the test and the bias-corrected mean."""
        keys = ["predictor", "k", "slope", "slope_se", "slope_pvalue", "pet_estimate", "pet_pvalue",
                "peese_estimate", "selected", "estimate", "se", "ci_low", "ci_high"]  # fmt: skip
        return pd.DataFrame([{key: getattr(self, key) for key in keys}])


def effective_sample_size(frame: pd.DataFrame) -> np.ndarray:
    """n~ = n_e n_c / (n_e + n_c) from ``n_treat`` and ``n_control`` (Nakagawa et al. 2022)."""
    if not {"n_treat", "n_control"} <= set(frame.columns):
        raise ModelError(
            "predictor 'sqrt_inv_n' needs the columns n_treat and n_control; use predictor='sei'"
        )
    ne = pd.to_numeric(frame["n_treat"], errors="coerce").to_numpy(float)
    nc = pd.to_numeric(frame["n_control"], errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(ne) & np.isfinite(nc) & (ne > 0) & (nc > 0))
    if bad.any():
        raise ModelError(f"n_treat and n_control must be positive numbers; not so in {int(bad.sum())} row(s)")
    return ne * nc / (ne + nc)


def multilevel_small_study(
    fit: MultilevelResult, predictor: str = "sqrt_inv_n", *, alpha: float = 0.10
) -> MultilevelSmallStudyResult:
    """Egger test and PET-PEESE as moderators of a fitted multilevel model.

    Parameters
    ----------
    fit : MultilevelResult
        The three-level (or deeper) model; its moderators, random levels, method, test,
        known covariance V and robust setting are kept.
    predictor : {"sqrt_inv_n", "sei"}
    alpha : float
        Two-sided level of PET's intercept test that selects PEESE.
    """
    if predictor not in PREDICTORS:
        raise ModelError(f"predictor must be one of {', '.join(PREDICTORS)}, got {predictor!r}")
    frame = fit.data.copy()
    if predictor == "sei":
        pet_term, peese_term = np.sqrt(fit.vi), fit.vi
    else:
        inverse = 1.0 / effective_sample_size(frame)
        pet_term, peese_term = np.sqrt(inverse), inverse
    frame["pet_precision_term"], frame["peese_precision_term"] = pet_term, peese_term
    base = fit.mods.strip().lstrip("~").strip() if fit.mods else ""
    test = fit.test if fit.test in ("z", "t") else "z"  # a robust fit's CR2 comes from robust=True

    def refit(term: str) -> MultilevelResult:
        return multilevel_meta_analysis(
            frame, fit.yi, fit.vi, mods=_formula(base, term), random=fit.random, method=fit.method, test=test,
            V=fit.V, robust=fit.is_robust, level=fit.level,
        )  # fmt: skip

    pet, peese = refit("pet_precision_term"), refit("peese_precision_term")
    pet_rows, peese_row = pet.coefficients.to_dict("index"), peese.coefficients.to_dict("index")["intercept"]
    pet_row, slope = pet_rows["intercept"], pet_rows["pet_precision_term"]
    use_peese = bool(pet_row["pvalue"] < alpha)
    chosen = peese_row if use_peese else pet_row
    return MultilevelSmallStudyResult(
        predictor=predictor, k=fit.k, slope=float(slope["estimate"]), slope_se=float(slope["se"]),
        slope_pvalue=float(slope["pvalue"]), pet_estimate=float(pet_row["estimate"]),
        pet_se=float(pet_row["se"]), pet_pvalue=float(pet_row["pvalue"]),
        peese_estimate=float(peese_row["estimate"]),
        peese_se=float(peese_row["se"]), selected="PEESE" if use_peese else "PET",
        estimate=float(chosen["estimate"]), se=float(chosen["se"]), ci_low=float(chosen["ci_low"]),
        ci_high=float(chosen["ci_high"]), level=fit.level, pet=pet, peese=peese, measure=fit.measure,
    )  # fmt: skip


def _formula(base: str, term: str) -> str:
    return f"~ {base} + {term}" if base and base != "1" else f"~ {term}"
