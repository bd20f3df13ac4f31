"""The particle-to-protein ratio a dose printed in two quantities implies.

'100 ug/rat, approximately 3.75x10^11 particles' gives the preparation's ratio, 3.75e9
particles per ug protein, the MISEV purity measure (Webber & Clayton 2013, J Extracell
Vesicles 2:19861). Validation fills an empty ``preparations.particles_per_ug_protein`` with
it (:mod:`evmeta.schema.validation.dose_check`), and notes a preparation that states
another.
"""

from __future__ import annotations

import math

from evmeta.data import load_toml
from evmeta.schema.doses.value import Dose

__all__ = ["RATIO_TOLERANCE", "implied_particles_per_ug", "ratios_differ"]

#: Relative difference above which two particle-to-protein ratios are said to differ:
#: printed amounts are rounded to two or three significant digits ('approximately 3.75 x
#: 10^11'), which moves a ratio of two of them by up to about 5% each, so 10%.
RATIO_TOLERANCE = 0.10


def _ug(value: float, unit: str) -> float | None:
    factors = load_toml("dose_units.toml")["mass_ug"]
    if unit == "ug":
        return value
    return value * factors[unit] if unit in factors else None


def implied_particles_per_ug(dose: Dose) -> float | None:
    """Particles per ug protein when the dose prints both, else None.

    Works on a reading (printed units: mg, ng, ...) and on a dose in canonical units.

    Examples
    --------
    >>> from evmeta.schema.doses.text import read_dose_text
    >>> implied_particles_per_ug(read_dose_text("2 x 10^10 particles (10 ug)"))
    2000000000.0
    """
    amounts = [(dose.value, dose.quantity, dose.unit)]
    amounts += [(a.value, a.quantity, a.unit) for a in dose.equivalents]
    protein = [_ug(v, u) for v, q, u in amounts if q == "protein"]
    particles = [v for v, q, _ in amounts if q == "particles"]
    if len(protein) != 1 or len(particles) != 1 or not protein[0] or protein[0] <= 0:
        return None
    ratio = particles[0] / protein[0]
    return ratio if math.isfinite(ratio) and ratio > 0 else None


def ratios_differ(a: float, b: float) -> bool:
    """True when two ratios differ by more than :data:`RATIO_TOLERANCE` (relative to the larger)."""
    return abs(a - b) > RATIO_TOLERANCE * max(abs(a), abs(b))
