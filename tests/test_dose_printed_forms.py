"""Doses as papers print them, second round (issue 25 items 5 and 3): one dose in two
quantities, numbers in words, per-organ bases, qualifiers, another agent's dose, unit
chains and drug doses. The real printed forms are in tests/data/printed_doses.csv
(tests/test_dose_corpus.py); these pin the fields each reading sets."""

from __future__ import annotations

import math

import pytest

from evmeta.errors import DoseError
from evmeta.harmonize.arm_doses import harmonize_arm_doses
from evmeta.harmonize.doses import dose_from_columns, harmonize_dose, parse_dose
from evmeta.schema.doses.ratio import implied_particles_per_ug, ratios_differ
from evmeta.schema.doses.text import DoseTextError, read_dose_text
from evmeta.schema.validation.validate import validate_extraction
from tests.small_reviews import five_studies, row_of, write_review

#: Relative tolerance on amounts: printed numbers times powers of ten, exact up to rounding.
REL = 1e-12


# --- 1. one dose printed in two quantities -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "protein_ug", "particles", "first"),
    [
        ("100 μg/rat, approximately 3.75x10^11 particles", 100, 3.75e11, "protein"),
        ("2 × 10^10 particles (10 μg)", 10, 2e10, "particles"),
        ("10 μg of exosomes (equivalent to 2 × 10^10 particles)", 10, 2e10, "protein"),
        ("0.1 mg (~1 x 10^11 EVs)", 100, 1e11, "protein"),
        ("50 µg/kg (i.e. 5 × 10^9 particles/kg)", 50, 5e9, "protein"),
    ],
)
def test_one_dose_in_two_quantities_is_one_dose_with_both(text, protein_ug, particles, first):
    dose = parse_dose(text)
    assert dose.quantity == first
    (other,) = dose.equivalents
    amounts = {dose.quantity: dose.value, other.quantity: other.value}
    assert amounts["protein"] == pytest.approx(protein_ug, rel=REL)
    assert amounts["particles"] == pytest.approx(particles, rel=REL)
    assert implied_particles_per_ug(dose) == pytest.approx(particles / protein_ug, rel=REL)
    # The reading (printed units) implies the same ratio as the canonical dose.
    assert implied_particles_per_ug(read_dose_text(text)) == pytest.approx(particles / protein_ug, rel=REL)


@pytest.mark.parametrize(
    "text",
    ["100 µg and 2 × 10^10 particles", "100 µg or 2 × 10^10 particles", "10 ug/kg (1e9 particles/mouse)"],
)
def test_two_quantities_that_are_not_one_dose_are_still_refused(text):
    with pytest.raises(DoseTextError) as info:
        parse_dose(text)
    assert info.value.reason == "several_doses"


def test_both_printed_quantities_are_reported_not_derived():
    out = harmonize_dose("100 μg/rat, approximately 3.75x10^11 particles", species="rat", body_weight_kg=0.25)
    assert out["ug_protein_per_animal"] == 100 and out["provenance"]["ug_protein_per_animal"] == "reported"
    assert out["particles_per_animal"] == pytest.approx(3.75e11, rel=REL)
    assert out["provenance"]["particles_per_animal"] == "reported"
    assert out["particles_per_kg"] == pytest.approx(3.75e11 / 0.25, rel=REL)
    assert out["provenance"]["particles_per_kg"] == "derived"
    assert not any("particles_per_ug_protein" in note for note in out["notes"])


def test_a_preparation_stating_another_ratio_gets_a_note():
    text = "2 × 10^10 particles (10 μg)"  # 2e9 particles/ug
    same = harmonize_dose(text, species="mouse", particles_per_ug=2.1e9)  # 5% off: rounding
    assert not any("implies" in note for note in same["notes"])
    other = harmonize_dose(text, species="mouse", particles_per_ug=5e9)
    assert any(
        "implies 2e+09 particles/ug protein but the preparation states 5e+09" in n for n in other["notes"]
    )
    assert other["particles_per_animal"] == 2e10  # the printed amount, not 10 ug x 5e9
    assert ratios_differ(2e9, 5e9) and not ratios_differ(2e9, 2.1e9)


