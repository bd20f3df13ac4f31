"""A CSV from a decimal-comma spreadsheet: once ``;`` is the delimiter, ``,`` is the decimal
separator (issue 22 item 7). The fixture is tests/data/decimal_comma/ (see PROVENANCE.md)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import evmeta as em
from evmeta.schema.cells import parse_number
from tests.conftest import DATA
from tests.small_reviews import write_review

FOLDER = DATA / "decimal_comma"


def test_semicolon_export_reads_like_the_point_decimal_review(tmp_path):
    book = em.read_extraction(FOLDER)
    reference = em.read_extraction(write_review(tmp_path))
    for column in ("n", "mean", "sd", "timepoint"):
        np.testing.assert_array_equal(book.outcomes[column], reference.outcomes[column])
    preps = book.preparations.set_index("prep_id")
    assert preps.loc["LI2019-P", "particles_per_ug_protein"] == 1.5e9  # 1.500.000.000
    assert preps.loc["LI2019-P", "mean_size_nm"] == 1234.5  # 1.234,50
    assert preps.loc["LI2019-P", "notes"] == "Größe 1.234,5 nm (µ)"  # text stays text (cp1252)
    assert preps.loc["CHEN2020-P", "particles_per_ug_protein"] == 2.25e9
    messages = [p.message for p in book.notes]
    assert any("',' as the decimal separator" in m and "decimal commas" in m for m in messages)
    yi = em.build_comparisons(book).table["yi"].to_numpy()
    np.testing.assert_allclose(yi, em.build_comparisons(reference).table["yi"].to_numpy(), rtol=0, atol=0)


def test_a_lone_thousands_group_is_still_ambiguous(tmp_path):
    folder = tmp_path / "csv"
    shutil.copytree(FOLDER, folder)
    path = folder / "outcomes.csv"
    text = path.read_text(encoding="cp1252").replace(";8;38;7;", ";8;1.500;7;", 1)
    path.write_text(text, encoding="cp1252")
    _, problems = em.validate_extraction(folder)
    (error,) = [p for p in problems if p.severity == "error"]
    assert (error.sheet, error.row, error.column) == ("outcomes", 2, "mean")
    assert "ambiguous" in error.message and "decimal separator is a comma" in error.message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8,4", 8.4),
        ("-0,25", -0.25),
        ("1.234,5", 1234.5),
        ("1.234.567", 1234567.0),
        ("1 234,5", 1234.5),
        ("1\u00a0234,5", 1234.5),
        ("9,08E+11", 9.08e11),
        ("1,5 x 10^9", 1.5e9),
        ("−2,1", -2.1),
        ("12.5", 12.5),
        ("0.215", 0.215),  # a leading 0 is never a thousands group
        ("7", 7.0),
    ],
)
def test_decimal_comma_numbers(text, value):
    assert parse_number(text, decimal=",") == value


@pytest.mark.parametrize("text", ["1.500", "1,2,3", "1,234.5"])
def test_decimal_comma_refusals(text):
    with pytest.raises(ValueError):
        parse_number(text, decimal=",")


def test_comma_delimited_files_keep_the_ambiguous_comma_rule():
    with pytest.raises(ValueError, match="ambiguous"):
        parse_number("8,4")
    assert parse_number("25,600,000,000.00") == 25_600_000_000.0


def test_semicolon_file_with_point_decimals_keeps_the_point(tmp_path):
    """A semicolon file without a single decimal comma is read the usual way (0.215, 12.5)."""
    folder = tmp_path / "csv"
    shutil.copytree(FOLDER, folder)
    path = folder / "outcomes.csv"
    text = re.sub(r"(\d),(\d)", r"\1.\2", path.read_text(encoding="cp1252"))
    path.write_text(text, encoding="cp1252")
    assert "," not in text
    book = em.read_extraction(folder)
    reference = em.read_extraction(write_review(tmp_path / "ref"))
    np.testing.assert_array_equal(book.outcomes["mean"], reference.outcomes["mean"])
    notes = [p.message for p in book.notes if p.sheet == "outcomes"]
    assert not any("decimal separator" in m for m in notes)
