"""Rows of the report's bias table from the multilevel model: Egger's test and PET-PEESE as
moderators of the three-level model, with the bias-corrected mean
(:mod:`evmeta.models.bias.multilevel_small_study`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from evmeta.errors import EvmetaError
from evmeta.models import multilevel_small_study

if TYPE_CHECKING:  # the run's state, for the annotations only
    from evmeta.analysis.run_state import RunState


def multilevel_bias_rows(run: RunState) -> list[dict[str, Any]]:
    """One row per predictor (SE and sqrt(1/n~)) for ``run.tables.bias``; the results go
    to ``run.models.multilevel_egger[predictor]``, failures to ``run.notes``."""
    fit = run.models.multilevel
    if fit is None:
        return []
    rows = []
    for predictor in ("sei", "sqrt_inv_n"):
        try:
            result = multilevel_small_study(fit, predictor)
        except EvmetaError as exc:
            run.notes.append(f"multilevel Egger / PET-PEESE ({predictor}): not fitted ({exc})")
            continue
        run.models = run.models.adding("multilevel_egger", predictor, result)
        rows.append(
            {
                "test": f"Multilevel Egger / PET-PEESE, predictor {predictor} ({result.selected} selected)",
                "statistic": result.slope / result.slope_se,
                "pvalue": result.slope_pvalue,
                "estimate": result.estimate,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
            }
        )
    return rows


def extend_bias_table(run: RunState) -> None:
    """Append :func:`multilevel_bias_rows` to ``run.tables.bias`` (after the bias stage)."""
    rows = multilevel_bias_rows(run)
    if rows:
        run.tables = run.tables.with_(bias=pd.concat([run.tables.bias, pd.DataFrame(rows)], ignore_index=True))
