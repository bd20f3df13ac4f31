"""The exclusions log: every outcome row a build does not use, with its reason (the rows
left out by a step, and the control and sham rows that ended up in no comparison).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evmeta.harmonize.pairing import Pairing

EXCLUSION_COLUMNS = ["sheet", "row", "outcome_id", "arm_id", "experiment_id", "outcome", "reason"]


class _Log:
    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, rows: pd.DataFrame, reason: str | pd.Series | np.ndarray) -> None:
        if len(rows) == 0:
            return
        part = pd.DataFrame(
            {
                "sheet": "outcomes",
                "row": rows["_row"].to_numpy(),
                "outcome_id": rows["outcome_id"].to_numpy(),
                "arm_id": rows["arm_id"].to_numpy(),
                "experiment_id": rows["experiment_id"].to_numpy(),
                "outcome": rows["outcome"].to_numpy(),
                "reason": reason if isinstance(reason, str) else np.asarray(reason, dtype=object),
            }
        )
        self.parts.append(part)

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame(columns=EXCLUSION_COLUMNS)
        return (
            pd.concat(self.parts, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
        )


def _log_unused(pairing: Pairing, table: pd.DataFrame, measure: str, log: _Log) -> None:
    """Control and sham rows that ended up in no comparison are logged too."""
    used = set(table["treat_outcome_row"]) | set(table["control_outcome_row"])
    if measure == "NMD":
        used |= set(table["sham_outcome_row"].dropna().astype(int))
    log.add(
        pairing.controls[~pairing.controls["_row"].isin(used)],
        "control row used in no comparison (no valid EV row on this outcome and time point)",
    )
    leftover_shams = pairing.shams[~pairing.shams["_row"].isin(used)]
    log.add(
        leftover_shams,
        "sham arm: used only for NMD" if measure != "NMD" else "sham row used in no comparison",
    )
