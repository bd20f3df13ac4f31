"""No command writes over one of its inputs; other existing files need --force (issue 17).

Silently-wrong item 2 and the unwritable-output tracebacks: ``harmonize W.xlsx -o W.xlsx``,
``template W.xlsx`` over a filled workbook, ``reconcile A B -o A.xlsx`` and ``-o
/proc/x/c.csv`` must leave every file as it was and print one sentence.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evmeta._paths import check_output, is_within, read_bytes_capped, require_regular_file
from evmeta.cli import app
from evmeta.errors import PathError
from tests.conftest import DATA, EXAMPLE

runner = CliRunner()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _clean_refusal(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_harmonize_never_overwrites_its_workbook(example_copy):
    before = _digest(example_copy)
    for extra in ([], ["--force"]):
        result = runner.invoke(app, ["harmonize", str(example_copy), "-o", str(example_copy), *extra])
        _clean_refusal(result, "is one of this command's inputs")
    assert _digest(example_copy) == before


def test_harmonize_needs_force_over_an_existing_file(example_copy, tmp_path):
    out = tmp_path / "out" / "c.csv"
    out.parent.mkdir()
    out.write_text("precious")
    _clean_refusal(runner.invoke(app, ["harmonize", str(example_copy), "-o", str(out)]), "--force")
    assert out.read_text() == "precious"
    result = runner.invoke(app, ["harmonize", str(example_copy), "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("comparison_id")


def test_harmonize_output_inside_a_csv_input_folder_is_refused(tmp_path):
    from evmeta.schema.template import write_template

    folder = write_template(tmp_path / "csvs", csv_dir=True)
    result = runner.invoke(app, ["harmonize", str(folder), "-o", str(folder / "comparisons.csv")])
    _clean_refusal(result, "inside the input folder")


def test_template_over_a_filled_workbook_needs_force(example_copy, tmp_path):
    before = _digest(example_copy)
    _clean_refusal(runner.invoke(app, ["template", str(example_copy)]), "already exists", "--force")
    assert _digest(example_copy) == before
    assert runner.invoke(app, ["template", str(example_copy), "--force"]).exit_code == 0
    folder = tmp_path / "csvs"
    assert runner.invoke(app, ["template", str(folder), "--csv"]).exit_code == 0
    _clean_refusal(runner.invoke(app, ["template", str(folder), "--csv"]), "studies.csv already exists")


def test_reconcile_never_overwrites_a_reviewer_workbook(example_copy, tmp_path):
    other = tmp_path / "b.xlsx"
    shutil.copy(EXAMPLE, other)
    before = _digest(example_copy)
    for extra in ([], ["--force"]):
        result = runner.invoke(
            app, ["reconcile", str(example_copy), str(other), "-o", str(example_copy), *extra]
        )
        _clean_refusal(result, "is one of this command's inputs")
    assert _digest(example_copy) == before


def test_dedupe_output_rules(tmp_path):
    export = tmp_path / "export.ris"
    shutil.copy(DATA / "search" / "export.ris", export)
    _clean_refusal(runner.invoke(app, ["dedupe", str(export), "-o", str(export)]), "inputs")
    out = tmp_path / "d.csv"
    assert runner.invoke(app, ["dedupe", str(export), "-o", str(out)]).exit_code == 0
    _clean_refusal(runner.invoke(app, ["dedupe", str(export), "-o", str(out)]), "--force")
    assert runner.invoke(app, ["dedupe", str(export), "-o", str(out), "--force"]).exit_code == 0


@pytest.mark.parametrize("target", ["/proc/x/c.csv", "/proc/c.csv", "/dev/null/c.csv"])
def test_unwritable_outputs_are_sentences(example_copy, target):
    result = runner.invoke(app, ["harmonize", str(example_copy), "-o", target])
    _clean_refusal(result)
    assert "not writable" in result.output or "not a folder" in result.output


def test_run_output_folder_rules(tmp_path):
    spec = tmp_path / "a.toml"
    spec.write_text(f'[analysis]\nname = "a"\nextraction = "{EXAMPLE}"\n')
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("years of work")
    _clean_refusal(runner.invoke(app, ["run", str(spec), "-o", str(foreign), "--quiet"]), "--force")
    _clean_refusal(runner.invoke(app, ["run", str(spec), "-o", str(spec), "--quiet"]), "inputs")
    _clean_refusal(
        runner.invoke(app, ["run", str(spec), "-o", str(tmp_path), "--quiet"]), "holds the input a.toml"
    )
    assert (foreign / "thesis.docx").read_text() == "years of work"


def test_paths_helpers(tmp_path):
    regular = tmp_path / "a.txt"
    regular.write_bytes(b"x" * 10)
    assert require_regular_file(regular) == regular
    with pytest.raises(PathError, match="limit"):
        read_bytes_capped(regular, max_bytes=5)
    with pytest.raises(PathError, match="does not exist"):
        require_regular_file(tmp_path / "nope")
    with pytest.raises(PathError, match="a folder"):
        require_regular_file(tmp_path)
    with pytest.raises(PathError, match="a device"):
        read_bytes_capped(Path("/dev/zero"))
    with pytest.raises(PathError, match="already exists"):
        check_output(regular)
    assert check_output(regular, force=True) == regular
    with pytest.raises(PathError, match="is a folder"):
        check_output(tmp_path, force=True)
    link = tmp_path / "link.csv"
    link.symlink_to(regular)
    with pytest.raises(PathError, match="inputs"):
        check_output(link, inputs=[regular], force=True)
    assert is_within(tmp_path / "x" / ".." / "a.txt", tmp_path)
    assert not is_within(tmp_path / ".." / "elsewhere", tmp_path)


def test_categorical_columns_are_neutralized_on_export(tmp_path):
    import pandas as pd

    from evmeta.sheets.export import neutralize_formulas, write_csv

    formula = '=HYPERLINK("http://x.invalid","click")'
    frame = pd.DataFrame(
        {
            "isolation_method": pd.Categorical(
                [formula, "UC", "@SUM(A1)"], categories=["UC", formula, "@SUM(A1)"]
            ),
            "strain": pd.array(["-1+1", "C57BL/6", None], dtype="string"),
            "yi": [-0.5, 0.1, 0.2],
        }
    )
    safe = neutralize_formulas(frame)
    assert safe["isolation_method"].tolist() == ["'" + formula, "UC", "'@SUM(A1)"]
    assert safe["strain"].tolist()[:2] == ["'-1+1", "C57BL/6"]
    assert safe["yi"].tolist() == [-0.5, 0.1, 0.2]  # numbers untouched
    text = write_csv(frame, tmp_path / "c.csv").read_text()
    assert "\n=" not in text and ",=" not in text and ',"=' not in text


def test_harmonize_neutralizes_a_formula_typed_as_text(example_copy, tmp_path):
    from tests.conftest import edit, set_cell

    book = edit(example_copy)
    set_cell(book, "experiments", 2, "strain", '=HYPERLINK("http://x.invalid","x")', data_type="s")
    book.save(example_copy)
    out = tmp_path / "c.csv"
    result = runner.invoke(app, ["harmonize", str(example_copy), "-o", str(out)])
    assert result.exit_code == 0, result.output
    import pandas as pd

    strains = pd.read_csv(out)["strain"].astype(str)
    assert (strains.str.startswith("'=HYPERLINK")).any() and not strains.str.startswith("=").any()


def test_lookup_fill_missing_needs_force_over_an_earlier_result(example_copy, tmp_path):
    filled = example_copy.with_name("book.filled.xlsx")
    filled.write_text("an earlier, edited result")
    args = ["lookup", str(example_copy), "--offline", "--fill-missing", "--cache", str(tmp_path / "c")]
    _clean_refusal(runner.invoke(app, args), "book.filled.xlsx already exists", "--force")
    assert filled.read_text() == "an earlier, edited result"
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert runner.invoke(app, ["lookup", str(example_copy), "--timeout", "0"]).exit_code == 2


@pytest.mark.parametrize("suffix", [".ods", ".csv", ""])
def test_workbook_outputs_must_be_named_xlsx(example_copy, tmp_path, suffix):
    # Issue 18: screen-sheet, screen-sheet --studies and reconcile wrote Excel content under
    # an .ods name, which evmeta then refused to read. Refused before writing, as `template`.
    search = EXAMPLE.parent / "search"
    target = tmp_path / f"out{suffix}"
    other = tmp_path / "b.xlsx"
    shutil.copy(EXAMPLE, other)
    commands = [
        ["screen-sheet", str(search / "deduplicated.csv"), "-o", str(target)],
        ["screen-sheet", "--check", str(search / "screening.xlsx"), "--studies", str(target)],
        ["reconcile", str(example_copy), str(other), "-o", str(target)],
        ["template", str(target)],
    ]
    for command in commands:
        _clean_refusal(runner.invoke(app, command), f"{target} should end in .xlsx")
        assert not target.exists(), command


def test_screen_sheet_and_digitized_never_overwrite_without_force(tmp_path):
    # Issue 17: every command that writes refuses an existing output without --force and
    # never overwrites its own input, even with --force.
    search = EXAMPLE.parent / "search"
    earlier = tmp_path / "screening.xlsx"
    earlier.write_text("an earlier, edited log")
    write = ["screen-sheet", str(search / "deduplicated.csv"), "-o", str(earlier)]
    _clean_refusal(runner.invoke(app, write), "screening.xlsx already exists", "--force")
    assert earlier.read_text() == "an earlier, edited log"
    assert runner.invoke(app, [*write, "--force"]).exit_code == 0
    log = search / "screening.xlsx"
    before = log.read_bytes()
    studies = ["screen-sheet", "--check", str(log), "--studies", str(log), "--force"]
    assert runner.invoke(app, studies).exit_code == 2  # its own input, even with --force
    assert log.read_bytes() == before
    export = tmp_path / "wpd.csv"
    export.write_text("x")
    rows = tmp_path / "rows.csv"
    rows.write_text("earlier rows")
    digitize = ["digitized", str(export), "--kind", "bar", "--error", "sd", "-o", str(rows)]
    _clean_refusal(runner.invoke(app, digitize), "rows.csv already exists", "--force")
    assert rows.read_text() == "earlier rows"
    assert (
        runner.invoke(
            app, ["digitized", str(export), "--kind", "bar", "--error", "sd", "-o", str(export), "--force"]
        ).exit_code
        == 2
    )
    assert export.read_text() == "x"


def test_reconcile_apply_writes_where_o_says(example_copy, tmp_path):
    # Issue 17: `reconcile --apply rec.xlsx -o final.xlsx` ignored -o and wrote rec.final.xlsx.
    other = tmp_path / "b.xlsx"
    shutil.copy(EXAMPLE, other)
    rec = tmp_path / "rec.xlsx"
    assert runner.invoke(app, ["reconcile", str(example_copy), str(other), "-o", str(rec)]).exit_code == 0
    final = tmp_path / "out" / "final.xlsx"
    final.parent.mkdir()
    result = runner.invoke(app, ["reconcile", "--apply", str(rec), "-o", str(final)])
    assert result.exit_code == 0, result.output
    assert final.exists() and not (tmp_path / "rec.final.xlsx").exists()
    assert f"wrote {final}" in result.output
    # The usual output rules: an existing file needs --force, an input never, .xlsx only.
    _clean_refusal(runner.invoke(app, ["reconcile", "--apply", str(rec), "-o", str(final)]), "--force")
    assert runner.invoke(app, ["reconcile", "--apply", str(rec), "-o", str(final), "--force"]).exit_code == 0
    for target in [rec, tmp_path / "rec.consensus.xlsx"]:
        before = _digest(target)
        result = runner.invoke(app, ["reconcile", "--apply", str(rec), "-o", str(target), "--force"])
        _clean_refusal(result, "is one of this command's inputs")
        assert _digest(target) == before
    _clean_refusal(
        runner.invoke(app, ["reconcile", "--apply", str(rec), "-o", str(tmp_path / "f.ods")]),
        "should end in .xlsx",
    )
    # Without -o the final workbook still sits next to the reconciliation file.
    assert runner.invoke(app, ["reconcile", "--apply", str(rec)]).exit_code == 0
    assert (tmp_path / "rec.final.xlsx").exists()
