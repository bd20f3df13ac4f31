"""SD or SEM? Notes, never errors, on outcome rows whose sd may hold a standard error
(issue 22 item 5; evmeta/schema/validation/dispersion_check.py)."""

from __future__ import annotations

import math

import pytest

import evmeta as em
from evmeta.schema.validation.dispersion_check import (
    CV_Z_THRESHOLD,
    RATIO_TOLERANCE,
    _notes_note,
    _ratio_note,
)
from tests.small_reviews import five_studies, row_of, write_review


def _notes(tmp_path, sheets, check):
    book = em.read_extraction(write_review(tmp_path, sheets))  # strict: notes never block a read
    return {p.row: p for p in book.notes if p.check == check}


def test_sd_equal_to_sem_is_noted_at_the_sd_cell(tmp_path):
    sheets = five_studies()
    row, outcome = row_of(sheets, "outcomes", "outcome_id", "CHEN2020-E1-EV-O")
    outcome["sem"] = outcome["sd"]
    notes = _notes(tmp_path, sheets, "sd_sem_ratio")
    assert list(notes) == [row]
    note = notes[row]
    assert note.severity == "note" and note.column == "sd" and note.column_letter is not None
    assert "sd / sem = 1.00" in note.message and "sqrt(n) = 2.45" in note.message


@pytest.mark.parametrize(
    ("sd", "sem", "n", "noted"),
    [
        (7.0, 7.0 / math.sqrt(8), 8, False),  # exact
        (7.0, 2.5, 8, False),  # rounded SEM: ratio 2.80 vs 2.83
        (7.0, 7.0 / math.sqrt(8) * (1 + RATIO_TOLERANCE * 0.9), 8, False),  # inside the tolerance
        (7.0, 7.0 / math.sqrt(8) * (1 + RATIO_TOLERANCE * 1.5), 8, True),
        (2.0, 2.0, 2, True),  # sd == sem is caught from n = 2 (sqrt 2 = 1.41)
        (7.0, None, 8, False),
    ],
)
def test_ratio_rule(sd, sem, n, noted):
    assert (_ratio_note({"sd": sd, "sem": sem, "n": n}) is not None) is noted


@pytest.mark.parametrize(
    ("notes", "noted"),
    [
        ("mean ± SE", True),
        ("values are SEM", True),
        ("s.e.m. from Figure 2", True),
        ("standard error of the mean", True),
        ("mean ± SD", False),
        ("SEC-purified EVs", False),
        ("used as described", False),
    ],
)
def test_notes_that_say_sem(notes, noted):
    assert (_notes_note({"sd": 1.0, "sem": None, "notes": notes}) is not None) is noted
    # With sem filled too, the ratio rule speaks instead.
    assert _notes_note({"sd": 1.0, "sem": 0.4, "notes": notes}) is None


def test_sem_in_sd_with_notes_saying_se_is_noted(tmp_path):
    sheets = five_studies()
    row, outcome = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-EV-O")
    outcome.update(sd=2.5, notes="mean ± SE (Fig. 3B)")
    notes = _notes(tmp_path, sheets, "sd_notes_say_sem")
    assert list(notes) == [row] and "'SE'" in notes[row].message and "sem column" in notes[row].message


def _many_infarct_rows(sheets):
    """Give the review 12 more infarct-volume arms (CV about 0.2-0.3) in three more studies."""
    for s in range(3):
        study, exp = f"EXTRA{s}", f"EXTRA{s}-E1"
        sheets["studies"].append({"study_id": study, "first_author": "Extra", "year": 2020 + s})
        sheets["preparations"].append(
            {
                "prep_id": f"{study}-P",
                "study_id": study,
                "msc_tissue_source": "adipose",
                "isolation_method": "UC",
            }
        )
        sheets["experiments"].append(
            {
                "experiment_id": exp,
                "study_id": study,
                "species": "rat",
                "disease_model": "focal_cerebral_ischemia",
            }
        )
        for a, (role, mean, sd) in enumerate(
            [("vehicle_control", 40, 9), ("ev", 30, 8), ("ev", 28, 7), ("ev", 26, 7.5)]
        ):
            arm = f"{exp}-A{a}"
            sheets["arms"].append(
                {
                    "arm_id": arm,
                    "experiment_id": exp,
                    "role": role,
                    "prep_id": None if a == 0 else f"{study}-P",
                }
            )
            sheets["outcomes"].append(
                {
                    "outcome_id": f"{arm}-O",
                    "experiment_id": exp,
                    "arm_id": arm,
                    "outcome": "Infarct volume",  # same outcome, another capitalization
                    "unit": "% of hemisphere",
                    "timepoint": 28,
                    "higher_is_better": "no",
                    "n": 8,
                    "mean": mean,
                    "sd": sd,
                }
            )
    return sheets


def test_cv_outlier_flags_an_sem_typed_as_sd(tmp_path):
    sheets = _many_infarct_rows(five_studies())
    clean = _notes(tmp_path / "clean", sheets, "cv_outlier")
    assert clean == {}
    row, outcome = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-EV-O")
    outcome["sd"] = round(7.0 / math.sqrt(8), 2)  # the SEM, typed as SD
    notes = _notes(tmp_path / "sem", sheets, "cv_outlier")
    assert list(notes) == [row]
    assert (
        "unusually small" in notes[row].message and "over 16 rows of 'infarct volume'" in notes[row].message
    )
    z = float(notes[row].message.split("robust z = ")[1].split(";")[0])
    assert z < -CV_Z_THRESHOLD


def test_cv_rule_needs_enough_rows_and_studies(tmp_path):
    # The five-study review alone: at most 4 rows of one outcome and unit, so no CV notes
    # even with an SEM typed as SD.
    sheets = five_studies()
    _, outcome = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-EV-O")
    outcome["sd"] = 2.47
    assert _notes(tmp_path, sheets, "cv_outlier") == {}
