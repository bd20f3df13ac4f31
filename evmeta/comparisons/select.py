"""Step 1, select: the outcome rows joined to their arms, experiments and studies, with time
points in days and arm statistics, kept for the chosen outcomes and time-point rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from evmeta.comparisons.arm_statistics import _arm_statistics
from evmeta.comparisons.exclusions import _Log
from evmeta.errors import InputError
from evmeta.schema.extraction import Extraction

_TIME_TO_DAYS = {"hours": 1 / 24, "days": 1.0, "weeks": 7.0}


_TIME_ABBREVIATION = {"hours": "h", "days": "d", "weeks": "wk"}


def _outcome_rows(extraction: Extraction, quartile_method: str) -> pd.DataFrame:
    outcomes = extraction.outcomes.copy()
    arms = extraction.arms.reindex(
        columns=[
            "arm_id",
            "role",
            "prep_id",
            "arm_label",
            "route",
            "n_doses",
            "timing_hours",
            "experiment_id",
            "control_arm_id",
        ]
    )
    arms = arms.assign(control_arm_id=arms["control_arm_id"].where(arms["control_arm_id"].notna(), None))
    experiments = extraction.experiments[
        ["experiment_id", "study_id", "species", "strain", "sex", "disease_model", "body_weight_kg"]
    ]
    studies = extraction.studies[["study_id", "first_author", "year"]]
    rows = outcomes.merge(arms.drop(columns="experiment_id"), on="arm_id", how="left", validate="many_to_one")
    rows = rows.merge(experiments, on="experiment_id", how="left", validate="many_to_one")
    rows = rows.merge(studies, on="study_id", how="left", validate="many_to_one")
    rows.index = outcomes.index
    unit = rows["timepoint_unit"].fillna("days").map(_TIME_TO_DAYS)
    rows["timepoint_days"] = rows["timepoint"].astype(float) * unit.astype(float)
    rows["timepoint_label"] = [
        "" if pd.isna(t) else f"{t:g} {_TIME_ABBREVIATION.get(u if isinstance(u, str) else 'days', 'd')}"
        for t, u in zip(rows["timepoint"], rows["timepoint_unit"], strict=True)
    ]
    stats = _arm_statistics(rows, quartile_method)
    return pd.concat([rows, stats], axis=1)


def _select_outcomes(rows: pd.DataFrame, outcome: str | Sequence[str] | None, log: _Log) -> pd.DataFrame:
    if outcome is None:
        return rows
    wanted = [outcome] if isinstance(outcome, str) else list(outcome)
    folded = {w.casefold().strip() for w in wanted}
    keep = rows["outcome"].str.casefold().str.strip().isin(folded)
    log.add(rows[~keep], f"outcome not selected (analysis uses: {', '.join(wanted)})")
    return rows[keep]


def _select_timepoints(rows: pd.DataFrame, timepoint: str | float, log: _Log) -> pd.DataFrame:
    if timepoint == "all":
        return rows
    key = ["experiment_id", "outcome"]
    days = rows["timepoint_days"]
    has_time = days.notna()
    group_has_time = has_time.groupby([rows[k] for k in key]).transform("any")
    missing = ~has_time & group_has_time
    log.add(rows[missing], "time point missing while other rows of this outcome have one")
    rows = rows[~missing]
    days = rows["timepoint_days"]
    grouped = days.groupby([rows[k] for k in key])
    if timepoint == "last":
        target = grouped.transform("max")
        label = "not the last time point"
    elif timepoint == "first":
        target = grouped.transform("min")
        label = "not the first time point"
    elif isinstance(timepoint, (int, float)) and not isinstance(timepoint, bool):
        distance = (days - float(timepoint)).abs()
        best = distance.groupby([rows[k] for k in key]).transform("min")
        # Ties: the later time point.
        candidates = days.where(distance == best)
        target = candidates.groupby([rows[k] for k in key]).transform("max")
        label = f"not the time point closest to {timepoint:g} days"
    else:
        raise InputError(f"timepoint must be 'last', 'first', 'all' or a number of days, got {timepoint!r}")
    keep = (days == target) | (days.isna() & target.isna())
    log.add(rows[~keep], f"time point rule '{timepoint}': {label}")
    return rows[keep]


def _select(
    extraction: Extraction,
    outcome: str | Sequence[str] | None,
    timepoint: str | float,
    quartile_method: str,
    log: _Log,
) -> pd.DataFrame:
    """Step 1, select: the outcome rows of the chosen outcomes and time points, with arm statistics."""
    rows = _outcome_rows(extraction, quartile_method)
    rows = _select_outcomes(rows, outcome, log)
    positive = rows["role"] == "positive_control"
    log.add(rows[positive], "positive_control arm: not compared with EVs")
    rows = _select_timepoints(rows[~positive], timepoint, log)
    return rows.assign(_time_key=rows["timepoint_days"].fillna(-np.inf))
