"""Hostile workbooks end within bounded time and memory, and hidden content gets a note.

Issue 17, hangs 2, 3 and 7 and silently-wrong item 5. The runaway recipes run under a
lowered ``RLIMIT_AS`` (address space; MemoryError past the budget) and a SIGALRM time
limit, so a regression fails the test instead of hanging or swapping the machine.
"""

from __future__ import annotations

import os
import resource
import signal
import zipfile
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from evmeta.cli import app
from evmeta.schema.validation.validate import validate_extraction
from evmeta.sheets import reader
from evmeta.sheets.reader import MAX_UNCOMPRESSED_BYTES, UnreadableInput, read_raw
from tests.conftest import EXAMPLE, edit

GB = 1024**3


@contextmanager
def time_limit(seconds: float):
    """Fail (TimeoutError) instead of hanging: SIGALRM interrupts a blocking open() or read()."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def memory_limit(extra: int = 2 * GB):
    """Lower the soft address-space limit (RLIMIT_AS) to the current size plus ``extra``.

    Restored afterwards. Going over raises MemoryError in the test instead of swapping.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    current = _address_space()
    limit = current + extra if hard == resource.RLIM_INFINITY else min(hard, current + extra)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.parametrize("cell", ["A1048576", "XFD1048576"])
def test_cost_follows_the_cells_that_hold_data(tmp_path, cell):
    # Recipe hang 2: one `x` at the sheet's last row (or last cell) took 167 s and 3.1 GB.
    book = edit(EXAMPLE)
    book["studies"][cell] = "x"
    path = tmp_path / "extent.xlsx"
    book.save(path)
    with time_limit(30), memory_limit(1 * GB):
        done = CliRunner().invoke(app, ["validate", str(path)])
    assert done.exit_code == 1, done.output
    if cell == "A1048576":
        assert "studies!B1048576 first_author: required" in done.output  # the stray row is reported
    else:
        assert "XFD1048576" in done.output and "right of the last header column" in done.output


def test_header_and_rows_keep_their_structure(tmp_path):
    book = edit(EXAMPLE)
    book["studies"]["AZ3"] = "stray"
    path = tmp_path / "book.xlsx"
    book.save(path)
    raw = read_raw(path)
    studies = raw.sheets["studies"]
    assert studies.header[0] == "study_id" and all(len(c) == len(studies.header) for _, c in studies.rows)
    assert [p for p in raw.problems if "AZ3" in p.message]


