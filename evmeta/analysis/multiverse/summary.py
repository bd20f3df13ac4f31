"""Descriptive summary of a specification curve, and which choice moves the estimate most.

Computed over the specifications with ``status == "ok"``:

* share with the same sign as the median estimate, share significant (the interval, at the spec's level,
  excludes 0; for Bayesian fits the credible interval), share significant in the
  direction of the median, median, range and interquartile range of the estimates;
* for each crossed choice with at least two fitted values, the **range of medians**
  (largest minus smallest median estimate across its values, in the units of the effect
  measure) and **eta^2** (share of the variance of the estimates between its values, a
  one-way variance decomposition). The choice that moves the estimate most is the one with
  the largest range of medians; eta^2 is shown beside it.

Different effect measures (SMD, ROM, NMD) are on different scales: a median over SMD and
log-ratio estimates describes neither. When more than one measure is used (column
``measure_used``), the distribution (median, range, IQR) and the shares are computed within
each measure used (``summary["by_measure"]``), and so is the ranking of choices, whose
headline comes from the largest group. Only the sign and significance shares are also pooled
across measures (the sign of an estimate and whether its interval excludes 0 do not depend on
the scale); the pooled direction is then the majority sign.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd


def significance(frame: pd.DataFrame) -> np.ndarray:
    """+1 (interval above 0), -1 (below) or 0 for each row."""
    return np.where(frame["ci_low"] > 0, 1, np.where(frame["ci_high"] < 0, -1, 0))


def _distribution(ok: pd.DataFrame) -> dict[str, Any]:
    """Median, range, IQR and sign/significance shares of fitted rows on one scale."""
    estimate = ok["estimate"].to_numpy()
    median = float(np.median(estimate))
    out = {
        "median": median,
        "minimum": float(estimate.min()),
        "maximum": float(estimate.max()),
        "q25": float(np.quantile(estimate, 0.25)),
        "q75": float(np.quantile(estimate, 0.75)),
    }
    return out | _shares(ok, 1 if median >= 0 else -1)


def _shares(ok: pd.DataFrame, direction: int) -> dict[str, Any]:
    sig = significance(ok)
    return {
        "share_same_sign": float(np.mean(np.sign(ok["estimate"].to_numpy()) == direction)),
        "share_significant": float(np.mean(sig != 0)),
        "share_significant_same_sign": float(np.mean(sig == direction)),
        "direction": "positive" if direction > 0 else "negative",
    }


def curve_summary(rows: pd.DataFrame) -> dict[str, Any]:
    """Counts, shares and the distribution of the estimates of the fitted specifications.

    Parameters
    ----------
    rows : DataFrame
        ``multiverse.csv`` rows (``status``, ``estimate``, ``ci_low``, ``ci_high``,
        ``measure_used``).

    Returns
    -------
    dict
        Counts; ``measures`` (the measures used); ``by_measure``: one dict per measure used
        (``measure``, ``fitted``, ``median``, ``minimum``, ``maximum``, ``q25``, ``q75``,
        ``share_same_sign``, ``share_significant``, ``share_significant_same_sign``,
        ``direction``). With a single measure its entries are also at the top level. With
        several, only the scale-free shares are at the top level, pooled over measures (the
        direction is the majority sign); there is no pooled median or range.
    """
    ok = rows[rows["status"] == "ok"]
    out: dict[str, Any] = {
        "specifications": len(rows),
        "fitted": len(ok),
        "skipped": int((rows["status"] == "skipped").sum()),
        "failed": int((rows["status"] == "failed").sum()),
    }
    if ok.empty:
        return out
    measure = ok["measure_used"].astype(str)
    out["measures"] = sorted(measure.unique())
    out["by_measure"] = [
        {"measure": name, "fitted": len(group), **_distribution(group)}
        for name, group in ok.groupby(measure, sort=True)
    ]
    if len(out["measures"]) == 1:
        out.update({k: v for k, v in out["by_measure"][0].items() if k not in ("measure", "fitted")})
    else:
        # The sign of a median over mixed scales is still the majority sign, so it is meaningful.
        out.update(_shares(ok, 1 if np.median(ok["estimate"]) >= 0 else -1))
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
    """Plain-language summary for the report and the command line.

    With several measures used: one line per measure (its own median, range, IQR and
    shares), then the sign and significance shares pooled over measures, said to be pooled.
    """
    if not summary.get("fitted"):
        return [f"none of the {summary['specifications']} specifications could be fitted"]
    s = summary
    lines = [
        f"{s['fitted']} of {s['specifications']} specifications fitted ({s['skipped']} skipped, {s['failed']} failed)"
    ]
    if len(s["by_measure"]) == 1:
        lines += [
            f"median estimate {s['median']:.3f} (range {s['minimum']:.3f} to {s['maximum']:.3f}; "
            f"IQR {s['q25']:.3f} to {s['q75']:.3f}; measures {', '.join(s['measures'])})",
            _shares_sentence(s, "have the median's sign"),
        ]
    else:
        for m in s["by_measure"]:
            lines.append(
                f"{m['measure']} ({m['fitted']} fitted): median estimate {m['median']:.3f} (range "
                f"{m['minimum']:.3f} to {m['maximum']:.3f}; IQR {m['q25']:.3f} to {m['q75']:.3f}); "
                + _shares_sentence(m, "have the median's sign")
            )
        lines.append(
            f"pooled over the measures {', '.join(s['measures'])} (signs and significance do not "
            "depend on the scale; estimates are not pooled): " + _shares_sentence(s, "have the majority sign")
        )
    if not influence.empty:
        top = influence.iloc[0]
        lines.append(
            f"the choice that moves the estimate most is {top['choice']} (range of medians "
            f"{top['range_of_medians']:.3f} {top['measure_used']}, eta^2 {top['eta2']:.2f}: {top['medians']})"
        )
    return lines


def _shares_sentence(s: dict[str, Any], sign: str) -> str:
    return (
        f"{s['share_same_sign']:.0%} {sign} ({s['direction']}); {s['share_significant']:.0%} "
        f"are significant, {s['share_significant_same_sign']:.0%} significant in that direction"
    )


__all__ = ["choice_influence", "curve_summary", "significance", "summary_sentences"]
