"""Numbers as a reader sees them in figures, tables and sentences: a true minus sign,
fixed decimals, e-notation, powers of ten as printed (``1.3 × 10¹⁰``) and significant
figures, p-values as journals print them."""

from __future__ import annotations

import re

import numpy as np

MINUS = "\u2212"
#: Digits and signs as superscripts, for exponents (``10¹⁰``, ``10⁻⁴``).
SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def minus(text: str) -> str:
    """``text`` with hyphen-minus signs of numbers replaced by the true minus sign (U+2212)."""
    out = []
    for i, char in enumerate(text):
        is_sign = char == "-" and i + 1 < len(text) and (text[i + 1].isdigit() or text[i + 1] == ".")
        before = text[i - 1] if i else " "
        out.append(MINUS if is_sign and not before.isalnum() else char)
    return "".join(out)


def number(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals and a true minus sign; empty for NaN."""
    if value is None or not np.isfinite(value):
        return ""
    return minus(f"{value:.{digits}f}")


def scientific(value: float, digits: int = 2) -> str:
    """``value`` in e-notation with true minus signs, the exponent's too: ``2.13e−03``."""
    return minus(f"{value:.{digits}e}").replace("e-", f"e{MINUS}")


def power_of_ten(value: float, digits: int = 2) -> str:
    """``value`` as a journal prints a particle count: ``1.3e10`` -> ``1.3 × 10¹⁰``.

    ``digits`` significant digits, a true multiplication sign and a superscript exponent
    (``2.0 × 10⁻⁴``); values from 1 to 999 stay plain (``250``); a true minus sign; empty for
    NaN.

    Examples
    --------
    >>> power_of_ten(1.3e10), power_of_ten(9.96e9), power_of_ten(2e-4), power_of_ten(250)
    ('1.3 × 10¹⁰', '1.0 × 10¹⁰', '2.0 × 10⁻⁴', '250')
    """
    if value is None or not np.isfinite(value):
        return ""
    if value == 0 or 1 <= abs(value) < 1000:
        return _plain(value, digits)
    exponent = int(np.floor(np.log10(abs(value))))
    mantissa = round(value / 10**exponent, digits - 1)
    if abs(mantissa) >= 10:  # 9.96e9 rounds up to 10.0: 1.0 × 10¹⁰
        mantissa, exponent = mantissa / 10, exponent + 1
    return minus(f"{mantissa:.{digits - 1}f}") + f" × 10{str(exponent).translate(SUPERSCRIPTS)}"


def amount(value: float, digits: int = 3) -> str:
    """A dose or count in a sentence: ``digits`` significant digits, plain from 0.001 to
    99,999 (``250``, ``0.05``), else a power of ten (``1.3 × 10¹⁰``); empty for NaN."""
    if value is None or not np.isfinite(value):
        return ""
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return _plain(value, digits)
    return power_of_ten(value, digits)


def _plain(value: float, digits: int) -> str:
    """``digits`` significant digits without e-notation; whole numbers keep every digit
    (``12345``, never ``1.23e+04``)."""
    if abs(value) >= 10**digits:
        return minus(f"{value:.0f}")
    return minus(f"{value:.{digits}g}")


_E_NOTATION = re.compile(r"(?<![\w.])([-+]?\d+(?:\.\d+)?)e([-+]?\d+)(?![\w.])")


def printed_powers(text: str) -> str:
    """``text`` with its e-notation numbers as powers of ten: ``'implies 2e+09 particles'`` ->
    ``'implies 2 × 10⁹ particles'`` (for sentences written with ``:g``, such as dose notes)."""

    def power(match: re.Match[str]) -> str:
        mantissa, exponent = match.group(1), int(match.group(2))
        return minus(mantissa.lstrip("+")) + f" × 10{str(exponent).translate(SUPERSCRIPTS)}"

    return _E_NOTATION.sub(power, text)


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures (``:g``) with true minus signs: ``0.00213``."""
    return minus(f"{value:.{digits}g}").replace("e-", f"e{MINUS}")


def percent(level: float) -> str:
    """A confidence or credibility level as printed: ``0.95`` -> ``95%``, ``0.9`` -> ``90%``,
    ``0.975`` -> ``97.5%``."""
    return f"{level * 100:.4g}%"


def format_p(p: float) -> str:
    """A p-value as journals print it: ``p < 0.001``, ``p = 0.004`` below 0.01, else two decimals."""
    if p is None or not np.isfinite(p):
        return "p = NA"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"
