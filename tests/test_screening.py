"""Screening log: the workbook written from dedupe output, its validation (sheet/row/column),
the screeners' kappa (checked against a hand computation), and included reports carrying
their record_id into the studies sheet."""

from __future__ import annotations

import sys
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from evmeta.review.dedupe import dedupe_file
from evmeta.review.screening import (
    COLUMNS,
    EXCLUSION_REASONS,
    ScreeningError,
    included_study_rows,
    read_screening,
    screening_agreement,
    write_screening_sheet,
)
from tests.conftest import ROOT

SEARCH = ROOT / "extraction" / "search"
EXPORTS = [SEARCH / "pubmed.nbib", SEARCH / "embase.ris", SEARCH / "scopus.csv"]
sys.path.insert(0, str(SEARCH))
from make_search import fill_screening  # noqa: E402  (the generator of the bundled fixture)


@pytest.fixture(scope="module")
def deduplicated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("screen") / "deduplicated.csv"
    dedupe_file(EXPORTS, out)
    return out


@pytest.fixture(scope="module")
def filled(deduplicated) -> Path:
    sheet = write_screening_sheet(deduplicated, deduplicated.parent / "screening.xlsx")
    return fill_screening(sheet, deduplicated.parent / "filled.xlsx")


def test_sheet_has_one_row_per_kept_record_and_dropdowns(deduplicated, tmp_path):
    path = write_screening_sheet(deduplicated, tmp_path / "s.xlsx")
    book = openpyxl.load_workbook(path)
    sheet = book["screening"]
    assert [c.value for c in sheet[1]] == [c.name for c in COLUMNS]
    ids = [sheet.cell(r, 1).value for r in range(2, sheet.max_row + 1)]
    assert len(ids) == 94  # 153 records, 59 duplicates (hand count in make_search.py)
    zhang = next(
        r for r in range(2, sheet.max_row + 1) if sheet.cell(r, 5).value == "10.9999/evmeta.example.001"
    )
    assert sheet.cell(zhang, 3).value == "zhang" and sheet.cell(zhang, 4).value == 2020
    assert sheet.cell(zhang, 6).value == "pubmed.nbib; scopus.csv"  # found in two databases
    validated = {
        str(r).split(":")[0].rstrip("0123456789")
        for dv in sheet.data_validations.dataValidation
        for r in dv.sqref.ranges
    }
    choice_letters = {
        openpyxl.utils.get_column_letter(i + 1) for i, c in enumerate(COLUMNS) if c.kind == "choice"
    }
    assert validated == choice_letters
    reasons = [book["lists"].cell(r, COLUMNS.index(next(c for c in COLUMNS if c.name == "exclusion_reason")) + 1).value
               for r in range(2, 2 + len(EXCLUSION_REASONS))]  # fmt: skip
    assert reasons == list(EXCLUSION_REASONS)


def test_unscreened_rows_are_named_by_sheet_row_and_column(deduplicated, tmp_path):
    path = write_screening_sheet(deduplicated, tmp_path / "s.xlsx")
    with pytest.raises(ScreeningError) as caught:
        read_screening(path)
    first = caught.value.problems[0]
    assert (
        str(first)
        == "screening!I2 ta_decision: title/abstract consensus is empty: screen this record (include or exclude)"
    )
    assert len(caught.value.problems) == 94


