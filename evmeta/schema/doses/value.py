"""The one value type of a dose, from the printed text to the canonical unit."""

from __future__ import annotations

from dataclasses import dataclass

#: Quantities of an EV dose (what :func:`evmeta.harmonize.doses.harmonize_dose` converts).
EV_QUANTITIES = ("protein", "particles", "cell_equivalents", "conditioned_medium")
#: Quantities of a dose that is not an amount of EVs: a drug's mass ('cisplatin 5 mg/kg',
#: a positive-control drug), an amount of substance ('10 nmol') and a concentration in the
#: diet ('600 mg/kg chow', mass of drug per kg of diet, never per kg of body weight).
DRUG_QUANTITIES = ("drug_mass", "substance_amount", "dietary_concentration")
#: Bases of a dose: per animal, per kg of body weight, per organ or site ('per kidney',
#: ``Dose.organ`` names it) and in the diet (``dietary_concentration`` only).
BASES = ("per_animal", "per_kg", "per_organ", "in_diet")


@dataclass(frozen=True)
class Amount:
    """One more quantity printed for the same dose ('100 ug (approximately 3.75 x 10^11
    particles)'): ``value`` in ``unit`` of ``quantity``, on the dose's basis."""

    value: float
    quantity: str
    unit: str


@dataclass(frozen=True)
class Dose:
    """A dose: what a printed dose says (:func:`evmeta.schema.doses.text.read_dose_text`,
    in the unit it was printed in) and the same dose in its quantity's canonical unit
    (:func:`evmeta.parse_dose`, :func:`evmeta.harmonize.doses.dose_from_columns`).

    Attributes
    ----------
    value : float
        Amount per administration, in ``unit``.
    quantity : str
        One of :data:`EV_QUANTITIES` (``protein``, ``particles``, ``cell_equivalents``,
        ``conditioned_medium``) or :data:`DRUG_QUANTITIES` (``drug_mass``,
        ``substance_amount``, ``dietary_concentration``), which are never converted to
        an amount of EVs.
    unit : str
        Canonical unit of the quantity (``ug``, ``particles``, ``cell_equivalents``, ``mL``;
        ``mg`` for a drug mass, ``nmol``, ``mg/kg diet``) after :func:`evmeta.parse_dose`;
        as printed and normalized (``ug``, ``mg``, ``ml``, ``particle``, ``cell_equivalent``,
        ``umol``) in a reading.
    basis : str
        One of :data:`BASES`: ``per_animal``, ``per_kg``, ``per_organ`` (``organ`` says
        which: the dose per animal depends on how many were treated, so it is not computed)
        or ``in_diet``.
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
        How the text was read where a reader might ask (lost superscripts, computed amounts,
        an approximate amount, a dose of another agent set aside).
    species : tuple of str
        Canonical species the text gives the dose for ('/mouse'); empty when it names none.
        :func:`harmonize_dose` refuses a dose whose species contradicts the experiment's.
    equivalents : tuple of Amount
        The same dose printed in another quantity ('2 x 10^10 particles (10 ug)'): the
        particle-to-protein ratio they imply is :func:`evmeta.harmonize.doses.implied_particles_per_ug`.
    organ : str or None
        The organ or site of a ``per_organ`` dose ('kidney', 'eye', 'joint').
    qualifier : str or None
        ``approximately`` when the amount is printed as approximate ('~100 ug', 'about
        100 ug'); bounds ('at least', 'up to', '>') are refused, not qualified.
    agent : str or None
        The non-EV agent the text names for this dose ('cisplatin' in 'cisplatin (5
        mg/kg)'): the dose is the agent's (``drug_mass``), not the EVs'.
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
    equivalents: tuple[Amount, ...] = ()
    organ: str | None = None
    qualifier: str | None = None
    agent: str | None = None

    @property
    def is_ev_dose(self) -> bool:
        """True when the dose is an amount of EVs (not a drug, diet or another agent)."""
        return self.quantity in EV_QUANTITIES and self.agent is None
