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
from typing import NoReturn

from evmeta.errors import InputError
from evmeta.schema.doses.agents import agent_tokens, agents
from evmeta.schema.doses.qualifiers import read_qualifiers
from evmeta.schema.doses.schedule import Schedule, read_schedule
from evmeta.schema.doses.tokens import (
    PARTICLE_WORD,
    REASONS,
    DoseTextError,
    Token,
    normalize,
    scan,
    span,
    spell_numbers,
    words,
)
from evmeta.schema.doses.value import Amount, Dose

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
    for i, left in enumerate(tokens):
        right = tokens[i + 1] if i + 1 < len(tokens) else None
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


def _check_lists(s: str, tokens: list[Token], original: str) -> Token | None:
    """Ranges ('5-10 ug') and lists ('8, 16, and 32 mg/kg', '0.1 or 1 mg') of amounts.

    Returns the second amount of one dose printed in two quantities ('2 x 10^10 particles
    (10 ug)'), else None.
    """
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
    if not listed and len(distinct) == 2 and _same_dose(s, amounts):
        return amounts[1]
    if listed or len(distinct) > 1:
        shown = ", ".join(dict.fromkeys(span(s, t) for t in [*listed, *amounts]))
        raise DoseTextError(
            original, "several_doses", f"it gives several doses ({shown}); enter each dose as its own arm"
        )
    return None


#: What may stand between one dose printed in two quantities: '100 ug/rat, approximately
#: 3.75x10^11 particles', '2 x 10^10 particles (10 ug)', '10 ug (equivalent to 1e9 EVs)'.
_SAME_DOSE = re.compile(
    r"\s?(?:[,;:(\[=]\s?)?(?:(?:i\.e\.,?|that is,?|which is|equivalent to|equal to|corresponding to|"
    r"containing|comprising|representing|approximately|approx\.?|about|around|roughly|nearly|circa|"
    r"an estimated|estimated|~|≈|∼)\s?)*"
)


def _same_dose(s: str, amounts: list[Token]) -> bool:
    """Two amounts of different quantities, the second a paraphrase of the first."""
    first, second = amounts
    kinds = {first.kind, second.kind}
    if first.kind == second.kind or not kinds <= {"mass", "particles", "cells"}:
        return False
    if None not in (first.per_kg, second.per_kg) and first.per_kg != second.per_kg:
        return False  # '10 ug/kg (1e9 particles/g)': two bases
    if (first.per_kg is None) != (second.per_kg is None) and (first.species or second.species):
        return False  # '10 ug/kg (1e9 particles/mouse)': per kg and per animal
    if first.per_volume_ul or second.per_volume_ul or (first.organ != second.organ and None not in (first.organ, second.organ)):
        return False
    return bool(_SAME_DOSE.fullmatch(s[first.end : second.start]))


def _refuse_without_amount(s: str, tokens: list[Token], original: str) -> NoReturn:
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
    if rate and concentration and concentration.per_volume_ul and duration:
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
_PER_WORD = re.compile(r"(?:/|\bper\s|\beach\s)\s?([a-z]+)\b")


def _basis(s: str, amount: Token, original: str) -> tuple[str, float, tuple[str, ...], str | None]:
    """Basis, factor to per kg, species and organ of the amount ('/kg', '/mouse', 'per kidney')."""
    if amount.diet_per_kg is not None:
        return "in_diet", amount.diet_per_kg, (), None
    per_kg = amount.per_kg
    if per_kg is None:
        match = _PER_KG.search(s)
        per_kg = (1.0 if match.group(1) == "kg" else 1000.0) if match else None
    species, organ = amount.species, amount.organ
    table = words()
    for match in _PER_WORD.finditer(s):
        word = match.group(1)
        if not species and table["animal_words"].get(word):
            species = tuple(table["animal_words"][word].split("|"))
        if organ is None and word in table["organ_words"]:
            organ = table["organ_words"][word]
    if organ is not None and per_kg:
        raise DoseTextError(
            original, "two_bases", f"the dose is given per kg and per {organ}; a dose has one basis"
        )
    if organ is not None:
        return "per_organ", 1.0, species, organ
    return ("per_kg" if per_kg else "per_animal"), (per_kg or 1.0), species, None


_QUANTITY = {
    "mass": "protein",
    "moles": "substance_amount",
    "particles": "particles",
    "cells": "cell_equivalents",
    "cm": "conditioned_medium",
}
_UNIT = {"particles": "particle", "cells": "cell_equivalent"}
#: ``mass_quantity`` values: what a mass with no agent named is an amount of.
MASS_QUANTITIES = ("protein", "drug_mass")


def _quantity(amount: Token, agent: str | None, mass_quantity: str) -> str:
    if amount.diet_per_kg is not None:
        return "dietary_concentration"
    if amount.kind == "mass" and (agent is not None or mass_quantity == "drug_mass"):
        return "drug_mass"
    return _QUANTITY[amount.kind]


