"""Descriptive summary of a specification curve, and which choice moves the estimate most.

Computed over the specifications with ``status == "ok"``:

* share with the same sign as the median estimate, share significant (the 95% interval
  excludes 0; for Bayesian fits the credible interval), share significant in the
  direction of the median, median, range and interquartile range of the estimates;
* for each crossed choice with at least two fitted values, the **range of medians**
  (largest minus smallest median estimate across its values, in the units of the effect
  measure) and **eta^2** (share of the variance of the estimates between its values, a
  one-way variance decomposition). The choice that moves the estimate most is the one with
  the largest range of medians; eta^2 is shown beside it.

Different effect measures (SMD, ROM, NMD) are on different scales. When the multiverse
crosses the measure, the ranking is computed within each measure actually used
(``measure_used``) and the headline comes from the largest group; the measure choice itself
is then judged by its sign and significance shares.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd


def significance(frame: pd.DataFrame) -> np.ndarray:
    """+1 (interval above 0), -1 (below) or 0 for each row."""
    return np.where(frame["ci_low"] > 0, 1, np.where(frame["ci_high"] < 0, -1, 0))


def curve_summary(rows: pd.DataFrame) -> dict[str, Any]:
    """Counts, shares and the distribution of the estimates of the fitted specifications."""
    ok = rows[rows["status"] == "ok"]
    out: dict[str, Any] = {
        "specifications": len(rows),
        "fitted": len(ok),
        "skipped": int((rows["status"] == "skipped").sum()),
        "failed": int((rows["status"] == "failed").sum()),
    }
    if ok.empty:
        return out
    estimate = ok["estimate"].to_numpy()
    median = float(np.median(estimate))
    direction = 1 if median >= 0 else -1
    sig = significance(ok)
    out.update(
        median=median,
        minimum=float(estimate.min()),
        maximum=float(estimate.max()),
        q25=float(np.quantile(estimate, 0.25)),
        q75=float(np.quantile(estimate, 0.75)),
        share_same_sign=float(np.mean(np.sign(estimate) == direction)),
        share_significant=float(np.mean(sig != 0)),
        share_significant_same_sign=float(np.mean(sig == direction)),
        direction="positive" if direction > 0 else "negative",
        measures=sorted(ok["measure_used"].astype(str).unique()),
    )
    return out


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def choice_influence(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Range of medians and eta^2 of each crossed choice, within each measure used.

    Returns
    -------
    DataFrame
        ``measure_used``, ``choice``, ``range_of_medians``, ``eta2``, ``medians`` (value:
        median, as text), ``n`` (fitted specifications); sorted by measure group size, then
        by range of medians (largest first).
    """
    ok = rows[rows["status"] == "ok"]
    records = []
    for measure, group in ok.groupby("measure_used", sort=True):
        estimate = group["estimate"].to_numpy()
        total = float(np.sum((estimate - estimate.mean()) ** 2))
        for key in keys:
            labels = group[key].map(_label)
            if labels.nunique() < 2:
                continue
            by_value = group.groupby(labels, sort=False)["estimate"]
            medians = by_value.median()
            between = float(sum(len(g) * (g.mean() - estimate.mean()) ** 2 for _, g in by_value))
            records.append(
                {
                    "measure_used": measure,
                    "choice": key,
                    "range_of_medians": float(medians.max() - medians.min()),
                    "eta2": between / total if total > 0 else 0.0,
                    "medians": "; ".join(f"{v}: {m:.3f}" for v, m in medians.items()),
                    "n": len(group),
                }
            )
    frame = pd.DataFrame(
        records, columns=["measure_used", "choice", "range_of_medians", "eta2", "medians", "n"]
    )
    if frame.empty:
        return frame
    return frame.sort_values(["n", "range_of_medians"], ascending=[False, False]).reset_index(drop=True)


def summary_sentences(summary: dict[str, Any], influence: pd.DataFrame) -> list[str]:
    """Plain-language summary for the report and the command line."""
    if not summary.get("fitted"):
        return [f"none of the {summary['specifications']} specifications could be fitted"]
    s = summary
    lines = [
        f"{s['fitted']} of {s['specifications']} specifications fitted ({s['skipped']} skipped, {s['failed']} failed)",
        f"median estimate {s['median']:.3f} (range {s['minimum']:.3f} to {s['maximum']:.3f}; "
        f"IQR {s['q25']:.3f} to {s['q75']:.3f}; measures {', '.join(s['measures'])})",
        f"{s['share_same_sign']:.0%} have the median's sign ({s['direction']}); {s['share_significant']:.0%} "
        f"are significant, {s['share_significant_same_sign']:.0%} significant in that direction",
    ]
    if not influence.empty:
        top = influence.iloc[0]
        lines.append(
            f"the choice that moves the estimate most is {top['choice']} (range of medians "
            f"{top['range_of_medians']:.3f} {top['measure_used']}, eta^2 {top['eta2']:.2f}: {top['medians']})"
        )
    return lines


__all__ = ["choice_influence", "curve_summary", "significance", "summary_sentences"]
