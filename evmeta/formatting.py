"""Numbers as a reader sees them in figures, tables and sentences: a true minus sign,
fixed decimals, e-notation and significant figures, p-values as journals print them."""

from __future__ import annotations

import numpy as np

MINUS = "\u2212"


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