def _mask(s: str, tokens: list[Token]) -> str:
    """``s`` with the spans of ``tokens`` blanked (same length), so that an agent's '/kg' or
    '/day' is not read as the EVs' basis or schedule."""
    for token in tokens:
        s = s[: token.start] + " " * (token.end - token.start) + s[token.end :]
    return s


def _set_aside(s: str, tokens: list[Token]) -> tuple[list[Token], str | None, list[str]]:
    """Tokens of the EV dose, the agent whose dose is read instead (if no EV amount is left),
    and notes on agent doses set aside."""
    named = agent_tokens(s, tokens)
    if not named:
        return tokens, None, []
    ev_tokens = [t for i, t in enumerate(tokens) if i not in named]
    if any(t.is_amount for t in ev_tokens):
        notes = [
            f"set aside {span(s, tokens[i])!r}: the dose of {name} ({agents()[name]}), not of the EVs"
            for i, name in named.items()
        ]
        return ev_tokens, None, notes
    name = next(iter(named.values()))
    note = (
        f"{name} is named with this dose: it looks like the dose of {name} ({agents()[name]}), "
        "not of the EVs; read as a drug dose"
    )
    return tokens, name, [note]


def _equivalent(s: str, tokens: list[Token], amount: Token, other: Token | None, per_kg: float):
    """The second quantity of one dose printed in two, on the first one's basis."""
    if other is None:
        return ()
    if other is amount:  # the first amount was set aside as an agent's
        return ()
    factor = other.per_kg if other.per_kg is not None else per_kg
    return (Amount(other.value * factor, _QUANTITY[other.kind], _UNIT.get(other.kind, other.unit)),)


def read_dose_text(text: str, *, mass_quantity: str = "protein") -> Dose:
    """Read one printed dose; raise :class:`DoseTextError` with the reason it cannot be read.

    Parameters
    ----------
    text : str
        The dose as printed, e.g. ``"30 μg/100 μl, i.v., every 2 weeks, four times"``.
    mass_quantity : {"protein", "drug_mass"}
        What a mass with no agent named is an amount of: EV protein (default) or a drug
        (the dose of a non-EV intervention, e.g. a positive-control arm's).

    Returns
    -------
    Dose
        In the unit as printed (``scaled`` when a per-g amount was multiplied to per kg).
        Amount per administration in the printed unit, basis, schedule, vehicle and notes;
        ``equivalents`` when one dose is printed in two quantities, ``qualifier`` for an
        approximate amount, ``organ`` for a per-organ dose, ``agent`` when the dose is a
        named agent's (``cisplatin (5 mg/kg)``), not the EVs'.

    Examples
    --------
    >>> r = read_dose_text("30 μg/100 μl, i.v., every 2 weeks, four times")
    >>> r.value, r.unit, r.n_doses, r.interval_days, r.vehicle_volume_ul
    (30.0, 'ug', 4, 14.0, 100.0)
    >>> r = read_dose_text("100 μg/rat, approximately 3.75x10^11 particles")
    >>> r.value, r.quantity, r.equivalents[0].value, r.equivalents[0].quantity
    (100.0, 'protein', 375000000000.0, 'particles')
    """
    if not isinstance(text, str):
        raise DoseTextError(text, "not_text", "expected text")
    if mass_quantity not in MASS_QUANTITIES:
        raise InputError(f"mass_quantity must be one of {MASS_QUANTITIES}, got {mass_quantity!r}")
    s = normalize(text)
    if not s.strip(" .,;:()[]"):
        raise DoseTextError(text, "empty", "it is empty")
    if _NOT_REPORTED.match(s.strip(" .;:()[]")):
        raise DoseTextError(text, "not_reported", "the dose is not reported")
    s = spell_numbers(s)
    tokens = _merge_mean_sd(s, scan(s, text))
    _check_infusion(s, tokens, text)
    all_tokens = tokens
    tokens, agent, notes = _set_aside(s, tokens)
    kept = {id(t) for t in tokens}
    ev_s = _mask(s, [t for t in all_tokens if id(t) not in kept]) if len(kept) < len(all_tokens) else s
    other = _check_lists(s, tokens, text)
    amount = _choose_amount(s, tokens, text)
    qualifier, qualifier_notes = read_qualifiers(s, tokens, amount, text)
    value, vehicle, amount_notes = _amount_and_vehicle(s, tokens, amount, text)
    if not value > 0:
        raise DoseTextError(text, "not_positive", "the amount must be a positive number")
    basis, per_kg, species, organ = _basis(ev_s, amount, text)
    schedule = read_schedule(ev_s, interval_days=amount.interval_days, text=text)
    return Dose(
        value=value * per_kg,
        unit=_UNIT.get(amount.kind, amount.unit),
        quantity=_quantity(amount, agent, mass_quantity),
        basis=basis,
        text=str(text),
        scaled=per_kg != 1.0,
        n_doses=schedule.n_doses,
        interval_days=schedule.interval_days,
        vehicle_volume_ul=vehicle,
        species=species,
        notes=tuple(amount_notes + notes + qualifier_notes) + schedule.notes,
        equivalents=_equivalent(s, tokens, amount, other, per_kg),
        organ=organ,
        qualifier=qualifier,
        agent=agent,
    )
