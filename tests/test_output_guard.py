"""One output guard for every command that writes (issue 23 item 4, issue 29 item 2).

The test walks the typer app: every command is either read-only or has a case here, and
each case checks that an existing output (side files included) is refused without
``--force`` and left untouched, that no output may be one of the command's inputs even
with ``--force``, and that a refusal leaves no staging folder behind. Writes are staged
and moved into place, so a writer that fails half-way (a full disk) leaves no file.
Every command's ``--help`` shows each option's whole help text.
"""

from __future__ import annotations

import errno
import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from evmeta.cli import app
from tests.conftest import EXAMPLE

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SEARCH = ROOT / "extraction" / "search"
WIDE = Path(__file__).parent / "data" / "wide"
#: Commands that write nothing.
READ_ONLY = {"validate"}
#: Modules whose commands this test must cover (other modules' commands are covered by
#: their own tests when they carry no case here).
OWN_MODULES = {"evmeta.cli.extraction", "evmeta.cli.analysis", "evmeta.cli.export", "evmeta.cli.review"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spec(folder: Path, multiverse: bool = False) -> Path:
    spec = folder / "a.toml"
    text = f'[analysis]\nname = "a"\nextraction = "{EXAMPLE}"\n'
    if multiverse:
        text += '\n[multiverse]\n"frequentist.method" = ["REML", "DL"]\n'
    spec.write_text(text)
    return spec


@dataclass
class Case:
    """A writing command: its arguments for an output, and what its inputs are."""

    args: Callable[[Path, Path], list[str]]  # (tmp folder, output) -> argv
    output: str  # name of the output in the tmp folder
    side: list[str] = field(default_factory=list)  # side files the output implies
    input_as_output: Callable[[Path], list[str]] | None = None  # argv naming an input as output
    input_file: Callable[[Path], Path] | None = None  # that input (must stay unchanged)


def _import_wide(folder: Path, out: Path) -> list[str]:
    return [
        "import-wide",
        str(WIDE / "simulated_wide.csv"),
        "--map",
        str(WIDE / "simulated_wide.toml"),
        "-o",
        str(out),
    ]


def _import_wide_log_is_input(folder: Path) -> list[str]:
    table = folder / "book.import_log.csv"
    shutil.copy(WIDE / "simulated_wide.csv", table)
    return [
        "import-wide",
        str(table),
        "--map",
        str(WIDE / "simulated_wide.toml"),
        "-o",
        str(folder / "book.xlsx"),
    ]


def _dedupe_input(folder: Path) -> Path:
    target = folder / "export.csv"
    if not target.exists():
        shutil.copy(ROOT / "tests" / "data" / "search" / "export.csv", target)
    return target


def _prisma(folder: Path, out: Path) -> list[str]:
    return [
        "prisma",
        "--search",
        str(SEARCH / "pubmed.nbib"),
        "--dedupe",
        str(SEARCH / "deduplicated.csv"),
        "--screening",
        str(SEARCH / "screening.xlsx"),
        "--extraction",
        str(EXAMPLE),
        "-o",
        str(out),
    ]


def _prisma_beside_search(folder: Path) -> list[str]:
    shutil.copy(SEARCH / "scopus.csv", folder / "scopus.csv")
    args = _prisma(folder, folder / "scopus")
    return [*args[:2], str(folder / "scopus.csv"), *args[3:]]


def _wpd(folder: Path) -> Path:
    path = folder / "wpd.csv"
    path.write_text("x")
    return path


CASES: dict[str, Case] = {
    "template": Case(lambda f, o: ["template", str(o)], "t.xlsx"),
    "harmonize": Case(
        lambda f, o: ["harmonize", str(EXAMPLE), "-o", str(o)],
        "comparisons.csv",
        side=["exclusions.csv"],
        input_as_output=lambda f: ["harmonize", str(EXAMPLE), "-o", str(f / "exclusions.csv")],
    ),
    "import-wide": Case(
        _import_wide,
        "book.xlsx",
        side=["book.import_log.csv"],
        input_as_output=_import_wide_log_is_input,
        input_file=lambda f: f / "book.import_log.csv",
    ),
    "reconcile": Case(
        lambda f, o: ["reconcile", str(EXAMPLE), str(EXAMPLE), "-o", str(o)],
        "rec.xlsx",
        side=["rec.consensus.xlsx"],
    ),
    "dedupe": Case(
        lambda f, o: ["dedupe", str(_dedupe_input(f)), "-o", str(o)],
        "dedup.csv",
        side=["dedup.prisma.json"],
        input_as_output=lambda f: ["dedupe", str(_dedupe_input(f)), "-o", str(f / "export.csv")],
        input_file=lambda f: f / "export.csv",
    ),
    "screen-sheet": Case(
        lambda f, o: ["screen-sheet", str(SEARCH / "deduplicated.csv"), "-o", str(o)],
        "screening.xlsx",
    ),
    "prisma": Case(
        _prisma,
        "flow.pdf",
        side=["flow.csv"],
        input_as_output=_prisma_beside_search,
        input_file=lambda f: f / "scopus.csv",
    ),
    "digitized": Case(
        lambda f, o: ["digitized", str(_wpd(f)), "--kind", "bar", "--error", "sd", "-o", str(o)],
        "rows.csv",
        input_as_output=lambda f: [
            "digitized",
            str(_wpd(f)),
            "--kind",
            "bar",
            "--error",
            "sd",
            "-o",
            str(f / "wpd.csv"),
        ],
        input_file=lambda f: f / "wpd.csv",
    ),
    "export-r": Case(
        lambda f, o: ["export-r", str(_spec(f)), "-o", str(o.parent)],
        "evmeta_models.R",
        side=["comparisons_for_r.csv", "evmeta_results.csv"],
        input_as_output=lambda f: ["export-r", str(_spec(f)), "-o", str(f / "a.toml")],
        input_file=lambda f: f / "a.toml",
    ),
    "lookup": Case(
        lambda f, o: ["lookup", str(f / "book.xlsx"), "--offline", "--fill-missing", "--cache", str(f / "c")],
        "book.filled.xlsx",
    ),
}
#: Commands writing a folder: a folder of foreign files is refused without --force.
FOLDER_CASES: dict[str, Callable[[Path, Path], list[str]]] = {
    "run": lambda f, o: ["run", str(_spec(f)), "-o", str(o), "--quiet"],
    "multiverse": lambda f, o: [
        "multiverse",
        str(_spec(f, True)),
        "-o",
        str(o),
        "--quiet",
        "--scheduler",
        "serial",
    ],
    "demo": lambda f, o: ["demo", "-o", str(o), "--quiet"],
}


def _commands() -> dict[str, typer.models.CommandInfo]:
    out = {}
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        out[name] = info
    return out


def test_every_writing_command_has_a_case():
    missing = [
        name
        for name, info in _commands().items()
        if info.callback.__module__ in OWN_MODULES and name not in READ_ONLY | set(CASES) | set(FOLDER_CASES)
    ]
    assert not missing, f"commands without an output-guard case: {missing}"


def _refused(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def _no_staging(folder: Path) -> None:
    leftovers = [
        p for p in folder.rglob(".evmeta-*") if ".evmeta-cache" not in p.parts and p.name != ".evmeta-cache"
    ]
    assert not leftovers, leftovers


@pytest.mark.parametrize("name", sorted(CASES))
def test_existing_outputs_and_side_files_are_refused_without_force(name, tmp_path):
    case = CASES[name]
    if name == "lookup":
        shutil.copy(EXAMPLE, tmp_path / "book.xlsx")
    for existing in [case.output, *case.side]:
        folder = tmp_path / existing.replace(".", "_")
        folder.mkdir()
        if name == "lookup":
            shutil.copy(EXAMPLE, folder / "book.xlsx")
        sentinel = folder / existing
        sentinel.write_text("a reviewer's file")
        _refused(runner.invoke(app, case.args(folder, folder / case.output)), "already exists", "--force")
        assert sentinel.read_text() == "a reviewer's file"
        _no_staging(folder)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.input_as_output))
