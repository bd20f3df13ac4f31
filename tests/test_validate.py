"""Reader and validator: planted mistakes, CSV input, row accounting, CLI exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from evmeta.schema.validation.validate import validate_extraction
from tests.conftest import EXAMPLE, edit, header_index, set_cell

runner = CliRunner()


def test_example_reads_cleanly():
    book = em.read_extraction(EXAMPLE)
    assert book.counts()["studies"] >= 24
    assert book.problems == []
    for frame in book.sheets.values():
        assert {"_file", "_sheet", "_row"} <= set(frame.columns)
        assert frame["_row"].min() >= 2
    # Fuzzy matches are kept as notes naming the cell.
    assert all(n.severity == "note" and n.row for n in book.notes if n.column)


def _plant(path: Path) -> dict[tuple[str, int | None, str | None], str]:
    """Plant one mistake of each kind; return (sheet, row, column) -> expected message part."""
    book = edit(path)
    expected = {}
    letter = set_cell(book, "outcomes", 14, "sd", -2.1)
    expected[("outcomes", 14, "sd")] = "must be > 0, got -2.1"
    assert letter == "L"
    set_cell(book, "outcomes", 15, "n", 0)
    expected[("outcomes", 15, "n")] = "must be >= 1, got 0"
    set_cell(book, "outcomes", 16, "mean", "twelve")
    expected[("outcomes", 16, "mean")] = "expected a number, got 'twelve'"
    set_cell(book, "outcomes", 17, "mean", "=B2*2")
    expected[("outcomes", 17, "mean")] = "is a formula"
    set_cell(book, "outcomes", 18, "sd", "#DIV/0!", data_type="e")
    expected[("outcomes", 18, "sd")] = "Excel error value #DIV/0!"
    ws = book["outcomes"]
    ws.cell(row=20, column=1).value = ws.cell(row=19, column=1).value
    expected[("outcomes", 20, "outcome_id")] = "duplicated id"
    set_cell(book, "preparations", 4, "study_id", "NOPE2020")
    expected[("preparations", 4, "study_id")] = "'NOPE2020' is not a study_id"
    set_cell(book, "preparations", 6, "isolation_method", "magic filtration")
    expected[("preparations", 6, "isolation_method")] = "unknown isolation step"
    ws = book["studies"]
    ws.cell(row=1, column=header_index(ws, "journal")).value = "jounral"
    expected[("studies", 1, "journal")] = "did you mean 'journal'"
    del book["risk_of_bias"]
    expected[("risk_of_bias", None, None)] = "sheet 'risk_of_bias' is missing"
    book.save(path)
    return expected


def test_planted_mistakes_are_reported_one_by_one(example_copy):
    expected = _plant(example_copy)
    with pytest.raises(em.ExtractionError) as info:
        em.read_extraction(example_copy)
    errors = [p for p in info.value.problems if p.severity == "error"]
    found = {(p.sheet, p.row, p.column): p for p in errors}
    for where, message in expected.items():
        assert where in found, f"not reported: {where}"
        assert message in found[where].message, (where, found[where].message)
    # Anything else is a consequence of a planted mistake, and says so.
    for problem in errors:
        if (problem.sheet, problem.row, problem.column) not in expected:
            assert "has errors" in problem.message, str(problem)
    assert str(found[("outcomes", 14, "sd")]) == "outcomes!L14 sd: must be > 0, got -2.1"


def test_cli_reports_planted_mistakes(example_copy):
    _plant(example_copy)
    result = runner.invoke(app, ["validate", str(example_copy)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert "outcomes!L14 sd: must be > 0, got -2.1" in lines
    assert lines[-1].startswith(tuple("0123456789")) and "error(s)" in lines[-1]
    # Sorted by sheet (workbook order) then row.
    sheets = [line.split("!")[0] for line in lines if "!" in line and not line.startswith("note")]
    order = ["studies", "preparations", "experiments", "arms", "outcomes", "risk_of_bias"]
    ranks = [order.index(s) for s in sheets if s in order]
    assert ranks == sorted(ranks)
    as_json = runner.invoke(app, ["validate", str(example_copy), "--json"])
    assert as_json.exit_code == 1
    payload = json.loads(as_json.output)
    cells = {p["cell"] for p in payload["problems"]}
    assert "outcomes!L14" in cells and payload["errors"] >= 10


def test_cli_exit_codes(tmp_path):
    assert runner.invoke(app, ["validate", str(EXAMPLE)]).exit_code == 0
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a zip at all")
    result = runner.invoke(app, ["validate", str(junk)])
    assert result.exit_code == 2
    assert "not an Excel workbook" in result.output
    other = tmp_path / "other.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Sheet1"
    book.save(other)
    result = runner.invoke(app, ["validate", str(other)])
    assert result.exit_code == 2 and "not an extraction workbook" in result.output
    assert runner.invoke(app, ["validate", str(tmp_path / "missing.xlsx")]).exit_code == 2


def _to_csv_folder(xlsx: Path, folder: Path) -> Path:
    folder.mkdir()
    book = openpyxl.load_workbook(xlsx)
    for name in ["studies", "preparations", "experiments", "arms", "outcomes", "risk_of_bias"]:
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for row in book[name].iter_rows(values_only=True):
                writer.writerow(["" if v is None else v for v in row])
    return folder


def test_csv_folder_reads_like_the_workbook(tmp_path):
    folder = _to_csv_folder(EXAMPLE, tmp_path / "csv")
    from_csv = em.read_extraction(folder)
    from_xlsx = em.read_extraction(EXAMPLE)
    for name, frame in from_xlsx.sheets.items():
        other = from_csv.sheets[name]
        assert len(frame) == len(other), name
        assert list(frame["_row"]) == list(other["_row"])
    assert from_csv.outcomes["sd"].astype(float).sum() == pytest.approx(
        from_xlsx.outcomes["sd"].astype(float).sum()
    )


def test_row_accounting(example_copy):
    """Every non-empty row is in the Extraction or named by an error (or its sheet's error)."""
    _plant(example_copy)
    extraction, problems = validate_extraction(example_copy)
    assert extraction is not None
    raw = openpyxl.load_workbook(example_copy)
    error_rows = {(p.sheet, p.row) for p in problems if p.severity == "error"}
    # Rows left out because they depend on a row with errors are folded into its line.
    error_rows |= {d for p in problems if p.severity == "error" for d in p.dependents}
    sheet_errors = {p.sheet for p in problems if p.severity == "error" and p.row is None}
    for name, frame in extraction.sheets.items():
        kept = set(frame["_row"])
        if name not in raw.sheetnames:
            assert name in sheet_errors
            continue
        for number, row in enumerate(raw[name].iter_rows(min_row=2, values_only=True), start=2):
            if all(v is None or str(v).strip() == "" for v in row):
                continue
            assert number in kept or (name, number) in error_rows or name in sheet_errors, (name, number)
            assert not (number in kept and (name, number) in error_rows), (name, number)


def test_required_column_missing_reports_closest_header(example_copy):
    book = edit(example_copy)
    ws = book["outcomes"]
    ws.cell(row=1, column=header_index(ws, "higher_is_better")).value = "higher_better"
    book.save(example_copy)
    extraction, problems = validate_extraction(example_copy)
    messages = [str(p) for p in problems if p.sheet == "outcomes" and p.severity == "error"]
    assert any("did you mean 'higher_is_better'" in m for m in messages)
    assert any("required column 'higher_is_better' is missing" in m for m in messages)
    assert extraction.outcomes.empty


def test_outcome_without_statistic_and_ev_arm_without_prep(example_copy):
    book = edit(example_copy)
    for column in ["mean", "sd", "sem", "median", "q1", "q3"]:
        set_cell(book, "outcomes", 5, column, None)
    set_cell(book, "arms", 4, "prep_id", None)
    arm_role = book["arms"].cell(row=4, column=header_index(book["arms"], "role")).value
    book.save(example_copy)
    _, problems = validate_extraction(example_copy)
    text = [str(p) for p in problems if p.severity == "error"]
    assert any(t.startswith("outcomes!5:") and "no usable statistic" in t for t in text)
    if arm_role == "ev":
        assert any(t.startswith("arms!E4 prep_id: an ev arm needs") for t in text)


def test_experiment_without_control_arm(example_copy):
    book = edit(example_copy)
    ws = book["arms"]
    role = header_index(ws, "role")
    for row in range(2, ws.max_row + 1):
        if ws.cell(row=row, column=role).value == "vehicle_control":
            ws.cell(row=row, column=role).value = "sham"
            break
    book.save(example_copy)
    _, problems = validate_extraction(example_copy)
    assert any("no vehicle_control arm" in p.message and p.sheet == "experiments" for p in problems)


def test_duplicated_id_reported_when_the_first_row_has_errors(example_copy):
    """The first row with the id has another error; the second is still named as a duplicate
    at its id cell, and rows that refer to the id are told it is duplicated, not that a row
    'has errors' they cannot find."""
    book = edit(example_copy)
    ws = book["studies"]
    first_id = ws.cell(row=2, column=header_index(ws, "study_id")).value
    fourth_id = ws.cell(row=4, column=header_index(ws, "study_id")).value
    set_cell(book, "studies", 2, "year", "twenty")
    set_cell(book, "studies", 3, "study_id", first_id)
    set_cell(book, "studies", 4, "year", "nineteen")
    set_cell(book, "studies", 5, "study_id", fourth_id)
    book.save(example_copy)
    _, problems = validate_extraction(example_copy)
    errors = {(p.sheet, p.row, p.column): p.message for p in problems if p.severity == "error"}
    assert errors[("studies", 3, "study_id")] == "duplicated id: the same study_id is on row 2"
    assert errors[("studies", 5, "study_id")].startswith("duplicated id: the same study_id is on row 4")
    assert "expected a number" in errors[("studies", 2, "year")]
    dependants = [
        p
        for p in problems
        if p.sheet in {"experiments", "preparations"}
        and p.column == "study_id"
        and p.value in {first_id, fourth_id}
    ]
    assert dependants
    for problem in dependants:
        assert "the id is duplicated" in problem.message, str(problem)
        assert "rows 2 and 3" in problem.message or "rows 4 and 5" in problem.message


def test_duplicated_composite_key_reported_when_the_first_row_has_errors(example_copy):
    """risk_of_bias rows are keyed by study_id/experiment_id: a copy of a row whose first
    occurrence has an invalid judgement is still named as a duplicate, as a single id is."""
    book = edit(example_copy)
    ws = book["risk_of_bias"]
    copy_row = ws.max_row + 1
    for cell in ws[2]:
        ws.cell(row=copy_row, column=cell.column).value = cell.value
    set_cell(book, "risk_of_bias", 2, "rob_sequence_generation", "maybe")
    book.save(example_copy)
    _, problems = validate_extraction(example_copy)
    errors = {(p.sheet, p.row, p.column): p.message for p in problems if p.severity == "error"}
    assert "unknown value 'maybe'" in errors[("risk_of_bias", 2, "rob_sequence_generation")]
    assert errors[("risk_of_bias", copy_row, "study_id")] == (
        "duplicated id: the same study_id/experiment_id is on row 2"
    )


def test_duplicated_composite_key_with_a_later_row_in_error(example_copy):
    """The duplicate itself has another error: it is named at its key cell too, once."""
    book = edit(example_copy)
    ws = book["risk_of_bias"]
    copy_row = ws.max_row + 1
    for cell in ws[2]:
        ws.cell(row=copy_row, column=cell.column).value = cell.value
    set_cell(book, "risk_of_bias", copy_row, "rob_other", "maybe")
    book.save(example_copy)
    _, problems = validate_extraction(example_copy)
    duplicates = [p for p in problems if p.sheet == "risk_of_bias" and "duplicated id" in p.message]
    assert [(p.row, p.column) for p in duplicates] == [(copy_row, "study_id")]
    assert "row 2" in duplicates[0].message


@pytest.mark.parametrize("typed", ["inf", "5x10^308", "1x10^999", "NaN", "-Infinity"])
def test_non_finite_numbers_are_errors_at_their_cell(example_copy, typed):
    book = edit(example_copy)
    set_cell(book, "outcomes", 7, "sd", typed)
    book.save(example_copy)
    _, problems = validate_extraction(example_copy)
    found = [p for p in problems if (p.sheet, p.row, p.column) == ("outcomes", 7, "sd")]
    assert found and found[0].severity == "error"
    assert "expected a finite number" in found[0].message


def test_header_only_template_gives_a_sentence(tmp_path):
    """An empty book: validate passes with no rows; harmonize says there is nothing to compare."""
    path = em.write_template(tmp_path / "empty.xlsx")
    book = em.read_extraction(path)
    with pytest.raises(em.ExtractionError, match="no valid outcome rows"):
        em.build_comparisons(book)
    result = runner.invoke(app, ["harmonize", str(path), "-o", str(tmp_path / "c.csv")])
    assert result.exit_code == 1
    assert "no valid outcome rows" in result.output
    assert isinstance(result.exception, SystemExit)
