"""LibreOffice workbooks (.ods) are read like .xlsx: same rows, same cell names, same validation.

The parser is tested on hand-written OpenDocument files (repeated rows and columns, comments,
formulas, merged cells, hostile XML); the round trip through LibreOffice itself runs when
``soffice`` is installed, and must run in CI (the CI environment variable is set there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import evmeta as em
from evmeta.sheets.ods import read_ods
from evmeta.sheets.reader import UnreadableInput, read_raw
from tests.conftest import EXAMPLE, ROOT, set_cell

TEMPLATE = ROOT / "extraction" / "template.xlsx"
NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"'
)


def _write_ods(path: Path, tables: str, prolog: str = "") -> Path:
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<office:document-content {NAMESPACES}>'
        f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return path


def _cell(value: str, kind: str = "string", extra: str = "") -> str:
    if kind == "float":
        return f'<table:table-cell office:value-type="float" office:value="{value}" {extra}><text:p>{value}</text:p></table:table-cell>'
    return f'<table:table-cell office:value-type="string" {extra}><text:p>{value}</text:p></table:table-cell>'


def test_repeats_comments_formulas_and_merges(tmp_path):
    header = (
        "<table:table-row>"
        '<table:table-cell office:value-type="string"><office:annotation><dc:creator>evmeta</dc:creator>'
        "<text:p>a comment, not the header</text:p></office:annotation><text:p>outcome_id</text:p></table:table-cell>"
        + _cell("mean")
        + _cell("notes")
        + '<table:table-cell table:number-columns-repeated="16381"/></table:table-row>'
    )
    rows = (
        "<table:table-row>" + _cell("O1") + _cell("2.5", "float") + _cell("a<text:s text:c=\"3\"/>b<text:span>c</text:span>")
        + "</table:table-row>"
        '<table:table-row table:number-rows-repeated="4"><table:table-cell table:number-columns-repeated="3"/></table:table-row>'
        "<table:table-row>" + _cell("O2") + '<table:table-cell table:formula="of:=1+[.B2]" office:value-type="float" office:value="3.5"><text:p>3.5</text:p></table:table-cell>'
        + _cell("#N/A") + "</table:table-row>"
        '<table:table-row table:number-rows-repeated="2">' + _cell("same") + "</table:table-row>"
        "<table:table-row>" + _cell("O5", extra='table:number-columns-spanned="2" table:number-rows-spanned="2"')
        + "<table:covered-table-cell/>" + '<table:table-cell table:number-columns-repeated="2"/>' + _cell("far")
        + '<table:table-cell office:value-type="date" office:date-value="2021-03-04"><text:p>04/03/21</text:p></table:table-cell>'
        + "</table:table-row>"
        '<table:table-row table:number-rows-repeated="1048560"><table:table-cell table:number-columns-repeated="16384"/></table:table-row>'
    )  # fmt: skip
    path = _write_ods(tmp_path / "x.ods", f'<table:table table:name="outcomes">{header}{rows}</table:table>')
    started = time.perf_counter()
    book = read_raw(path)
    assert time.perf_counter() - started < 2.0  # empty extents are never expanded
    sheet = book.sheets["outcomes"]
    assert sheet.header == ["outcome_id", "mean", "notes"]
    numbers = [n for n, _ in sheet.rows]
    assert numbers == [2, 7, 8, 9, 10]  # four empty rows skipped, the repeated row expanded
    values = {n: [(c.value, c.kind) for c in cells] for n, cells in sheet.rows}
    assert values[2] == [("O1", "value"), (2.5, "value"), ("a   bc", "value")]
    assert values[7] == [("O2", "value"), ("=1+[.B2]", "formula"), ("#N/A", "error")]
    # Rows keep the header's columns, as the .xlsx reader does; data further right is an error.
    assert values[8] == values[9] == [("same", "value"), (None, "value"), (None, "value")]
    assert values[10] == [("O5", "value"), (None, "value"), (None, "value")]
    [beyond] = [p.message for p in book.problems if "right of the last header column" in p.message]
    assert beyond.startswith("2 cell(s)") and "(C): E10, F10;" in beyond
    assert sheet.merged == ["A10:B11"]


def test_validation_names_cells_of_an_ods_like_xlsx(tmp_path):
    path = _write_ods(
        tmp_path / "bad.ods",
        '<table:table table:name="studies"><table:table-row>' + _cell("study_id") + _cell("first_author") + _cell("year")
        + "</table:table-row><table:table-row>" + _cell("S1") + _cell("Smith") + _cell("1850", "float")
        + "</table:table-row></table:table>",
    )  # fmt: skip
    _, problems = em.validate_extraction(path)
    assert "studies!C2 year: must be >= 1900, got 1850" in {str(p) for p in problems}


@pytest.mark.parametrize(
    ("prolog", "tables"),
    [
        ('<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>', '<table:table table:name="s"><table:table-row>' + _cell("&b;") + "</table:table-row></table:table>"),
        ("", '<table:table table:name="s"><table:table-row>' + _cell("x") + "</table:table-row>"),  # not closed
        ("", '<table:table table:name="s"><table:table-row table:number-rows-repeated="50000">' + _cell("x") + "</table:table-row></table:table>"),
    ],
)  # fmt: skip
def test_hostile_or_broken_content_is_refused(tmp_path, prolog, tables):
    path = _write_ods(tmp_path / "bad.ods", tables, prolog)
    with pytest.raises(UnreadableInput):
        read_ods(path)
    extraction, problems = em.validate_extraction(path)
    assert extraction is None and problems[0].sheet == "bad.ods"


def test_not_an_ods(tmp_path):
    (tmp_path / "x.ods").write_bytes(b"not a zip")
    with pytest.raises(UnreadableInput, match="not an OpenDocument spreadsheet"):
        read_raw(tmp_path / "x.ods")
    with zipfile.ZipFile(tmp_path / "y.ods", "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<x/>")
    with pytest.raises(UnreadableInput, match="not an OpenDocument spreadsheet"):
        read_raw(tmp_path / "y.ods")


# --- round trips through LibreOffice --------------------------------------------------------


def _soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI is set but LibreOffice (soffice) is not installed; install libreoffice-calc-nogui"
            )
        pytest.skip("LibreOffice (soffice) is not installed")
    return found


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, Path]:
    """template.xlsx, example.xlsx, a copy of the example with planted mistakes and the filled
    screening log, as .ods."""
    soffice = _soffice()
    folder = tmp_path_factory.mktemp("ods")
    shutil.copy(TEMPLATE, folder / "template.xlsx")
    shutil.copy(EXAMPLE, folder / "example.xlsx")
    shutil.copy(ROOT / "extraction" / "search" / "screening.xlsx", folder / "screening.xlsx")
    book = openpyxl.load_workbook(EXAMPLE)
    set_cell(book, "outcomes", 5, "sd", -2.1)
    set_cell(book, "outcomes", 6, "mean", "=1+1")
    set_cell(book, "arms", 4, "n_animals", "twelve")
    set_cell(book, "studies", 3, "year", 1850)
    book.save(folder / "mistakes.xlsx")
    sources = [folder / n for n in ["template.xlsx", "example.xlsx", "mistakes.xlsx", "screening.xlsx"]]
    profile = (folder / "profile").as_uri()  # a private profile: parallel runs do not share a lock
    subprocess.run(
        [soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "ods", "--outdir", str(folder), *map(str, sources)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    out = {p.stem: p for p in sources}
    out |= {p.stem + "_ods": p.with_suffix(".ods") for p in sources}
    assert all(p.exists() for p in out.values()), sorted(os.listdir(folder))
    return out


def _problems(path: Path) -> list[str]:
    _, problems = em.validate_extraction(path)
    return [f"{p.severity}: {p}" for p in problems]


def test_template_round_trip_keeps_sheets_headers_and_dropdowns(converted):
    xlsx, ods = read_raw(converted["template"]), read_raw(converted["template_ods"])
    assert list(ods.sheets) == list(xlsx.sheets)
    for name, sheet in xlsx.sheets.items():
        assert ods.sheets[name].header == sheet.header, name
    assert _problems(converted["template_ods"]) == _problems(converted["template"])
    with zipfile.ZipFile(converted["template_ods"]) as archive:
        content = archive.read("content.xml").decode("utf-8")
    assert "table:content-validation " in content and "vocabulary" in content  # dropdowns survive


def test_example_as_ods_validates_with_the_same_result(converted):
    assert _problems(converted["example_ods"]) == _problems(converted["example"])
    a, b = em.read_extraction(converted["example"]), em.read_extraction(converted["example_ods"])
    for name, frame in a.sheets.items():
        pd.testing.assert_frame_equal(
            frame.drop(columns="_file"), b.sheets[name].drop(columns="_file"), check_dtype=False, obj=name
        )
    left, right = em.build_comparisons(a).table, em.build_comparisons(b).table
    pd.testing.assert_series_equal(left["yi"], right["yi"], rtol=1e-12)
    pd.testing.assert_series_equal(left["vi"], right["vi"], rtol=1e-12)


def test_mistakes_are_named_at_the_same_cells(converted):
    expected = _problems(converted["mistakes"])
    assert any("outcomes!" in p and " sd:" in p for p in expected)
    assert any("formula" in p for p in expected) and any("studies!" in p and "1850" in p for p in expected)
    assert _problems(converted["mistakes_ods"]) == expected


def test_screening_log_saved_by_libreoffice_reads_the_same(converted):
    from evmeta.review.screening import read_screening, screening_agreement

    xlsx, ods = read_screening(converted["screening"]), read_screening(converted["screening_ods"])
    pd.testing.assert_frame_equal(xlsx.table, ods.table)
    pd.testing.assert_frame_equal(screening_agreement(xlsx), screening_agreement(ods))
