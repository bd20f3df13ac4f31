"""The Methods' words for the effect size: the measure with the options it was computed with
(SMD variant, ROM bias correction) and the binary comparisons converted to the SMD scale.

The defaults are stated, not only the options: a reader comparing with metafor 5 must see
that the log ratio of means was not bias-corrected (metafor 5.0 corrects it by default).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from evmeta.report.run_view import ReportedRun

MEASURE_WORDS = {
    "MD": "mean differences",
    "NMD": "normalized mean differences",
    "OR": "log odds ratios",
    "RR": "log risk ratios",
    "RD": "risk differences",
}
SMD_WORDS = {
    "exact": "standardized mean differences (Hedges' g with the exact small-sample correction)",
    "revman": (
        "standardized mean differences (Hedges' adjusted g as in RevMan 5: approximate small-sample "
        "correction 1 - 3/(4N - 9) and variance N/(n1 n2) + g²/(2(N - 3.94)); Deeks & Higgins 2010)"
    ),
}
ROM_WORDS = {
    False: (
        "log ratios of means without the small-sample bias correction (first-order variance; as metafor "
        "before version 5.0, which corrects by default; Lajeunesse 2015)"
    ),
    True: (
        "log ratios of means with the small-sample bias correction and second-order variance of "
        "Lajeunesse (2015), as metafor 5's default"
    ),
}


def measure_words(measure: str, comparisons_section: Any) -> str:
    """'standardized mean differences (Hedges' g ...)' for the measure and the spec's options."""
    if measure == "SMD":
        return SMD_WORDS[getattr(comparisons_section, "smd_variant", "exact")]
    if measure == "ROM":
        return ROM_WORDS[bool(getattr(comparisons_section, "rom_correct", False))]
    return MEASURE_WORDS.get(measure, measure)


def conversion_sentence(run: ReportedRun) -> str:
    """A sentence on the binary comparisons of a run converted to the SMD scale (empty when
    none). The one place the Methods read the comparisons table."""
    table: pd.DataFrame | None = getattr(getattr(run, "comparisons", None), "table", None)
    if table is None or "effect_conversion" not in table.columns:
        return ""
    converted = table["effect_conversion"].fillna("").astype(str) != ""
    k = int(converted.sum())
    if k == 0:
        return ""
    which = "comparison" if k == 1 else "comparisons"
    return (
        f"{k} {which} with a binary outcome (animals with the event per group) entered as log odds ratios "
        "converted to the SMD scale (multiplied by √3/π, variance by 3/π²; Hasselblad & Hedges 1995, "
        "Chinn 2000), with the same small-sample correction; the conversion assumes a logistic latent "
        "variable with equal variance in both groups."
    )


__all__ = ["conversion_sentence", "measure_words"]
