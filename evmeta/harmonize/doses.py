"""Dose strings to canonical units: per animal and per kg, protein and particles, HED.

Papers print MSC-EV doses as protein mass ("100 µg EVs", "0.1 mg/kg"), particle counts
("1.5×10⁹ particles/kg", "2E10 exosomes"), cell equivalents ("EVs from 2×10^6 cells") or
conditioned-medium volume ("200 uL conditioned medium"), per animal or per body mass.
:func:`parse_dose` reads them, with their schedule and vehicle volume, into a :class:`Dose`
(the grammar, and the refusals of ranges, lists, concentrations without a volume and the
like, is :mod:`evmeta.schema.doses.text`); :func:`harmonize_dose` converts a dose to every
basis the study's own numbers (or reference values) allow, saying for each how it was
obtained (``reported``, ``scaled``, ``derived``, ``imputed`` or ``not_convertible``; see
``shared/domain/doses_and_species.md``), and notes amounts outside the range seen in the
literature for the species (:mod:`evmeta.harmonize.dose_plausibility`).

Unit spellings and quantity words are data (``evmeta/data/dose_units.toml``); unit factors
come from pint, with ``particle`` and ``cell_equivalent`` defined as units of their own.

References
----------
FDA (2005). Guidance for Industry: Estimating the Maximum Safe Starting Dose in Initial
Clinical Trials for Therapeutics in Adult Healthy Volunteers, Table 1.
Webber J, Clayton A (2013). How pure are your vesicles? J Extracell Vesicles 2:19861.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeGuard

from evmeta.data import load_toml
from evmeta.errors import DoseError, InputError
from evmeta.harmonize.dose_plausibility import plausibility_notes
from evmeta.schema.doses.ratio import implied_particles_per_ug, ratios_differ
from evmeta.schema.doses.text import DoseTextError, read_dose_text
from evmeta.schema.doses.value import Amount, Dose
from evmeta.schema.vocabulary import species_table, vocabulary

#: Canonical unit of each quantity.
CANONICAL_UNITS = {
    "protein": "ug",
    "particles": "particles",
    "cell_equivalents": "cell_equivalents",
    "conditioned_medium": "mL",
    "drug_mass": "mg",
    "substance_amount": "nmol",
    "dietary_concentration": "mg/kg diet",
}
#: Human Km (FDA 2005) for human-equivalent doses.
KM_HUMAN = 37.0
#: Order of provenance labels, weakest last; a chain of steps takes the weakest.
PROVENANCE_ORDER = ("reported", "scaled", "derived", "imputed", "not_convertible")
#: Keys returned by :func:`harmonize_dose` (besides ``provenance`` and ``notes``).
HARMONIZED_KEYS = (
    "ug_protein_per_kg",
    "particles_per_kg",
    "cell_equivalents_per_kg",
    "ug_protein_per_animal",
    "particles_per_animal",
    "cell_equivalents_per_animal",
    "hed_ug_protein_per_kg",
    "hed_particles_per_kg",
)


# --- unit factors (pint) ----------------------------------------------------------------


#: The only units and prefixes doses need (protein mass, conditioned-medium volume and the
#: two counts): pint's full default registry takes longer to build than a whole dose table.
_UNIT_DEFINITIONS = (
    "gram = [mass] = g",
    "liter = [volume] = l = L",
    "particle = [particle_count]",
    "cell_equivalent = [cell_count]",
    "mole = [substance] = mol",
    "pico- = 1e-12 = p-",
    "nano- = 1e-9 = n-",
    "micro- = 1e-6 = µ- = μ- = u-",
    "milli- = 1e-3 = m-",
    "kilo- = 1e3 = k-",
)


@cache
def _registry():
    import pint

    registry = pint.UnitRegistry(None)
    for definition in _UNIT_DEFINITIONS:
        registry.define(definition)
    return registry


@cache
def unit_factor(unit: str, canonical: str) -> float:
    """Factor converting one ``unit`` into ``canonical`` (pint unit names)."""
    registry = _registry()
    return float(registry.Quantity(1.0, unit).to(canonical).magnitude)


_CANONICAL_PINT = {
    "protein": "microgram",
    "conditioned_medium": "milliliter",
    "drug_mass": "milligram",
    "dietary_concentration": "milligram",
    "substance_amount": "nanomole",
}
#: Table of ``dose_units.toml`` holding the printed spellings of each quantity's units.
_UNIT_TABLE = {"conditioned_medium": "volume_units", "substance_amount": "substance_units"}


# --- reading printed doses ---------------------------------------------------------------


@cache
def _words() -> dict[str, Any]:
    return load_toml("dose_units.toml")


def parse_dose(text: str, *, mass_quantity: str = "protein") -> Dose:
    """Read a dose as printed in a paper or review table.

    The grammar (numbers with lost superscripts, units, denominators, schedules, vehicle
    volumes, and the refusals) is :mod:`evmeta.schema.doses.text`; this converts its reading
    to the canonical unit of the quantity with pint.

    Parameters
    ----------
    text : str
        E.g. ``"100 µg EVs"``, ``"0.1 mg/kg"``, ``"50 ug/g"`` (read as per kg),
        ``"1.5 x 10^9 particles/kg"``, ``"5 × 1010 EV/dose"`` (superscript lost),
        ``"EVs from 2×10^6 cells"``, ``"200 uL conditioned medium"``,
        ``"30 μg/100 μl, i.v., every 2 weeks, four times"``. Without a per-mass denominator
        the dose is per animal.
    mass_quantity : {"protein", "drug_mass"}
        What a mass with no agent named is: EV protein (default) or a drug's mass (the dose
        of a non-EV intervention, ``"drug_mass"``, canonical unit mg).

    Returns
    -------
    Dose
        Amount per single administration in the canonical unit, with the schedule, vehicle
        volume (uL) and notes the text gives.

    Raises
    ------
    DoseError
        A :class:`~evmeta.schema.doses.text.DoseTextError` quoting the text, with ``reason``
        (``range``, ``several_doses``, ``concentration_without_volume``, ``lost_exponent``,
        ``volume_only``, ``no_unit``, ``infusion``, ``not_reported``, ...).

    Examples
    --------
    >>> d = parse_dose("0.1 mg/kg")
    >>> d.value, d.quantity, d.unit, d.basis, d.scaled
    (100.0, 'protein', 'ug', 'per_kg', True)
    >>> d = parse_dose("100 μg/5 μl, i.c.v., once per 2 days for 2 weeks")
    >>> d.value, d.n_doses, d.interval_days, d.vehicle_volume_ul
    (100.0, 7, 2.0, 5.0)
    """
    reading = read_dose_text(text, mass_quantity=mass_quantity)
    value, factor = _to_canonical(reading.value, reading.quantity, reading.unit, text)
    equivalents = tuple(
        Amount(_to_canonical(a.value, a.quantity, a.unit, text)[0], a.quantity, CANONICAL_UNITS[a.quantity])
        for a in reading.equivalents
    )
    # The same value type as the reading, now in the quantity's canonical unit.
    return dataclasses.replace(
        reading,
        value=value,
        unit=CANONICAL_UNITS[reading.quantity],
        scaled=factor != 1.0 or reading.scaled,
        equivalents=equivalents,
    )


def _to_canonical(value: float, quantity: str, unit: str, text: str) -> tuple[float, float]:
    """``value`` in ``unit`` as the canonical unit of ``quantity``, and the factor used."""
    factor = 1.0
    if quantity in _CANONICAL_PINT:
        table = _UNIT_TABLE.get(quantity, "mass_units")
        factor = unit_factor(_words()[table][unit], _CANONICAL_PINT[quantity])
    out = value * factor
    if not math.isfinite(out):
        raise DoseTextError(text, "overflow", "the amount overflows when converted to the canonical unit")
    return float(out), factor


def dose_from_columns(value: float, unit: str, basis: str | None, *, mass_quantity: str = "protein") -> Dose:
    """Build a Dose from the ``arms`` sheet's ``dose_value``, ``dose_unit``, ``dose_basis``.

    ``unit`` is a canonical value of the ``dose_unit`` vocabulary (ug, mg, ng, particles,
    cell_equivalents, mL, uL; nmol, umol and mg_per_kg_diet for doses that are not EVs).
    A mass is EV protein unless ``mass_quantity`` is ``"drug_mass"`` (a non-EV arm's dose).
    """
    if value is None or not math.isfinite(float(value)) or float(value) <= 0:
        raise DoseError(f"cannot read dose {value!r} {unit}: the amount must be a positive number")
    canonical = vocabulary("dose_unit").normalize(unit).canonical
    if canonical is None:
        raise DoseError(
            f"cannot read dose unit {unit!r}; valid units: {', '.join(vocabulary('dose_unit').values)}"
        )
    pint_units = {
        "ug": "microgram",
        "mg": "milligram",
        "ng": "nanogram",
        "mL": "milliliter",
        "uL": "microliter",
        "nmol": "nanomole",
        "umol": "micromole",
    }
    basis = basis or "per_animal"
    text = f"{value:g} {canonical} {basis}"
    value = float(value)
    if canonical == "mg_per_kg_diet":
        return Dose(value, "dietary_concentration", CANONICAL_UNITS["dietary_concentration"], "in_diet", text)
    quantity = {"ug": "protein", "mg": "protein", "ng": "protein", "mL": "conditioned_medium", "uL": "conditioned_medium"}
    quantity |= {"nmol": "substance_amount", "umol": "substance_amount"}
    if canonical not in quantity:
        return Dose(value, canonical, canonical, basis, text, False)
    kind = quantity[canonical]
    if kind == "protein" and mass_quantity == "drug_mass":
        kind = "drug_mass"
    factor = unit_factor(pint_units[canonical], _CANONICAL_PINT[kind])
    return Dose(value * factor, kind, CANONICAL_UNITS[kind], basis, text, factor != 1.0)


# --- species ---------------------------------------------------------------------------


@cache
def _species_rows() -> dict[str, dict[str, float]]:
    return {
        row["species"]: {"weight": float(row["reference_body_weight_kg"]), "km": float(row["km"])}
        for row in species_table()
    }


def species_factors(species: str) -> tuple[str, float, float]:
    """Canonical species name, reference body weight (kg) and FDA Km."""
    match = vocabulary("species").normalize(species)
    if match.canonical is None:
        raise InputError(f"unknown species {species!r}; valid species: {', '.join(_species_rows())}")
    row = _species_rows()[match.canonical]
    return match.canonical, row["weight"], row["km"]


# --- harmonization ---------------------------------------------------------------------


def _weakest(*labels: str) -> str:
    return max(labels, key=PROVENANCE_ORDER.index)


def harmonize_dose(
    dose: Dose | str,
    *,
    species: str,
    body_weight_kg: float | None = None,
    particles_per_ug: float | None = None,
    reference_weights: Mapping[str, float] | None = None,
    km: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Convert a dose to protein, particles and cell equivalents, per animal and per kg.

    Parameters
    ----------
    dose : Dose or str
        A parsed dose, or text for :func:`parse_dose`.
    species : str
        Recipient species (any spelling the species vocabulary accepts).
    body_weight_kg : float, optional
        Mean body weight reported by the study (kg); used in preference to the species'
        reference weight, which makes the conversion ``derived`` instead of ``imputed``.
    particles_per_ug : float, optional
        The preparation's own particle-to-protein ratio (particles per ug protein); the
        only way protein and particle doses are converted into each other.
    reference_weights, km : mapping, optional
        Per-analysis overrides of the reference body weight (kg) and Km by species.

    Returns
    -------
    dict
        ``ug_protein_per_kg``, ``particles_per_kg``, ``cell_equivalents_per_kg``,
        ``ug_protein_per_animal``, ``particles_per_animal``, ``cell_equivalents_per_animal``,
        ``hed_ug_protein_per_kg``, ``hed_particles_per_kg`` (NaN where not convertible);
        ``ml_conditioned_medium_per_animal`` and ``_per_kg``; ``provenance`` (key ->
        reported / scaled / derived / imputed / not_convertible); ``notes`` (reasons);
        ``body_weight_kg_used`` and ``km``. Notes include amounts outside the plausible
        range for the species (``evmeta/data/dose_plausibility.toml``), e.g. "implausible
        for a mouse: check µg vs mg".

    Raises
    ------
    DoseError
        When the text gives the dose per another species ('100 ug/mouse' in a rat
        experiment), or a conversion overflows.

    Notes
    -----
    Human-equivalent dose (FDA 2005): HED per kg = animal dose per kg x Km_animal / 37. Its
    provenance is at least ``derived`` (it applies a conversion factor), or that of the
    per-kg dose it comes from when weaker.

    Examples
    --------
    >>> out = harmonize_dose("100 ug", species="mouse")
    >>> round(out["ug_protein_per_kg"]), out["provenance"]["ug_protein_per_kg"]
    (5000, 'imputed')
    """
    if isinstance(dose, str):
        dose = parse_dose(dose)
    name, reference_weight, species_km = species_factors(species)
    if dose.species and name not in dose.species:
        raise DoseError(
            f"cannot use dose {dose.text!r} in a {name.replace('_', ' ')} experiment: the text gives it per "
            f"{' or '.join(n.replace('_', ' ') for n in dose.species)}; check the experiment's species or the dose"
        )
    if reference_weights and name in reference_weights:
        reference_weight = float(reference_weights[name])
    if km and name in km:
        species_km = float(km[name])
    weight_given = _positive(body_weight_kg)
    weight = float(body_weight_kg) if body_weight_kg is not None and weight_given else reference_weight
    ratio = float(particles_per_ug) if _positive(particles_per_ug) else None
    out, provenance = _convert(dose, weight, "derived" if weight_given else "imputed", ratio)
    notes = _conversion_notes(dose, ratio)
    if notes and not dose.is_ev_dose:
        return _not_an_ev_dose(out, provenance, notes, weight, species_km)
    if provenance["ug_protein_per_kg"] != "not_convertible" and dose.basis == "per_animal":
        notes.append(
            f"per-kg dose uses a body weight of {weight:g} kg ({'reported' if weight_given else 'reference'})"
        )
    _add_human_equivalent(out, provenance, species_km)
    if any(math.isinf(out[key]) for key in out):
        raise DoseError(f"cannot use dose {dose.text!r}: converting it overflows (check the exponent)")
    notes.extend(plausibility_notes(out, name))
    out["provenance"] = provenance
    out["notes"] = notes
    out["body_weight_kg_used"] = weight
    out["km"] = species_km
    return out


def _conversion_notes(dose: Dose, ratio: float | None) -> list[str]:
    """Why a dose is not (or only partly) converted: a drug dose, a per-organ dose, no ratio."""
    if dose.agent is not None:
        return [
            f"the dose text names {dose.agent}: it looks like the dose of the injury-model (or another) "
            "agent, not of the EVs; not used as an EV dose"
        ]
    if not dose.is_ev_dose:
        what = {"drug_mass": "a drug's mass", "substance_amount": "an amount of substance (mol)"}
        return [
            f"{what.get(dose.quantity, 'a concentration in the diet')} ({dose.value:g} {dose.unit}"
            f"{' per kg' if dose.basis == 'per_kg' else ''}), not an amount of EVs: not converted to EV protein or particles"
        ]
    if dose.basis == "per_organ":
        return [
            f"the dose is given per {dose.organ or 'organ'}: the dose per animal and per kg depend on how many were "
            "treated, so they are not computed (type dose_value with dose_basis per_animal if the paper says)"
        ]
    notes = []
    implied = implied_particles_per_ug(dose)
    if implied is not None and ratio is not None and ratios_differ(implied, ratio):
        notes.append(
            f"the dose text implies {implied:.3g} particles/ug protein but the preparation states "
            f"{ratio:.3g}: used the printed amounts"
        )
    has = {dose.quantity, *(a.quantity for a in dose.equivalents)}
    if ratio is None and implied is None and has & {"protein", "particles"}:
        notes.append("protein <-> particles needs the preparation's particles_per_ug_protein")
    if dose.quantity in {"cell_equivalents", "conditioned_medium"}:
        notes.append(f"{dose.quantity.replace('_', ' ')} cannot be converted to protein or particles")
    return notes


def _not_an_ev_dose(out, provenance, notes, weight, species_km) -> dict[str, Any]:
    for key in out:
        out[key], provenance[key] = math.nan, "not_convertible"
    for key in ("hed_ug_protein_per_kg", "hed_particles_per_kg"):
        out[key], provenance[key] = math.nan, "not_convertible"
    out.update(provenance=provenance, notes=notes, body_weight_kg_used=weight, km=species_km)
    return out


def _positive(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value) and value > 0


#: Quantity -> stem of its harmonized keys.
_STEMS = {
    "protein": "ug_protein",
    "particles": "particles",
    "cell_equivalents": "cell_equivalents",
    "conditioned_medium": "ml_conditioned_medium",
}


def _amount(dose: Dose, quantity: str, ratio: float | None) -> tuple[float, str]:
    """The dose as ``quantity`` (protein <-> particles only through the preparation's ratio)."""
    first_step = "scaled" if dose.scaled else "reported"
    if not dose.is_ev_dose:
        return math.nan, "not_convertible"
    if quantity == dose.quantity:
        return dose.value, first_step
    printed = [a.value for a in dose.equivalents if a.quantity == quantity]
    if printed:  # the same dose printed in this quantity too
        return printed[0], first_step
    if {quantity, dose.quantity} == {"protein", "particles"} and ratio is not None:
        value = dose.value * ratio if quantity == "particles" else dose.value / ratio
        return value, _weakest(first_step, "derived")
    return math.nan, "not_convertible"


def _convert(
    dose: Dose, weight: float, weight_label: str, ratio: float | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every quantity per animal and per kg (``weight`` in kg), with provenance labels."""
    out: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for quantity, stem in _STEMS.items():
        value, label = _amount(dose, quantity, ratio)
        for basis in ("per_animal", "per_kg"):
            key = f"{stem}_{basis}"
            if label == "not_convertible" or dose.basis == "per_organ":
                out[key], provenance[key] = math.nan, "not_convertible"
            elif basis == dose.basis:
                out[key], provenance[key] = value, label
            elif basis == "per_kg":
                out[key], provenance[key] = value / weight, _weakest(label, weight_label)
            else:
                out[key], provenance[key] = value * weight, _weakest(label, weight_label)
    return out, provenance


def _add_human_equivalent(out: dict[str, Any], provenance: dict[str, str], species_km: float) -> None:
    """HED per kg = animal dose per kg x Km_animal / 37 (FDA 2005), at least ``derived``."""
    for quantity_key, hed_key in [
        ("ug_protein_per_kg", "hed_ug_protein_per_kg"),
        ("particles_per_kg", "hed_particles_per_kg"),
    ]:
        if provenance[quantity_key] == "not_convertible":
            out[hed_key], provenance[hed_key] = math.nan, "not_convertible"
        else:
            out[hed_key] = out[quantity_key] * species_km / KM_HUMAN
            provenance[hed_key] = _weakest(provenance[quantity_key], "derived")


# --- purity and reliability ------------------------------------------------------------


def purity_class(particles_per_ug: float | None) -> str:
    """Purity class from particles per ug protein (Webber & Clayton 2013).

    ``high`` (>= 3e10), ``low`` (2e9 to 2e10), ``impure`` (< 1.5e9); values in the gaps of
    the published thresholds are ``borderline``; missing or non-positive is ``unknown``.
    """
    if particles_per_ug is None or not math.isfinite(particles_per_ug) or particles_per_ug <= 0:
        return "unknown"
    if particles_per_ug >= 3e10:
        return "high"
    if 2e9 <= particles_per_ug <= 2e10:
        return "low"
    if particles_per_ug < 1.5e9:
        return "impure"
    return "borderline"


def dose_reliability(quantity: str, purity: str, isolation_method: str | None) -> tuple[str, str]:
    """Flag particle doses that NTA over-counts: (``ok`` or ``low``, reason).

    NTA counts lipoproteins and protein aggregates as particles, so a particle dose of an
    impure preparation, or of one isolated by precipitation with no further step, says
    little about the EVs given.
    """
    if quantity != "particles":
        return "ok", ""
    if purity == "impure":
        return "low", "particle dose of an impure preparation (< 1.5e9 particles/ug)"
    if isolation_method == "precipitation":
        return "low", "particle dose of a precipitation-only preparation"
    return "ok", ""
