"""Numbers as the journal layouts print them: p-values and intervals worded as RevMan 5 and
JAMA do, the heterogeneity, overall-effect and subgroup-difference lines under each total
(Cochrane Handbook, Deeks, Higgins & Altman 2023, ch. 10; RevMan 5.4 User Guide), and the
arm statistics of the table cells.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evmeta.plots._text import minus


def revman_p(p: float) -> str:
    """A p-value as RevMan 5 prints it: ``P = 0.43``, ``P = 0.009``, ``P = 0.0002``,
    ``P < 0.00001`` (two decimals from 0.01 on, else down to the first significant digit)."""
    if not np.isfinite(p):
        return "P not applicable"
    if p < 0.00001:
        return "P < 0.00001"
    if p >= 0.01:
        return f"P = {p:.2f}"
    decimals = int(-np.floor(np.log10(p)))
    return f"P = {p:.{decimals}f}"


def _fixed(value: float, decimals: int = 2) -> str:
    return minus(f"{value:.{decimals}f}")


def revman_interval(est: float, lo: float, hi: float) -> str:
    """``0.45 [−0.12, 1.02]``: two decimals, true minus signs."""
    return f"{_fixed(est)} [{_fixed(lo)}, {_fixed(hi)}]"


def jama_interval(est: float, lo: float, hi: float) -> str:
    """``0.45 (−0.12 to 1.02)``: JAMA words the interval with 'to'."""
    return f"{_fixed(est)} ({_fixed(lo)} to {_fixed(hi)})"


def heterogeneity_line(fit: Any) -> str:
    """``Heterogeneity: Tau² = 0.12; Chi² = 15.23, df = 5 (P = 0.009); I² = 67%``.

    Tau² is the fit's between-comparison variance (a multilevel fit names each variance
    component); Chi² is Cochran's Q on ``q_df`` degrees of freedom; I² the fit's percent.
    A fit on one comparison: 'Not applicable', as RevMan prints it.
    """
    if getattr(fit, "k", 0) < 2 or not hasattr(fit, "q"):
        return "Heterogeneity: Not applicable"
    if hasattr(fit, "sigma2"):
        taus = ", ".join(f"Tau²[{n}] = {s:.2f}" for n, s in zip(fit.random, fit.sigma2, strict=True))
    elif str(getattr(fit, "method", "")).upper() in {"EE", "FE", "CE"}:
        taus = ""
    else:
        taus = f"Tau² = {fit.tau2:.2f}"
    chi = f"Chi² = {fit.q:.2f}, df = {fit.q_df} ({revman_p(fit.q_pvalue)}); I² = {fit.i2:.0f}%"
    return "Heterogeneity: " + (f"{taus}; " if taus else "") + chi


def overall_effect_line(fit: Any) -> str:
    """``Test for overall effect: Z = 2.34 (P = 0.02)`` (RevMan prints |Z|); a t-based
    test (Knapp-Hartung, t, CR2) is named t."""
    name = "Z" if getattr(fit, "test", "z") == "z" and not getattr(fit, "is_robust", False) else "t"
    return f"Test for overall effect: {name} = {abs(fit.stat):.2f} ({revman_p(fit.pvalue)})"


def subgroup_difference_line(subgroups: Any) -> str:
    """``Test for subgroup differences: Chi² = 1.23, df = 2 (P = 0.54), I² = 0%`` (the Q
    between subgroups with their own tau²; I² = (Q − df)/Q, as RevMan)."""
    q, df = float(subgroups.q_between), int(subgroups.q_between_df)
    i2 = max(0.0, (q - df) / q * 100) if q > 0 else 0.0
    return (
        f"Test for subgroup differences: Chi² = {q:.2f}, df = {df} "
        f"({revman_p(subgroups.q_between_pvalue)}), I² = {i2:.1f}%"
    )


def _num(value: Any, decimals: int | None = None) -> str:
    value = pd.to_numeric(value, errors="coerce")
    if pd.isna(value):
        return ""
    if decimals is None:
        return minus(f"{value:.3g}") if abs(value) < 1000 else minus(f"{value:.0f}")
    return minus(f"{value:.{decimals}f}")


def _n(value: Any) -> str:
    value = pd.to_numeric(value, errors="coerce")
    if pd.isna(value):
        return ""
    return f"{round(float(value), 1):g}"
