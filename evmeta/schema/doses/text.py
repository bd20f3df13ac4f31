"""The grammar of a dose as papers print it: amounts, units, basis, schedule and vehicle.

A dose cell is read as a sentence: every number is a token, classified by the word that
follows it (``ug``, ``particles``, ``cells``, ``uL``, ``days``, ``doses``) and by its
denominators (``/kg``, ``/dose``, ``/100 uL``, ``/mL``, ``/day``). Exactly one amount of EVs
must remain once vehicle volumes and schedule numbers are set aside; anything else is
refused with a :class:`DoseTextError` whose ``reason`` says what is missing:

====================================  =====================================================
reason                                printed, for example
====================================  =====================================================
``not_reported``                      ``NK``, ``NR``, ``not reported``, ``N/A``
``range``                             ``5–10 ug/500 uL``, ``2.3-4.7×107 cells``
``several_doses``                     ``8, 16, and 32 mg/kg``, ``50 ug, 100 ug, or 200 ug``
``concentration_without_volume``      ``1 ug/uL (volume not mentioned)``, ``10 ug/ml, IT``
``lost_exponent``                     ``1 x 10 exosome particles``
``volume_only``                       ``100 uL EVs``, ``EVs from 10 mL CM``
``no_unit``                           ``2 × 1010``
``infusion``                          ``2 mg/ml ... continuously at 0.25 uL/h for 14 days``
``ambiguous_number``                  ``1,500 ug`` (same rule as :func:`cells.parse_number`)
``no_amount``, ``not_positive``,      no number of EVs at all; zero or negative; a number
``overflow``, ``unknown_unit``        too large for a float; ``100 ug per well``
====================================  =====================================================

Lost superscripts are recovered where the printed form allows only one reading
(``5 × 1010`` -> 5e10, ``1x10 11`` -> 1e11, ``2 × 10(8)`` -> 2e8), with a note.

This module only reads text (no unit conversion); it lives in the schema layer so that
validation can fill ``arms.n_doses`` and ``arms.dose_interval_days`` from ``dose_text``.
:func:`evmeta.harmonize.doses.parse_dose` converts a reading to canonical units.
"""

from __future__ import annotations

import itertools
import re

from evmeta.schema.doses.schedule import Schedule, read_schedule
from evmeta.schema.doses.tokens import (
    PARTICLE_WORD,
    REASONS,
    DoseTextError,
    Token,
    normalize,
    scan,
    span,
    words,
)
from evmeta.schema.doses.value import Dose

__all__ = [
    "REASONS",
    "DoseTextError",
    "Schedule",
    "normalize",
    "read_dose_text",
    "read_schedule",
]


# --- refusals ---------------------------------------------------------------------------

_NOT_REPORTED = re.compile(
    r"^(?:nk|nr|n\.r\.?|n/a|na|n\.a\.?|nd|n\.d\.?|ng|n\.g\.?|unspecified|unknown|unclear|none|-+|\?"
    r"|not (?:reported|known|specified|stated|mentioned|given|available|applicable|described|determined|clear))$"
)
_NOT_REPORTED_WORDS = re.compile(
    r"\b(?:not (?:reported|specified|stated|mentioned|given|described)|nr|nk|n/a)\b"
)
_INFUSION = re.compile(
    r"\b(?:infus\w*|continuous(?:ly)?|osmotic|mini-?pumps?|pumps?)\b|\b(?:ul|ml)\s?/\s?(?:h|hr|hours?|min|d|day)\b"
)


def _merge_mean_sd(s: str, tokens: list[Token]) -> list[Token]:
    """'6.1 ± 2.1 × 10^7 cells' is a mean and SD sharing one unit and power: keep the mean."""
    merged: list[Token] = []
    skip = False
    for left, right in itertools.pairwise([*tokens, None]):
        if skip:
            skip = False
            continue
        if (
            right is not None
            and left.kind == "bare"
            and not left.exponent
            and (right.is_amount or right.kind == "volume")
            and re.fullmatch(r"\s?(?:\+/-|\+-|±)\s?", s[left.end : right.start])
        ):
            right.notes.append(f"read the mean of {s[left.start : right.end].strip()!r}")
            right.value, right.start = left.value * 10.0**right.exponent, left.start
            skip = True
            merged.append(right)
            continue
        merged.append(left)
    return merged


