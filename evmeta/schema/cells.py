"""Coerce one raw cell to the Python value its column expects.

Each function returns ``(value, problem_message, note_message)``; at most one of the two
messages is set. Numbers are read as people print them ("25,600,000,000.00", "9.08E+11",
"1.5 x 10^9", "−2.1" with a Unicode minus); ambiguous forms are refused rather than
guessed ("1,500" could be 1500 or 1.5).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any

from evmeta.errors import NonFiniteNumber
from evmeta.schema.columns import Column
from evmeta.schema.vocabulary import parse_isolation_method, vocabulary
from evmeta.sheets.reader import Cell

#: Cell texts that mean "not reported" and are read as an empty cell.
MISSING_TOKENS = frozenset(
    {"na", "n/a", "n.a.", "nan", "nr", "n.r.", "not reported", "-", "--", "—", "–", ".", "none", "null"}
)

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_MINUS = str.maketrans({"−": "-", "–": "-", "‒": "-", "\u2009": "", "\u202f": "", "\xa0": ""})
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3}){2,}(\.\d+)?$|^[-+]?\d{1,3}(,\d{3})+\.\d+$")
_AMBIGUOUS_COMMA = re.compile(r"^[-+]?\d+,\d+$")
_POINT_GROUPS = re.compile(r"^[-+]?\d{1,3}(\.\d{3})+(,\d+)?$")
_SPACE_GROUPS = re.compile(r"^[-+]?\d{1,3}( \d{3})+(,\d+)?$")
_POWER_OF_TEN = re.compile(
    r"^([-+]?\d*\.?\d+)\s*(?:[x×*]|\\times)\s*10\s*(?:\^|\*\*)?\s*\(?\s*([-+]?\d+)\s*\)?$", re.IGNORECASE
)

Result = tuple[Any, str | None, str | None]


def show(value: Any) -> str:
    """A value as a message shows it (``-2.1``, ``0``, ``'abc'``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return str(value)
    return repr(value)


def _from_decimal_comma(text: str) -> str:
    """``8,4`` -> ``8.4``, ``1.234,5`` -> ``1234.5``, ``1 234,5`` -> ``1234.5``.

    Without a comma the text is returned for the usual rules, except a point followed by
    one group of three digits (``1.500``: 1500 or 1.5?), which is refused as ambiguous.
    """
    if _POINT_GROUPS.match(text) and not re.match(r"^[-+]?0\.", text):  # 0.215 has no thousands
        if "," not in text and text.count(".") == 1:
            raise ValueError(
                "a point here is ambiguous in a file whose decimal separator is a comma (1500 or 1.5?); "
                "type the number with a decimal comma and no thousands separators"
            )
        return text.replace(".", "").replace(",", ".")
    if _SPACE_GROUPS.match(text):
        return text.replace(" ", "").replace(",", ".")
    if text.count(",") == 1 and "." not in text:
        return text.replace(",", ".")
    if "," in text:
        raise ValueError("expected a number with one decimal comma")
    return text


def parse_number(text: str, *, decimal: str = ".") -> float:
    """Read a number as printed in papers and spreadsheets.

    Accepts plain and E notation, thousands separators with at least two groups or a
    decimal part (``25,600,000,000.00``), ``a x 10^b`` and ``a×10⁹``, and Unicode minus
    signs. With ``decimal=","`` (a semicolon CSV, as a decimal-comma spreadsheet exports
    it) the comma is the decimal separator: ``8,4``, ``1.234,5``, ``1 234,5``, ``9,08E+11``.
    Raises ValueError (with the reason) otherwise.
    """
    cleaned = text.strip().translate(_MINUS).translate(_SUPERSCRIPTS)
    if decimal == ",":
        cleaned = _from_decimal_comma(cleaned)
    if _THOUSANDS.match(cleaned):
        cleaned = cleaned.replace(",", "")
    elif _AMBIGUOUS_COMMA.match(cleaned):
        raise ValueError(
            "a comma here is ambiguous (decimal or thousands?); type the number with a point and no separators"
        )
    power = _POWER_OF_TEN.match(cleaned.replace(" ", "") if "10" in cleaned else cleaned)
    if power:
        try:
            value = float(power.group(1)) * 10.0 ** int(power.group(2))
        except OverflowError:  # 10.0 ** 999
            value = math.inf
    else:
        value = float(cleaned)  # raises ValueError for anything else
    if not math.isfinite(value):
        raise NonFiniteNumber(cleaned)
    return value


def _number(cell: Cell, decimal: str = ".") -> tuple[float | None, str | None]:
    value = cell.value
    if isinstance(value, bool):
        return None, f"expected a number, got the logical value {value}"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None, f"expected a finite number, got {value!r}"
        try:
            number = float(value)
        except OverflowError:  # an integer cell beyond the float range
            return None, "expected a finite number, got a number beyond about 1.8 x 10^308"
        return number, None
    text = str(value).strip()
    try:
        return parse_number(text, decimal=decimal), None
    except NonFiniteNumber as exc:
        return None, str(exc)
    except ValueError as exc:
        detail = str(exc) if "ambiguous" in str(exc) or "comma" in str(exc) else "expected a number"
        return None, f"{detail}, got {text!r}"


_NUM = r"[-+−]?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?"
_PLUS_MINUS = re.compile(
    rf"^\s*({_NUM})\s*(?:±|\+/-|\+-|\+/−)\s*({_NUM})\s*(?:\(?\s*(sd|se|sem|s\.e\.m\.)\s*\)?)?\s*$", re.I
)
_WITH_TIME_UNIT = re.compile(
    rf"^\s*({_NUM})\s*(h|hr|hrs|hours?|d|days?|wk|wks|weeks?|min|minutes?|mo|months?)\.?\s*$", re.I
)
_WITH_WORD = re.compile(rf"^\s*(?:n\s*=\s*)?({_NUM})\s*([a-zµμ%°].*)?$", re.I)
_TIME_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def _number_hint(text: str, column: Column) -> str:
    """Where the parts of a number typed with more than a number go ("27.5 ± 7.0", "28 d")."""
    pm = _PLUS_MINUS.match(text)
    if pm and column.name == "mean":
        which = (pm.group(3) or "").casefold().replace(".", "")
        target = {"sd": "sd", "se": "sem", "sem": "sem"}.get(which, "sd or sem (whichever the paper reports)")
        return f"; type {pm.group(1)} in mean and {pm.group(2)} in {target}"
    if pm:
        return f"; type one number here; '± {pm.group(2)}' belongs in sd or sem beside a mean"
    unit = _WITH_TIME_UNIT.match(text)
    if unit and column.name == "timepoint":
        word = _TIME_UNITS.get(unit.group(2)[0].casefold())
        if word:
            return f"; type {unit.group(1)} in timepoint and {word!r} in timepoint_unit"
        return "; convert it to hours, days or weeks: the number in timepoint, the unit in timepoint_unit"
    with_word = _WITH_WORD.match(text)
    if with_word and (with_word.group(2) or text.strip().casefold().startswith("n")):
        return (
            f"; type the number alone, in {column.unit}"
            if column.unit
            else f"; type the number alone ({with_word.group(1)})"
        )
    return ""


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return str(value).strip()


_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)


