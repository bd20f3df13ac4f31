"""Step 3, size: the measure (after the NMD/SMD rule) and the effect sizes, a shared control
split among the comparisons that use it.
"""

from __future__ import annotations

import pandas as pd

from evmeta.comparisons.exclusions import _Log
from evmeta.harmonize.control_split import pair_effects
from evmeta.harmonize.effect_options import EffectOptions

#: Share of comparisons with a sham arm needed for NMD under ``measure="NMD_or_SMD"``.
NMD_SHARE = 0.70


def _choose_measure(requested: str, pairs: pd.DataFrame, settings: dict) -> str:
    """The measure, after the NMD/SMD rule (NMD when enough comparisons have a sham row)."""
    if requested != "NMD_or_SMD":
        return requested
    share = pairs["mean_est_s"].notna().mean() if len(pairs) else 0.0
    settings["nmd_share"] = float(share)
    return "NMD" if share >= NMD_SHARE else "SMD"


def _size(
    pairs: pd.DataFrame, measure: str, shared_control: str, log: _Log, options: EffectOptions
) -> tuple[pd.DataFrame, pd.DataFrame, float | pd.Series]:
    """Step 3, size: effect sizes, the shared control split among the comparisons that use it.

    Returns the pairs kept, their effect sizes and the number of comparisons each control is
    divided among (1.0 when not split).
    """
    binary = measure in {"OR", "RR", "RD"}
    mismatch = pairs["higher_is_better"] != pairs["higher_is_better_c"]
    log.add(pairs[mismatch], "higher_is_better differs between the EV row and its control row")
    pairs = pairs[~mismatch]
    if not binary:
        # Validity rules apply to the reported group sizes; a split n only scales the variance.
        too_small = (pairs["n"].astype(float) < 2) | (pairs["n_c"].astype(float) < 2)
        log.add(pairs[too_small], "effect size not computable: n must be >= 2 in each arm (as reported)")
        pairs = pairs[~too_small]
    # What cannot be computed even with the control unsplit is dropped first, so that a split
    # control is divided only among the comparisons that use it (metafor practice: the shared
    # group is split among the comparisons in the analysis).
    es = pair_effects(pairs, measure, 1.0, options)
    bad = es["reason"] != ""
    log.add(pairs[bad], "effect size not computable: " + es.loc[bad, "reason"].astype(str))
    pairs, es = pairs[~bad], es[~bad]
    if shared_control != "split":
        return pairs, es, 1.0
    # Bounded: every pass that does not break drops at least one pair.
    while len(pairs):
        k_sharing = _sharing(pairs)
        es = pair_effects(pairs, measure, k_sharing, options)
        bad = es["reason"] != ""
        if not bad.any():
            break
        # Only a split n can fail here (SMD's n1 + n2 - 2 > 1, a binary arm below one animal);
        # the control is split again among the arms left.
        split_n = pairs["total_c" if binary else "n_c"].astype(float) / k_sharing
        log.add(
            pairs[bad],
            "effect size not computable: "
            + es.loc[bad, "reason"].astype(str)
            + " (control n split among "
            + k_sharing[bad].map("{:g}".format)
            + " arms: "
            + split_n[bad].map("{:.3g}".format)
            + ")",
        )
        pairs, es = pairs[~bad], es[~bad]
    return pairs, es, _sharing(pairs)


def _sharing(pairs: pd.DataFrame) -> pd.Series:
    """Number of comparisons that use each pair's control row."""
    return pairs.groupby("outcome_id_c")["outcome_id"].transform("count").astype(float)