def test_an_input_is_never_an_output_even_with_force(name, tmp_path):
    case = CASES[name]
    argv = case.input_as_output(tmp_path)
    protected = case.input_file(tmp_path) if case.input_file else None
    before = _digest(protected) if protected else None
    _refused(runner.invoke(app, [*argv, "--force"]))
    if protected:
        assert _digest(protected) == before
    _no_staging(tmp_path)


def test_prisma_beside_its_dedupe_input_is_refused(tmp_path):
    shutil.copy(SEARCH / "deduplicated.csv", tmp_path / "deduplicated.csv")
    args = _prisma(tmp_path, tmp_path / "deduplicated.pdf")
    args[args.index("--dedupe") + 1] = str(tmp_path / "deduplicated.csv")
    before = _digest(tmp_path / "deduplicated.csv")
    _refused(runner.invoke(app, [*args, "--force"]), "inputs")
    assert _digest(tmp_path / "deduplicated.csv") == before


@pytest.mark.parametrize("name", sorted(FOLDER_CASES))
def test_a_folder_of_foreign_files_is_refused(name, tmp_path):
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "multiverse.csv" if name == "multiverse" else foreign / "example.xlsx").write_text("mine")
    result = runner.invoke(app, FOLDER_CASES[name](tmp_path, foreign))
    expected = "differs from the bundled example" if name == "demo" else "other files in it"
    _refused(result, expected)
    assert next(iter(foreign.iterdir())).read_text() == "mine"
    _no_staging(tmp_path)