def coerce(cell: Cell, column: Column, decimal: str = ".") -> Result:
    """Coerce ``cell`` for ``column``: returns (value, error, note).

    ``decimal`` is the decimal separator of numbers typed as text (``","`` in a semicolon CSV).
    """
    if cell.kind == "formula":
        return (
            None,
            (
                f"is a formula ({str(cell.value)[:40]}); evmeta never evaluates formulas: type the value itself"
            ),
            None,
        )
    if cell.kind == "error":
        return (
            None,
            f"is the Excel error value {cell.value}; type the value itself or leave the cell empty",
            None,
        )
    value = cell.value
    if (
        column.kind in {"int", "float", "year"}
        and isinstance(value, str)
        and value.strip().casefold() == "nan"
    ):
        # "NaN" in a number column is what software prints for a failed computation, not "not reported".
        return (
            None,
            f"expected a finite number, got {value.strip()!r}; leave the cell empty if not reported",
            None,
        )
    if value is None or (isinstance(value, str) and value.strip().casefold() in MISSING_TOKENS | {""}):
        return None, None, None
    if cell.kind == "date" and column.kind in {
        "int",
        "float",
        "year",
        "pmid",
        "vocab",
        "isolation",
        "id",
        "ref",
    }:
        return (
            None,
            (
                f"expected {'a number' if column.kind in {'int', 'float', 'year'} else 'text'}, got a date "
                f"({_text(value)}); Excel may have converted what was typed: format the column as text and retype it"
            ),
            None,
        )
    kind = column.kind
    if kind in {"int", "float", "year"}:
        number, error = _number(cell, decimal)
        if number is None:  # _number gives either a number or an error
            if isinstance(value, str) and error is not None and error.startswith("expected a number"):
                error += _number_hint(value, column)
            return None, error, None
        if kind in {"int", "year"}:
            if not float(number).is_integer():
                return None, f"expected a whole number, got {show(number)}", None
            return int(number), None, None
        return number, None, None
    if kind in {"id", "ref", "text"}:
        return _text(value), None, None
    if kind == "doi":
        text = _DOI_PREFIX.sub("", _text(value))
        if not _DOI.match(text):
            return None, f"expected a DOI such as 10.1000/xyz123, got {_text(value)!r}", None
        return text, None, None
    if kind == "pmid":
        text = _text(value)
        if not text.isdigit() or len(text) > 9:
            return None, f"expected a PubMed id (1 to 9 digits), got {text!r}", None
        return text, None, None
    if kind == "vocab":
        return _vocab(_text(value), column)
    if kind == "isolation":
        return _isolation(_text(value))
    raise ValueError(f"unknown column kind {kind!r}")  # a schema bug, not a user error


def _vocab(text: str, column: Column) -> Result:
    vocab = vocabulary(column.vocabulary or "")
    match = vocab.normalize(text)
    if match.canonical is None:
        allowed = ", ".join(repr(s) for s in match.suggestions)
        return None, f"unknown value {text!r}; closest allowed values: {allowed}", None
    if match.kind == "fuzzy":
        return match.canonical, None, f"read {text!r} as {match.canonical!r} (match score {match.score:.0f})"
    return match.canonical, None, None


def _isolation(text: str) -> Result:
    method, matches = parse_isolation_method(text)
    if method is None:
        bad = [m for m in matches if m.canonical is None]
        step = bad[0] if bad else None
        hint = ", ".join(repr(s) for s in step.suggestions) if step else ""
        return (
            None,
            (
                f"unknown isolation step {step.value if step else text!r}; closest allowed steps: {hint} "
                "(chain steps with '+', e.g. TFF+SEC)"
            ),
            None,
        )
    fuzzy = [m for m in matches if m.kind == "fuzzy"]
    note = None
    if fuzzy:
        parts = "; ".join(f"{m.value!r} as {m.canonical!r} (match score {m.score:.0f})" for m in fuzzy)
        note = f"read {parts}"
    return method.code, None, note
