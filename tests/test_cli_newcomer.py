"""What a newcomer meets first: --version, clean --help, `evmeta demo` from any folder, and an
empty workbook answered with a sentence."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import evmeta
from evmeta.cli import app
from tests.conftest import ROOT

runner = CliRunner()
PACKAGED = ROOT / "evmeta" / "data" / "example"


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"evmeta {evmeta.__version__}"


@pytest.mark.parametrize("command", [[], ["validate"], ["run"], ["harmonize"], ["demo"], ["template"]])
def test_help_has_no_placeholders(command):
    result = runner.invoke(app, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0
    for placeholder in ("<bool>", "<path>", "{path}", "{PATH}", "<text>"):
        assert placeholder not in result.output, (placeholder, result.output)


def test_packaged_example_matches_the_repository():
    assert (PACKAGED / "example.xlsx").read_bytes() == (ROOT / "extraction" / "example.xlsx").read_bytes()
    assert (PACKAGED / "example_truth.json").read_bytes() == (
        ROOT / "extraction" / "example_truth.json"
    ).read_bytes()
    packaged = tomllib.loads((PACKAGED / "example.toml").read_text(encoding="utf-8"))
    original = tomllib.loads((ROOT / "analyses" / "example.toml").read_text(encoding="utf-8"))
    assert packaged["analysis"].pop("extraction") == "example.xlsx"
    assert original["analysis"].pop("extraction") == "../extraction/example.xlsx"
    assert packaged["validation"].pop("truth") == "example_truth.json"
    assert original["validation"].pop("truth") == "../extraction/example_truth.json"
    assert packaged == original


def test_demo_runs_from_any_directory(tmp_path):
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "evmeta.cli", "demo", "-o", "demo-out", "--quiet"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = elsewhere / "demo-out"
    assert {"example.xlsx", "example.toml", "example_truth.json"} <= {p.name for p in out.iterdir()}
    assert (out / "report" / "report.html").stat().st_size > 10_000
    assert "report:" in result.stdout


def test_demo_does_not_overwrite_an_edited_file(tmp_path):
    (tmp_path / "example.toml").write_text("# my own edits\n", encoding="utf-8")
    result = runner.invoke(app, ["demo", "-o", str(tmp_path), "--quiet"])
    assert result.exit_code == 2
    assert "differs from the bundled example" in result.output
    assert (tmp_path / "example.toml").read_text(encoding="utf-8") == "# my own edits\n"


@pytest.fixture
def empty_book(tmp_path) -> Path:
    path = tmp_path / "empty.xlsx"
    evmeta.write_template(path)
    return path


def test_validate_says_no_studies_entered(empty_book):
    result = runner.invoke(app, ["validate", str(empty_book)])
    assert result.exit_code == 0
    assert "note: studies: no studies entered" in result.output


def test_validate_summary_prints_totals_once(empty_book):
    result = runner.invoke(app, ["validate", str(empty_book), "--summary"])
    assert result.output.count("error(s)") == 1


def test_run_on_an_empty_book_is_a_sentence(empty_book, tmp_path):
    spec = tmp_path / "empty.toml"
    spec.write_text(f'[analysis]\nname = "empty"\nextraction = "{empty_book.name}"\n', encoding="utf-8")
    result = runner.invoke(app, ["run", str(spec), "-o", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1
    assert "no studies entered" in result.output
    assert "Traceback" not in result.output
