"""Pair every EV outcome row with its control row (and sham row) on one outcome and time point.

The rows of one experiment, outcome and time point form a *group*. An EV row is paired with
the control arm named in its arm's ``control_arm_id`` when the reviewer filled it in, else
with the group's only ``vehicle_control`` row. A group with several control rows and no
``control_arm_id`` cannot be paired: which control belongs to which EV arm is not known
(validation reports it, :mod:`evmeta.schema.validation.pairing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

#: Columns of a control row carried onto its EV row (suffix ``_c``).
CONTROL_COLUMNS = [
    "outcome_id",
    "arm_id",
    "_row",
    "n",
    "mean_est",
    "sd_est",
    "dispersion_source",
    "events",
    "total",
    "higher_is_better",
]
AMBIGUOUS = (
    "more than one vehicle_control row for this outcome and time point; keep one per experiment, "
    "or name each EV arm's control in arms.control_arm_id"
)


@dataclass
class Pairing:
    """EV rows with their control's columns, and the rows that could not be paired.

    Attributes
    ----------
    pairs : DataFrame
        One row per paired EV outcome row (on the EV rows' index), with the control's
        :data:`CONTROL_COLUMNS` suffixed ``_c`` and the sham's ``_row_s``, ``mean_est_s``,
        ``outcome_id_s``.
    controls, shams : DataFrame
        The control and sham rows that remain candidates (for the log of unused rows).
    dropped : list of (DataFrame, str)
        Rows left out and why.
    """

    pairs: pd.DataFrame
    controls: pd.DataFrame
    shams: pd.DataFrame
    dropped: list[tuple[pd.DataFrame, str]] = field(default_factory=list)


def _ambiguous_groups(rows: pd.DataFrame, group: list[str]) -> pd.Series:
    """Rows of groups with several controls where no EV arm names its control (left out whole)."""
    keys = [rows[g] for g in group]
    n_controls = (rows["role"] == "vehicle_control").groupby(keys).transform("sum")
    named = ((rows["role"] == "ev") & rows["control_arm_id"].notna()).groupby(keys).transform("any")
    return (n_controls > 1) & ~named


def pair_with_controls(rows: pd.DataFrame, group: list[str]) -> Pairing:
    """Pair the EV rows of ``rows`` with control and sham rows of the same group.

    Parameters
    ----------
    rows : DataFrame
        Outcome rows with ``role``, ``arm_id``, ``control_arm_id`` (None when not given),
        the ``group`` columns and :data:`CONTROL_COLUMNS`.
    group : list of str
        Columns that define one outcome at one time point in one experiment.

    Returns
    -------
    Pairing
    """
    dropped: list[tuple[pd.DataFrame, str]] = []
    ambiguous = _ambiguous_groups(rows, group)
    dropped.append((rows[ambiguous], AMBIGUOUS))
    rows = rows[~ambiguous]
    controls = rows[rows["role"] == "vehicle_control"]
    shams = rows[rows["role"] == "sham"]
    first_sham = ~shams.duplicated(group)
    dropped.append((shams[~first_sham], "second sham row for this outcome and time point; the first is used"))
    shams = shams[first_sham]
    evs = rows[rows["role"] == "ev"]
    pairs, reasons = _match_controls(evs, controls, group)
    for reason in pd.unique(reasons.dropna()):
        dropped.append((evs[reasons == reason], str(reason)))
    pairs = pairs[reasons.isna()]
    sham_columns = {"_row": "_row_s", "mean_est": "mean_est_s", "outcome_id": "outcome_id_s"}
    with_sham = pairs.merge(shams[[*group, *sham_columns]].rename(columns=sham_columns), on=group, how="left")
    with_sham.index = pairs.index
    return Pairing(with_sham, controls, shams, dropped)


def _match_controls(
    evs: pd.DataFrame, controls: pd.DataFrame, group: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    """EV rows with their control's columns; the reason an EV row has none (NaN: paired)."""
    renamed = controls[[*group, *CONTROL_COLUMNS]].rename(columns={c: f"{c}_c" for c in CONTROL_COLUMNS})
    counts = renamed.groupby(group).size().rename("_n_controls").reset_index()
    sole = renamed.drop_duplicates(group, keep=False)[[*group, "arm_id_c"]].rename(
        columns={"arm_id_c": "_sole_control"}
    )
    # A control arm with two rows on one outcome and time point cannot be the named control.
    per_arm = renamed.drop_duplicates([*group, "arm_id_c"], keep=False)
    frame = evs.merge(counts, on=group, how="left").merge(sole, on=group, how="left")
    frame.index = evs.index
    named = frame["control_arm_id"].notna()
    frame["_control_key"] = frame["control_arm_id"].where(named, frame["_sole_control"])
    pairs = frame.merge(
        per_arm,
        left_on=[*group, "_control_key"],
        right_on=[*group, "arm_id_c"],
        how="left",
        validate="many_to_one",
    )
    pairs.index = evs.index
    n_controls = frame["_n_controls"].fillna(0)
    missing = pairs["outcome_id_c"].isna()
    reasons = pd.Series(None, index=evs.index, dtype=object)
    reasons[missing & ~named & (n_controls == 0)] = "no vehicle_control row for this outcome and time point"
    reasons[missing & ~named & (n_controls > 1)] = AMBIGUOUS
    named_missing = missing & named
    reasons[named_missing] = [
        f"no single row of its control arm {arm!r} (arms.control_arm_id) for this outcome and time point"
        for arm in frame.loc[named_missing, "control_arm_id"]
    ]
    return pairs.drop(columns=["_n_controls", "_sole_control", "_control_key"]), reasons


__all__ = ["AMBIGUOUS", "CONTROL_COLUMNS", "Pairing", "pair_with_controls"]
