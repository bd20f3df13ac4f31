"""Validation catches what harmonize would drop, at the cell (issue 22, items 4 and 6), on a
five-study review with one study per isolation method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.schema.validation.validate import validate_extraction
from tests.small_reviews import five_studies, row_of, write_review


def _errors(problems):
    return [p for p in problems if p.severity == "error"]


def _validate(tmp_path, sheets):
    extraction, problems = validate_extraction(write_review(tmp_path, sheets))
    return extraction, problems


def test_clean_review_validates_and_every_outcome_row_is_accounted_for(tmp_path):
    book = em.read_extraction(write_review(tmp_path))
    result = em.build_comparisons(book)
    # Five studies, PARK2021 with two routes: six comparisons, each with its own control.
    assert len(result) == 6 and result.table["study_id"].nunique() == 5
    park = result.table[result.table["study_id"] == "PARK2021"].set_index("arm_id")
    assert park.loc["PARK2021-E1-EV1", "control_arm_id"] == "PARK2021-E1-C1"
    assert park.loc["PARK2021-E1-EV2", "control_arm_id"] == "PARK2021-E1-C2"
    assert (park["control_split_among"] == 1).all()  # one EV arm per control: nothing split
    # SMD by hand for the intramyocardial pair (control 41, EV 28, SD 6.5, n 8), flipped sign;
    # Hedges' exact correction J(m) = G(m/2) / (sqrt(m/2) G((m-1)/2)), m = 14 (metafor's).
    from scipy.special import gammaln

    d = (28.0 - 41.0) / 6.5
    g = d * np.exp(gammaln(7) - np.log(np.sqrt(7)) - gammaln(6.5))
    np.testing.assert_allclose(park.loc["PARK2021-E1-EV2", "yi"], -g, rtol=1e-12)
    used = set(result.table["treat_outcome_row"]) | set(result.table["control_outcome_row"])
    assert used | set(result.exclusions["row"]) == set(book.outcomes["_row"])


def test_two_controls_without_pairing_column_is_one_error_with_the_fix(tmp_path):
    sheets = five_studies()
    for arm in sheets["arms"]:
        arm["control_arm_id"] = None
    _, problems = _validate(tmp_path, sheets)
    errors = _errors(problems)
    assert len(errors) == 1, [str(p) for p in errors]
    (error,) = errors
    row, _ = row_of(sheets, "outcomes", "outcome_id", "PARK2021-E1-EV1-O")
    assert (error.sheet, error.row, error.column) == ("outcomes", row, "arm_id")
    assert "2 vehicle_control rows" in error.message and "nor EV rows" in error.message
    assert "arms.control_arm_id" in error.message and "one experiment per control" in error.message
    other, _ = row_of(sheets, "outcomes", "outcome_id", "PARK2021-E1-EV2-O")
    assert error.dependents == (("outcomes", other),)  # the other EV row, named in this line
    # Harmonize (strict=False keeps the rest) agrees: both EV rows of PARK2021 are out.
    book = em.read_extraction(write_review(tmp_path / "lenient", sheets), strict=False)
    result = em.build_comparisons(book)
    assert "PARK2021" not in set(result.table["study_id"]) and len(result) == 4


def test_build_comparisons_logs_unpaired_rows_in_a_two_control_experiment():
    """Without validation (an Extraction built in Python): the same reason in exclusions."""
    import tempfile
    from pathlib import Path

    sheets = five_studies()
    sheets["arms"] = [
        dict(a, control_arm_id=None) if a["arm_id"].endswith("EV2") else a for a in sheets["arms"]
    ]
    with tempfile.TemporaryDirectory() as folder:
        book = em.read_extraction(write_review(Path(folder), sheets), strict=False)
    assert any("control_arm_id" in p.message for p in book.problems)
    # The EV2 row was dropped at validation; EV1 still names its control and is compared.
    result = em.build_comparisons(book)
    assert "PARK2021-E1-EV1" in set(result.table["arm_id"])
    assert "PARK2021-E1-EV2" not in set(result.table["arm_id"])


def test_ev_row_without_control_row_names_the_time_points_the_control_has(tmp_path):
    sheets = five_studies()
    _row, control = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-C-O")
    control["timepoint"] = 7
    _, problems = _validate(tmp_path, sheets)
    (error,) = _errors(problems)
    ev_row, _ = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-EV-O")
    # Named at the cell most likely wrong: the control has the outcome at another time.
    assert (error.sheet, error.row, error.column) == ("outcomes", ev_row, "timepoint")
    assert "no vehicle_control row for 'infarct volume' at 28 d" in error.message
    assert "the control arm has this outcome at 7 d" in error.message


def test_control_row_with_errors_is_the_one_line(tmp_path):
    """The EV row is valid; it only lacks its (broken) control: one line, at the control."""
    sheets = five_studies()
    row, control = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-C-O")
    control["sd"] = -7
    extraction, problems = _validate(tmp_path, sheets)
    (error,) = _errors(problems)
    assert (error.row, error.column) == (row, "sd")
    # Kept for harmonize, which logs why it is not compared while the control is broken.
    ev_row, _ = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-EV-O")
    assert ev_row in set(extraction.outcomes["_row"])
    exclusions = em.build_comparisons(extraction).exclusions.set_index("row")
    assert exclusions.loc[ev_row, "reason"] == "no vehicle_control row for this outcome and time point"


def test_misspelled_outcome_is_named_at_the_outcome_cell(tmp_path):
    sheets = five_studies()
    row, outcome = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-EV-O")
    outcome["outcome"] = "Infarct volume"
    _, problems = _validate(tmp_path, sheets)
    (error,) = _errors(problems)
    assert (error.row, error.column) == (row, "outcome")
    assert "the control rows spell the outcome 'infarct volume'" in error.message


def test_named_control_must_be_a_vehicle_control_of_the_same_experiment(tmp_path):
    sheets = five_studies()
    a_row, arm = row_of(sheets, "arms", "arm_id", "PARK2021-E1-EV2")
    arm["control_arm_id"] = "PARK2021-E1-EV1"
    _, problems = _validate(tmp_path, sheets)
    found = {(p.sheet, p.row, p.column): p.message for p in _errors(problems)}
    assert "must name a vehicle_control arm" in found[("arms", a_row, "control_arm_id")]
    arm["control_arm_id"] = "LI2019-E1-C"
    _, problems = _validate(tmp_path / "b", sheets)
    found = {(p.sheet, p.row, p.column): p.message for p in _errors(problems)}
    assert "the control must be in the same experiment" in found[("arms", a_row, "control_arm_id")]
    arm["control_arm_id"] = "PARK2021-E1-C3"
    _, problems = _validate(tmp_path / "c", sheets)
    found = {(p.sheet, p.row, p.column): p.message for p in _errors(problems)}
    assert "did you mean" in found[("arms", a_row, "control_arm_id")]


def test_dose_texts_are_read_at_validation(tmp_path):
    sheets = five_studies()
    texts = {"LI2019-E1-EV": "2 × 1010", "CHEN2020-E1-EV": "5–10 ug/500 μl", "KIM2022-E1-EV": "100 µg/mouse"}
    for arm in sheets["arms"]:
        arm["dose_text"] = texts.get(arm["arm_id"], arm.get("dose_text"))
    _extraction, problems = _validate(tmp_path, sheets)
    notes = {p.row: p for p in problems if p.check == "dose_text" and p.severity == "note"}
    li, _ = row_of(sheets, "arms", "arm_id", "LI2019-E1-EV")
    chen, _ = row_of(sheets, "arms", "arm_id", "CHEN2020-E1-EV")
    assert "[no_unit]" in notes[li].message and "analysed without a dose" in notes[li].message
    assert "[range]" in notes[chen].message and notes[chen].column == "dose_text"
    (error,) = _errors(problems)
    kim, _ = row_of(sheets, "arms", "arm_id", "KIM2022-E1-EV")
    assert (error.sheet, error.row, error.column) == ("arms", kim, "dose_text")
    assert "per mouse" in error.message and "is in rat" in error.message
    # The arm's outcome row is folded into that one line, not a line of its own.
    assert len(error.dependents) == 1 and error.dependents[0][0] == "outcomes"


def test_one_typo_gives_one_line_with_did_you_mean_and_folded_rows(tmp_path):
    sheets = five_studies()
    exp_row, experiment = row_of(sheets, "experiments", "experiment_id", "PARK2021-E1")
    experiment["disease_model"] = "heart attack of the soul"
    for outcome in sheets["outcomes"]:
        if outcome["experiment_id"] == "LI2019-E1":
            outcome["experiment_id"] = "LI2019-EI"  # a letter I for the digit 1
    _, problems = _validate(tmp_path, sheets)
    errors = _errors(problems)
    # The bad disease model: one line, its 4 arms and 4 outcome rows folded into it.
    model = next(p for p in errors if p.sheet == "experiments")
    assert model.row == exp_row and len(model.dependents) == 8
    assert "and 8 rows that depend on it are left out until it is fixed" in model.message
    typos = [p for p in errors if p.sheet == "outcomes"]
    assert len(typos) == 2 and all("did you mean 'LI2019-E1'?" in p.message for p in typos)
    assert len(errors) == 3


@pytest.mark.parametrize(
    ("column", "typed", "hint"),
    [
        ("mean", "27.5 ± 7.0", "type 27.5 in mean and 7.0 in sd or sem"),
        ("mean", "24 +/- 7 (SEM)", "type 24 in mean and 7 in sem"),
        ("timepoint", "28 d", "type 28 in timepoint and 'days' in timepoint_unit"),
        ("n", "n=8", "type the number alone (8)"),
    ],
)
def test_number_cells_typed_with_more_than_a_number_get_a_hint(tmp_path, column, typed, hint):
    sheets = five_studies()
    row, outcome = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-EV-O")
    outcome[column] = typed
    _, problems = _validate(tmp_path, sheets)
    (error,) = _errors(problems)
    assert (error.row, error.column) == (row, column)
    assert hint in error.message, error.message


def test_validation_notes_table_and_harmonize_writes_it(tmp_path):
    from typer.testing import CliRunner

    from evmeta.cli import app

    sheets = five_studies()
    _, outcome = row_of(sheets, "outcomes", "outcome_id", "CHEN2020-E1-EV-O")
    outcome.update(sem=outcome["sd"], notes="mean ± SE")
    folder = write_review(tmp_path / "in", sheets)
    book = em.read_extraction(folder)
    frame = book.notes_frame(checks_only=True)
    assert list(frame.columns) == ["sheet", "row", "cell", "column", "value", "check", "message"]
    assert set(frame["check"]) == {"sd_sem_ratio"}
    out = tmp_path / "out" / "comparisons.csv"
    result = CliRunner().invoke(app, ["harmonize", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out.parent / "validation_notes.csv")
    assert em.build_comparisons(book).validation_notes.equals(book.notes_frame())
    assert "sd_sem_ratio" in set(written["check"])
    shown = CliRunner().invoke(app, ["validate", str(folder)])
    assert "note: outcomes!" in shown.output and "sd / sem = 1.00" in shown.output


def test_did_you_mean_for_arm_references(tmp_path):
    from evmeta.schema.validation.suggest import did_you_mean

    assert did_you_mean("li2019-e1-ev", ["LI2019-E1-EV", "LI2019-E1-C"]) == "; did you mean 'LI2019-E1-EV'?"
    assert did_you_mean("SMTH2021", ["SMITH2021", "JONES2020"]) == "; did you mean 'SMITH2021'?"
    assert did_you_mean("XYZ", ["SMITH2021"]) == ""
    sheets = five_studies()
    row, outcome = row_of(sheets, "outcomes", "outcome_id", "LI2019-E1-EV-O")
    outcome["arm_id"] = "LI2019-E1-Ev"
    _, problems = _validate(tmp_path, sheets)
    (error,) = _errors(problems)
    assert (error.row, error.column) == (row, "arm_id")
    assert error.message.endswith("did you mean 'LI2019-E1-EV'?")


def test_four_mistakes_give_four_lines_in_validate(tmp_path):
    """The issue's newcomer: four mistakes were 19 error lines; now one line each."""
    from typer.testing import CliRunner

    from evmeta.cli import app

    sheets = five_studies()
    _, arm = row_of(sheets, "arms", "arm_id", "ROSSI2018-E1-EV")
    arm["experiment_id"] = "ROSSI2018-El"  # a letter l for the digit 1
    for a in sheets["arms"]:
        a["control_arm_id"] = None  # PARK2021: two controls, no pairing
    _, outcome = row_of(sheets, "outcomes", "outcome_id", "KIM2022-E1-EV-O")
    outcome["mean"] = "27.5 ± 7.0"
    _, outcome = row_of(sheets, "outcomes", "outcome_id", "CHEN2020-E1-EV-O")
    outcome.update(sd=0.2, notes="mean ± SEM")  # SEM typed as SD: a note, not an error
    result = CliRunner().invoke(app, ["validate", str(write_review(tmp_path, sheets))])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if not line.startswith("note:") and "!" in line]
    assert len(errors) == 3, errors
    assert any("did you mean 'ROSSI2018-E1'?" in e and "1 row that depends on it" in e for e in errors)
    assert any("2 vehicle_control rows" in e for e in errors)
    assert any("type 27.5 in mean and 7.0 in sd or sem" in e for e in errors)
    assert any(line.startswith("note:") and "'SEM'" in line for line in lines)
    assert lines[-1].startswith("3 error(s)")
