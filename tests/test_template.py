"""The template workbook: README, sheets, frozen commented headers, dropdowns, numeric checks."""

from __future__ import annotations

import openpyxl
import pytest
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from evmeta.schema.columns import SHEETS
from tests.conftest import ROOT


def test_template_structure(tmp_path):
    path = em.write_template(tmp_path / "t.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[0] == "README"
    assert set(SHEETS) | {"README", "vocabulary"} == set(book.sheetnames)
    for name, columns in SHEETS.items():
        ws = book[name]
        assert ws.freeze_panes == "B2"
        headers = [c.value for c in ws[1]]
        assert headers == [c.name for c in columns]
        assert all(ws.cell(1, i + 1).comment is not None for i in range(len(columns)))
        validated = {
            str(r).split(":")[0].rstrip("0123456789")
            for dv in ws.data_validations.dataValidation
            for r in dv.sqref.ranges
        }
        for index, column in enumerate(columns):
            letter = openpyxl.utils.get_column_letter(index + 1)
            if column.vocabulary or column.kind in {"int", "float", "year"}:
                assert letter in validated, (name, column.name)
    lists = [dv for dv in book["outcomes"].data_validations.dataValidation if dv.type == "list"]
    assert any("vocabulary!" in dv.formula1 for dv in lists)


def test_committed_template_is_current(tmp_path):
    """extraction/template.xlsx matches what the code writes (sheet by sheet, header by header)."""
    committed = openpyxl.load_workbook(ROOT / "extraction" / "template.xlsx")
    fresh = openpyxl.load_workbook(em.write_template(tmp_path / "t.xlsx"))
    assert committed.sheetnames == fresh.sheetnames
    for name in fresh.sheetnames:
        assert [c.value for c in committed[name][1]] == [c.value for c in fresh[name][1]], name


def test_template_cli_and_csv(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["template", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 0 and (tmp_path / "x.xlsx").exists()
    result = runner.invoke(app, ["template", "--csv", str(tmp_path / "csv")])
    assert result.exit_code == 0
    assert sorted(p.stem for p in (tmp_path / "csv").glob("*.csv")) == sorted(SHEETS)
    assert runner.invoke(app, ["template", str(tmp_path / "x.txt")]).exit_code == 2
    # An empty template validates with no errors.
    book = em.read_extraction(tmp_path / "csv")
    assert all(len(f) == 0 for f in book.sheets.values())


def test_example_workbook_is_labelled_simulated():
    book = openpyxl.load_workbook(ROOT / "extraction" / "example.xlsx")
    assert "SIMULATED" in str(book["README"]["A1"].value)


def test_example_is_reproducible(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_example", ROOT / "extraction" / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "again.xlsx")
    again = em.read_extraction(tmp_path / "again.xlsx")
    original = em.read_extraction(ROOT / "extraction" / "example.xlsx")
    for name in SHEETS:
        left = again.sheets[name].drop(columns=["_file"])
        right = original.sheets[name].drop(columns=["_file"])
        assert left.equals(right), name


def test_write_template_refuses_an_existing_file_unless_overwrite(tmp_path):
    from evmeta.errors import EvmetaError, OutputExistsError, PathError

    path = em.write_template(tmp_path / "my_review.xlsx")
    path.write_bytes(b"a filled workbook")
    with pytest.raises(OutputExistsError, match=r"already exists.*overwrite=True") as info:
        em.write_template(path)
    assert isinstance(info.value, (PathError, EvmetaError))
    assert path.read_bytes() == b"a filled workbook"  # nothing written
    em.write_template(path, overwrite=True)
    assert openpyxl.load_workbook(path).sheetnames[0] == "README"
    with pytest.raises(PathError, match="is a folder"):
        em.write_template(tmp_path, overwrite=True)


def test_write_template_csv_folder_checks_every_file_first(tmp_path):
    from evmeta.errors import OutputExistsError

    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "outcomes.csv").write_text("precious")
    with pytest.raises(OutputExistsError, match=r"outcomes\.csv"):
        em.write_template(folder, csv_dir=True)
    assert sorted(p.name for p in folder.iterdir()) == ["outcomes.csv"]  # nothing else written
    assert (folder / "outcomes.csv").read_text() == "precious"
    em.write_template(folder, csv_dir=True, overwrite=True)
    assert (folder / "outcomes.csv").read_text().startswith("outcome_id")