# --- 2. numbers in words -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "quantity"),
    [
        ("1 million MSCs", 1e6, "cell_equivalents"),
        ("3 million cells", 3e6, "cell_equivalents"),
        ("2.5 billion particles", 2.5e9, "particles"),
        ("half a million cells", 5e5, "cell_equivalents"),
        ("EVs from one million MSCs", 1e6, "cell_equivalents"),
        ("EVs secreted by a million cells", 1e6, "cell_equivalents"),
        ("three billion exosomes/kg", 3e9, "particles"),
        ("50 thousand cells", 5e4, "cell_equivalents"),
    ],
)
def test_numbers_in_words(text, value, quantity):
    dose = parse_dose(text)
    assert dose.value == pytest.approx(value, rel=REL) and dose.quantity == quantity
    assert any("x 10^" in note for note in dose.notes)


def test_a_power_word_alone_is_still_no_amount():
    with pytest.raises(DoseTextError):
        parse_dose("millions of cells")


# --- 3. per-organ bases ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "organ"),
    [
        ("200 μg of exosomes per kidney", "kidney"),
        ("1 μg per eye", "eye"),
        ("10 μg/joint", "joint"),
        ("5 × 10^8 particles per hemisphere", "hemisphere"),
        ("2 µg per ear", "ear"),
        ("100 μg EVs injected into each kidney", "kidney"),
        ("50 µg per wound", "wound"),
    ],
)
def test_per_organ_doses_keep_their_basis(text, organ):
    dose = parse_dose(text)
    assert (dose.basis, dose.organ) == ("per_organ", organ)


def test_per_organ_doses_are_never_converted_as_per_animal():
    out = harmonize_dose("200 μg of exosomes per kidney", species="rat", body_weight_kg=0.25)
    for key in ("ug_protein_per_animal", "ug_protein_per_kg", "hed_ug_protein_per_kg"):
        assert math.isnan(out[key]) and out["provenance"][key] == "not_convertible"
    assert any("per kidney" in note and "not computed" in note for note in out["notes"])
    typed = harmonize_dose(dose_from_columns(200, "ug", "per_organ"), species="rat")
    assert math.isnan(typed["ug_protein_per_kg"])


def test_single_organs_are_per_animal():
    assert parse_dose("10 µg per heart").basis == "per_animal"


# --- 4. qualifiers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["approximately 100 μg", "~100 ug", "about 100 µg", "∼100 µg EVs", "around 1 × 10^9 particles"]
)
def test_approximate_amounts_are_read_with_a_qualifier(text):
    dose = parse_dose(text)
    assert dose.qualifier == "approximately"
    assert any("approximate" in note for note in dose.notes)


@pytest.mark.parametrize(
    "text",
    ["At least 50 μg", "up to 50 ug", ">50 µg", "< 1 mg", "more than 10^9 particles", "no more than 20 ug"],
)
def test_bounds_are_refused_never_read_as_the_dose(text):
    with pytest.raises(DoseTextError) as info:
        parse_dose(text)
    assert info.value.reason == "bound"


def test_a_bound_on_the_schedule_is_noted_not_refused():
    dose = parse_dose("100 ug, up to 3 injections")
    assert dose.value == 100 and dose.qualifier is None
    assert any("'up to' before '3 injections'" in note for note in dose.notes)


def test_exact_amounts_have_no_qualifier():
    assert parse_dose("100 µg").qualifier is None


# --- 5. another agent's dose -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "agent", "value_mg"),
    [
        ("cisplatin (5 mg/kg)", "cisplatin", 5),
        ("LPS 10 mg/kg", "lps", 10),
        ("streptozotocin 60 mg/kg", "streptozotocin", 60),
        ("40 mg/kg of streptozotocin", "streptozotocin", 40),
        ("cisplatin at 20 mg/kg body weight", "cisplatin", 20),
    ],
)
def test_a_dose_naming_another_agent_is_that_agents_not_the_evs(text, agent, value_mg):
    dose = parse_dose(text)
    assert (dose.agent, dose.quantity, dose.unit, dose.basis) == (agent, "drug_mass", "mg", "per_kg")
    assert dose.value == pytest.approx(value_mg, rel=REL) and not dose.is_ev_dose
    assert any("looks like the dose of" in note for note in dose.notes)
    out = harmonize_dose(dose, species="rat")
    assert (
        math.isnan(out["ug_protein_per_kg"]) and out["provenance"]["ug_protein_per_kg"] == "not_convertible"
    )
    assert any("injury-model" in note for note in out["notes"])


