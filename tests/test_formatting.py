"""evmeta.formatting: particle counts as powers of ten, e-notation rewritten in sentences."""

from __future__ import annotations

import math

import pytest

from evmeta.formatting import amount, power_of_ten, printed_powers


@pytest.mark.parametrize(
    "value, digits, printed",
    [
        (1.3e10, 2, "1.3 × 10¹⁰"),
        (9.96e9, 2, "1.0 × 10¹⁰"),  # the mantissa rounds up to 10: one power more
        (2e-4, 2, "2.0 × 10⁻⁴"),
        (-4.5e6, 2, "−4.5 × 10⁶"),  # a true minus sign
        (1.2345e11, 3, "1.23 × 10¹¹"),
        (250, 2, "250"),  # 1 to 999 stay plain
        (0.0, 2, "0"),
    ],
)
def test_power_of_ten(value, digits, printed):
    assert power_of_ten(value, digits) == printed


def test_power_of_ten_of_nan_is_empty():
    assert power_of_ten(math.nan) == "" and amount(math.inf) == ""


def test_amount_is_plain_in_the_middle_and_a_power_outside():
    assert [amount(v) for v in (60, 0.05, 12_345, 99_999, 0.00123)] == ["60", "0.05", "12345", "99999", "0.00123"]
    assert amount(1.26e10) == "1.26 × 10¹⁰" and amount(1e-4) == "1.00 × 10⁻⁴" and amount(-2e5) == "−2.00 × 10⁵"


def test_printed_powers_rewrites_e_notation_only():
    text = "the dose text implies 2e+09 particles/ug protein but the preparation states 5.3e+10"
    assert printed_powers(text) == (
        "the dose text implies 2 × 10⁹ particles/ug protein but the preparation states 5.3 × 10¹⁰"
    )
    assert printed_powers("2.5e-3 mL") == "2.5 × 10⁻³ mL"
    # Identifiers and words with an e between digits are not numbers.
    for kept in ["AHMED2015-E1", "ref1e5x", "v1.2e3b", "Exp 2e"]:
        assert printed_powers(kept) == kept
