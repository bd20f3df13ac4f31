"""Log odds ratios on the standardized-mean-difference scale, for pooling binary and
continuous outcomes together.

If a binary outcome is a dichotomized latent continuous variable with a logistic
distribution of equal variance in both arms, the log odds ratio is pi / sqrt(3) times the
standardized mean difference of the latent variable (the logistic SD is pi / sqrt(3)), so

    d = ln(OR) sqrt(3) / pi,    var(d) = var(ln OR) 3 / pi^2

(Hasselblad & Hedges 1995; Chinn 2000). The conversion gives Cohen's d of the latent
variable; multiplied by the exact small-sample factor J(n1 + n2 - 2) of
:func:`evmeta.harmonize.effects.hedges_correction` (and its variance by J^2) it is on the
scale of evmeta's Hedges' g. metafor's ``escalc(measure = "OR2DL")`` is the uncorrected
conversion. The logistic assumption is the conversion's: with a normal latent variable
the factor would be about 1/1.65 instead of sqrt(3)/pi = 1/1.81 (Cox 1970), so converted
effects are slightly smaller than probit-based ones.

References
----------
Hasselblad V, Hedges LV (1995). Meta-analysis of screening and diagnostic tests. Psychol
Bull 117:167-178.
Chinn S (2000). A simple method for converting an odds ratio to effect size for use in
meta-analysis. Stat Med 19:3127-3131.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import InputError
from evmeta.harmonize.effects import SMD_VARIANTS, hedges_correction

#: Ways of putting binary outcomes on the SMD scale: ``none`` (binary comparisons are not
#: computed under SMD) or ``hasselblad_hedges`` (ln OR sqrt(3)/pi, Chinn 2000).
BINARY_TO_SMD = ("none", "hasselblad_hedges")
#: sqrt(3) / pi: the SD of the standard logistic distribution is pi / sqrt(3).
LOGISTIC_FACTOR = float(np.sqrt(3.0) / np.pi)


def log_odds_ratio_to_smd(
    yi: Any, vi: Any, *, n1i: Any = None, n2i: Any = None, correct: bool = False, variant: str = "exact"
) -> pd.DataFrame:
    """Convert log odds ratios and their variances to the SMD scale.

    Parameters
    ----------
    yi, vi : array-like
        Log odds ratios (arm 1 over arm 2) and their sampling variances.
    n1i, n2i : array-like, optional
        Animals per arm; needed only with ``correct=True``.
    correct : bool
        Multiply by Hedges' exact small-sample factor J(n1 + n2 - 2) (variance by J^2), so
        that converted effects are on the same scale as evmeta's Hedges' g. ``False`` is
        metafor's ``escalc(measure = "OR2DL")``.
    variant : {"exact", "revman"}
        With ``correct``: the exact factor (evmeta's and metafor's Hedges' g) or RevMan 5's
        1 - 3/(4N - 9), N = n1 + n2, matching ``effect_size(..., smd_variant=...)``.

    Returns
    -------
    DataFrame
        ``yi`` (SMD units), ``vi``, ``sei``; NaN where the input is NaN or, with
        ``correct``, where n1 + n2 - 2 <= 1.

    Notes
    -----
    Assumes a logistic latent variable with the same variance in both arms (Chinn 2000).

    Examples
    --------
    >>> round(float(log_odds_ratio_to_smd([np.log(3.0)], [0.25])["yi"].iloc[0]), 4)
    0.6057
    """
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    if y.shape != v.shape:
        raise InputError(f"yi and vi must have the same length ({y.size} and {v.size})")
    d, var = y * LOGISTIC_FACTOR, v * LOGISTIC_FACTOR**2
    if correct:
        if n1i is None or n2i is None:
            raise InputError("correct=True needs n1i and n2i (the animals per arm)")
        if variant not in SMD_VARIANTS:
            raise InputError(f"variant must be one of {', '.join(SMD_VARIANTS)}, got {variant!r}")
        n = np.broadcast_to(
            np.asarray(n1i, dtype=float).ravel() + np.asarray(n2i, dtype=float).ravel(), y.shape
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            j = (
                hedges_correction(n - 2)
                if variant == "exact"
                else np.where(n - 2 > 1, 1 - 3 / (4 * n - 9), np.nan)
            )
        d, var = j * d, j**2 * var
    return pd.DataFrame({"yi": d, "vi": var, "sei": np.sqrt(var)})


def smd_to_log_odds_ratio(yi: Any, vi: Any) -> pd.DataFrame:
    """The inverse conversion: SMD -> log odds ratio (ln OR = d pi / sqrt(3)).

    Parameters
    ----------
    yi, vi : array-like
        Standardized mean differences and their variances.

    Returns
    -------
    DataFrame
        ``yi`` (log odds ratio), ``vi``, ``sei``.
    """
    y = np.asarray(yi, dtype=float).ravel() / LOGISTIC_FACTOR
    v = np.asarray(vi, dtype=float).ravel() / LOGISTIC_FACTOR**2
    return pd.DataFrame({"yi": y, "vi": v, "sei": np.sqrt(v)})


__all__ = ["BINARY_TO_SMD", "LOGISTIC_FACTOR", "log_odds_ratio_to_smd", "smd_to_log_odds_ratio"]
