"""The ED-p of a fitted dose-response curve: the lowest dose at which the predicted effect
reaches a share p of its maximum (p = 0.5: an ED50).

* Emax curve: the maximum is Emax (the plateau), ED_p = ED50 p / (1 - p); the interval is
  the profile likelihood interval of log10 ED50 (:mod:`.emax`), open where the profile
  stays above its cutoff over the range searched.
* Linear and spline curves: the maximum is the largest predicted effect over the doses
  studied (the curves are not extrapolated), and ED_p is the lowest studied dose where the
  curve reaches p x that maximum (linear interpolation on a grid of 401 points in the
  model's dose scale). The interval is a parametric bootstrap: ED_p recomputed for 2,000
  draws of the coefficients from their estimated normal distribution (seed 0), 2.5% and
  97.5% percentiles. Draws whose curve has no benefit (maximum <= 0) or whose ED_p is the
  lowest dose studied are counted; when the estimate itself is at the lowest dose the data
  do not locate an ED_p and it is reported as missing with that sentence.

References
----------
Crippa A, Orsini N (2016). Dose-response meta-analysis of differences in means. BMC Med
Res Methodol 16:91.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

DRAWS = 2000
GRID = 401


@dataclass(frozen=True)
class EffectiveDose:
    """ED-p with its interval, in dose units (NaN with a ``note`` where not located)."""

    share: float
    dose: float
    ci_low: float
    ci_high: float
    level: float
    method: str
    note: str = ""


def _first_crossing(x: np.ndarray, curves: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(x at the first crossing of share x max, whether the curve starts above it) per row."""
    top = curves.max(axis=1, keepdims=True)
    target = share * top
    above = curves >= target
    first = np.argmax(above, axis=1)
    rows = np.arange(len(curves))
    prev = np.maximum(first - 1, 0)
    y0, y1 = curves[rows, prev], curves[rows, first]
    frac = np.where(y1 > y0, (target[:, 0] - y0) / np.where(y1 > y0, y1 - y0, 1.0), 0.0)
    at = np.where(first == 0, x[0], x[prev] + np.clip(frac, 0, 1) * (x[first] - x[prev]))
    return np.where(top[:, 0] > 0, at, np.nan), first == 0


def curve_effective_dose(
    design: Callable[[np.ndarray], np.ndarray],
    beta: np.ndarray,
    vb: np.ndarray,
    x_range: tuple[float, float],
    to_dose: Callable[[Any], np.ndarray],
    share: float,
    level: float,
) -> EffectiveDose:
    """ED-p of a linear or spline curve; ``design(x)`` gives curve design rows at the dose
    scale values ``x`` and ``to_dose`` maps them back to doses."""
    x = np.linspace(*x_range, GRID)
    X = design(x)
    estimate, starts_above = _first_crossing(x, (X @ beta)[None, :], share)
    method = f"parametric bootstrap ({DRAWS} draws of the coefficients)"
    if not np.isfinite(estimate[0]):
        return EffectiveDose(share, np.nan, np.nan, np.nan, level, method,
                             "the predicted effect is not above 0 at any dose studied")
    if starts_above[0]:
        return EffectiveDose(
            share, np.nan, np.nan, np.nan, level, method,
            f"the predicted effect is above {share:.0%} of its maximum already at the lowest dose "
            f"studied ({to_dose(x[0]):.3g}): the data do not locate this dose",
        )
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(beta, vb, size=DRAWS, method="eigh")
    values, below = _first_crossing(x, draws @ X.T, share)
    tail = (1 - level) / 2
    ok = np.isfinite(values)
    low, high = np.quantile(values[ok], [tail, 1 - tail]) if ok.sum() > 10 else (np.nan, np.nan)
    notes = []
    if np.mean(below & ok) > tail:
        low = np.nan
        notes.append(f"{np.mean(below & ok):.0%} of the draws reach it at the lowest dose studied (lower limit open)")
    if np.mean(~ok) > 0:
        notes.append(f"{np.mean(~ok):.0%} of the draws predict no benefit at any dose")
    return EffectiveDose(share, float(to_dose(estimate[0])), float(to_dose(low)), float(to_dose(high)),
                         level, method, "; ".join(notes))


def emax_effective_dose(log10_ed50: float, interval: tuple[float, float], share: float, level: float,
                        at_bound: bool) -> EffectiveDose:
    """ED-p of the Emax curve, ED50 p / (1 - p), with the profile likelihood interval of
    log10 ED50 (``interval``) shifted by log10(p / (1 - p))."""
    shift = np.log10(share / (1 - share))
    method = "profile likelihood on log10 ED50"
    if at_bound:
        note = "the ED50 estimate is at the edge of the range searched (two decades beyond the doses studied)"
        return EffectiveDose(share, 10 ** (log10_ed50 + shift), np.nan, np.nan, level, method, note)
    low, high = (10 ** (v + shift) if np.isfinite(v) else np.nan for v in interval)
    notes = [f"the {side} limit is open: the profile likelihood stays above the cutoff over the two decades "
             f"{where} the doses studied" for side, where, v in (("lower", "below", low), ("upper", "above", high))
             if not np.isfinite(v)]
    return EffectiveDose(share, 10 ** (log10_ed50 + shift), low, high, level, method, "; ".join(notes))
