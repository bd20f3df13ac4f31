"""The dose column of a journal layout: the harmonized per-kg dose in words
(``1.3 × 10¹⁰ particles/kg``, ``†`` where only the reference body weight gives it per kg),
split into number and unit where a narrow column takes it on two lines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evmeta.formatting import power_of_ten
from evmeta.plots.forest.layout import REFERENCE_WEIGHT_MARK, reference_mark

#: 1.3e10 -> ``1.3 × 10¹⁰`` (the formatter of every particle count, in evmeta.formatting).
scientific_unicode = power_of_ten


def dose_long(row: pd.Series) -> str:
    """The harmonized per-kg dose in words: protein (µg/kg or mg/kg), else particles, else
    cell equivalents, else the dose as reported, else an en dash; ``†`` marks a dose per kg
    only through the species' reference body weight."""
    protein = row.get("dose_ug_protein_per_kg", np.nan)
    if pd.notna(protein):
        text = f"{protein / 1000:.3g} mg/kg" if protein >= 1000 else f"{protein:.3g} µg/kg"
        return text + reference_mark(row, "dose_ug_protein_per_kg")
    for key, unit in [
        ("dose_particles_per_kg", "particles/kg"),
        ("dose_cell_equivalents_per_kg", "cell equivalents/kg"),
    ]:
        value = row.get(key, np.nan)
        if pd.notna(value) and value > 0:
            return f"{scientific_unicode(float(value))} {unit}{reference_mark(row, key)}"
    reported = row.get("dose_reported")
    return str(reported) if isinstance(reported, str) and reported.strip() else "–"


DOSE_UNITS = ("cell equivalents/kg", "particles/kg", "µg/kg", "mg/kg")


def split_unit(text: str) -> tuple[str, str]:
    """'1.3 × 10¹⁰ particles/kg' -> ('1.3 × 10¹⁰', 'particles/kg'); ('text', '') without a unit
    (a ``†`` stays with the unit)."""
    mark = REFERENCE_WEIGHT_MARK if text.endswith(REFERENCE_WEIGHT_MARK) else ""
    bare = text.removesuffix(mark)
    for unit in DOSE_UNITS:
        if bare.endswith(" " + unit):
            return bare[: -len(unit) - 1], unit + mark
    return text, ""
