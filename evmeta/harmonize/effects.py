"""Effect sizes and their sampling variances, following metafor's ``escalc`` conventions.

``1`` is the EV-treated arm, ``2`` the control arm, ``s`` the sham arm; yi is group 1
minus group 2 (or the log ratio 1 over 2), so a benefit is positive only after the
direction flip done by :mod:`evmeta.comparisons` for outcomes where lower is better. NMD is
the exception: it is oriented by construction (positive = EVs moved the outcome towards
sham).

References
----------
Hedges LV (1981). Distribution theory for Glass's estimator of effect size and related
estimators. J Educ Stat 6:107-128.
Hedges LV, Gurevitch J, Curtis PS (1999). The meta-analysis of response ratios in
experimental ecology. Ecology 80:1150-1156.
Deeks JJ, Higgins JPT (2010). Statistical algorithms in Review Manager 5. The Cochrane
Collaboration (RevMan's SMD: Hedges' adjusted g).
Lajeunesse MJ (2015). Bias and correction for the log response ratio in ecological
meta-analysis. Ecology 96:2056-2063.
Vesterinen HM et al. (2014). Meta-analysis of data from animal studies: a practical guide.
J Neurosci Methods 221:92-102.
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat
Softw 36(3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import gammaln

from evmeta.errors import InputError, UnknownNameError

MEASURES = ("MD", "SMD", "ROM", "NMD", "OR", "RR", "RD")
#: SMD variants: ``exact`` (metafor's escalc: exact gamma-function J, variance
#: 1/n1 + 1/n2 + g^2 / (2N)) and ``revman`` (RevMan 5's Hedges' adjusted g: J = 1 - 3/(4N - 9),
#: variance N/(n1 n2) + g^2 / (2 (N - 3.94)); Deeks & Higgins 2010).
SMD_VARIANTS = ("exact", "revman")
_REQUIRED = {
    "MD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "SMD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "ROM": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "NMD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i", "msi"),
    "OR": ("ai", "ci"),
    "RR": ("ai", "ci"),
    "RD": ("ai", "ci"),
}


def hedges_correction(df: npt.ArrayLike) -> np.ndarray:
    """Exact small-sample correction J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))."""
    df = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            df > 1, np.exp(gammaln(df / 2) - 0.5 * np.log(df / 2) - gammaln((df - 1) / 2)), np.nan
        )


def _get(data: pd.DataFrame | None, value: Any, name: str, size: int | None) -> np.ndarray | None:
    if value is None:
        return None
    if data is not None and isinstance(value, str):
        if value not in data.columns:
            raise UnknownNameError(
                f"{name}={value!r} is not a column of data; columns: {', '.join(map(str, data.columns))}"
            )
        value = data[value]
    array = np.asarray(pd.to_numeric(pd.Series(np.ravel(value)), errors="coerce"), dtype=float)
    if array.ndim == 0 or (size is not None and array.size == 1 and size > 1):
        array = np.full(size or 1, float(array.ravel()[0]))
    return array


def effect_size(
    measure: str,
    *,
    data: pd.DataFrame | None = None,
    m1i: Any = None,
    sd1i: Any = None,
    n1i: Any = None,
    m2i: Any = None,
    sd2i: Any = None,
    n2i: Any = None,
    msi: Any = None,
    sdsi: Any = None,
    nsi: Any = None,
    ai: Any = None,
    bi: Any = None,
    ci: Any = None,
    di: Any = None,
    add: float = 0.5,
    to: str = "only0",
    smd_variant: str = "exact",
    rom_correct: bool = False,
) -> pd.DataFrame:
    """Effect sizes ``yi``, sampling variances ``vi`` and standard errors ``sei``.

    Parameters
    ----------
    measure : {"MD", "SMD", "ROM", "NMD", "OR", "RR", "RD"}
        ``SMD`` is Hedges' g with the exact correction factor and metafor's default
        (large-sample) variance 1/n1 + 1/n2 + g^2 / (2 (n1 + n2)). ``NMD`` is the
        normalized mean difference 100 (m2 - m1) / (m2 - ms) with variance
        (100 / (m2 - ms))^2 (sd1^2/n1 + sd2^2/n2) (Vesterinen et al. 2014).
    data : DataFrame, optional
        If given, the other arguments may be column names, and the result is ``data``
        with ``yi``, ``vi``, ``sei`` and ``reason`` appended (like ``escalc``).
    m1i, sd1i, n1i, m2i, sd2i, n2i : array-like
        Means, SDs and sizes of the EV (1) and control (2) arms. Sizes may be fractional
        (a control n split among the arms that share it), as in escalc: validity rules
        on the *reported* group size (e.g. n >= 2) belong to the caller.
    msi, sdsi, nsi : array-like, optional
        Sham arm (NMD only needs ``msi``).
    ai, bi, ci, di : array-like
        2x2 table: events and non-events in arm 1 (``ai``, ``bi``) and arm 2 (``ci``,
        ``di``). Instead of ``bi``/``di`` the totals ``n1i``/``n2i`` may be given.
    add, to : float, str
        Continuity correction: ``add`` is added to every cell of a table with a zero cell
        (``to="only0"``, escalc's default), to all tables (``"all"``) or none (``"none"``).
    smd_variant : {"exact", "revman"}
        SMD only. ``exact``: Hedges' g with J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)),
        m = N - 2, and variance 1/n1 + 1/n2 + g^2/(2N) (metafor). ``revman``: RevMan 5's
        J = 1 - 3/(4N - 9) and variance N/(n1 n2) + g^2/(2(N - 3.94)) (Deeks & Higgins 2010);
        N = n1 + n2. The two g differ by less than 0.3% from N = 6 on.
    rom_correct : bool
        ROM only. ``True``: Lajeunesse's (2015) bias-corrected log ratio
        ln(m1/m2) + (sd1^2/(n1 m1^2) - sd2^2/(n2 m2^2)) / 2 with its second-order variance
        sd1^2/(n1 m1^2) + sd1^4/(2 n1^2 m1^4) + (the same for arm 2) (metafor 5's
        ``correct = TRUE`` default for ROM). ``False`` (evmeta's default, as metafor before
        5.0): ln(m1/m2) with the first-order variance.

    Returns
    -------
    DataFrame
        ``yi``, ``vi``, ``sei``, ``reason`` (empty when valid; else why yi is NaN).

    Examples
    --------
    >>> effect_size("MD", m1i=[5.0], sd1i=[1.0], n1i=[10], m2i=[3.0], sd2i=[1.0], n2i=[10])["yi"].tolist()
    [2.0]
    """
    measure = str(measure).upper()
    if measure not in MEASURES:
        raise InputError(f"unknown measure {measure!r}; valid measures: {', '.join(MEASURES)}")
    given = dict(m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, msi=msi, sdsi=sdsi, nsi=nsi)
    arrays = _arrays(measure, data, {**given, "ai": ai, "bi": bi, "ci": ci, "di": di})
    if smd_variant not in SMD_VARIANTS:
        raise InputError(f"smd_variant must be one of {', '.join(SMD_VARIANTS)}, got {smd_variant!r}")
    if measure in {"OR", "RR", "RD"}:
        yi, vi, reason = _binary(measure, arrays, add, to)
    else:
        yi, vi, reason = _continuous(measure, arrays, smd_variant, bool(rom_correct))
    result = pd.DataFrame({"yi": yi, "vi": vi, "sei": np.sqrt(vi), "reason": reason})
    result.attrs["measure"] = measure
    if data is not None:
        out = data.copy()
        for column in result.columns:
            out[column] = result[column].to_numpy()
        out.attrs["measure"] = measure
        return out
    return result


def _arrays(measure: str, data: pd.DataFrame | None, given: dict[str, Any]) -> dict[str, Any]:
    """The arguments as float arrays of one length; refuse a measure's missing inputs."""
    size = len(data) if data is not None else None
    if size is None:
        lengths = [np.size(v) for v in given.values() if v is not None and not isinstance(v, str)]
        size = max(lengths) if lengths else 0
    arrays = {k: _get(data, v, k, size) for k, v in given.items()}
    missing = [k for k in _REQUIRED[measure] if arrays[k] is None]
    if measure in {"OR", "RR", "RD"}:
        if arrays["bi"] is None and arrays["n1i"] is None:
            missing.append("bi or n1i")
        if arrays["di"] is None and arrays["n2i"] is None:
            missing.append("di or n2i")
    if missing:
        raise InputError(f"measure {measure} needs {', '.join(missing)}")
    return arrays


def _given(a: dict[str, np.ndarray | None], *names: str) -> list[np.ndarray]:
    """The arrays ``names`` of ``a``, which :func:`_arrays` has refused to leave out."""
    arrays = []
    for name in names:
        array = a[name]
        if array is None:
            raise InputError(f"{name} is needed")
        arrays.append(array)
    return arrays


def _reasons(size: int, checks: Sequence[tuple[npt.ArrayLike, str]]) -> np.ndarray:
    """Per row, the message of the first check it fails ("" for a row that passes them all)."""
    reason = np.full(size, "", dtype=object)
    for bad, message in checks:
        take = np.asarray(bad, dtype=bool) & (reason == "")
        reason[take] = message
    return reason


def _continuous(
    measure: str, a: dict[str, np.ndarray | None], smd_variant: str = "exact", rom_correct: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m1, sd1, n1, m2, sd2, n2 = _given(a, "m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
    size = m1.size
    checks: list[tuple[npt.ArrayLike, str]] = [
        (np.isnan(m1) | np.isnan(m2), "mean missing"),
        (np.isnan(sd1) | np.isnan(sd2), "SD missing"),
        ((sd1 <= 0) | (sd2 <= 0), "SD must be > 0"),
        (np.isnan(n1) | np.isnan(n2), "n missing"),
        ((n1 <= 0) | (n2 <= 0), "n must be > 0 in each arm"),
    ]
    if measure == "SMD":
        # The exact correction J(m) needs m = n1 + n2 - 2 > 1 (escalc returns NA otherwise);
        # RevMan's J = 1 - 3/(4N - 9) is positive and its N - 3.94 too from the same N > 3 on.
        checks.append((n1 + n2 - 2 <= 1, "SMD needs n1 + n2 - 2 > 1"))
    if measure == "ROM":
        checks.append(((m1 <= 0) | (m2 <= 0), "ROM needs positive means"))
    if measure == "NMD":
        (ms,) = _given(a, "msi")
        checks.append((np.isnan(ms), "sham mean missing"))
        checks.append((ms == m2, "sham mean equals control mean"))
    reason = _reasons(size, checks)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if measure == "MD":
            yi = m1 - m2
            vi = sd1**2 / n1 + sd2**2 / n2
        elif measure == "SMD":
            yi, vi = _smd(m1, sd1, n1, m2, sd2, n2, smd_variant)
        elif measure == "ROM":
            yi, vi = _rom(m1, sd1, n1, m2, sd2, n2, rom_correct)
        else:  # NMD
            scale = 100 / (m2 - ms)
            yi = scale * (m2 - m1)
            vi = scale**2 * (sd1**2 / n1 + sd2**2 / n2)
    return _finite(yi, vi, reason)


def _smd(m1, sd1, n1, m2, sd2, n2, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """Hedges' g and its variance: metafor's exact form or RevMan 5's approximation."""
    df = n1 + n2 - 2
    big_n = n1 + n2
    pooled = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / df)
    if variant == "revman":
        g = (1 - 3 / (4 * big_n - 9)) * (m1 - m2) / pooled
        return g, big_n / (n1 * n2) + g**2 / (2 * (big_n - 3.94))
    g = hedges_correction(df) * (m1 - m2) / pooled
    return g, 1 / n1 + 1 / n2 + g**2 / (2 * big_n)


def _rom(m1, sd1, n1, m2, sd2, n2, correct: bool) -> tuple[np.ndarray, np.ndarray]:
    """Log ratio of means; with ``correct`` Lajeunesse's (2015) bias correction and
    second-order variance."""
    cv1, cv2 = sd1**2 / (n1 * m1**2), sd2**2 / (n2 * m2**2)  # squared CVs of the arm means
    if not correct:
        return np.log(m1 / m2), cv1 + cv2
    return np.log(m1 / m2) + (cv1 - cv2) / 2, cv1 + cv1**2 / 2 + cv2 + cv2**2 / 2


def _finite(yi: np.ndarray, vi: np.ndarray, reason: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NaN where a row failed a check or the arithmetic overflowed (numbers near 1e308)."""
    overflow = (reason == "") & ~(np.isfinite(yi) & np.isfinite(vi))
    reason = np.where(overflow, "effect size not finite: the numbers are too large to compute with", reason)
    ok = reason == ""
    return np.where(ok, yi, np.nan), np.where(ok, vi, np.nan), reason


def _non_events(a: dict[str, np.ndarray | None], cell: str, total: str, events: np.ndarray) -> np.ndarray:
    """The non-events ``cell`` of an arm, given or as its ``total`` minus its events."""
    given = a[cell]
    if given is not None:
        return given
    (n,) = _given(a, total)
    return n - events


def _binary(
    measure: str, a: dict[str, np.ndarray | None], add: float, to: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ai, ci = _given(a, "ai", "ci")
    bi = _non_events(a, "bi", "n1i", ai)
    di = _non_events(a, "di", "n2i", ci)
    cells = np.vstack([ai, bi, ci, di])
    reason = _reasons(
        ai.size,
        [
            (np.isnan(cells).any(axis=0), "events or totals missing"),
            ((cells < 0).any(axis=0), "events must lie between 0 and the total"),
            ((ai + bi < 1) | (ci + di < 1), "a group has no animals"),
        ],
    )
    if to == "only0":
        correct = (cells == 0).any(axis=0)
    elif to == "all":
        correct = np.ones(ai.size, dtype=bool)
    elif to == "none":
        correct = np.zeros(ai.size, dtype=bool)
    else:
        raise InputError(f"to must be 'only0', 'all' or 'none', got {to!r}")
    shift = np.where(correct, add, 0.0)
    a1, b1, c1, d1 = ai + shift, bi + shift, ci + shift, di + shift
    n1, n2 = a1 + b1, c1 + d1
    with np.errstate(invalid="ignore", divide="ignore"):
        if measure == "OR":
            yi = np.log(a1 * d1 / (b1 * c1))
            vi = 1 / a1 + 1 / b1 + 1 / c1 + 1 / d1
        elif measure == "RR":
            yi = np.log((a1 / n1) / (c1 / n2))
            vi = 1 / a1 - 1 / n1 + 1 / c1 - 1 / n2
        else:  # RD
            p1, p2 = a1 / n1, c1 / n2
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    ok = (reason == "") & np.isfinite(yi) & np.isfinite(vi)
    reason = np.where(
        (reason == "") & ~ok, "effect size not estimable (zero cells without correction)", reason
    )
    return np.where(ok, yi, np.nan), np.where(ok, vi, np.nan), reason
