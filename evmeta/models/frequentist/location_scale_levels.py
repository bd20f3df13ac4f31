"""Per-level heterogeneity of a location-scale model: tau^2 and tau for each distinct value
(combination) of the scale moderators, with the prediction interval where it is defined.

This is the table that answers "is the effect more consistent with some isolation
methods?": one row per isolation method with its own tau and prediction interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evmeta.models.base.inference import critical_value

#: Largest number of distinct scale-moderator combinations listed one by one.
MAX_GROUPS = 12


def scale_variables(scale_model: Any) -> list[str]:
    """The data columns a scale design (ModelData) uses, in the order of its terms."""
    frame = scale_model.frame
    names = []
    for term in scale_model.term_columns:
        for part in str(term).split(":"):
            if part in frame.columns and part not in names:
                names.append(part)
    return names


def _groups(result: Any) -> list[np.ndarray]:
    """Row indices per distinct scale row (or min / median / max of the linear predictor)."""
    Z = result.Z
    _, inverse = np.unique(Z, axis=0, return_inverse=True)
    inverse = np.ravel(inverse)
    n = int(inverse.max()) + 1
    if n <= MAX_GROUPS:
        first = [int(np.flatnonzero(inverse == g)[0]) for g in range(n)]
        return [np.flatnonzero(inverse == g) for g in np.argsort(first)]
    eta = Z @ result.scale_coefficients["estimate"].to_numpy()
    order = np.argsort(eta, kind="stable")
    picks = [order[0], order[len(order) // 2], order[-1]]
    return [np.array([int(i)]) for i in picks]


def level_table(result: Any, level: float) -> pd.DataFrame:
    """One row per scale group: labels, k, tau2 (with interval), tau, and pred/pi_low/pi_high
    where all rows of the group share one location design row."""
    frame = result.scale_model.frame
    variables = scale_variables(result.scale_model)
    alpha = result.scale_coefficients["estimate"].to_numpy()
    beta = result.coefficients["estimate"].to_numpy()
    crit = critical_value(level, None)
    rows = []
    for members in _groups(result):
        z = result.Z[members[0]]
        eta, se_eta = (
            float(z @ alpha),
            float(result.tau2_at(z[None, 1:] if _has_intercept(result) else z[None])["se"].iloc[0]),
        )
        values = {name: frame.iloc[members[0]][name] for name in variables}
        label = ", ".join(str(values[n]) for n in variables) or "all"
        row = {
            **values,
            "label": label,
            "k": len(members) if _categorical(result) else np.nan,
            "first_row": int(members[0]),
        }
        tau2 = np.exp(eta)
        row.update(
            tau2=tau2, tau2_ci_low=np.exp(eta - crit * se_eta), tau2_ci_high=np.exp(eta + crit * se_eta)
        )
        row["tau"] = np.sqrt(tau2)
        X = result.X[members]
        if np.all(X == X[0]):
            pred = float(X[0] @ beta)
            sd = float(np.sqrt(X[0] @ result.vb @ X[0] + tau2))
            row.update(pred=pred, pi_low=pred - crit * sd, pi_high=pred + crit * sd)
        else:
            row.update(pred=np.nan, pi_low=np.nan, pi_high=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def _categorical(result: Any) -> bool:
    return len(np.unique(result.Z, axis=0)) <= MAX_GROUPS


def _has_intercept(result: Any) -> bool:
    return "intercept" in result.scale_model.names