def _inflating_xlsx(path: Path, inflated: int) -> None:
    """A small .xlsx whose sheet part unpacks to ``inflated`` bytes (recipe hang 3)."""
    from benchmarks.bench_reader_limits import _CONTENT_TYPES, _RELS, _WORKBOOK, _WORKBOOK_RELS

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            chunk = b" " * (1 << 20)
            for _ in range(inflated // len(chunk)):
                sheet.write(chunk)


def test_inflated_size_is_refused_before_parsing(tmp_path):
    path = tmp_path / "bomb.xlsx"
    _inflating_xlsx(path, MAX_UNCOMPRESSED_BYTES + (4 << 20))
    assert path.stat().st_size < 2_000_000
    with time_limit(20), memory_limit(1 * GB):
        done = CliRunner().invoke(app, ["validate", str(path)])
    assert done.exit_code == 2 and "over the" in done.output


def test_rows_beyond_the_limit_are_refused(tmp_path, monkeypatch):
    from benchmarks.bench_reader_limits import write_dense_workbook

    path = tmp_path / "dense.xlsx"
    write_dense_workbook(path, 200_000)
    monkeypatch.setattr(reader, "MAX_ROWS", 100)
    with pytest.raises(UnreadableInput, match="more than 100 data rows"):
        read_raw(path)


def test_streaming_stays_within_memory(tmp_path):
    # A sheet part just under the inflated limit, all cells inside the header: bounded.
    from benchmarks.bench_reader_limits import write_dense_workbook

    path = tmp_path / "dense.xlsx"
    write_dense_workbook(path, 4 * 1024 * 1024)
    with time_limit(60), memory_limit(1 * GB):
        rows = sum(len(s.rows) for s in read_raw(path).sheets.values())
    assert rows > 7_000


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_device_and_folder_are_refused(tmp_path):
    # Recipe hang 7: opening a FIFO blocks until a writer comes; /dev/zero never ends.
    fifo = tmp_path / "x.xlsx"
    os.mkfifo(fifo)
    zero = tmp_path / "x.csv"
    zero.symlink_to("/dev/zero")
    folder = tmp_path / "csvs"
    folder.mkdir()
    os.mkfifo(folder / "studies.csv")
    named_dir = tmp_path / "dir.xlsx"
    named_dir.mkdir()
    for target, expected in [
        (fifo, "named pipe"),
        (zero, "a device"),
        (folder, "named pipe"),
        (named_dir, "contains no .csv files"),
    ]:
        with time_limit(20):
            done = CliRunner().invoke(app, ["validate", str(target)])
        assert done.exit_code == 2 and expected in done.output, (target, done.output)
        assert done.exception is None or isinstance(done.exception, SystemExit)


def test_hidden_rows_sheets_and_columns_are_read_with_a_note(example_copy):
    book = edit(example_copy)
    book["outcomes"].row_dimensions[3].hidden = True
    book["outcomes"].row_dimensions[4].hidden = True
    book["outcomes"].row_dimensions[9].hidden = True
    book["arms"].sheet_state = "hidden"
    book["studies"].column_dimensions["B"].hidden = True
    book.save(example_copy)
    before, _ = validate_extraction(EXAMPLE)
    extraction, problems = validate_extraction(example_copy)
    assert len(extraction.outcomes) == len(before.outcomes)  # hidden rows are analysed
    assert len(extraction.arms) == len(before.arms)
    notes = [str(p) for p in problems if p.severity == "note"]
    assert any("hidden row(s) were read: rows 3-4, 9" in n and n.startswith("outcomes") for n in notes)
    assert any("sheet 'arms' is hidden" in n for n in notes)
    assert any(n.startswith("studies!B1") and "hidden" in n for n in notes)


def test_a_hidden_template_sheet_gets_no_note(tmp_path):
    from evmeta.schema.template import write_template

    path = write_template(tmp_path / "t.xlsx")
    book = openpyxl.load_workbook(path)
    hidden = [ws.title for ws in book.worksheets if ws.sheet_state != "visible"]
    _, problems = validate_extraction(path)
    assert not [p for p in problems if "hidden" in p.message and p.sheet in hidden]


def test_many_cells_right_of_the_header_are_counted_not_listed(tmp_path):
    book = edit(EXAMPLE)
    for row in range(2, 40):
        book["studies"].cell(row=row, column=200, value="stray")
    path = tmp_path / "wide.xlsx"
    book.save(path)
    raw = read_raw(path)
    [problem] = [p for p in raw.problems if "right of the last header column" in p.message]
    assert problem.message.startswith("38 cell(s)") and "GR2, GR3" in problem.message
    assert "and 28 more" in problem.message


def _repeating_ods(path: Path, rows: int, columns: int, header: str = "") -> Path:
    """A few hundred bytes of .ods: one row repeated ``rows`` times, its cell ``columns`` times."""
    namespaces = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    )
    cell = '<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>'
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {namespaces}><office:body>'
        '<office:spreadsheet><table:table table:name="outcomes">'
        + (f"<table:table-row>{cell.format(header)}</table:table-row>" if header else "")
        + f'<table:table-row table:number-rows-repeated="{rows}">'
        f'<table:table-cell table:number-columns-repeated="{columns}" office:value-type="string">'
        "<text:p>x</text:p></table:table-cell></table:table-row>"
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return path


@pytest.mark.parametrize("rows", [10_000, 100_000])
def test_a_tiny_ods_cannot_repeat_its_way_past_the_limits(tmp_path, rows):
    # Issue 17: 532 bytes (10,000 rows x 1,000 repeated cells) took 26 s and ended in a bare
    # MemoryError; 100,000 rows reached 8.7 GB. Now refused like an .xlsx, within bounds.
    path = _repeating_ods(tmp_path / "tiny.ods", rows, 1_000)
    assert path.stat().st_size < 1_000
    with time_limit(20), memory_limit(1 * GB):
        done = CliRunner().invoke(app, ["validate", str(path)])
    assert done.exit_code == 2, done.output
    assert "tiny.ods" in done.output and "sheet 'outcomes'" in done.output
    assert ("more than" in done.output or "at most" in done.output) and "Traceback" not in done.output


def test_ods_columns_are_bounded_by_the_header(tmp_path):
    # A cell repeated across Calc's 16,384 columns costs the header's width, and the data
    # right of the header is reported at its cells, as for an .xlsx.
    path = _repeating_ods(tmp_path / "wide.ods", 3, 16_384, header="outcome_id")
    with time_limit(20), memory_limit(1 * GB):
        raw = read_raw(path)
    sheet = raw.sheets["outcomes"]
    assert sheet.header == ["outcome_id"] and all(len(cells) == 1 for _, cells in sheet.rows)
    [problem] = [p for p in raw.problems if "right of the last header column" in p.message]
    assert (
        problem.message.startswith("49,149 cell(s)") and "(A): B2, B3, B4 and 49,146 more;" in problem.message
    )


def test_ods_header_wider_than_the_column_limit_is_cut_with_a_note(tmp_path):
    path = _repeating_ods(tmp_path / "header.ods", 1, 16_384)
    raw = read_raw(path)
    assert len(raw.sheets["outcomes"].header) == reader.MAX_COLUMNS
    assert [p for p in raw.problems if "header cell(s) beyond column" in p.message]
