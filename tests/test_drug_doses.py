"""Drug doses read as what they are (issue 25 item 3): on an arm given a non-EV preparation
(``preparation_kind = non_ev``) a mass is a drug's mass, a diet concentration stays in the
diet and an amount of substance stays in mol; none becomes EV protein per kg."""

from __future__ import annotations

import numpy as np
import pytest

import evmeta as em
from evmeta.harmonize.arm_doses import arm_mass_quantity, harmonize_arm_doses
from evmeta.harmonize.doses import parse_dose

#: (printed dose, drug reading: value, canonical unit, quantity, basis)
DRUG_DOSES = [
    ("5 mg/kg", 5.0, "mg", "drug_mass", "per_kg"),
    ("600 mg/kg chow", 600.0, "mg/kg diet", "dietary_concentration", "in_diet"),
    ("600 mg/kg diet", 600.0, "mg/kg diet", "dietary_concentration", "in_diet"),
    ("10 nmol", 10.0, "nmol", "substance_amount", "per_animal"),
    ("2 nmol/kg", 2.0, "nmol", "substance_amount", "per_kg"),
    ("10 microg/kg", 0.01, "mg", "drug_mass", "per_kg"),
    ("50 microg", 0.05, "mg", "drug_mass", "per_animal"),
]


def test_arm_mass_quantity_follows_role_and_preparation():
    assert arm_mass_quantity("ev") == arm_mass_quantity("ev", "msc_ev") == "protein"
    assert arm_mass_quantity("ev", "non_ev") == "drug_mass"
    assert arm_mass_quantity("positive_control") == "drug_mass"


@pytest.mark.parametrize(("text", "value", "unit", "quantity", "basis"), DRUG_DOSES)
def test_a_drug_dose_is_read_as_what_it_is(text, value, unit, quantity, basis):
    dose = parse_dose(text, mass_quantity="drug_mass")
    assert (dose.value, dose.unit, dose.quantity, dose.basis) == (pytest.approx(value), unit, quantity, basis)
    assert not dose.is_ev_dose


def test_microg_is_a_spelling_of_micrograms():
    assert parse_dose("10 microg/kg").value == parse_dose("10 µg/kg").value == 10.0  # EV protein, ug
    assert em.parse_dose("50 microg").unit == "ug"


def _book(tmp_path, kind: str | None, texts: list[str]):
    """One experiment: a control arm and one treated arm per printed dose."""
    arms = [{"arm_id": "E-C", "experiment_id": "E", "role": "vehicle_control"}]
    outcomes = [
        {
            "outcome_id": "O-C",
            "experiment_id": "E",
            "arm_id": "E-C",
            "outcome": "weight",
            "n": 8,
            "mean": 10.0,
            "sd": 2.0,
        }
    ]
    for i, text in enumerate(texts):
        arms.append(
            {"arm_id": f"E-T{i}", "experiment_id": "E", "role": "ev", "prep_id": "P", "dose_text": text}
        )
        outcomes.append(
            {"outcome_id": f"O-T{i}", "experiment_id": "E", "arm_id": f"E-T{i}", "outcome": "weight", "n": 8,
             "mean": 12.0 + i, "sd": 2.0}
        )  # fmt: skip
    folder = tmp_path / f"book_{kind}"
    em.write_template(
        folder,
        csv_dir=True,
        data={
            "studies": [{"study_id": "S", "first_author": "Drug", "year": 1975}],
            "preparations": [
                {"prep_id": "P", "study_id": "S", "msc_tissue_source": "other", "isolation_method": "UC",
                 "preparation_kind": kind}
            ],
            "experiments": [{"experiment_id": "E", "study_id": "S", "species": "rat", "disease_model": "other"}],
            "arms": arms,
            "outcomes": [{**o, "higher_is_better": "yes"} for o in outcomes],
        },
    )  # fmt: skip
    return folder


def test_arms_of_a_non_ev_preparation_never_get_an_ev_protein_dose(tmp_path):
    texts = [t for t, *_ in DRUG_DOSES]
    book = em.read_extraction(_book(tmp_path, "non_ev", texts))
    doses = harmonize_arm_doses(book.arms, book.experiments, book.preparations)
    treated = doses.loc[[f"E-T{i}" for i in range(len(texts))]]
    assert list(treated["dose_quantity"]) == [q for *_, q, _ in DRUG_DOSES]
    assert treated["dose_ug_protein_per_kg"].isna().all() and treated["dose_particles_per_kg"].isna().all()
    assert treated["dose_reliability"].notna().all()  # read, just not as EVs
    # Validation: no "not used as the EV dose" note for a drug given as the intervention.
    assert not [p for p in book.notes if p.column == "dose_text"], [str(p) for p in book.notes]
    table = em.build_comparisons(book).table
    assert table["log10_dose_ug_protein_per_kg"].isna().all()
    assert table["quality_score"].isna().all() and table["isolation_method"].isna().all()


def test_the_same_mass_on_an_msc_ev_arm_is_ev_protein(tmp_path):
    """Blank preparation_kind = an MSC-EV preparation: '5 mg/kg' is 5000 ug protein/kg and a
    diet or nmol dose is noted at its cell as no EV dose."""
    book = em.read_extraction(_book(tmp_path, None, ["5 mg/kg", "600 mg/kg chow", "10 nmol"]))
    doses = harmonize_arm_doses(book.arms, book.experiments, book.preparations)
    assert doses.loc["E-T0", "dose_ug_protein_per_kg"] == pytest.approx(5000.0)
    assert np.isnan(doses.loc["E-T1", "dose_ug_protein_per_kg"]) and np.isnan(
        doses.loc["E-T2", "dose_ug_protein_per_kg"]
    )
    noted = {p.row for p in book.notes if p.column == "dose_text" and "not used as the EV dose" in p.message}
    assert len(noted) == 2
    assert em.build_comparisons(book).table["quality_score"].notna().all()  # scored (0 of the items)


def test_microg_in_the_dose_unit_column_is_ug(tmp_path):
    """A typed dose_unit "microg" (or "mcg") is the vocabulary's ug, without a fuzzy-match note."""
    folder = _book(tmp_path, "non_ev", [])
    arms = folder / "arms.csv"
    arms.write_text(
        arms.read_text(encoding="utf-8").rstrip("\n")
        + "\n"
        + ",".join(
            {
                "arm_id": "E-T9",
                "experiment_id": "E",
                "role": "ev",
                "prep_id": "P",
                "dose_value": "10",
                "dose_unit": "microg",
            }.get(c, "")
            for c in arms.read_text(encoding="utf-8").splitlines()[0].split(",")
        )
        + "\n",
        encoding="utf-8",
    )
    book = em.read_extraction(folder)
    assert book.arms.set_index("arm_id").loc["E-T9", "dose_unit"] == "ug"
    assert not [p for p in book.notes if p.column == "dose_unit"]
    doses = harmonize_arm_doses(book.arms, book.experiments, book.preparations)
    assert doses.loc["E-T9", "dose_quantity"] == "drug_mass"  # a non-EV preparation's arm
