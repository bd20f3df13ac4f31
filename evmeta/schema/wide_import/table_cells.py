"""A cell of the comparison table as the importer reads it.

Its value (missing tokens read as None, control characters a workbook cannot store shown
as U+FFFD), a finite number, whitespace-cleaned text, a publication year (a date-formatted
cell refused, with how to fix the column).
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

from evmeta.schema.cells import MISSING_TOKENS, parse_number
from evmeta.sheets.reader import Cell

#: Control characters a workbook cannot store; shown as U+FFFD in the imported cell.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?$|^\d{1,2}/\d{1,2}/\d{2,4}$")


def _value(cell: Cell | None) -> Any:
    if cell is None or cell.value is None or cell.kind in {"formula", "error"}:
        return None
    value = cell.value
    if isinstance(value, str):
        value = _ILLEGAL.sub("\ufffd", value).strip()
        if value.casefold() in MISSING_TOKENS | {""}:
            return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _number(value: Any, name: str) -> tuple[float | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = parse_number(str(value))
        except ValueError:
            return None, f"{name}: expected a number, got {value!r}"
    if not math.isfinite(number):
        return None, f"{name}: expected a finite number, got {value!r}"
    return number, None


def _raw_text(cell: Cell | None) -> str | None:
    """A cell's text, whitespace cleaned (runs of spaces -> one); None when empty."""
    if cell is None or cell.value is None or cell.kind in {"formula", "error"}:
        return None
    value = cell.value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return _text(value)
    text = " ".join(_ILLEGAL.sub("\ufffd", str(value)).split())
    return text or None


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _year(value: Any) -> tuple[int | None, str | None]:
    """A publication year from a cell; a date (a year typed into a date-formatted cell, which
    Excel shows as a day in 1905) is refused with how to fix the column."""
    if value is None:
        return None, None
    if isinstance(value, (datetime.date, datetime.datetime)) or _DATE_TEXT.match(str(value).strip()):
        shown = value.strftime("%Y-%m-%d") if isinstance(value, datetime.date) else str(value).strip()
        return None, (
            f"year: the column holds dates, not years (a year such as 2019 in a date-formatted cell "
            f"shows as a day in 1905): format the column as numbers, got {shown!r}"
        )
    number, why = _number(value, "year")
    if why or number is None or not number.is_integer() or not 1000 <= number <= 2100:
        return None, f"year: expected a year such as 2019, got {value!r}"
    return int(number), None
