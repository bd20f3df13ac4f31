"""The one value type of a dose, from the printed text to the canonical unit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dose:
    """A dose: what a printed dose says (:func:`evmeta.schema.doses.text.read_dose_text`,
    in the unit it was printed in) and the same dose in its quantity's canonical unit
    (:func:`evmeta.parse_dose`, :func:`evmeta.harmonize.doses.dose_from_columns`).

    Attributes
    ----------
    value : float
        Amount per administration, in ``unit``.
    quantity : {"protein", "particles", "cell_equivalents", "conditioned_medium"}
    unit : str
        Canonical unit of the quantity (``ug``, ``particles``, ``cell_equivalents``, ``mL``)
        after :func:`evmeta.parse_dose`; as printed and normalized (``ug``, ``mg``, ``ml``,
        ``particle``, ``cell_equivalent``) in a reading.
    basis : {"per_animal", "per_kg"}
    text : str
        What was read.
    scaled : bool
        True when reading it changed the unit prefix (mg -> ug) or the body-mass basis
        (per g -> per kg; a per-g dose is already multiplied by 1000 in a reading).
    n_doses : int or None
        Number of administrations the text gives ('four times', 'daily for 7 days').
    interval_days : float or None
        Days between administrations ('every 2 weeks' -> 14, '/day' -> 1).
    vehicle_volume_ul : float or None
        Volume the amount was given in ('30 ug/100 ul' -> 100 uL).
    notes : tuple of str
        How the text was read where a reader might ask (lost superscripts, computed amounts).
    species : tuple of str
        Canonical species the text gives the dose for ('/mouse'); empty when it names none.
        :func:`harmonize_dose` refuses a dose whose species contradicts the experiment's.
    """

    value: float
    quantity: str
    unit: str
    basis: str
    text: str = ""
    scaled: bool = False
    n_doses: int | None = None
    interval_days: float | None = None
    vehicle_volume_ul: float | None = None
    notes: tuple[str, ...] = ()
    species: tuple[str, ...] = ()
