"""Dose parsing and harmonization: worked examples of the domain note, 30+ printed forms,
and hypothesis-generated garbage that must raise DoseError and nothing else."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evmeta as em
from evmeta.harmonize.doses import (
    dose_from_columns,
    dose_reliability,
    harmonize_dose,
    parse_dose,
    purity_class,
)

PRINTED = [
    # text, value (canonical unit), quantity, basis, scaled
    ("100 ug", 100, "protein", "per_animal", False),
    ("100 μg", 100, "protein", "per_animal", False),  # Greek mu
    ("100 µg", 100, "protein", "per_animal", False),  # micro sign
    ("100 µg EVs", 100, "protein", "per_animal", False),
    ("100ug", 100, "protein", "per_animal", False),
    ("15 ug protein", 15, "protein", "per_animal", False),
    ("100 ug of EVs", 100, "protein", "per_animal", False),
    ("100 ug exosomal protein", 100, "protein", "per_animal", False),
    ("0.1 mg", 100, "protein", "per_animal", True),
    ("0.1 mg/kg", 100, "protein", "per_kg", True),
    ("50 µg/kg", 50, "protein", "per_kg", False),
    ("50 ug/g", 50_000, "protein", "per_kg", True),
    ("5 mg/kg body weight", 5000, "protein", "per_kg", True),
    ("200 ng", 0.2, "protein", "per_animal", True),
    ("100 ug per mouse", 100, "protein", "per_animal", False),
    ("1.5 x 10^9 particles/kg", 1.5e9, "particles", "per_kg", False),
    ("1.5×10⁹ EVs", 1.5e9, "particles", "per_animal", False),
    ("2×10⁹ EVs", 2e9, "particles", "per_animal", False),
    ("2E10 exosomes", 2e10, "particles", "per_animal", False),
    ("7.5e8 exosomes", 7.5e8, "particles", "per_animal", False),
    ("7.5e8 vesicles per rat", 7.5e8, "particles", "per_animal", False),
    ("1E11 vesicles/kg", 1e11, "particles", "per_kg", False),
    ("1 x 10^10 particles", 1e10, "particles", "per_animal", False),
    ("10^10 particles", 1e10, "particles", "per_animal", False),
    ("3 x 10(9) particles", 3e9, "particles", "per_animal", False),
    ("1.2 × 10^10 EVs per mouse", 1.2e10, "particles", "per_animal", False),
    ("2.5x10^10 particles/kg bw", 2.5e10, "particles", "per_kg", False),
    ("1,000,000,000 particles", 1e9, "particles", "per_animal", False),
    ("2 x 10^6 cell equivalents", 2e6, "cell_equivalents", "per_animal", False),
    ("2×10^6 CE", 2e6, "cell_equivalents", "per_animal", False),
    ("EVs from 2×10^6 cells", 2e6, "cell_equivalents", "per_animal", False),
    ("EVs secreted by 1×10^6 MSCs in 24 h", 1e6, "cell_equivalents", "per_animal", False),
    ("exosomes derived from 5 x 10^5 cells", 5e5, "cell_equivalents", "per_animal", False),
    ("200 uL conditioned medium", 0.2, "conditioned_medium", "per_animal", True),
    ("EVs from 10 mL CM", None, None, None, None),  # not cells: must fail, see below
    ("1 mL concentrated conditioned medium", 1.0, "conditioned_medium", "per_animal", False),
]


@pytest.mark.parametrize(
    ("text", "value", "quantity", "basis", "scaled"), [p for p in PRINTED if p[1] is not None]
)
def test_printed_forms(text, value, quantity, basis, scaled):
    dose = parse_dose(text)
    assert dose.value == pytest.approx(value, rel=1e-12)
    assert (dose.quantity, dose.basis, dose.scaled) == (quantity, basis, scaled)
    assert (
        dose.unit
        == {
            "protein": "ug",
            "particles": "particles",
            "cell_equivalents": "cell_equivalents",
            "conditioned_medium": "mL",
        }[quantity]
    )
    assert em.parse_dose is parse_dose


def test_at_least_thirty_printed_forms():
    assert len([p for p in PRINTED if p[1] is not None]) >= 30


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "100",
        "50-100 ug",
        "50 to 100 ug",
        "100 uL",
        "100 kg",
        "-5 ug",
        "1e400 ug",
        "100 ug/well",
        "EVs from 10 mL CM",
        "0 ug",
        "ug 100",
    ],
)
def test_unreadable_doses_raise_dose_error(text):
    with pytest.raises(em.DoseError, match="cannot read dose"):
        parse_dose(text)
    assert issubclass(em.DoseError, ValueError)


def test_worked_example_mouse_per_animal():
    out = harmonize_dose("100 ug", species="mouse")
    assert out["ug_protein_per_kg"] == pytest.approx(5000)
    assert out["provenance"]["ug_protein_per_kg"] == "imputed"
    assert out["provenance"]["ug_protein_per_animal"] == "reported"
    assert out["hed_ug_protein_per_kg"] == pytest.approx(405.4, abs=0.05)
    assert out["provenance"]["hed_ug_protein_per_kg"] == "imputed"
    assert math.isnan(out["particles_per_kg"]) and out["provenance"]["particles_per_kg"] == "not_convertible"


def test_worked_example_rat_particles_per_kg():
    out = harmonize_dose("1 x 10^10 particles/kg", species="rat")
    assert out["particles_per_kg"] == 1e10 and out["provenance"]["particles_per_kg"] == "reported"
    assert out["hed_particles_per_kg"] == pytest.approx(1e10 * 6 / 37, rel=1e-12)  # 1.62e9
    assert out["particles_per_animal"] == pytest.approx(1.5e9)
    assert out["provenance"]["particles_per_animal"] == "imputed"


def test_worked_example_rat_with_reported_weight_and_two_doses():
    out = harmonize_dose(parse_dose("50 ug"), species="rat", body_weight_kg=0.25)
    assert out["ug_protein_per_kg"] == pytest.approx(200)
    assert out["provenance"]["ug_protein_per_kg"] == "derived"
    assert 2 * out["ug_protein_per_kg"] == pytest.approx(400)  # cumulative over n_doses = 2


def test_protein_particles_only_through_the_study_ratio():
    out = harmonize_dose("20 ug", species="mouse", body_weight_kg=0.025, particles_per_ug=2e9)
    assert out["particles_per_animal"] == pytest.approx(4e10)
    assert out["provenance"]["particles_per_animal"] == "derived"
    assert out["particles_per_kg"] == pytest.approx(4e10 / 0.025)
    assert out["provenance"]["particles_per_kg"] == "derived"
    back = harmonize_dose("4e10 particles", species="mouse", particles_per_ug=2e9)
    assert back["ug_protein_per_animal"] == pytest.approx(20)
    assert back["provenance"]["ug_protein_per_kg"] == "imputed"  # reference weight
    scaled = harmonize_dose("0.1 mg/kg", species="rat")
    assert scaled["provenance"]["ug_protein_per_kg"] == "scaled"
    cells = harmonize_dose("EVs from 2x10^6 cells", species="rat")
    assert cells["provenance"]["ug_protein_per_kg"] == "not_convertible"
    assert cells["cell_equivalents_per_kg"] == pytest.approx(2e6 / 0.15)


def test_overrides_and_species_spellings():
    out = harmonize_dose("100 ug", species="Mice", reference_weights={"mouse": 0.025}, km={"mouse": 3.0})
    assert out["ug_protein_per_kg"] == pytest.approx(4000)
    with pytest.raises(ValueError, match="valid species"):
        harmonize_dose("100 ug", species="unicorn")


def test_dose_from_columns():
    assert dose_from_columns(0.5, "mg", "per_kg") == parse_dose("0.5 mg/kg").__class__(
        500.0, "protein", "ug", "per_kg", "0.5 mg per_kg", True
    )
    assert dose_from_columns(2e9, "particles", None).basis == "per_animal"
    with pytest.raises(em.DoseError):
        dose_from_columns(-1, "ug", "per_animal")


def test_purity_and_reliability():
    assert purity_class(5e10) == "high"
    assert purity_class(5e9) == "low"
    assert purity_class(1e9) == "impure"
    assert purity_class(2.5e10) == "borderline"
    assert purity_class(None) == "unknown"
    assert dose_reliability("particles", "impure", "UC")[0] == "low"
    assert dose_reliability("particles", "high", "precipitation")[0] == "low"
    assert dose_reliability("particles", "high", "precipitation+SEC")[0] == "ok"
    assert dose_reliability("protein", "impure", "precipitation")[0] == "ok"


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_any_text_parses_or_raises_dose_error(text):
    try:
        dose = parse_dose(text)
    except em.DoseError:
        return
    assert dose.value > 0 and math.isfinite(dose.value)
    assert dose.quantity in {"protein", "particles", "cell_equivalents", "conditioned_medium"}


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("0123456789.,eE^x×⁰¹²³⁴⁵⁶⁷⁸⁹ -+/()µμugmkLl")), max_size=25))
def test_number_like_garbage_parses_or_raises_dose_error(text):
    try:
        parse_dose(text)
    except em.DoseError:
        pass
