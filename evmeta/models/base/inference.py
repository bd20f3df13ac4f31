"""Wald inference shared by the frequentist engines: coefficient tables, the omnibus test
of the moderators, and predictions with confidence and prediction intervals."""

from __future__ import annotations

from typing import overload

import numpy as np
import pandas as pd
from scipy import special

from evmeta.errors import ModelError

#: Inference settings: model-based standard errors, or cluster-robust CR2 ones.
INFERENCES = ("model", "CR2")


def check_inference(inference: str, cluster: str | None) -> str:
    """The inference setting, checked (``"model"`` or ``"CR2"``; ``"robust"`` reads as CR2)."""
    value = {"robust": "CR2", "cr2": "CR2"}.get(str(inference), str(inference))
    if value not in INFERENCES:
        raise ModelError(f"unknown inference {inference!r}; valid: {', '.join(INFERENCES)}")
    if cluster is not None and value != "CR2":
        raise ModelError(f"cluster={cluster!r} is given but inference is {value!r}; use inference='CR2'")
    return value


def critical_value(level: float, df: float | None) -> float:
    """Two-sided critical value: t with ``df`` degrees of freedom, or normal when None."""
    tail = 1 - (1 - level) / 2
    return float(special.stdtrit(df, tail)) if df else float(special.ndtri(tail))


#: Columns of :func:`coefficient_table`.
COEFFICIENT_COLUMNS = ["estimate", "se", "ci_low", "ci_high", "stat", "pvalue"]


def coefficient_table(
    beta: np.ndarray, vb: np.ndarray, names: list[str], level: float, df: float | None
) -> pd.DataFrame:
    """estimate, se, ci_low, ci_high, stat, pvalue per coefficient (z, or t with df)."""
    se = np.sqrt(np.diag(vb))
    stat = beta / se
    pvalue = 2 * (special.stdtr(df, -np.abs(stat)) if df else special.ndtr(-np.abs(stat)))
    crit = critical_value(level, df)
    # One float block (faster to build than a dict of columns; the table is made per fit).
    values = np.column_stack([beta, se, beta - crit * se, beta + crit * se, stat, pvalue]).astype(float)
    return pd.DataFrame(values, index=pd.Index(names, name="term"), columns=COEFFICIENT_COLUMNS)


def at_level(table: pd.DataFrame, level: float, df: float | None) -> pd.DataFrame:
    """``table`` with ci_low/ci_high recomputed at ``level`` from its estimate and se."""
    crit = critical_value(level, df)
    table = table.copy()
    table["ci_low"] = table["estimate"] - crit * table["se"]
    table["ci_high"] = table["estimate"] + crit * table["se"]
    return table


@overload
def omnibus_test(
    beta: np.ndarray, vb: np.ndarray, tested: list[int], df: None
) -> tuple[float, int, float]: ...


@overload
def omnibus_test(
    beta: np.ndarray, vb: np.ndarray, tested: list[int], df: float | None
) -> tuple[float, int | tuple[int, int], float]: ...


def omnibus_test(
    beta: np.ndarray, vb: np.ndarray, tested: list[int], df: float | None
) -> tuple[float, int | tuple[int, int], float]:
    """Wald test of ``beta[tested] = 0``: (QM, df, p); an F test with (m, df) when df is given."""
    b = beta[tested]
    chi = float(b @ np.linalg.solve(vb[np.ix_(tested, tested)], b))
    m = len(tested)
    if df:
        return chi / m, (m, int(df)), float(special.fdtrc(m, df, chi / m))
    return chi, m, float(special.chdtrc(m, chi))


def prediction_frame(
    X: np.ndarray,
    beta: np.ndarray,
    vb: np.ndarray,
    tau2: float,
    level: float,
    df: float | np.ndarray | None,
) -> pd.DataFrame:
    """pred, se, ci_low/ci_high and pi_low/pi_high (new-study variance tau2) per row of X.

    ``df`` is None (normal), one t df, or one df per row (Satterthwaite, robust fits).
    """
    pred = X @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, vb, X))
    if df is None or np.ndim(df) == 0:
        crit = critical_value(level, None if df is None else float(df))
    else:
        crit = special.stdtrit(np.asarray(df, dtype=float), 1 - (1 - level) / 2)
    sd = np.sqrt(se**2 + tau2)
    out = pd.DataFrame(
        {
            "pred": pred,
            "se": se,
            "ci_low": pred - crit * se,
            "ci_high": pred + crit * se,
            "pi_low": pred - crit * sd,
            "pi_high": pred + crit * sd,
        }
    )
    if df is not None and np.ndim(df) > 0:
        out["df"] = df
    return out
