"""Weights of a multilevel model by type (metafor's ``weights(rma.mv, type =)``).

With M the marginal covariance (V plus the random-effects covariance) and W = M^-1:

* ``"diagonal"``: 100 diag(W) / sum(diag(W)), the default of metafor and of
  ``MultilevelResult.weights``; it does *not* reproduce the pooled mean as a weighted average
  of the effect sizes, because W is not diagonal;
* ``"rowsum"`` (models without moderators): 100 W 1 / (1' W 1); then the pooled estimate is
  exactly sum(w_i y_i) / sum(w_i), so these are the weights a three-level forest plot should
  show when its weights are to add up to the pooled mean. Row-sum weights can be negative.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evmeta.errors import ModelError

TYPES = ("diagonal", "rowsum")


def multilevel_weights(fit: Any, type: str = "diagonal") -> np.ndarray:
    """Percent weights of a fitted multilevel model's comparisons, ``type`` as above."""
    if type not in TYPES:
        raise ModelError(f"type must be one of {', '.join(TYPES)}, got {type!r}")
    if type == "diagonal":
        return np.asarray(fit.weights, dtype=float)
    if not fit.model.intercept_only:
        raise ModelError("row-sum weights exist only for a model without moderators (one pooled mean)")
    rows = np.zeros(fit.k)
    for batch in fit.batches:
        M = batch.V + np.tensordot(np.asarray(fit.sigma2), batch.G, axes=1)
        W = np.linalg.inv(M)  # (n, m, m)
        rows[batch.rows] = W.sum(axis=2)
    return 100 * rows / rows.sum()
