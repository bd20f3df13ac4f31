"""`evmeta init | update | log`: help without placeholders, and every refusal a sentence
with exit code 2 (or 1 for a workbook's problems), never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from evmeta.cli import app
from tests.project_support import PROJECT_DATA, SEARCH

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=100)


@pytest.mark.parametrize("command", ["init", "update", "log"])
def test_help_has_no_placeholders(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    for placeholder in ("<bool>", "<path>", "{path}", "{PATH}", "<text>"):
        assert placeholder not in result.output, (placeholder, result.output)


def test_refusals_are_sentences(tmp_path, monkeypatch):
    monkeypatch.delenv("EVMETA_DATABASE_URL", raising=False)
    folder = tmp_path / "review"
    result = invoke("init", folder, "--database", "mysql://x/y")
    assert (
        result.exit_code == 2
        and "is not supported" in result.output
        and result.exception.__class__ is SystemExit
    )
    result = invoke("init", folder, "--database", "postgresql://nobody@127.0.0.1:1/none")
    assert result.exit_code == 2 and "cannot use the database" in result.output
    result = invoke("log", tmp_path / "nothing")
    assert result.exit_code == 2 and "not a review project" in result.output
    assert invoke("init", folder).exit_code == 0
    result = invoke("update", folder, "--search", SEARCH / "pubmed.nbib", "--searched-on", "15/01/2025")
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    result = invoke("update", folder, "--search", tmp_path)
    assert result.exit_code == 2 and "expected a regular file" in result.output
    result = invoke("update", folder, "--search", PROJECT_DATA / "README.md")
    assert result.exit_code == 2 and "expected a RIS" in result.output
    result = invoke("update", folder, "--screening", SEARCH / "screening.xlsx")
    assert result.exit_code == 1 and "is not a record of this project" in result.output
    result = invoke("update", folder, "--spec", PROJECT_DATA / "README.md")
    assert result.exit_code == 2 and "not an analysis spec" in result.output
    result = invoke("update", folder, "--screening", SEARCH / "screening.xlsx", "--reviewer", "ana")
    assert result.exit_code == 2 and "--reviewer twice" in result.output
    result = invoke("update", folder, "--refit")
    assert result.exit_code == 2 and "needs an extraction version first" in result.output
    log = invoke("log", folder)
    assert log.exit_code == 0 and "search exports: 0" in log.output