def test_the_agents_dose_is_set_aside_when_the_evs_dose_is_printed_too():
    dose = parse_dose("100 μg EVs 24 h after cisplatin (5 mg/kg/day for 3 days)")
    assert (dose.value, dose.quantity, dose.basis, dose.agent) == (100, "protein", "per_animal", None)
    assert any("set aside" in note and "cisplatin" in note for note in dose.notes)


def test_an_agent_named_as_an_adjective_of_the_evs_names_no_dose():
    dose = parse_dose("100 μg LPS-primed MSC-EVs")
    assert (dose.value, dose.quantity, dose.agent) == (100, "protein", None)


# --- 6. unit chains ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("5 ug/g/kg", "two_bases"),
        ("5 ug/kg/mouse", "two_bases"),
        ("10 ug/kg per eye", "two_bases"),
        ("5 ug/ml/kg", "unit_chain"),
        ("5 ug/day/day", "unit_chain"),
    ],
)
def test_nonsensical_unit_chains_are_refused_with_the_reason(text, reason):
    with pytest.raises(DoseTextError) as info:
        parse_dose(text)
    assert info.value.reason == reason and "divides by" in info.value.detail


@pytest.mark.parametrize("text", ["100 ug/kg/dose", "100 ug/kg/day", "30 µg/100 µl/mouse"])
def test_sensible_chains_are_read(text):
    assert parse_dose(text).value > 0


# --- 7. drug doses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "quantity", "unit", "basis"),
    [
        ("600 mg/kg chow", 600, "dietary_concentration", "mg/kg diet", "in_diet"),
        ("0.2 g/kg diet", 200, "dietary_concentration", "mg/kg diet", "in_diet"),
        ("100 mg/kg in the diet", 100, "dietary_concentration", "mg/kg diet", "in_diet"),
        ("600 mg per kg of food", 600, "dietary_concentration", "mg/kg diet", "in_diet"),
        ("50 g/kg feed", 50_000, "dietary_concentration", "mg/kg diet", "in_diet"),
        ("10 nmol", 10, "substance_amount", "nmol", "per_animal"),
        ("5 µmol/kg", 5000, "substance_amount", "nmol", "per_kg"),
        ("2 mmol/kg/day", 2e6, "substance_amount", "nmol", "per_kg"),
    ],
)
def test_drug_doses_are_read_as_what_they_are(text, value, quantity, unit, basis):
    dose = parse_dose(text)
    assert (dose.quantity, dose.unit, dose.basis) == (quantity, unit, basis)
    assert dose.value == pytest.approx(value, rel=REL) and not dose.is_ev_dose
    out = harmonize_dose(dose, species="mouse")
    assert all(math.isnan(out[k]) for k in ("ug_protein_per_kg", "particles_per_kg", "ug_protein_per_animal"))


@pytest.mark.parametrize(("text", "ug"), [("100 microg", 100), ("100 mcg/kg", 100), ("0.5 micrograms", 0.5)])
def test_microgram_spellings(text, ug):
    dose = parse_dose(text)
    assert (dose.value, dose.unit, dose.quantity) == (ug, "ug", "protein")


def test_a_mass_of_a_non_ev_arm_is_a_drug_mass():
    dose = parse_dose("1 mg/kg", mass_quantity="drug_mass")
    assert (dose.value, dose.unit, dose.quantity) == (1, "mg", "drug_mass")
    typed = dose_from_columns(500, "ug", "per_kg", mass_quantity="drug_mass")
    assert (typed.value, typed.unit, typed.quantity) == (0.5, "mg", "drug_mass")
    assert dose_from_columns(10, "nmol", "per_kg").quantity == "substance_amount"
    diet = dose_from_columns(600, "mg/kg chow", None)
    assert (diet.quantity, diet.basis) == ("dietary_concentration", "in_diet")
    with pytest.raises(ValueError, match="mass_quantity"):
        read_dose_text("1 mg", mass_quantity="cells")


def test_arm_doses_read_a_positive_controls_mass_as_a_drug():
    import pandas as pd

    arms = pd.DataFrame(
        {
            "arm_id": ["A1", "A2"],
            "experiment_id": ["E1", "E1"],
            "role": ["ev", "positive_control"],
            "prep_id": ["P1", None],
            "dose_value": [None, None],
            "dose_unit": [None, None],
            "dose_basis": [None, None],
            "dose_text": ["100 ug", "dexamethasone 1 mg/kg"],
            "n_doses": [None, None],
        }
    )
    experiments = pd.DataFrame({"experiment_id": ["E1"], "species": ["rat"], "body_weight_kg": [None]})
    preparations = pd.DataFrame(
        {"prep_id": ["P1"], "particles_per_ug_protein": [None], "isolation_method": ["UC"]}
    )
    out = harmonize_arm_doses(arms, experiments, preparations)
    assert out.loc["A1", "dose_quantity"] == "protein" and out.loc["A1", "dose_ug_protein_per_animal"] == 100
    assert out.loc["A2", "dose_quantity"] == "drug_mass"
    assert math.isnan(out.loc["A2", "dose_ug_protein_per_kg"])
    assert "not of the EVs" in out.loc["A2", "dose_note"]


