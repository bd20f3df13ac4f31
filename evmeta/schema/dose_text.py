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
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from evmeta.data import load_toml
from evmeta.errors import DoseError
from evmeta.schema.cells import parse_number
from evmeta.schema.dose_schedule import Schedule, read_schedule

__all__ = [
    "REASONS",
    "DoseReading",
    "DoseTextError",
    "Schedule",
    "normalize",
    "read_dose_text",
    "read_schedule",
]

#: Refusal reasons (``DoseTextError.reason``) and what each means.
REASONS = {
    "empty": "the cell is empty",
    "not_text": "the value is not text",
    "not_reported": "the paper does not report the dose",
    "range": "a range of doses",
    "several_doses": "several doses in one cell",
    "concentration_without_volume": "a concentration with no volume injected",
    "lost_exponent": "a power of ten whose exponent was lost",
    "volume_only": "a volume with no amount of EVs",
    "no_unit": "a number with no unit",
    "infusion": "a continuous infusion",
    "ambiguous_number": "a number whose comma is ambiguous",
    "no_amount": "no amount of EVs",
    "not_positive": "an amount that is zero or negative",
    "overflow": "a number too large to compute with",
    "unknown_unit": "a unit or denominator evmeta does not know",
}

_HINT = (
    "Expected one amount and a unit, e.g. '100 ug', '0.1 mg/kg', '1.5 x 10^9 particles/kg', "
    "'EVs from 2x10^6 cells', '30 ug/100 ul, i.v., every 2 weeks, four times'"
)


