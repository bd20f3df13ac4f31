"""Dose strings to canonical units: per animal and per kg, protein and particles, HED.

Papers print MSC-EV doses as protein mass ("100 µg EVs", "0.1 mg/kg"), particle counts
("1.5×10⁹ particles/kg", "2E10 exosomes"), cell equivalents ("EVs from 2×10^6 cells") or
conditioned-medium volume ("200 uL conditioned medium"), per animal or per body mass.
:func:`parse_dose` reads them into a :class:`Dose`; :func:`harmonize_dose` converts a dose
to every basis the study's own numbers (or reference values) allow, saying for each how it
was obtained (``reported``, ``scaled``, ``derived``, ``imputed`` or ``not_convertible``;
see ``shared/domain/doses_and_species.md``).

Unit spellings and quantity words are data (``evmeta/data/dose_units.toml``); unit factors
come from pint, with ``particle`` and ``cell_equivalent`` defined as units of their own.

References
----------
FDA (2005). Guidance for Industry: Estimating the Maximum Safe Starting Dose in Initial
Clinical Trials for Therapeutics in Adult Healthy Volunteers, Table 1.
Webber J, Clayton A (2013). How pure are your vesicles? J Extracell Vesicles 2:19861.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from evmeta.data import load_toml
from evmeta.errors import DoseError, InputError
from evmeta.schema.vocabulary import species_table, vocabulary

#: Canonical unit of each quantity.
CANONICAL_UNITS = {
    "protein": "ug",
    "particles": "particles",
    "cell_equivalents": "cell_equivalents",
    "conditioned_medium": "mL",
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


@dataclass(frozen=True)
class Dose:
    """A dose as reported, in its canonical unit.

    Attributes
    ----------
    value : float
        Amount per administration, in ``unit``.
    quantity : {"protein", "particles", "cell_equivalents", "conditioned_medium"}
    unit : {"ug", "particles", "cell_equivalents", "mL"}
        Canonical unit of the quantity.
    basis : {"per_animal", "per_kg"}
    text : str
        What was read.
    scaled : bool
        True when reading it changed the unit prefix (mg -> ug) or the body-mass basis
        (per g -> per kg).
    """

    value: float
    quantity: str
    unit: str
    basis: str
    text: str = ""
    scaled: bool = False


# --- unit factors (pint) ----------------------------------------------------------------


@cache
def _registry():
    import pint

    registry = pint.UnitRegistry()
    registry.define("particle = [particle_count]")
    registry.define("cell_equivalent = [cell_count]")
    return registry


@cache
def unit_factor(unit: str, canonical: str) -> float:
    """Factor converting one ``unit`` into ``canonical`` (pint unit names)."""
    registry = _registry()
    return float(registry.Quantity(1.0, unit).to(canonical).magnitude)


_CANONICAL_PINT = {"protein": "microgram", "conditioned_medium": "milliliter"}


# --- text normalization -----------------------------------------------------------------

_SUPERSCRIPT = {
    "⁰": "0",
    "¹": "1",
    "²": "2",
    "³": "3",
    "⁴": "4",
    "⁵": "5",
    "⁶": "6",
    "⁷": "7",
    "⁸": "8",
    "⁹": "9",
    "⁻": "-",
    "⁺": "+",
}


def _normalize(text: str) -> str:
    # Superscript exponents first ("10⁹" must not become "109" under NFKC).
    out = re.sub(r"([⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)", lambda m: "^" + "".join(_SUPERSCRIPT[c] for c in m.group(1)), text)
    out = unicodedata.normalize("NFKC", out)
    out = out.replace("μ", "u").replace("µ", "u").replace("×", "x").replace("·", "x").replace("−", "-")
    out = out.casefold()
    out = re.sub(r"(?<=\d),(?=\d{3}\b)", "", out)  # thousands separators: 1,000,000
    return re.sub(r"\s+", " ", out).strip()


_NUMBER = re.compile(
    r"""
    (?:
        10\s*(?:\^|\*\*)\s*\(?\s*(?P<bare>[-+]?\d+)\s*\)?
      | (?P<mantissa>\d+(?:\.\d*)?|\.\d+)
        (?:\s*e\s*(?P<e>[-+]?\d+))?
        (?:\s*(?:x|\*)\s*10\s*(?:\^|\*\*)?\s*\(?\s*(?P<power>[-+]?\d+)\s*\)?)?
    )
    """,
    re.VERBOSE,
)
_RANGE = re.compile(r"\d\s*(?:-|–|\bto\b)\s*\d")
_CELLS_FROM = re.compile(
    r"^(?:msc-?)?(?:evs?|exosomes?|vesicles?|sevs|extracellular vesicles)\s+"
    r"(?:(?:derived|secreted|released|isolated|collected|produced)\s+)?(?:from|by|of)\s+(?P<rest>.+)$"
)
_PER_MASS = re.compile(r"(?:/|\bper\s+)(?P<unit>kg|g)\b(?:\s*(?:of\s+)?(?:body\s*weight|bw|b\.w\.))?")
_PER_ANIMAL = re.compile(r"(?:/|\bper\s+|\beach\s+)(?P<word>[a-z]+)\b")


def _read_number(text: str) -> tuple[float, str]:
    match = _NUMBER.match(text)
    if not match or not match.group(0).strip():
        raise ValueError("no number")
    # Build "<mantissa>e<exponent>" so huge exponents give inf (refused later), not OverflowError.
    if match.group("bare") is not None:
        mantissa, exponent = "1", int(match.group("bare"))
    else:
        mantissa = match.group("mantissa")
        exponent = int(match.group("e") or 0) + int(match.group("power") or 0)
    return float(f"{mantissa}e{exponent}"), text[match.end() :].strip()


@cache
def _words() -> dict[str, Any]:
    return load_toml("dose_units.toml")


def _quantity_of(phrase: str) -> str | None:
    phrase = phrase.strip(" .,;:()")
    phrase = re.sub(r"^(?:of|total)\s+", "", phrase)
    for quantity, words in _words()["quantity_words"].items():
        if phrase in words:
            return quantity
    return None


def _fail(text: str, why: str) -> DoseError:
    return DoseError(
        f"cannot read dose {text!r}: {why}. Expected an amount and a unit, e.g. '100 ug', '0.1 mg/kg', "
        "'1.5 x 10^9 particles/kg', '2E10 EVs', 'EVs from 2x10^6 cells', '200 uL conditioned medium'"
    )


def parse_dose(text: str) -> Dose:
    """Read a dose as printed in a paper.

    Parameters
    ----------
    text : str
        E.g. ``"100 µg EVs"``, ``"0.1 mg/kg"``, ``"50 ug/g"`` (read as per kg),
        ``"1.5 x 10^9 particles/kg"``, ``"1.5×10⁹ EVs"``, ``"7.5e8 vesicles per rat"``,
        ``"EVs from 2×10^6 cells"``, ``"200 uL conditioned medium"``. Without a per-mass
        denominator the dose is per animal.

    Returns
    -------
    Dose

    Raises
    ------
    DoseError
        Quoting the text and saying what was expected.

    Examples
    --------
    >>> parse_dose("0.1 mg/kg")
    Dose(value=100.0, quantity='protein', unit='ug', basis='per_kg', text='0.1 mg/kg', scaled=True)
    """
    if not isinstance(text, str):
        raise DoseError(f"cannot read dose {text!r}: expected text")
    original = text
    s = _normalize(text)
    if not s:
        raise _fail(original, "it is empty")
    if _RANGE.search(re.sub(r"(e|\^|\()\s*[-+]", r"\1", s)):
        raise _fail(original, "it is a range; enter each dose as its own arm")
    basis, factor_to_kg = "per_animal", 1.0
    per_mass = _PER_MASS.search(s)
    if per_mass:
        basis = "per_kg"
        factor_to_kg = _words()["per_kg_words"][per_mass.group("unit")]
        s = (s[: per_mass.start()] + " " + s[per_mass.end() :]).strip()
    else:
        per_animal = _PER_ANIMAL.search(s)
        if per_animal and per_animal.group("word") in _words()["per_animal_words"]["words"]:
            s = (s[: per_animal.start()] + " " + s[per_animal.end() :]).strip()
        elif per_animal:
            raise _fail(original, f"'per {per_animal.group('word')}' is not a body mass or an animal")
    s = re.sub(r"\s+", " ", s).strip(" ,;")
    cells_from = _CELLS_FROM.match(s)
    if cells_from:
        try:
            value, rest = _read_number(cells_from.group("rest"))
        except ValueError:
            raise _fail(original, "no number of cells after 'from'") from None
        if not math.isfinite(value) or value <= 0:
            raise _fail(original, "the number of cells must be a positive number")
        rest = re.sub(
            r"\b(?:in|over|during|per|after)\s+\d+(?:\.\d+)?\s*(?:h|hours?|d|days?)\b.*$", "", rest
        ).strip()
        if _quantity_of(rest) != "cell_equivalents":
            raise _fail(original, f"expected cells after the number, got {rest!r}")
        return _finish(value * factor_to_kg, "cell_equivalents", basis, original, factor_to_kg != 1.0)
    try:
        value, rest = _read_number(s)
    except ValueError:
        raise _fail(original, "no number found") from None
    if not math.isfinite(value) or value <= 0:
        raise _fail(original, "the amount must be a positive number")
    words = _words()
    tokens = rest.split(" ", 1)
    unit_word = tokens[0].strip(" .,;()") if tokens else ""
    after = tokens[1] if len(tokens) > 1 else ""
    if unit_word in words["mass_units"]:
        if (
            after
            and _quantity_of(after) not in {"protein", "particles"}
            and not after.startswith(("exosomal", "ev "))
        ):
            raise _fail(original, f"unexpected words after the mass unit: {after!r}")
        factor = unit_factor(words["mass_units"][unit_word], "microgram")
        scaled = factor != 1.0 or factor_to_kg != 1.0
        return _finish(value * factor * factor_to_kg, "protein", basis, original, scaled)
    if unit_word in words["volume_units"]:
        if _quantity_of(after) != "conditioned_medium":
            raise _fail(
                original, "a volume is only a dose as conditioned medium ('200 uL conditioned medium')"
            )
        factor = unit_factor(words["volume_units"][unit_word], "milliliter")
        scaled = factor != 1.0 or factor_to_kg != 1.0
        return _finish(value * factor * factor_to_kg, "conditioned_medium", basis, original, scaled)
    quantity = _quantity_of(rest)
    if quantity in {"particles", "cell_equivalents"}:
        return _finish(value * factor_to_kg, quantity, basis, original, factor_to_kg != 1.0)
    if not rest:
        raise _fail(original, "there is no unit after the number")
    raise _fail(original, f"unknown unit {rest!r}")


def _finish(value: float, quantity: str, basis: str, text: str, scaled: bool) -> Dose:
    return Dose(float(value), quantity, CANONICAL_UNITS[quantity], basis, text, scaled)


def dose_from_columns(value: float, unit: str, basis: str | None) -> Dose:
    """Build a Dose from the ``arms`` sheet's ``dose_value``, ``dose_unit``, ``dose_basis``.

    ``unit`` is a canonical value of the ``dose_unit`` vocabulary (ug, mg, ng, particles,
    cell_equivalents, mL, uL).
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
    }
    basis = basis or "per_animal"
    text = f"{value:g} {canonical} {basis}"
    if canonical in {"ug", "mg", "ng"}:
        factor = unit_factor(pint_units[canonical], "microgram")
        return Dose(float(value) * factor, "protein", "ug", basis, text, factor != 1.0)
    if canonical in {"mL", "uL"}:
        factor = unit_factor(pint_units[canonical], "milliliter")
        return Dose(float(value) * factor, "conditioned_medium", "mL", basis, text, factor != 1.0)
    return Dose(float(value), canonical, canonical, basis, text, False)


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
        ``body_weight_kg_used`` and ``km``.

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
    if reference_weights and name in reference_weights:
        reference_weight = float(reference_weights[name])
    if km and name in km:
        species_km = float(km[name])
    weight_given = body_weight_kg is not None and math.isfinite(body_weight_kg) and body_weight_kg > 0
    weight = float(body_weight_kg) if weight_given else reference_weight
    weight_label = "derived" if weight_given else "imputed"
    ratio_given = particles_per_ug is not None and math.isfinite(particles_per_ug) and particles_per_ug > 0
    first_step = "scaled" if dose.scaled else "reported"
    out: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    notes: list[str] = []

    def amount(quantity: str) -> tuple[float, str]:
        if quantity == dose.quantity:
            return dose.value, first_step
        pair = {quantity, dose.quantity}
        if pair == {"protein", "particles"}:
            if not ratio_given:
                return math.nan, "not_convertible"
            value = (
                dose.value * particles_per_ug if quantity == "particles" else dose.value / particles_per_ug
            )
            return value, _weakest(first_step, "derived")
        return math.nan, "not_convertible"

    for quantity, stem in [
        ("protein", "ug_protein"),
        ("particles", "particles"),
        ("cell_equivalents", "cell_equivalents"),
        ("conditioned_medium", "ml_conditioned_medium"),
    ]:
        value, label = amount(quantity)
        for basis in ("per_animal", "per_kg"):
            key = f"{stem}_{basis}"
            if label == "not_convertible":
                out[key], provenance[key] = math.nan, "not_convertible"
                continue
            if basis == dose.basis:
                out[key], provenance[key] = value, label
            elif basis == "per_kg":
                out[key], provenance[key] = value / weight, _weakest(label, weight_label)
            else:
                out[key], provenance[key] = value * weight, _weakest(label, weight_label)
    if not ratio_given and {dose.quantity} & {"protein", "particles"}:
        notes.append("protein <-> particles needs the preparation's particles_per_ug_protein")
    if dose.quantity in {"cell_equivalents", "conditioned_medium"}:
        notes.append(f"{dose.quantity.replace('_', ' ')} cannot be converted to protein or particles")
    if provenance["ug_protein_per_kg"] != "not_convertible" and dose.basis == "per_animal":
        notes.append(
            f"per-kg dose uses a body weight of {weight:g} kg ({'reported' if weight_given else 'reference'})"
        )
    for quantity_key, hed_key in [
        ("ug_protein_per_kg", "hed_ug_protein_per_kg"),
        ("particles_per_kg", "hed_particles_per_kg"),
    ]:
        if provenance[quantity_key] == "not_convertible":
            out[hed_key], provenance[hed_key] = math.nan, "not_convertible"
        else:
            out[hed_key] = out[quantity_key] * species_km / KM_HUMAN
            provenance[hed_key] = _weakest(provenance[quantity_key], "derived")
    out["provenance"] = provenance
    out["notes"] = notes
    out["body_weight_kg_used"] = weight
    out["km"] = species_km
    return out


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
