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

from evmeta.harmonize.effect_options import CONVERSION_LABEL, EffectOptions
from evmeta.harmonize.effects import effect_size
from evmeta.harmonize.or_to_smd import log_odds_ratio_to_smd


def resplit_shared_controls(table: pd.DataFrame, options: EffectOptions | None = None) -> pd.DataFrame:
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
    options : EffectOptions, optional
        The effect-size options the table was built with (default: evmeta's defaults).

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
        es = pair_effects(pairs.loc[index], str(measure), using.loc[index], options)
        flip = table.loc[index, "direction_flipped"].astype(bool) if "direction_flipped" in table else False
        table.loc[index, "yi"] = es["yi"].to_numpy() * np.where(flip, -1.0, 1.0)
        table.loc[index, "vi"] = es["vi"].to_numpy()
    table.loc[stale, "sei"] = np.sqrt(table.loc[stale, "vi"].astype(float))
    table.loc[stale, "n_control"] = table.loc[stale, "n_control_reported"] / using[stale]
    table.loc[stale, "control_split_among"] = using[stale]
    return table


def pair_effects(
    pairs: pd.DataFrame, measure: str, k_sharing: float | pd.Series, options: EffectOptions | None = None
) -> pd.DataFrame:
    """Effect sizes of EV-control pairs, the control divided among ``k_sharing`` arms.

    Parameters
    ----------
    pairs : DataFrame
        One row per EV arm with its control's columns (suffix ``_c``) and sham mean.
    measure : str
        The measure used (after the NMD/SMD rule).
    k_sharing : float or Series
        Number of comparisons the control is split among (1: unsplit).
    options : EffectOptions, optional
        SMD variant, ROM bias correction, and the conversion of binary pairs to SMD
        (default: :class:`EffectOptions` defaults).

    Returns
    -------
    DataFrame
        ``yi``, ``vi``, ``sei``, ``reason`` and ``effect_conversion`` (empty, or what a
        converted pair went through) on the index of ``pairs``.
    """
    options = options or EffectOptions()
    if measure in {"OR", "RR", "RD"}:
        es = effect_size(
            measure,
            ai=pairs["events"],
            n1i=pairs["total"],
            ci=pairs["events_c"].astype(float) / k_sharing,
            n2i=pairs["total_c"].astype(float) / k_sharing,
        )
        es.index = pairs.index
        es["effect_conversion"] = ""
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
        smd_variant=options.smd_variant,
        rom_correct=options.rom_correct,
    )
    es.index = pairs.index
    es["effect_conversion"] = ""
    treat_binary_only = pairs["dispersion_source"] == "events"
    es.loc[treat_binary_only & (es["reason"] != ""), "reason"] = (
        f"binary data (events/total) cannot give {measure}"
        + (" (set [comparisons] binary_to_smd to convert log odds ratios)" if measure == "SMD" else "")
    )
    if measure == "SMD" and options.binary_to_smd != "none":
        _convert_binary(es, pairs, k_sharing, options)
    return es


def _convert_binary(es: pd.DataFrame, pairs: pd.DataFrame, k_sharing, options: EffectOptions) -> None:
    """Pairs with events/totals in both arms and no means: the log odds ratio on the SMD
    scale (Hasselblad & Hedges 1995), with the small-sample factor of the SMD variant.
    Fills ``es`` in place."""
    counts = pairs[["events", "total", "events_c", "total_c"]].apply(pd.to_numeric, errors="coerce")
    no_means = pairs["mean_est"].isna() | pairs["mean_est_c"].isna()
    binary = (counts.notna().all(axis=1) & no_means).to_numpy()
    if not binary.any():
        return
    share = np.broadcast_to(np.asarray(k_sharing, dtype=float), len(pairs))[binary]
    rows = counts[binary]
    total_c = rows["total_c"].to_numpy() / share
    log_or = effect_size(
        "OR", ai=rows["events"], n1i=rows["total"], ci=rows["events_c"].to_numpy() / share, n2i=total_c
    )
    smd = log_odds_ratio_to_smd(
        log_or["yi"], log_or["vi"], n1i=rows["total"], n2i=total_c, correct=True, variant=options.smd_variant
    )
    ok = (log_or["reason"] == "").to_numpy() & np.isfinite(smd["yi"].to_numpy())
    reason = np.where(
        log_or["reason"] != "", "log odds ratio: " + log_or["reason"].astype(str), "SMD needs n1 + n2 - 2 > 1"
    )
    index = rows.index
    es.loc[index, "yi"] = np.where(ok, smd["yi"], np.nan)
    es.loc[index, "vi"] = np.where(ok, smd["vi"], np.nan)
    es.loc[index, "sei"] = np.where(ok, smd["sei"], np.nan)
    es.loc[index, "reason"] = np.where(ok, "", reason)
    es.loc[index, "effect_conversion"] = np.where(ok, CONVERSION_LABEL, "")


__all__ = ["pair_effects", "resplit_shared_controls"]