# --- validation: notes at the cell and the ratio to the preparation --------------------------


def _validate(tmp_path, texts, prep_ratio=None):
    sheets = five_studies()
    for arm in sheets["arms"]:
        arm["dose_text"] = texts.get(arm["arm_id"], arm.get("dose_text"))
    for prep in sheets["preparations"]:
        prep["particles_per_ug_protein"] = prep_ratio.get(prep["prep_id"]) if prep_ratio else None
    extraction, problems = validate_extraction(write_review(tmp_path, sheets))
    return sheets, extraction, problems


def test_validation_names_the_cell_of_each_remark(tmp_path):
    texts = {
        "LI2019-E1-EV": "cisplatin (5 mg/kg)",
        "CHEN2020-E1-EV": "200 μg of exosomes per kidney",
        "KIM2022-E1-EV": "~100 µg",
        "ROSSI2018-E1-EV": "10 nmol",
    }
    sheets, _, problems = _validate(tmp_path, texts)
    assert not [p for p in problems if p.severity == "error"]
    notes = {p.row: p for p in problems if p.check == "dose_text" and p.sheet == "arms"}
    expected = {
        "LI2019-E1-EV": "names cisplatin: it looks like the dose of the injury-model",
        "CHEN2020-E1-EV": "per kidney: no dose per animal or per kg is computed",
        "KIM2022-E1-EV": "printed as approximate",
        "ROSSI2018-E1-EV": "a drug dose (substance amount, 10 nmol), not an amount of EVs",
    }
    for arm_id, words in expected.items():
        row, _ = row_of(sheets, "arms", "arm_id", arm_id)
        assert (notes[row].column, notes[row].severity) == ("dose_text", "note")
        assert words in notes[row].message, notes[row].message


def test_a_dose_in_two_quantities_fills_the_preparations_ratio(tmp_path):
    texts = {"LI2019-E1-EV": "100 μg/rat, approximately 3.75x10^11 particles"}
    sheets, extraction, problems = _validate(tmp_path, texts)
    prep_row, _ = row_of(sheets, "preparations", "prep_id", "LI2019-P")
    (note,) = [p for p in problems if p.sheet == "preparations"]
    assert (note.row, note.column, note.severity) == (prep_row, "particles_per_ug_protein", "note")
    assert "filled from the dose text of arm(s) LI2019-E1-EV" in note.message
    prep = extraction.preparations.set_index("prep_id").loc["LI2019-P"]
    assert prep["particles_per_ug_protein"] == pytest.approx(3.75e9, rel=REL)


def test_a_preparation_stating_another_ratio_is_noted_at_its_cell(tmp_path):
    texts = {"LI2019-E1-EV": "100 μg/rat, approximately 3.75x10^11 particles"}
    _sheets, extraction, problems = _validate(tmp_path, texts, {"LI2019-P": 1e10})
    (note,) = [p for p in problems if p.sheet == "preparations"]
    assert (
        "states 1e+10 particles per ug protein" in note.message and "LI2019-E1-EV (3.75e+09)" in note.message
    )
    prep = extraction.preparations.set_index("prep_id").loc["LI2019-P"]
    assert prep["particles_per_ug_protein"] == 1e10  # what the reviewer typed is kept


def test_an_agents_schedule_does_not_fill_the_ev_arms_schedule(tmp_path):
    texts = {"LI2019-E1-EV": "cisplatin 5 mg/kg daily for 5 days"}
    _, extraction, problems = _validate(tmp_path, texts)
    arm = extraction.arms.set_index("arm_id").loc["LI2019-E1-EV"]
    assert arm["n_doses"] is None or math.isnan(arm["n_doses"])
    assert not [p for p in problems if p.column == "n_doses"]


def test_parse_dose_errors_are_evmeta_errors():
    with pytest.raises(DoseError, match="cannot read dose"):
        parse_dose("5 ug/g/kg")