def _check_lists(s: str, tokens: list[Token], original: str) -> None:
    """Ranges ('5-10 ug') and lists ('8, 16, and 32 mg/kg', '0.1 or 1 mg') of amounts."""
    for left, right in itertools.pairwise(tokens):
        between = s[left.end : right.start]
        dose_like = right.is_amount or right.kind == "volume"
        ranged = re.fullmatch(r"\s?(?:-|to|~)\s?", between) or (
            re.fullmatch(r"\s?and\s?", between) and re.search(r"\bbetween\s?$", s[: left.start])
        )
        if ranged and dose_like and left.kind == "bare":
            raise DoseTextError(
                original,
                "range",
                f"it is a range ({span(s, left)}-{span(s, right)}); enter each dose as its own arm",
            )
    amounts = [t for t in tokens if t.is_amount]
    listed: list[Token] = []
    group: list[Token] = []
    for t, nxt in zip(tokens, [*tokens[1:], None], strict=False):
        group.append(t)
        joined = nxt is not None and re.fullmatch(r"\s?(?:,|;|or|and|, and|, or)\s?", s[t.end : nxt.start])
        if not joined:
            last = group[-1]
            alike = all(t.kind == "bare" or t.kind == last.kind for t in group)
            if len(group) > 1 and alike and (last.is_amount or last.kind == "volume"):
                listed.extend(group)
            group = []
    distinct = {(t.kind, t.unit, t.value, t.per_kg) for t in amounts}
    if listed or len(distinct) > 1:
        shown = ", ".join(dict.fromkeys(span(s, t) for t in [*listed, *amounts]))
        raise DoseTextError(
            original, "several_doses", f"it gives several doses ({shown}); enter each dose as its own arm"
        )


def _refuse_without_amount(s: str, tokens: list[Token], original: str) -> None:
    volumes = [t for t in tokens if t.kind == "volume"]
    bare = [t for t in tokens if t.kind == "bare"]
    if ambiguous := next((t.ambiguous for t in tokens if t.ambiguous), None):
        raise DoseTextError(original, "ambiguous_number", ambiguous)
    # Small plain integers are reference numbers, days or group sizes, not lost amounts.
    counts = [t for t in bare if t.exponent or t.value >= 1000 or not float(t.value).is_integer()]
    if any(t.lost_exponent for t in bare):
        raise DoseTextError(
            original, "lost_exponent", "the power of ten has lost its exponent; check the paper"
        )
    if _NOT_REPORTED_WORDS.search(s):
        raise DoseTextError(original, "not_reported", "the dose is not reported")
    if counts or (bare and not volumes):
        shown = span(s, (counts or bare)[0])
        raise DoseTextError(
            original, "no_unit", f"{shown!r} has no unit: say what it counts (ug protein, particles, cells)"
        )
    if volumes:
        raise DoseTextError(
            original, "volume_only", f"a volume only ({span(s, volumes[0])!r}), with no amount of EVs"
        )
    raise DoseTextError(original, "no_amount", "no amount of EVs found")


def _check_infusion(s: str, tokens: list[Token], original: str) -> None:
    if not _INFUSION.search(s):
        return
    detail = (
        "it is a continuous infusion; enter the total amount infused as one dose if the analysis treats it so"
    )
    rate = re.search(r"([0-9]+(?:\.[0-9]+)?)\s?(ul|ml)\s?/\s?(h|hr|hours?|min|d|day)\b", s)
    concentration = next((t for t in tokens if t.kind == "mass" and t.per_volume_ul), None)
    duration = read_schedule(s).duration_days
    if rate and concentration and duration:
        per_day = {"min": 1440.0}.get(rate.group(3), None) or 1.0 / words()["time_days"][rate.group(3)]
        ul_per_day = float(rate.group(1)) * words()["volume_ul"][rate.group(2)] * per_day
        total = concentration.value / concentration.per_volume_ul * ul_per_day * duration
        detail += f" (at the printed rate: {total:g} {concentration.unit} in total)"
    raise DoseTextError(original, "infusion", detail)


def _named_count(s: str, tokens: list[Token]) -> Token | None:
    """'Extracellular vesicles, 100*106/kg': one unitless count after the word that says what it counts."""
    bare = [t for t in tokens if t.kind == "bare"]
    if len(bare) != 1 or bare[0].lost_exponent or bare[0].value < 1e5:
        return None
    if not re.search(rf"\b{PARTICLE_WORD}\b", s[: bare[0].start]):
        return None
    token = bare[0]
    token.kind, token.unit = "particles", "particle"
    token.notes.append(f"read {span(s, token)!r} as particles, named before the number")
    return token


def _choose_amount(s: str, tokens: list[Token], original: str) -> Token:
    amounts = [t for t in tokens if t.is_amount]
    if not amounts:
        named = _named_count(s, tokens)
        if named is None:
            _refuse_without_amount(s, tokens, original)
        amounts = [named]
    amount = amounts[0]
    if amount.ambiguous:
        raise DoseTextError(original, "ambiguous_number", amount.ambiguous)
    if amount.lost_exponent:
        raise DoseTextError(
            original, "lost_exponent", f"{span(s, amount)!r} has lost the exponent of its power of ten"
        )
    if amount.negative or amount.value <= 0:
        raise DoseTextError(original, "not_positive", "the amount must be a positive number")
    if amount.kind == "particles" and amount.value < 1e3:
        raise DoseTextError(
            original, "lost_exponent", f"{span(s, amount)!r} is too few particles to be a dose"
        )
    if amount.kind == "cm" and re.search(r"\bfrom\s?$", s[: amount.start]):
        raise DoseTextError(
            original,
            "volume_only",
            "EVs from a volume of conditioned medium: the amount of EVs given is unknown",
        )
    return amount


