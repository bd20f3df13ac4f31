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
Siemens W, Meerpohl JJ, Rohe MS, et al. (2025). BMJ Evid Based Med (expected proportions
of comparable studies with clinically important benefit or harm).
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


def reject_prob(removed: dict[str, Any]) -> None:
    """Refuse ``predict(prob=...)`` and any other unknown keyword with a sentence.

    ``prob`` was a synonym of ``level`` in ``predict``; metafor 5.1 uses the word for the
    probability of an effect beyond a value, so the synonym is gone to avoid reading one
    as the other (``coef_table`` and ``summary`` keep ``prob`` as the Bayesian word for
    the interval level).
    """
    if not removed:
        return
    if "prob" in removed:
        raise ModelError(
            "predict(prob=...) is no longer a synonym of the interval level: use level= for the "
            "interval level and threshold= for the probability that a new study's true effect "
            "exceeds a value (column p_true_above)"
        )
    raise ModelError(f"predict() got unexpected keyword(s): {', '.join(sorted(removed))}")
