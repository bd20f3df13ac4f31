"""Malformed input never produces anything but a clear message (property-based)."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from evmeta.cli import app
from evmeta.errors import Problem
from evmeta.schema.columns import SHEETS
from evmeta.schema.validation.validate import validate_extraction
from tests.conftest import EXAMPLE, edit, set_cell

runner = CliRunner()
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _assert_clean(problems: list[Problem]) -> None:
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.message and "Traceback" not in problem.message
        str(problem)  # formats without error


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    extraction, problems = validate_extraction(empty)
    assert extraction is None and "not an Excel workbook" in problems[0].message
    result = runner.invoke(app, ["validate", str(empty)])
    assert (result.exit_code == 2 and result.exception is None) or isinstance(result.exception, SystemExit)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_named_xlsx(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rnd") / "random.xlsx"
    path.write_bytes(data)
    extraction, problems = validate_extraction(path)
    assert extraction is None
    _assert_clean(problems)


@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes_as_csv(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("csvrnd")
    (folder / "studies.csv").write_bytes(data)
    _, problems = validate_extraction(folder)
    _assert_clean(problems)
    assert any(p.severity == "error" for p in problems)


def _csv_folder(tmp: Path, delimiter: str = ",", encoding: str = "utf-8") -> Path:
    folder = tmp / "csv"
    folder.mkdir(parents=True, exist_ok=True)
    book = openpyxl.load_workbook(EXAMPLE)
    for name in SHEETS:
        with (folder / f"{name}.csv").open("w", newline="", encoding=encoding, errors="replace") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            for row in book[name].iter_rows(values_only=True):
                writer.writerow(["" if v is None else v for v in row])
    return folder


def test_semicolon_and_tab_delimiters_are_read_with_a_note(tmp_path):
    for delimiter in [";", "\t"]:
        folder = _csv_folder(tmp_path / repr(delimiter), delimiter)
        extraction, problems = validate_extraction(folder)
        assert not [p for p in problems if p.severity == "error"], problems[:3]
        assert any("delimiter" in p.message for p in problems)
        assert len(extraction.outcomes) > 100


def test_windows_1252_and_utf16_csv(tmp_path):
    folder = _csv_folder(tmp_path / "cp", encoding="cp1252")
    text = (folder / "arms.csv").read_text(encoding="cp1252").replace("vehicle (PBS)", "vehicle µg")
    (folder / "arms.csv").write_bytes(text.encode("cp1252"))
    extraction, problems = validate_extraction(folder)
    assert any("Windows-1252" in p.message for p in problems)
    assert "vehicle µg" in set(extraction.arms["arm_label"])
    folder16 = _csv_folder(tmp_path / "u16", encoding="utf-16")
    extraction, problems = validate_extraction(folder16)
    assert not [p for p in problems if p.severity == "error"]


@FUZZ
@given(
    sheet=st.sampled_from(list(SHEETS)),
    row=st.integers(min_value=2, max_value=12),
    column=st.integers(min_value=0, max_value=8),
    value=st.one_of(
        st.text(max_size=30),
        st.sampled_from(
            [
                "#N/A",
                "=1+1",
                "1,5",
                "1,000",
                "−3",
                "1.5 x 10^9",
                "2×10⁹",
                "NA",
                "µg",
                "μg",
                "ug",
                "2021-03-04",
                "\x00",
                "'",
                '"',
                "1e400",
                "nan",
                "inf",
                "-0",
            ]
        ),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
    ),
)
def test_random_cell_values_in_csv(tmp_path_factory, sheet, row, column, value):
    base = tmp_path_factory.mktemp("cell")
    folder = _csv_folder(base)
    path = folder / f"{sheet}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if row - 1 < len(rows) and column < len(rows[row - 1]):
        rows[row - 1][column] = value.replace("\x00", "")
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    extraction, problems = validate_extraction(folder)
    _assert_clean(problems)
    assert extraction is not None


def test_merged_cells_and_dates_in_numeric_columns(example_copy):
    book = edit(example_copy)
    book["outcomes"].merge_cells("K3:K5")
    set_cell(book, "outcomes", 8, "sd", dt.datetime(2021, 3, 4))
    book.save(example_copy)
    _, problems = validate_extraction(example_copy)
    errors = {(p.sheet, p.row): p.message for p in problems if p.severity == "error"}
    assert "merged cells K3:K5" in errors[("outcomes", 3)]
    assert "got a date (2021-03-04" in errors[("outcomes", 8)]


def test_micro_sign_spellings_in_dose_units(example_copy):
    book = edit(example_copy)
    ws = book["arms"]
    rows = [r for r in range(2, ws.max_row + 1) if ws.cell(r, 3).value == "ev"][:3]
    for row, spelling in zip(rows, ["µg", "μg", "ug"], strict=True):
        set_cell(book, "arms", row, "dose_unit", spelling)
        set_cell(book, "arms", row, "dose_value", 50)
    book.save(example_copy)
    extraction, problems = validate_extraction(example_copy)
    assert not [p for p in problems if p.severity == "error"]
    arms = extraction.arms.set_index("_row")
    assert list(arms.loc[rows, "dose_unit"]) == ["ug", "ug", "ug"]


def test_file_over_the_size_limit(tmp_path, monkeypatch):
    import evmeta.sheets.raw as raw

    monkeypatch.setattr(raw, "MAX_FILE_BYTES", 1000)
    copy = tmp_path / "big.xlsx"
    shutil.copy(EXAMPLE, copy)
    extraction, problems = validate_extraction(copy)
    assert extraction is None and "the limit is" in problems[0].message
