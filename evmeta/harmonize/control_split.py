"""Dividing a control arm shared by several EV arms among the comparisons that use it.

``build_comparisons(shared_control="split")`` computes each comparison's effect size with
the control n (events and total for binary measures) divided by the number of comparisons
that use that control (:func:`pair_effects`); when an analysis later leaves some of them
out, :func:`resplit_shared_controls` divides the control again among those left. The
``keep`` alternative, the sampling covariance of comparisons sharing a control, is in
:mod:`evmeta.harmonize.covariance`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evmeta.harmonize.effects import effect_size


def resplit_shared_controls(table: pd.DataFrame) -> pd.DataFrame:
    """Divide each split control again among the comparisons of ``table`` that still use it.

    :func:`build_comparisons` with ``shared_control="split"`` divides a control shared by k
    EV arms among those k comparisons. When an analysis then leaves some of them out (the
    spec's ``[filters]``), the control belongs to the m < k comparisons left: their control
    n (events and total for binary measures) is divided by m instead, and ``yi``, ``vi``,
    ``sei``, ``n_control`` and ``control_split_among`` are recomputed from the arm statistics
    the table carries. Rows whose control is not split, and tables without those columns,
    are returned unchanged.

    Parameters
    ----------
    table : DataFrame
        Rows of :attr:`Comparisons.table`, possibly a subset.

    Returns
    -------
    DataFrame
        A copy with the affected rows recomputed (the same rows, in the same order).
    """
    needed = {"control_split_among", "control_group_id", "measure", "n_control_reported"}
    if table.empty or not needed <= set(table.columns):
        return table
    using = table.groupby("control_group_id")["control_group_id"].transform("count").astype(float)
    stale = (table["control_split_among"] > 1) & (using != table["control_split_among"])
    if not stale.any():
        return table
    table = table.copy()
    rows = table[stale]
    pairs = pd.DataFrame(
        {
            "mean_est": rows["mean_treat"],
            "sd_est": rows["sd_treat"],
            "n": rows["n_treat"],
            "mean_est_c": rows["mean_control"],
            "sd_est_c": rows["sd_control"],
            "n_c": rows["n_control_reported"],
            "mean_est_s": rows.get("mean_sham", pd.Series(np.nan, index=rows.index)),
            "events": rows["events_treat"],
            "total": rows["total_treat"],
            "events_c": rows["events_control"],
            "total_c": rows["total_control"],
            "dispersion_source": rows.get("dispersion_source_treat", pd.Series("", index=rows.index)),
        },
        index=rows.index,
    )
    for measure in pd.unique(rows["measure"]):
        part = (rows["measure"] == measure).to_numpy()
        index = rows.index[part]
        es = pair_effects(pairs.loc[index], str(measure), using.loc[index])
        flip = table.loc[index, "direction_flipped"].astype(bool) if "direction_flipped" in table else False
        table.loc[index, "yi"] = es["yi"].to_numpy() * np.where(flip, -1.0, 1.0)
        table.loc[index, "vi"] = es["vi"].to_numpy()
    table.loc[stale, "sei"] = np.sqrt(table.loc[stale, "vi"].astype(float))
    table.loc[stale, "n_control"] = table.loc[stale, "n_control_reported"] / using[stale]
    table.loc[stale, "control_split_among"] = using[stale]
    return table


def pair_effects(pairs: pd.DataFrame, measure: str, k_sharing: float | pd.Series) -> pd.DataFrame:
    """Effect sizes of EV-control pairs, the control divided among ``k_sharing`` arms.

    Parameters
    ----------
    pairs : DataFrame
        One row per EV arm with its control's columns (suffix ``_c``) and sham mean.
    measure : str
        The measure used (after the NMD/SMD rule).
    k_sharing : float or Series
        Number of comparisons the control is split among (1: unsplit).

    Returns
    -------
    DataFrame
        ``yi``, ``vi``, ``sei``, ``reason`` on the index of ``pairs``.
    """
    if measure in {"OR", "RR", "RD"}:
        es = effect_size(
            measure,
            ai=pairs["events"],
            n1i=pairs["total"],
            ci=pairs["events_c"].astype(float) / k_sharing,
            n2i=pairs["total_c"].astype(float) / k_sharing,
        )
        es.index = pairs.index
        return es
    es = effect_size(
        measure,
        m1i=pairs["mean_est"],
        sd1i=pairs["sd_est"],
        n1i=pairs["n"],
        m2i=pairs["mean_est_c"],
        sd2i=pairs["sd_est_c"],
        n2i=pairs["n_c"].astype(float) / k_sharing,
        msi=pairs["mean_est_s"],
    )
    es.index = pairs.index
    treat_binary_only = pairs["dispersion_source"] == "events"
    es.loc[treat_binary_only & (es["reason"] != ""), "reason"] = (
        f"binary data (events/total) cannot give {measure}"
    )
    return es


__all__ = ["pair_effects", "resplit_shared_controls"]
