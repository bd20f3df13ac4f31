"""Is a harmonized dose within the range seen in the literature for the species?

Ranges (per kg of body weight, one administration) and their sources are data:
``evmeta/data/dose_plausibility.toml``. A dose outside is noted, never dropped: the note
tells the reviewer what to check ("implausible for a mouse: check µg vs mg").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from typing import Any

from evmeta.data import load_toml

_LABELS = {
    "ug_protein_per_kg": "ug protein/kg",
    "particles_per_kg": "particles/kg",
    "cell_equivalents_per_kg": "cell equivalents/kg",
}


@cache
def _table() -> dict[str, Any]:
    return load_toml("dose_plausibility.toml")


def plausible_range(key: str, species: str) -> tuple[float, float]:
    """(low, high) plausible per-kg amount for ``key`` in ``species`` (canonical name)."""
    table = _table()
    ranges = table.get("species", {}).get(species, table["default"])
    low, high = ranges.get(key, table["default"][key])
    return float(low), float(high)


def plausibility_notes(values: Mapping[str, Any], species: str) -> list[str]:
    """Notes for per-kg amounts in ``values`` outside the plausible range for ``species``.

    Parameters
    ----------
    values : mapping
        Output of :func:`evmeta.harmonize.doses.harmonize_dose` (NaN where not convertible).
    species : str
        Canonical species name (``mouse``, ``guinea_pig``).
    """
    notes = []
    label = species.replace("_", " ")
    for key, unit in _LABELS.items():
        value = values.get(key)
        if value is None or not math.isfinite(value):
            continue
        low, high = plausible_range(key, species)
        if low <= value <= high:
            continue
        side, bound, hint = ("above", high, _table()["hint"][key][1])
        if value < low:
            side, bound, hint = ("below", low, _table()["hint"][key][0])
        notes.append(
            f"{value:.3g} {unit} is implausible for a {label} ({side} {bound:.3g}, the range seen in the "
            f"literature): {hint}"
        )
    return notes
