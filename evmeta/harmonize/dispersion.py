"""Standard deviations (and means) from what papers report instead: SEM, CI, quartiles, range.

Pure functions over arrays; each returns NaN where its inputs cannot give an answer.

References
----------
Higgins JPT et al. (eds). Cochrane Handbook for Systematic Reviews of Interventions,
section 6.5.2.2 (SD from a confidence interval of a mean).
Wan X, Wang W, Liu J, Tong T (2014). Estimating the sample mean and standard deviation
from the sample size, median, range and/or interquartile range. BMC Med Res Methodol
14:135.
Luo D, Wan X, Liu J, Tong T (2018). Optimally estimating the sample mean from the sample
size, median, mid-range, and/or mid-quartile range. Stat Methods Med Res 27:1785-1805.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from evmeta.errors import InputError


def _array(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def sd_from_sem(sem: ArrayLike, n: ArrayLike) -> np.ndarray:
    """SD = SEM x sqrt(n)."""
    sem, n = _array(sem), _array(n)
    with np.errstate(invalid="ignore"):
        return np.where((sem > 0) & (n >= 1), sem * np.sqrt(n), np.nan)


def sd_from_ci(
    lower: ArrayLike, upper: ArrayLike, n: ArrayLike, *, level: float = 0.95, dist: str = "t"
) -> np.ndarray:
    """SD from a confidence interval of a mean: sqrt(n) (upper - lower) / (2 q).

    ``q`` is the t quantile with n - 1 df (``dist="t"``, right for the small groups of animal
    studies) or the normal quantile (``dist="z"``, 1.96 for 95%).
    """
    lower, upper, n = _array(lower), _array(upper), _array(n)
    tail = 1 - (1 - level) / 2
    with np.errstate(invalid="ignore"):
        if dist == "t":
            q = stats.t.ppf(tail, np.where(n > 1, n - 1, np.nan))
        elif dist == "z":
            q = np.full_like(n, stats.norm.ppf(tail))
        else:
            raise InputError(f"dist must be 't' or 'z', got {dist!r}")
        sd = np.sqrt(n) * (upper - lower) / (2 * q)
    return np.where((upper > lower) & (n > 1), sd, np.nan)


def mean_sd_from_quartiles(
    q1: ArrayLike, median: ArrayLike, q3: ArrayLike, n: ArrayLike, *, method: str = "wan"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD from the median and interquartile range (Wan et al. 2014, scenario C3).

    mean = (q1 + median + q3) / 3 (``method="wan"``) or Luo et al. (2018)'s weighted form
    (``method="luo"``); SD = (q3 - q1) / (2 Phi^-1((0.75 n - 0.125) / (n + 0.25))).
    """
    q1, median, q3, n = _array(q1), _array(median), _array(q3), _array(n)
    if method == "wan":
        mean = (q1 + median + q3) / 3
    elif method == "luo":
        weight = 0.7 + 0.39 / n
        mean = weight * (q1 + q3) / 2 + (1 - weight) * median
    else:
        raise InputError(f"method must be 'wan' or 'luo', got {method!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = (q3 - q1) / (2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25)))
    ok = (q3 > q1) & (n >= 2)
    return np.where(ok, mean, np.nan), np.where(ok, sd, np.nan)


def mean_sd_from_range(
    minimum: ArrayLike, median: ArrayLike, maximum: ArrayLike, n: ArrayLike, *, method: str = "wan"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD from the median and range (Wan et al. 2014, scenario C1).

    mean = (min + 2 median + max) / 4 (``wan``) or Luo et al. (2018)'s weighted form
    (``luo``); SD = (max - min) / (2 Phi^-1((n - 0.375) / (n + 0.25))).
    """
    a, m, b, n = _array(minimum), _array(median), _array(maximum), _array(n)
    if method == "wan":
        mean = (a + 2 * m + b) / 4
    elif method == "luo":
        weight = 4 / (4 + n**0.75)
        mean = weight * (a + b) / 2 + (1 - weight) * m
    else:
        raise InputError(f"method must be 'wan' or 'luo', got {method!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = (b - a) / (2 * stats.norm.ppf((n - 0.375) / (n + 0.25)))
    ok = (b > a) & (n >= 2)
    return np.where(ok, mean, np.nan), np.where(ok, sd, np.nan)