class DoseTextError(DoseError):
    """A printed dose that cannot be read; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, text: Any, reason: str, detail: str):
        self.text = text
        self.reason = reason
        self.detail = detail
        hint = f". {_HINT}" if reason in {"no_unit", "no_amount", "unknown_unit"} else ""
        super().__init__(f"cannot read dose {text!r}: {detail}{hint}")


@dataclass(frozen=True)
class DoseReading:
    """What a printed dose says, in the units it was printed in.

    Attributes
    ----------
    value : float
        Amount per administration, in ``unit`` (per kg of body weight when ``basis`` is
        ``per_kg``; a per-g dose is already multiplied by 1000).
    unit : str
        The unit word as printed and normalized (``ug``, ``mg``, ``ml``) or ``particle`` /
        ``cell_equivalent``.
    quantity : {"protein", "particles", "cell_equivalents", "conditioned_medium"}
    basis : {"per_animal", "per_kg"}
    per_g : bool
        True when the text said per g (the value was multiplied by 1000).
    n_doses, interval_days : int or float or None
        Schedule, when the text gives one.
    vehicle_volume_ul : float or None
        Volume the amount was given in (uL).
    species : tuple of str
        Canonical species the text names as the recipient (``/mouse``), empty if none.
    notes : tuple of str
        How the text was read where a reader might ask (lost superscripts, computed amounts).
    """

    value: float
    unit: str
    quantity: str
    basis: str
    per_g: bool = False
    n_doses: int | None = None
    interval_days: float | None = None
    vehicle_volume_ul: float | None = None
    species: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# --- normalization ----------------------------------------------------------------------

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_CHARS = str.maketrans(
    {
        "μ": "u",
        "µ": "u",
        "×": "x",
        "·": "x",
        "⋅": "x",
        "✕": "x",
        "−": "-",
        "–": "-",
        "—": "-",
        "‒": "-",
        "‐": "-",
        "\u2009": " ",
        "\u202f": " ",
        "\xa0": " ",
    }
)


def normalize(text: str) -> str:
    """Casefolded text with ``^`` exponents, ``u`` for mu, ``x`` for times and ASCII dashes."""
    out = re.sub(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+", lambda m: "^" + m.group(0).translate(_SUPERSCRIPTS), text)
    out = unicodedata.normalize("NFKC", out).translate(_CHARS).casefold()
    return re.sub(r"\s+", " ", out).strip()


@cache
def words() -> dict[str, Any]:
    """The unit and word tables of ``evmeta/data/dose_units.toml``."""
    return load_toml("dose_units.toml")


# --- number tokens ----------------------------------------------------------------------

_NUMBER = re.compile(
    r"""
    (?<![a-z0-9.^])(?<![a-z]-)
    (?:
        10\s*(?:\^|\*\*)\s*\(?\s*(?P<bare>[-+]?[0-9]{1,4})\s*\)?
      | (?P<mantissa>[0-9]+(?:,[0-9]+)*(?:\.[0-9]+)?|\.[0-9]+)
        (?:
            e(?P<e>[-+]?[0-9]{1,4})(?![0-9])
          | \s?(?:x|\*)\s?10
            (?:
                \s*(?:\^|\*\*)\s*\(?\s*(?P<p1>[-+]?[0-9]{1,4})\s*\)?
              | \s*\(\s*(?P<p2>[-+]?[0-9]{1,3})\s*\)
              | (?P<p3>[0-9]{1,2})(?![0-9.,])
              | \s(?P<p4>[0-9]{1,2})(?![0-9.,]|\s?(?:x|\*)\s?10)
              | (?P<lost>)(?![0-9])
            )
        )?
    )
    """,
    re.VERBOSE,
)
_PARTICLE_WORD = (
    r"[a-z0-9-]*(?:particles?|evs?|exosomes?|exos?|vesicles?|sevs?|mvs?|microvesicles?|nanovesicles?)"
)
_MASS = re.compile(r"\s?(ug|mcg|mg|ng|pg|g|micrograms?|milligrams?|nanograms?|grams?)\b")
_VOLUME = re.compile(r"\s?(ul|ml|l|microlit(?:er|re)s?|millilit(?:er|re)s?)\b")
_PARTICLES = re.compile(rf"\s?(?:of\s)?({_PARTICLE_WORD})\b")
_CELLS = re.compile(r"\s?(?:of\s)?(cells?|cell[- ]equivalents?|ce|[a-z-]*mscs?|msc[- ]equivalents?)\b")
_TIME = re.compile(r"\s?-?\s?(h|hrs?|hours?|d|days?|wks?|weeks?|months?|mo|min|minutes?|years?)\b")
_COUNT = re.compile(r"\s?(?:[a-z.-]+\s)?(times|doses|injections|administrations|treatments)\b")
_DESCRIPTOR = re.compile(rf"\s(?:of\s)?(?:exosomal\s|ev\s|total\s)?(?:proteins?|{_PARTICLE_WORD})\b")
_DENOMINATOR = re.compile(r"\s?(?:/|\bper\b|\beach\b)\s?(?P<num>[0-9]+(?:\.[0-9]+)?\s?)?(?P<word>[a-z]+)")
_BODY_WEIGHT = re.compile(r"\s?(?:of\s)?(?:body\s?weight|bw|b\.w\.?)")
_CM_WORDS = re.compile(r"\s(?:of\s)?(?:concentrated\s)?(?:conditioned\s(?:medium|media)|cm)\b")


@dataclass
class _Token:
    start: int
    end: int
    text: str
    value: float
    kind: str  # mass, volume, particles, cells, bare, time, count, percent
    unit: str = ""
    per_volume_ul: float | None = None  # concentration: amount per this many uL
    vehicle_ul: float | None = None  # '/100 uL'
    per_kg: float | None = None  # 1 for /kg, 1000 for /g
    species: tuple[str, ...] = ()
    interval_days: float | None = None  # '/day'
    lost_exponent: bool = False
    negative: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def is_amount(self) -> bool:
        return self.kind in {"mass", "particles", "cells", "cm"}


def _number_value(match: re.Match, original: str) -> tuple[float, list[str], bool]:
    """Value of a number match, notes on recovered superscripts, and whether an exponent was lost."""
    if match.group("bare") is not None:
        return _power(1.0, int(match.group("bare")), original), [], False
    mantissa_text = match.group("mantissa")
    try:
        mantissa = parse_number(mantissa_text)
    except ValueError as exc:
        raise DoseTextError(original, "ambiguous_number", f"{mantissa_text!r}: {exc}") from None
    notes: list[str] = []
    exponent = 0
    for group in ("e", "p1", "p2", "p3", "p4"):
        if match.group(group) is not None:
            exponent = int(match.group(group))
            if group in {"p3", "p4"}:
                printed = match.string[match.start(group) - (2 if group == "p3" else 3) : match.end(group)]
                notes.append(f"read {printed!r} as 10^{exponent}: the superscript was lost in copying")
            if group == "p3" and exponent < 2:
                raise DoseTextError(original, "no_unit", f"cannot tell the exponent in {match.group(0)!r}")
    return _power(mantissa, exponent, original), notes, match.group("lost") is not None


def _power(mantissa: float, exponent: int, original: str) -> float:
    try:
        value = mantissa * 10.0**exponent
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise DoseTextError(original, "overflow", "the number is too large to compute with")
    return value


def _unit(s: str, token: _Token) -> None:
    """Classify a token by the word after its number; moves ``token.end`` past it."""
    pos = token.end
    if s.startswith("%", pos) or s.startswith(" %", pos):
        token.kind = "percent"
        return
    for kind, pattern in (
        ("time", _TIME),
        ("count", _COUNT),
        ("mass", _MASS),
        ("volume", _VOLUME),
        ("particles", _PARTICLES),
        ("cells", _CELLS),
    ):
        match = pattern.match(s, pos)
        if match:
            token.kind, token.unit, token.end = kind, match.group(1), match.end()
            break
    if token.kind == "volume":
        cm = _CM_WORDS.match(s, token.end)
        if cm:
            token.kind, token.end = "cm", cm.end()
    elif token.kind == "mass":
        descriptor = _DESCRIPTOR.match(s, token.end)
        if descriptor:
            token.end = descriptor.end()
    if token.kind in {"mass", "particles", "cells", "cm", "bare"}:
        _denominators(s, token)


def _denominators(s: str, token: _Token) -> None:
    """Read ``/kg``, ``/dose``, ``/100 uL``, ``/mL`` and ``/day`` after an amount."""
    table = words()
    while True:
        match = _DENOMINATOR.match(s, token.end)
        if not match:
            return
        word, number = match.group("word"), match.group("num")
        end = match.end()
        if word in {"kg", "g", "gram"} and number is None:
            token.per_kg = 1.0 if word == "kg" else 1000.0
            body = _BODY_WEIGHT.match(s, end)
            end = body.end() if body else end
        elif word in table["volume_ul"]:
            volume = float(number) * table["volume_ul"][word] if number else table["volume_ul"][word]
            if number:
                token.vehicle_ul = volume
            else:
                token.per_volume_ul = volume
        elif word in table["time_days"] and number is None:
            token.interval_days = table["time_days"][word]
        elif word in table["animal_words"] and number is None:
            species = table["animal_words"][word]
            token.species = tuple(species.split("|")) if species else ()
        elif s[match.start() :].lstrip().startswith("/"):
            raise DoseTextError(token.text, "unknown_unit", f"'/{word}' is not a body mass, animal or volume")
        else:
            return  # "per" followed by other words is prose, not a denominator
        token.end = end


def _scan(s: str, original: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while True:
        match = _NUMBER.search(s, pos)
        if match is None:
            return tokens
        value, notes, lost = _number_value(match, original)
        token = _Token(match.start(), match.end(), original, value, "bare", lost_exponent=lost, notes=notes)
        before = s[: match.start()].rstrip()
        token.negative = before.endswith("-") and not re.search(r"[0-9a-z]\s?-$", before)
        _unit(s, token)
        tokens.append(token)
        pos = max(token.end, match.end(), pos + 1)


# --- refusals ---------------------------------------------------------------------------

_NOT_REPORTED = re.compile(
    r"^(?:nk|nr|n\.r\.?|n/a|na|n\.a\.?|not (?:reported|known|specified|stated|mentioned|given|available|applicable)"
    r"|unknown|unclear|none|-+|\?)$"
)
_NOT_REPORTED_WORDS = re.compile(r"\b(?:not (?:reported|specified|stated|mentioned|given)|nr|nk|n/a)\b")
_INFUSION = re.compile(
    r"\b(?:infus\w*|continuous(?:ly)?|osmotic|mini-?pumps?|pumps?)\b|\b(?:ul|ml)\s?/\s?(?:h|hr|hours?|min|d|day)\b"
)


def _span(s: str, token: _Token) -> str:
    return s[token.start : token.end].strip(" ,;")


def _check_lists(s: str, tokens: list[_Token], original: str) -> None:
    """Ranges ('5-10 ug') and lists ('8, 16, and 32 mg/kg', '0.1 or 1 mg') of amounts."""
    for left, right in itertools.pairwise(tokens):
        between = s[left.end : right.start]
        dose_like = right.is_amount or right.kind == "volume"
        if re.fullmatch(r"\s?(?:-|to|~)\s?", between) and dose_like and left.kind == "bare":
            raise DoseTextError(
                original,
                "range",
                f"it is a range ({_span(s, left)}-{_span(s, right)}); enter each dose as its own arm",
            )
    amounts = [t for t in tokens if t.is_amount]
    listed: list[_Token] = []
    group: list[_Token] = []
    for t, nxt in zip(tokens, [*tokens[1:], None], strict=False):
        group.append(t)
        joined = nxt is not None and re.fullmatch(r"\s?(?:,|;|or|and|, and|, or)\s?", s[t.end : nxt.start])
        if not joined:
            if len(group) > 1 and (group[-1].is_amount or group[-1].kind == "volume"):
                listed.extend(group)
            group = []
    distinct = {(t.kind, t.unit, t.value, t.per_kg) for t in amounts}
    if listed or len(distinct) > 1:
        shown = ", ".join(dict.fromkeys(_span(s, t) for t in [*listed, *amounts]))
        raise DoseTextError(
            original, "several_doses", f"it gives several doses ({shown}); enter each dose as its own arm"
        )


def _refuse_without_amount(s: str, tokens: list[_Token], original: str) -> None:
    volumes = [t for t in tokens if t.kind == "volume"]
    bare = [t for t in tokens if t.kind == "bare"]
    if any(t.lost_exponent for t in bare):
        raise DoseTextError(
            original, "lost_exponent", "the power of ten has lost its exponent; check the paper"
        )
    if bare:
        shown = _span(s, bare[0])
        raise DoseTextError(
            original, "no_unit", f"{shown!r} has no unit: say what it counts (ug protein, particles, cells)"
        )
    if volumes:
        raise DoseTextError(
            original, "volume_only", f"{_span(s, volumes[0])!r} is a volume with no amount of EVs in it"
        )
    if _NOT_REPORTED_WORDS.search(s):
        raise DoseTextError(original, "not_reported", "the dose is not reported")
    raise DoseTextError(original, "no_amount", "no amount of EVs found")


def _check_infusion(s: str, tokens: list[_Token], original: str) -> None:
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


def _named_count(s: str, tokens: list[_Token]) -> _Token | None:
    """'Extracellular vesicles, 100*106/kg': one unitless count after the word that says what it counts."""
    bare = [t for t in tokens if t.kind == "bare"]
    if len(bare) != 1 or bare[0].lost_exponent or bare[0].value < 1e5:
        return None
    if not re.search(rf"\b{_PARTICLE_WORD}\b", s[: bare[0].start]):
        return None
    token = bare[0]
    token.kind, token.unit = "particles", "particle"
    token.notes.append(f"read {_span(s, token)!r} as particles, named before the number")
    return token


def _choose_amount(s: str, tokens: list[_Token], original: str) -> _Token:
    amounts = [t for t in tokens if t.is_amount]
    if not amounts:
        named = _named_count(s, tokens)
        if named is None:
            _refuse_without_amount(s, tokens, original)
        amounts = [named]
    amount = amounts[0]
    if amount.lost_exponent:
        raise DoseTextError(
            original, "lost_exponent", f"{_span(s, amount)!r} has lost the exponent of its power of ten"
        )
    if amount.negative or amount.value <= 0:
        raise DoseTextError(original, "not_positive", "the amount must be a positive number")
    if amount.kind == "particles" and amount.value < 1e3:
        raise DoseTextError(
            original, "lost_exponent", f"{_span(s, amount)!r} is too few particles to be a dose"
        )
    if amount.kind == "cm" and re.search(r"\bfrom\s?$", s[: amount.start]):
        raise DoseTextError(
            original,
            "volume_only",
            "EVs from a volume of conditioned medium: the amount of EVs given is unknown",
        )
    return amount


def _volumes(tokens: list[_Token], amount: _Token) -> list[float]:
    separate = [t.value * words()["volume_ul"][t.unit] for t in tokens if t.kind == "volume"]
    return ([amount.vehicle_ul] if amount.vehicle_ul else []) + separate


def _amount_and_vehicle(s: str, tokens: list[_Token], amount: _Token, original: str):
    """Amount per administration (concentration x volume when needed) and the vehicle volume (uL)."""
    volumes = _volumes(tokens, amount)
    notes = list(amount.notes)
    value = amount.value
    if amount.per_volume_ul:
        shown = _span(s, amount)
        if len(volumes) != 1:
            raise DoseTextError(
                original,
                "concentration_without_volume",
                f"{shown!r} is a concentration and the volume given is "
                + ("not stated" if not volumes else "ambiguous (several volumes)"),
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


def _basis(s: str, amount: _Token) -> tuple[str, float, tuple[str, ...]]:
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


def read_dose_text(text: str) -> DoseReading:
    """Read one printed dose; raise :class:`DoseTextError` with the reason it cannot be read.

    Parameters
    ----------
    text : str
        The dose as printed, e.g. ``"30 μg/100 μl, i.v., every 2 weeks, four times"``.

    Returns
    -------
    DoseReading
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
        raise DoseTextError(text, "not_reported", "the paper does not report the dose")
    tokens = _scan(s, text)
    _check_infusion(s, tokens, text)
    _check_lists(s, tokens, text)
    amount = _choose_amount(s, tokens, text)
    value, vehicle, notes = _amount_and_vehicle(s, tokens, amount, text)
    basis, per_kg, species = _basis(s, amount)
    schedule = read_schedule(s, interval_days=amount.interval_days)
    return DoseReading(
        value=value * per_kg,
        unit=_UNIT.get(amount.kind, amount.unit),
        quantity=_QUANTITY[amount.kind],
        basis=basis,
        per_g=per_kg != 1.0,
        n_doses=schedule.n_doses,
        interval_days=schedule.interval_days,
        vehicle_volume_ul=vehicle,
        species=species,
        notes=tuple(notes) + schedule.notes,
    )