def _small_book(tmp_path: Path, rows: list[dict]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "screening"
    sheet.append([c.name for c in COLUMNS])
    for row in rows:
        sheet.append([row.get(c.name) for c in COLUMNS])
    path = tmp_path / "small.xlsx"
    book.save(path)
    return path


def test_contradictions_are_errors_at_the_right_cell(tmp_path):
    rows = [
        {"record_id": 1, "ta_decision": "exclude", "ft_decision": "include", "final_decision": "exclude"},
        {"record_id": 2, "ta_decision": "include", "ft_decision": "exclude", "final_decision": "exclude"},
        {"record_id": 3, "ta_decision": "Include", "ft_decision": "include", "final_decision": "exclude"},
        {"record_id": 3, "ta_decision": "maybe", "final_decision": "exclude"},
        {
            "record_id": 5,
            "ta_decision": "exclude",
            "exclusion_reason": "no_control",
            "final_decision": "exclude",
        },
    ]
    with pytest.raises(ScreeningError) as caught:
        read_screening(_small_book(tmp_path, rows))
    messages = {str(p) for p in caught.value.problems}
    assert "screening!L2 ft_decision: has 'include' but the record was excluded at title/abstract" in messages
    assert (
        "screening!M3 exclusion_reason: a report excluded at full text needs a reason from the list"
        in messages
    )
    assert (
        "screening!N4 final_decision: expected 'include' from ta_decision/ft_decision, got 'exclude'"
        in messages
    )
    assert any(m.startswith("screening!I5 ta_decision: unknown value 'maybe'") for m in messages)
    assert "screening!A4 record_id: record_id 3 appears twice" in messages
    assert (
        "screening!M6 exclusion_reason: a reason is given but the report was not excluded at full text"
        in messages
    )


def test_kappa_equals_a_hand_count(tmp_path):
    # Reviewer 1: 3 include, 7 exclude; reviewer 2 agrees on 8 of 10 (one each way).
    first = ["include"] * 3 + ["exclude"] * 7
    second = ["include", "include", "exclude"] + ["exclude"] * 6 + ["include"]
    rows = [
        {
            "record_id": i + 1,
            "ta_reviewer_1": a,
            "ta_reviewer_2": b,
            "ta_decision": "exclude",
            "final_decision": "exclude",
        }
        for i, (a, b) in enumerate(zip(first, second, strict=True))
    ]
    agreement = screening_agreement(read_screening(_small_book(tmp_path, rows))).set_index("stage")
    # p_o = 0.8; p_e = 0.3*0.3 + 0.7*0.7 = 0.58; kappa = (0.8 - 0.58) / 0.42 (Cohen 1960).
    assert agreement.loc["title_abstract", "kappa"] == pytest.approx(0.22 / 0.42, abs=1e-12)
    assert agreement.loc["title_abstract", "percent_agreement"] == pytest.approx(80.0)
    assert agreement.loc["full_text", "n_compared"] == 0


def test_filled_fixture_reads_and_included_reports_carry_record_ids(filled, tmp_path):
    screening = read_screening(filled)
    assert len(screening.table) == 93 and len(screening.included) == 69
    rows = included_study_rows(screening)
    assert len({r["study_id"] for r in rows}) == 69  # ids made unique (ZHANG2020, ZHANG2020a, ...)
    book = em.write_template(tmp_path / "book.xlsx", data={"studies": rows})
    extraction, problems = em.validate_extraction(book)
    assert not [p for p in problems if p.sheet == "studies" and p.severity == "error"]
    studies = extraction.sheets["studies"]
    assert sorted(studies["record_id"].astype(int)) == sorted(screening.included["record_id"].astype(int))


def test_cli_writes_and_checks(deduplicated, filled, tmp_path):
    runner = CliRunner()
    out = tmp_path / "screening.xlsx"
    result = runner.invoke(app, ["screen-sheet", str(deduplicated), "-o", str(out)])
    assert result.exit_code == 0 and out.exists()
    result = runner.invoke(app, ["screen-sheet", "--check", str(out)])
    assert result.exit_code == 1 and "screening!I2 ta_decision" in result.output
    result = runner.invoke(
        app,
        ["screen-sheet", str(deduplicated), "--check", str(filled), "--studies", str(tmp_path / "b.xlsx")],
    )
    assert result.exit_code == 0, result.output
    assert "93 records screened, 69 reports included" in result.output
    assert "Cohen's kappa" in result.output and (tmp_path / "b.xlsx").exists()
