"""Tokens of a printed dose: numbers (with lost superscripts), their units and denominators.

:func:`scan` turns a normalized dose text into :class:`Token` objects, one per number,
classified by the word after it (mass, volume, particles, cells, time, count, bare) and
carrying its denominators (``/kg``, ``/g``, ``/dose``, ``/mouse``, ``/100 uL``, ``/mL``,
``/day``). Numbers are read with :func:`evmeta.schema.cells.parse_number`, so a comma follows
the same rule as in every other cell ('1,500' is refused as ambiguous). Used by
:mod:`evmeta.schema.doses.text`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from evmeta.data import load_toml
from evmeta.errors import DoseTextError
from evmeta.schema.cells import parse_number

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
    "too_many_doses": "a schedule of more administrations than any experiment gives (over 1,000)",
    "unknown_unit": "a unit or denominator evmeta does not know",
    "bound": "a bound ('>100 ug', 'up to 50 ug'), not the dose given",
    "two_bases": "two bases ('5 ug/g/kg', '5 ug/kg/mouse', '10 ug/kg per eye')",
    "unit_chain": "a chain of denominators that makes no unit ('5 ug/ml/kg', '5 ug/day/day')",
}



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
    """Casefolded text with ``^`` exponents, ``u`` for mu, ``x`` for times and ASCII dashes.

    A dot between two unit words (``µg·kg⁻¹``) is a product of units, read as a space.
    """
    out = re.sub(r"(?<=[^\W\d_])\s?[·⋅]\s?(?=[^\W\d_])", " ", text)
    out = re.sub(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+", lambda m: "^" + m.group(0).translate(_SUPERSCRIPTS), out)
    out = unicodedata.normalize("NFKC", out).translate(_CHARS).casefold()
    return re.sub(r"\s+", " ", out).strip()


def spell_numbers(s: str) -> str:
    """Digits for spelled-out numbers before a power word: 'half a million' -> '0.5 million',
    'a million' / 'one million' -> '1 million', 'three billion' -> '3 billion'.

    ``s`` is a normalized text; the power words themselves are read by :func:`scan`.
    """
    table = words()
    powers = "|".join(table["large_number_words"])
    s = re.sub(rf"\bhalf\s(?:a\s|of\sa\s)?({powers})\b", r"0.5 \1", s)
    s = re.sub(rf"\bquarter\s(?:of\s)?(?:a\s)?({powers})\b", r"0.25 \1", s)
    spelled = "|".join(sorted(table["number_words"], key=len, reverse=True))
    return re.sub(
        rf"\b({spelled})\s({powers})\b",
        lambda m: f"{table['number_words'][m.group(1)]} {m.group(2)}",
        s,
    )


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
            \s?e\s?(?P<e>[-+]?[0-9]{1,4})(?![0-9])
          | \s(?P<mult>thousand|million|billion|trillion)\b
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
PARTICLE_WORD = (
    r"[a-z0-9-]*(?:particles?|evs?|exosomes?|exos?|vesicles?|sevs?|mvs?|microvesicles?|nanovesicles?)"
)
_MASS = re.compile(r"\s?(ug|mcg|mg|ng|pg|g|microg|micrograms?|milligrams?|nanograms?|grams?)\b")
_MOLES = re.compile(r"\s?(pmol|nmol|umol|mmol|mol|micromol(?:es?)?|nanomol(?:es?)?|millimol(?:es?)?)\b")
_VOLUME = re.compile(r"\s?(ul|ml|l|microlit(?:er|re)s?|millilit(?:er|re)s?)\b")
_PARTICLES = re.compile(rf"\s?(?:of\s)?({PARTICLE_WORD})\b")
_CELLS = re.compile(r"\s?(?:of\s)?(cells?|cell[- ]equivalents?|ce|[a-z-]*mscs?|msc[- ]equivalents?)\b")
_TIME = re.compile(r"\s?-?\s?(h|hrs?|hours?|d|days?|wks?|weeks?|months?|mo|min|minutes?|years?)\b")
_COUNT = re.compile(r"\s?(?:[a-z.-]+\s)?(times|doses|injections|administrations|treatments)\b")
_DESCRIPTOR = re.compile(rf"\s(?:of\s)?(?:exosomal\s|ev\s|total\s)?(?:proteins?|{PARTICLE_WORD})\b")
_DENOMINATOR = re.compile(r"\s?(?:/|\bper\b|\beach\b)\s?(?P<num>[0-9]+(?:\.[0-9]+)?\s?)?(?P<word>[a-z]+)")
_INVERSE = re.compile(r"\s?(?:x\s?)?(?P<word>kg|g|d|day)\s?\^?-1\b")  # SI style: 'ug kg^-1 d^-1'
_PER_KG_WORDS = {"kg": 1.0, "kilogram": 1.0, "kilograms": 1.0, "g": 1000.0, "gram": 1000.0}
#: A mass in grams at least this large is a body weight or a centrifugal force, not a dose.
BODY_WEIGHT_MIN_G = 5.0
_BODY_WEIGHT = re.compile(r"\s?(?:of\s)?(?:body\s?weight|bw|b\.w\.?)")
_PER_KG_OF = re.compile(r"\s?(?:/|\bper\b)\s?kg\b")  # '50 g/kg diet' is a diet, not a 50 g rat
_DIET = re.compile(
    r"\s?(?:of\s|in\s)?(?:the\s)?(?:"
    + "|".join(re.escape(w) for w in sorted(load_toml("dose_units.toml")["diet_words"]["words"], key=len, reverse=True))
    + r")\b"
)
_CM_WORDS = re.compile(r"\s(?:of\s)?(?:concentrated\s)?(?:conditioned\s(?:medium|media)|cm)\b")


#: A number such as '1.000' or '2.500.000': the point may group thousands, as a comma does.
_POINT_GROUPS = re.compile(r"[1-9][0-9]{0,2}(?:\.[0-9]{3})+")


@dataclass
class Token:
    start: int
    end: int
    text: str
    value: float
    kind: str  # mass, moles, molarity, volume, particles, cells, cm, bare, time, count, percent, weight
    unit: str = ""
    per_volume_ul: float | None = None  # concentration: amount per this many uL
    vehicle_ul: float | None = None  # '/100 uL'
    per_kg: float | None = None  # 1 for /kg, 1000 for /g
    species: tuple[str, ...] = ()
    interval_days: float | None = None  # '/day'
    organ: str | None = None  # '/kidney', 'per eye'
    diet_per_kg: float | None = None  # '600 mg/kg chow': 1 per kg of diet, 1000 per g
    lost_exponent: bool = False
    negative: bool = False
    ambiguous: str | None = None  # why the number itself cannot be read (a comma)
    mantissa: float = 1.0
    exponent: int = 0
    loose: float = math.nan
    notes: list[str] = field(default_factory=list)

    @property
    def is_amount(self) -> bool:
        return self.kind in {"mass", "moles", "particles", "cells", "cm"}


def _number(match: re.Match, original: str) -> Token:
    """A token for a number match: value, recovered superscripts, lost exponent, ambiguity."""
    token = Token(match.start(), match.end(), original, 1.0, "bare")
    if match.group("bare") is not None:
        token.exponent = int(match.group("bare"))
        token.value = _power(1.0, token.exponent, original)
        return token
    mantissa_text = match.group("mantissa")
    if _POINT_GROUPS.fullmatch(mantissa_text):  # '1.000': one, or a thousand with a point?
        token.ambiguous, token.value = (
            (
                f"{mantissa_text!r}: a point before three digits may be a thousands separator "
                "(1.000 = 1000?); type the number without separators (1000, or 1 for one)"
            ),
            math.nan,
        )
        token.loose = float(mantissa_text.replace(".", ""))
        return token
    try:
        token.mantissa = parse_number(mantissa_text)
    except ValueError as exc:
        token.ambiguous, token.value = f"{mantissa_text!r}: {exc}", math.nan
        token.loose = float(mantissa_text.replace(",", ""))  # only to recognise '100,000 g'
        return token
    notes: list[str] = []
    exponent = 0
    if match.group("mult") is not None:  # 'three million', '2.5 billion'
        exponent = int(words()["large_number_words"][match.group("mult")])
        notes.append(f"read {match.group(0).strip()!r} as {token.mantissa:g} x 10^{exponent}")
    for group in ("e", "p1", "p2", "p3", "p4"):
        if match.group(group) is not None:
            exponent = int(match.group(group))
            if group in {"p3", "p4"}:
                printed = match.string[match.start(group) - (2 if group == "p3" else 3) : match.end(group)]
                notes.append(f"read {printed!r} as 10^{exponent}: the superscript was lost in copying")
            if group == "p3" and exponent < 2:
                raise DoseTextError(original, "no_unit", f"cannot tell the exponent in {match.group(0)!r}")
    token.exponent, token.notes, token.lost_exponent = exponent, notes, match.group("lost") is not None
    token.value = _power(token.mantissa, exponent, original)
    return token


def _power(mantissa: float, exponent: int, original: str) -> float:
    try:
        value = mantissa * 10.0**exponent
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise DoseTextError(original, "overflow", "the number is too large to compute with")
    return value


def _unit(s: str, token: Token) -> None:
    """Classify a token by the word after its number; moves ``token.end`` past it."""
    pos = token.end
    if s.startswith("%", pos) or s.startswith(" %", pos):
        token.kind = "percent"
        return
    for kind, pattern in (
        ("time", _TIME),
        ("count", _COUNT),
        ("mass", _MASS),
        ("moles", _MOLES),
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
        grams = token.loose if token.ambiguous else token.value
        per_kg_diet = (m := _PER_KG_OF.match(s, token.end)) is not None and _DIET.match(s, m.end())
        if token.unit in {"g", "gram", "grams"} and grams >= BODY_WEIGHT_MIN_G and not per_kg_diet:
            token.kind = "weight"  # '250 g rats', '100,000 g'
            return
        descriptor = _DESCRIPTOR.match(s, token.end)
        if descriptor:
            token.end = descriptor.end()
    if token.kind in {"mass", "moles", "particles", "cells", "cm", "bare"}:
        _denominators(s, token)
    if token.kind == "moles" and token.per_volume_ul and not token.vehicle_ul:
        token.kind = "molarity"  # '0.1 mmol/l sodium citrate': a solution's strength, not a dose


def _denominators(s: str, token: Token) -> None:
    """Read ``/kg``, ``/dose``, ``/100 uL``, ``/mL``, ``/day``, ``/kidney`` and ``/kg chow``
    after an amount; refuse a chain of them that makes no unit ('5 ug/g/kg', '5 ug/ml/kg')."""
    table = words()
    seen: dict[str, str] = {}  # kind of denominator -> as printed
    while True:
        match = _DENOMINATOR.match(s, token.end) or _INVERSE.match(s, token.end)
        if not match:
            return
        word, number = match.group("word"), match.groupdict().get("num")
        end = match.end()
        if word in _PER_KG_WORDS and (number is None or float(number) > 0):  # '/kg', '/100 g body weight'
            diet = _DIET.match(s, end)
            if diet:  # '600 mg/kg chow': per kg of diet
                token.diet_per_kg = _PER_KG_WORDS[word] / (float(number) if number else 1.0)
                token.end = diet.end()
                continue
            _chain(s, token, seen, "body mass", end)
            token.per_kg = _PER_KG_WORDS[word] / (float(number) if number else 1.0)
            body = _BODY_WEIGHT.match(s, end)
            end = body.end() if body else end
        elif word in table["volume_ul"]:
            volume = float(number) * table["volume_ul"][word] if number else table["volume_ul"][word]
            if number:
                token.vehicle_ul = volume
            else:
                _chain(s, token, seen, "volume", end)
                token.per_volume_ul = volume
        elif word in table["time_days"] and number is None:
            _chain(s, token, seen, "time", end)
            token.interval_days = table["time_days"][word]
        elif word in table["organ_words"] and number is None:
            _chain(s, token, seen, "organ", end)
            token.organ = table["organ_words"][word]
        elif word in table["animal_words"] and number is None:
            if word not in table["administration_words"]["words"]:
                _chain(s, token, seen, "animal", end)
                species = table["animal_words"][word]
                token.species = tuple(species.split("|")) if species else ()
        elif token.kind != "bare" and s[match.start() :].lstrip().startswith("/"):
            raise DoseTextError(token.text, "unknown_unit", f"'/{word}' is not a body mass, animal or volume")
        else:
            return  # "per" followed by other words is prose, not a denominator
        token.end = end


#: Pairs of denominators that cannot both divide one amount, and the reason's name.
_CLASHES = {
    frozenset({"body mass"}): "two_bases",
    frozenset({"body mass", "animal"}): "two_bases",
    frozenset({"body mass", "organ"}): "two_bases",
    frozenset({"animal", "organ"}): "two_bases",
    frozenset({"organ"}): "two_bases",
    frozenset({"animal"}): "two_bases",
    frozenset({"volume"}): "unit_chain",
    frozenset({"volume", "body mass"}): "unit_chain",
    frozenset({"time"}): "unit_chain",
}


def _chain(s: str, token: Token, seen: dict[str, str], kind: str, end: int) -> None:
    """Refuse a denominator that cannot follow the ones already read ('ug/g/kg', 'ug/ml/kg')."""
    printed = s[token.start : end].strip()
    for other in seen:
        reason = _CLASHES.get(frozenset({kind, other}))
        if reason:
            what = {
                "two_bases": f"divides by {other} and by {kind}; a dose has one basis",
                "unit_chain": f"divides by {other} and by {kind}, which makes no dose unit",
            }[reason]
            if kind == other == "body mass":
                what = "divides by body mass twice; keep one"
            raise DoseTextError(token.text, reason, f"{printed!r} {what}")
    seen[kind] = printed


def scan(s: str, original: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while True:
        match = _NUMBER.search(s, pos)
        if match is None:
            return tokens
        token = _number(match, original)
        before = s[: match.start()].rstrip()
        token.negative = before.endswith("-") and not re.search(r"[0-9a-z]\s?-$", before)
        _unit(s, token)
        tokens.append(token)
        pos = max(token.end, match.end(), pos + 1)


def span(s: str, token: Token) -> str:
    """The printed text of a token (number, unit and denominators)."""
    return s[token.start : token.end].strip(" ,;")
