"""Fuzz: hostile edits of a workbook never crash, hang, run away with memory, or lose a row.

Each example applies a few random mutations to a small extraction workbook (cell values
from a hostile alphabet: formula triggers, Excel errors, overflowing numbers, non-finite
floats, huge integers, dates, long text; values far out at the sheet's extent; hidden rows
and sheets; merged ranges; deleted rows), then runs ``evmeta validate`` and ``evmeta
harmonize`` and asserts:

* the exit code is 0, 1 or 2 and no exception other than ``SystemExit`` escapes;
* every non-empty row of every schema sheet either entered the extraction or is named by
  an error (its own, or one about its sheet);
* each example finishes within a time limit (SIGALRM) and an address-space limit
  (``RLIMIT_AS``, lowered for the example and restored after).

The number of examples is small so that the test stays within ~30-60 s in CI; set
``EVMETA_FUZZ_EXAMPLES=200`` for a longer local run.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from typer.testing import CliRunner

from evmeta.cli import app
from evmeta.schema.columns import SHEETS
from evmeta.schema.validation.validate import validate_extraction
from tests.conftest import EXAMPLE
from tests.test_hostile_sheets import memory_limit, time_limit

#: Rows kept per sheet in the fuzzed workbook (keeps each example around a second).
ROWS_KEPT = 8
#: Extra address space an example may take, in bytes, and its time limit, in seconds.
MEMORY_BUDGET = 2 * 1024**3
SECONDS = 60

HOSTILE_TEXT = st.sampled_from(
    [
        '=HYPERLINK("http://x.invalid","x")',
        "=1/0",
        "+1",
        "-",
        "@SUM(A1)",
        "\tx",
        "#N/A",
        "#REF!",
        "5x10^308",
        "2x10^308",
        "1x10^999",
        "1e308 mg",
        "1,500",
        "NaN",
        "inf",
        "-inf",
        "O'Brien $\\foo{$",
        "µg/kg",
        "<script>alert(1)</script>",
        "." * 2 + "/" + "." * 2 + "/etc/passwd",
        "",
        " ",
        "x" * 5000,
    ]
)
VALUES = st.one_of(
    HOSTILE_TEXT,
    st.text(max_size=30).map(lambda t: ILLEGAL_CHARACTERS_RE.sub("", t)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2100, 1, 1)),
    st.none(),
)
SHEET = st.sampled_from(list(SHEETS))
MUTATION = st.one_of(
    st.tuples(st.just("set"), SHEET, st.integers(1, ROWS_KEPT + 3), st.integers(1, 40), VALUES),
    st.tuples(st.just("far"), SHEET, st.integers(1, 1_048_576), st.integers(1, 16_384), HOSTILE_TEXT),
    st.tuples(st.just("hide_row"), SHEET, st.integers(2, ROWS_KEPT + 1)),
    st.tuples(st.just("hide_sheet"), SHEET),
    st.tuples(st.just("merge"), SHEET, st.integers(2, ROWS_KEPT), st.integers(1, 10)),
    st.tuples(st.just("delete_row"), SHEET, st.integers(1, ROWS_KEPT + 1)),
)


@pytest.fixture(scope="module")
def small_workbook(tmp_path_factory) -> Path:
    """The example workbook cut to its first ROWS_KEPT data rows per sheet."""
    book = openpyxl.load_workbook(EXAMPLE)
    for ws in book.worksheets:
        if ws.max_row > ROWS_KEPT + 1:
            ws.delete_rows(ROWS_KEPT + 2, ws.max_row - ROWS_KEPT - 1)
    path = tmp_path_factory.mktemp("fuzz") / "small.xlsx"
    book.save(path)
    return path


def _mutate(source: Path, target: Path, mutations: list[tuple]) -> None:
    book = openpyxl.load_workbook(source)
    for kind, sheet, *args in mutations:
        ws = book[sheet]
        if kind in {"set", "far"}:
            row, column, value = args
            cell = ws.cell(row=row, column=column)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"  # text as typed, never turned into a formula by openpyxl
        elif kind == "hide_row":
            ws.row_dimensions[args[0]].hidden = True
        elif kind == "hide_sheet" and sum(w.sheet_state == "visible" for w in book.worksheets) > 1:
            ws.sheet_state = "hidden"
        elif kind == "merge":
            row, column = args
            ws.merge_cells(start_row=row, start_column=column, end_row=row + 1, end_column=column + 1)
        elif kind == "delete_row":
            ws.delete_rows(args[0])
    book.save(target)


def _assert_every_row_accounted_for(path: Path) -> None:
    from evmeta.sheets.reader import read_raw

    extraction, problems = validate_extraction(path)
    if extraction is None:
        assert problems and all(p.message for p in problems)
        return
    raw = read_raw(path)
    errors = [p for p in problems if p.severity == "error"]
    for name in SHEETS:
        sheet = next((s for key, s in raw.sheets.items() if key.strip().casefold() == name), None)
        if sheet is None:
            continue
        kept = set(extraction.sheets[name]["_row"]) if len(extraction.sheets[name]) else set()
        mine = [p for p in errors if p.sheet in {name, sheet.name}]
        sheet_level = any(p.row in (None, 1) for p in mine)
        # "merged cells D2:E3: unmerge them" names every row of its range.
        merged = {r for p in mine if p.message.startswith("merged cells") for r in _range_rows(p.value)}
        # Rows folded into the line of the row they depend on ("and 3 rows that depend on it").
        folded = {r for p in errors for s, r in p.dependents if s in {name, sheet.name}}
        for row, _cells in sheet.rows:
            named = row in merged or row in folded or any(p.row == row for p in mine)
            assert row in kept or named or sheet_level, f"{name}!{row} vanished"


def _range_rows(ref: str) -> range:
    from openpyxl.utils.cell import range_boundaries

    _, first, _, last = range_boundaries(ref)
    return range(first, last + 1)


def _assert_clean(result) -> None:
    assert result.exit_code in {0, 1, 2}, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


@settings(
    max_examples=int(os.environ.get("EVMETA_FUZZ_EXAMPLES", "12")),  # more for a long local run
    deadline=None,
    # No shrinking: a failure prints its mutations as found; shrinking a workbook can take
    # minutes, over the CI budget.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_hostile_workbook_mutations(small_workbook, tmp_path_factory, mutations):
    folder = tmp_path_factory.mktemp("case")
    target = folder / "w.xlsx"
    _mutate(small_workbook, target, mutations)
    runner = CliRunner()
    with time_limit(SECONDS), memory_limit(MEMORY_BUDGET):
        _assert_clean(runner.invoke(app, ["validate", str(target)]))
        _assert_clean(runner.invoke(app, ["harmonize", str(target), "-o", str(folder / "c.csv")]))
        _assert_every_row_accounted_for(target)
    written = folder / "c.csv"
    if written.exists():
        for line in written.read_text(encoding="utf-8").splitlines():
            for field in line.split(","):
                assert not field.startswith(("=", "+", "@")), field  # neutralized on export