def test_a_writer_failing_half_way_leaves_no_file(tmp_path, monkeypatch):
    # A full disk during the write: the half-written file is in the staging folder only.
    import evmeta.sheets.export as export

    def full_disk(frame, path, *args, **kwargs):
        Path(path).write_text("half a ta")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(export, "write_csv", full_disk)
    out = tmp_path / "comparisons.csv"
    result = runner.invoke(app, ["harmonize", str(EXAMPLE), "-o", str(out)])
    _refused(result, "No space left on device")
    assert not out.exists() and not (tmp_path / "exclusions.csv").exists()
    _no_staging(tmp_path)


def test_import_wide_failing_half_way_leaves_no_workbook(tmp_path, monkeypatch):
    import evmeta.schema.wide_import.workbook as wide

    def full_disk(path, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 truncated")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(wide, "write_template", full_disk)
    out = tmp_path / "book.xlsx"
    _refused(runner.invoke(app, _import_wide(tmp_path, out)), "No space left on device")
    assert not out.exists()
    _no_staging(tmp_path)


def test_outputs_are_moved_into_place(tmp_path):
    out = tmp_path / "sub" / "book.xlsx"
    result = runner.invoke(app, _import_wide(tmp_path, out))
    assert result.exit_code == 0, result.output
    assert out.exists() and (out.parent / "book.import_log.csv").exists()
    _no_staging(tmp_path)


# --- help texts ---------------------------------------------------------------------------


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("name", sorted(_commands()))
def test_help_shows_every_help_text_whole(name):
    info = _commands()[name]
    command = typer.main.get_command(app).commands[name]
    result = runner.invoke(app, [name, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    shown = _words(result.output)
    for parameter in command.params:
        text = getattr(parameter, "help", None)
        if text:
            assert _words(text) in shown, (parameter.name, text)
    first = _words((info.callback.__doc__ or "").strip().split("\n\n")[0])
    assert first in shown


def test_import_wide_help_names_the_map_sections():
    result = runner.invoke(app, ["import-wide", "--help"], terminal_width=100)
    assert "[columns], [constants], [options]" in _words(result.output)


def test_the_command_list_shows_whole_first_lines():
    shown = _words(runner.invoke(app, ["--help"], terminal_width=100).output)
    assert not re.search(r"\w\.\.\. ", shown.replace("[ARGS]...", "")), shown  # no cut-off line
    for info in app.registered_commands:
        assert _words((info.callback.__doc__ or "").strip().splitlines()[0]) in shown
