"""The probability that a new study's true effect exceeds a value, from the prediction
distribution of a fitted frequentist model.

For a row with predicted mean ``pred`` (standard error ``se``) and between-study variance
``tau2`` the true effect of a new, comparable study is predicted as

    theta_new ~ pred + sqrt(se^2 + tau2) * T,

with T standard normal, or Student t with the model's df under Knapp-Hartung (the same
distribution that gives the prediction interval, Higgins, Thompson & Spiegelhalter 2009).
``p_true_above`` = P(theta_new > c). This is also the expected proportion of comparable
studies with a true effect above c that Siemens et al. (2025) derive from the prediction
interval (R package meta, ``cidprop``). ``share_true_above`` is the plug-in proportion of
true effects above c, Phi((pred - c) / tau) (Mathur & VanderWeele 2018), which ignores the
uncertainty of ``pred``; with tau = 0 it is 0 or 1 (0.5 exactly at c).

References
----------
Higgins JPT, Thompson SG, Spiegelhalter DJ (2009). J R Stat Soc A 172:137-159.
Mathur MB, VanderWeele TJ (2018). Stat Med 38:938-949.
Siemens W, et al. (2025): expected proportions of comparable studies with clinically
important benefit or harm, derived from the prediction interval (R package meta,
``cidprop``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from evmeta.errors import ModelError


def check_threshold(threshold: Any) -> float | None:
    """``threshold`` as a finite float (None stays None); a clear error otherwise."""
    if threshold is None:
        return None
    if isinstance(threshold, (list, tuple, np.ndarray)):
        raise ModelError("threshold takes one value; call predict once per threshold (e.g. for 0 and 0.5)")
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ModelError(f"threshold must be a number, got {threshold!r}") from None
    if not np.isfinite(value):
        raise ModelError(f"threshold must be finite, got {threshold!r}")
    return value


def add_threshold_columns(frame: pd.DataFrame, threshold: float, tau2: Any, df: Any = None) -> pd.DataFrame:
    """``frame`` (with ``pred`` and ``se``) plus ``threshold``, ``p_true_above`` and
    ``share_true_above``.

    Parameters
    ----------
    frame : DataFrame
        Prediction rows with columns ``pred`` and ``se`` (effect-size units).
    threshold : float
        The value c (effect-size units), e.g. 0 (any benefit) or 0.5 SD.
    tau2 : float or array-like
        Between-study variance of a new study, one value or one per row.
    df : float or array-like, optional
        t degrees of freedom (None: normal), as used for the prediction interval.
    """
    out = frame.copy()
    pred = out["pred"].to_numpy(dtype=float)
    se = out["se"].to_numpy(dtype=float)
    tau2 = np.broadcast_to(np.asarray(tau2, dtype=float), pred.shape)
    sd = np.sqrt(se**2 + tau2)
    z = (pred - threshold) / sd
    if df is None:
        p_above = special.ndtr(z)
    else:
        p_above = special.stdtr(np.broadcast_to(np.asarray(df, dtype=float), pred.shape), z)
    tau = np.sqrt(tau2)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(tau > 0, special.ndtr((pred - threshold) / np.where(tau > 0, tau, 1.0)), np.nan)
    at_zero = tau == 0
    share = np.where(at_zero, np.where(pred > threshold, 1.0, np.where(pred < threshold, 0.0, 0.5)), share)
    out["threshold"] = threshold
    out["p_true_above"] = p_above
    out["share_true_above"] = share
    return out


#: Most distinct design rows listed one by one in :func:`threshold_table`.
MAX_ROWS = 12


def threshold_table(result: Any, thresholds: Any) -> pd.DataFrame:
    """``p_true_above`` and ``share_true_above`` for each threshold and each group.

    Groups: the subgroups of a subgroup analysis (``result.fits``); the distinct values of
    the scale moderators of a location-scale model (their own tau^2); the distinct
    moderator rows of a meta-regression (at most ``MAX_ROWS``); else the pooled effect.

    Returns
    -------
    DataFrame
        ``group``, ``threshold``, ``pred``, ``se``, ``pi_low``, ``pi_high``,
        ``p_true_above``, ``share_true_above`` (one row per group and threshold).
    """
    checked = [check_threshold(t) for t in np.atleast_1d(np.asarray(thresholds, dtype=object))]
    values = [v for v in checked if v is not None]
    if not values:
        raise ModelError("threshold_table needs at least one threshold (a number in effect-size units, e.g. 0)")
    frames = []
    for group, rows in _groups(result):
        for value in values:
            out = add_threshold_columns(rows[0], value, rows[1], rows[2])
            out.insert(0, "group", group)
            frames.append(out)
    columns = ["group", "threshold", "pred", "se", "pi_low", "pi_high", "p_true_above", "share_true_above"]
    return pd.concat(frames, ignore_index=True)[columns]


def _groups(result: Any) -> list[tuple[str, tuple[pd.DataFrame, Any, Any]]]:
    """(label, (prediction rows, tau2, df)) per group of ``result``."""
    fits = getattr(result, "fits", None)
    if isinstance(fits, dict):
        return [(str(name), _pooled(fit)) for name, fit in fits.items()]
    if hasattr(result, "scale_model"):
        # Location-scale: every fitted row predicts with its own tau^2; one row per group.
        fitted = result.predict()
        table = result.heterogeneity_table()
        out = []
        for label, first, defined in zip(
            table["label"], table["first_row"], table["pred"].notna(), strict=True
        ):
            if defined:
                row = fitted.iloc[[int(first)]].reset_index(drop=True)
                out.append((str(label), (row, row["tau2"].to_numpy(), None)))
        return out
    if result.model.intercept_only:
        return [("all", _pooled(result))]
    X = result.model.X
    unique, first = np.unique(X, axis=0, return_index=True)
    if len(unique) > MAX_ROWS:
        return []
    frame = result.model.frame
    variables = [c for c in _mod_variables(result) if c in frame.columns]
    out = []
    for index in sorted(first):
        label = ", ".join(f"{frame.iloc[index][v]}" for v in variables) or str(index)
        rows = (
            result.predict(frame.iloc[[index]])
            if result.model.spec is not None
            else result.predict(X[[index], 1:])
        )
        out.append((label, (rows, result.tau2, result._df_for(X[[index]]))))
    return out


def _pooled(fit: Any) -> tuple[pd.DataFrame, Any, Any]:
    rows = fit.predict()
    return rows, fit.tau2, fit._df_for(np.ones((1, 1)))


def _mod_variables(result: Any) -> list[str]:
    names = []
    for term in result.model.term_columns:
        for part in str(term).split(":"):
            if part != "intercept" and part not in names:
                names.append(part)
    return names
