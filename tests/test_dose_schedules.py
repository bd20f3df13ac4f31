"""Schedules flow from dose_text into arms (validation) and into cumulative doses (harmonizer)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import evmeta as em
from evmeta.harmonize.arm_doses import harmonize_arm_doses
from tests.conftest import EXAMPLE, edit, set_cell

SCHEDULED = "30 μg/100 μl, i.v., every 2 weeks, four times"


def test_empty_schedule_cells_are_filled_from_dose_text(example_copy):
    book = edit(example_copy)
    set_cell(book, "arms", 3, "dose_text", SCHEDULED)
    n_letter = set_cell(book, "arms", 3, "n_doses", None)
    set_cell(book, "arms", 3, "dose_interval_days", None)
    book.save(example_copy)
    extraction = em.read_extraction(example_copy)
    arm = extraction.arms[extraction.arms["_row"] == 3].iloc[0]
    assert (arm["n_doses"], arm["dose_interval_days"]) == (4, 14.0)
    filled = [n for n in extraction.notes if n.sheet == "arms" and n.row == 3]
    assert {n.column for n in filled} == {"n_doses", "dose_interval_days"}
    assert any(n.cell == f"arms!{n_letter}3" and "filled from dose_text" in n.message for n in filled)


def test_schedule_that_disagrees_with_dose_text_is_an_error_on_the_cell(example_copy):
    book = edit(example_copy)
    set_cell(book, "arms", 4, "dose_text", "100 μg/5 μl, i.c.v., once per 2 days for 2 weeks")
    letter = set_cell(book, "arms", 4, "n_doses", 3)
    set_cell(book, "arms", 4, "dose_interval_days", 2)
    book.save(example_copy)
    with pytest.raises(em.ExtractionError) as info:
        em.read_extraction(example_copy)
    errors = [p for p in info.value.problems if p.severity == "error" and p.sheet == "arms"]
    assert len(errors) == 1
    assert (errors[0].row, errors[0].column, errors[0].cell) == (4, "n_doses", f"arms!{letter}4")
    assert "disagrees with dose_text" in errors[0].message and "gives 7" in errors[0].message


def _frames(rows):
    arms = pd.DataFrame(
        [
            {
                "arm_id": f"a{i}",
                "experiment_id": "e1",
                "role": "ev",
                "prep_id": "p1",
                "dose_value": None,
                "dose_unit": None,
                "dose_basis": None,
                "dose_text": text,
                "n_doses": n,
                "dose_interval_days": None,
            }
            for i, (text, n) in enumerate(rows)
        ]
    )
    experiments = pd.DataFrame([{"experiment_id": "e1", "species": "rat", "body_weight_kg": 0.25}])
    preparations = pd.DataFrame(
        [{"prep_id": "p1", "particles_per_ug_protein": None, "isolation_method": "UC"}]
    )
    return arms, experiments, preparations


def test_cumulative_doses_with_provenance():
    frame = harmonize_arm_doses(
        *_frames(
            [
                (SCHEDULED, None),
                ("100 µg", None),
                ("EVs from 2×10^6 cells", 3),
                ("100 µg/mouse", None),
            ]
        )
    )
    scheduled = frame.loc["a0"]
    assert scheduled["dose_ug_protein_per_kg"] == pytest.approx(120)  # 30 ug / 0.25 kg
    assert scheduled["dose_total_ug_protein_per_kg"] == pytest.approx(480)  # x 4 doses
    assert scheduled["dose_provenance_total_ug_protein_per_kg"] == "derived"
    assert (scheduled["dose_n_doses"], scheduled["dose_n_doses_source"]) == (4, "dose_text")
    assert (scheduled["dose_interval_days"], scheduled["dose_vehicle_volume_ul"]) == (14, 100)
    assert scheduled["dose_cumulative_ug_protein_per_kg"] == scheduled["dose_total_ug_protein_per_kg"]
    assumed = frame.loc["a1"]
    assert assumed["dose_total_ug_protein_per_kg"] == pytest.approx(400)
    assert (assumed["dose_n_doses_source"], assumed["dose_provenance_total_ug_protein_per_kg"]) == (
        "assumed",
        "imputed",
    )
    cells = frame.loc["a2"]
    assert cells["dose_total_cell_equivalents_per_kg"] == pytest.approx(2e6 / 0.25 * 3)
    assert cells["dose_provenance_total_cell_equivalents_per_kg"] == "derived"
    assert cells["dose_provenance_total_ug_protein_per_kg"] == "not_convertible"
    wrong_species = frame.loc["a3"]
    assert math.isnan(wrong_species["dose_ug_protein_per_kg"])
    assert "per mouse" in wrong_species["dose_note"]


def test_comparisons_carry_the_cumulative_columns():
    comparisons = em.build_comparisons(em.read_extraction(EXAMPLE), measure="SMD")
    table = comparisons.table
    for column in (
        "dose_total_ug_protein_per_kg",
        "dose_total_particles_per_kg",
        "dose_total_cell_equivalents_per_kg",
        "dose_provenance_total_ug_protein_per_kg",
    ):
        assert column in table.columns
    protein = table["dose_ug_protein_per_kg"].notna()
    assert protein.any()
    expected = table.loc[protein, "dose_ug_protein_per_kg"] * table.loc[protein, "dose_n_doses"]
    assert table.loc[protein, "dose_total_ug_protein_per_kg"].to_numpy() == pytest.approx(expected.to_numpy())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1 ug daily for 99999999999999999 days", "too_many_doses"),  # issue 11: n_doses was 1e17
        ("1 ug, 5000 injections", "too_many_doses"),
        ("1 ug every 0.000001 days for 7 days", "too_many_doses"),
        ("1 ug daily for 1001 days", "too_many_doses"),
        ("1 ug daily for " + "9" * 400 + " days", "overflow"),  # was an OverflowError
    ],
)
def test_schedules_of_more_than_a_thousand_doses_are_refused(text, reason):
    from evmeta.schema.doses.text import DoseTextError

    with pytest.raises(DoseTextError) as info:
        em.parse_dose(text)
    assert info.value.reason == reason


def test_a_thousand_doses_is_the_limit_shared_with_the_arms_sheet():
    from evmeta.schema.columns import SHEETS
    from evmeta.schema.doses.schedule import MAX_DOSES

    assert em.parse_dose("1 ug daily for 1000 days").n_doses == MAX_DOSES == 1000
    [column] = [c for c in SHEETS["arms"] if c.name == "n_doses"]
    assert column.maximum == MAX_DOSES


def test_cumulative_doses_need_a_count_in_range():
    # arms given to the API unvalidated: an n_doses beyond the limit is not multiplied in.
    arms, experiments, preparations = _frames([("100 µg", 1e17), ("100 µg", 0)])
    frame = harmonize_arm_doses(arms, experiments, preparations)
    for arm in ("a0", "a1"):
        row = frame.loc[arm]
        assert math.isnan(row["dose_total_ug_protein_per_kg"])
        assert row["dose_provenance_total_ug_protein_per_kg"] == "not_convertible"
        assert "outside 1-1,000: cumulative doses not computed" in row["dose_note"]
    assert frame.loc["a0", "dose_ug_protein_per_kg"] == pytest.approx(400)