def _volumes(tokens: list[Token], amount: Token) -> list[float]:
    separate = [t.value * words()["volume_ul"][t.unit] for t in tokens if t.kind == "volume"]
    return ([amount.vehicle_ul] if amount.vehicle_ul else []) + separate


def _amount_and_vehicle(s: str, tokens: list[Token], amount: Token, original: str):
    """Amount per administration (concentration x volume when needed) and the vehicle volume (uL)."""
    volumes = _volumes(tokens, amount)
    notes = list(amount.notes)
    value = amount.value
    if amount.per_volume_ul:
        shown = span(s, amount)
        if len(volumes) != 1:
            raise DoseTextError(
                original,
                "concentration_without_volume",
                f"a concentration ({shown!r}) with "
                + (
                    "no volume: the volume given is not stated"
                    if not volumes
                    else "several volumes: which one?"
                ),
            )
        value = amount.value * volumes[0] / amount.per_volume_ul
        notes.append(f"amount = {shown} x {volumes[0]:g} uL = {value:g} {amount.unit}")
    if amount.kind == "cm":
        return value, None, notes
    if len(volumes) > 1:
        notes.append(f"several volumes ({', '.join(f'{v:g} uL' for v in volumes)}): vehicle volume not set")
        return value, None, notes
    return value, (volumes[0] if volumes else None), notes


_PER_KG = re.compile(r"(?:/|\bper\s)\s?(kg|g)\b")
#: A comparison before an amount: the text gives a bound, not the dose.
_BOUND = re.compile(
    r"(?:[<>≤≥]=?|=<|=>|\b(?:up to|at least|at most|more than|less than|greater than|fewer than|"
    r"maximum of|minimum of))\s?(?=[0-9.])"
)


def _check_bound(s: str, original: str) -> None:
    match = _BOUND.search(s)
    if match:
        raise DoseTextError(
            original,
            "bound",
            f"{match.group(0).strip()!r} gives a bound, not the dose given; type the dose itself "
            "(or leave the cell empty with a note)",
        )


_PER_WORD = re.compile(r"(?:/|\bper\s|\beach\s)\s?([a-z]+)\b")


def _basis(s: str, amount: Token) -> tuple[str, float, tuple[str, ...]]:
    per_kg = amount.per_kg
    if per_kg is None:
        match = _PER_KG.search(s)
        per_kg = (1.0 if match.group(1) == "kg" else 1000.0) if match else None
    species = amount.species
    if not species:
        animal_words = words()["animal_words"]
        for match in _PER_WORD.finditer(s):
            named = animal_words.get(match.group(1))
            if named:
                species = tuple(named.split("|"))
                break
    return ("per_kg" if per_kg else "per_animal"), (per_kg or 1.0), species


_QUANTITY = {
    "mass": "protein",
    "particles": "particles",
    "cells": "cell_equivalents",
    "cm": "conditioned_medium",
}
_UNIT = {"particles": "particle", "cells": "cell_equivalent"}


def read_dose_text(text: str) -> Dose:
    """Read one printed dose; raise :class:`DoseTextError` with the reason it cannot be read.

    Parameters
    ----------
    text : str
        The dose as printed, e.g. ``"30 μg/100 μl, i.v., every 2 weeks, four times"``.

    Returns
    -------
    Dose
        In the unit as printed (``scaled`` when a per-g amount was multiplied to per kg).
        Amount per administration in the printed unit, basis, schedule, vehicle and notes.

    Examples
    --------
    >>> r = read_dose_text("30 μg/100 μl, i.v., every 2 weeks, four times")
    >>> r.value, r.unit, r.n_doses, r.interval_days, r.vehicle_volume_ul
    (30.0, 'ug', 4, 14.0, 100.0)
    """
    if not isinstance(text, str):
        raise DoseTextError(text, "not_text", "expected text")
    s = normalize(text)
    if not s.strip(" .,;:()[]"):
        raise DoseTextError(text, "empty", "it is empty")
    if _NOT_REPORTED.match(s.strip(" .;:()[]")):
        raise DoseTextError(text, "not_reported", "the dose is not reported")
    _check_bound(s, text)
    tokens = _merge_mean_sd(s, scan(s, text))
    _check_infusion(s, tokens, text)
    _check_lists(s, tokens, text)
    amount = _choose_amount(s, tokens, text)
    value, vehicle, notes = _amount_and_vehicle(s, tokens, amount, text)
    if not value > 0:
        raise DoseTextError(text, "not_positive", "the amount must be a positive number")
    basis, per_kg, species = _basis(s, amount)
    schedule = read_schedule(s, interval_days=amount.interval_days, text=text)
    return Dose(
        value=value * per_kg,
        unit=_UNIT.get(amount.kind, amount.unit),
        quantity=_QUANTITY[amount.kind],
        basis=basis,
        text=str(text),
        scaled=per_kg != 1.0,
        n_doses=schedule.n_doses,
        interval_days=schedule.interval_days,
        vehicle_volume_ul=vehicle,
        species=species,
        notes=tuple(notes) + schedule.notes,
    )
