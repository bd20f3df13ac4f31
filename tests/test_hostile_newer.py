"""Hostile input, third round (issue 29): the newer commands answer with a sentence.

One test per kind of the issue: tracebacks (maps, prisma widths, empty CSVs, WebPlotDigitizer
JSON), silently wrong results (duplicated headers, split controls, pasted rows, n 0.4,
non-finite digitized values, keep = maybe, dose texts), runs that do not end (FIFOs,
/dev/zero, a multiverse of 10^7 specifications, resamples over the cap, a scheduler that
never answers) and unclear messages (byte-order marks, CRLF).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from evmeta.cli import app
from evmeta.errors import SpecError
from evmeta.review.digitized import DigitizedError, read_digitized
from evmeta.schema.doses.text import DoseTextError, read_dose_text
from evmeta.schema.wide_import import read_map, read_table, wide_to_sheets
from tests.conftest import EXAMPLE
from tests.test_hostile_sheets import time_limit

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
WIDE = Path(__file__).parent / "data" / "wide"
SEARCH = ROOT / "extraction" / "search"
MAP = (WIDE / "simulated_wide.toml").read_text()


def _sentence(result, *fragments: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


# --- import-wide: the map -------------------------------------------------------------------


def _import(tmp_path: Path, table: Path, map_path: Path):
    return runner.invoke(
        app, ["import-wide", str(table), "--map", str(map_path), "-o", str(tmp_path / "o.xlsx")]
    )


def test_map_not_utf8_a_folder_a_fifo_or_a_list_constant(tmp_path):
    table = WIDE / "simulated_wide.csv"
    latin = tmp_path / "latin.toml"
    latin.write_bytes(MAP.replace("mouse", "souris é").encode("latin-1"))
    _sentence(_import(tmp_path, table, latin), "not UTF-8")
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    _sentence(_import(tmp_path, table, folder), "is a folder")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with time_limit(10):
        _sentence(_import(tmp_path, table, fifo), "named pipe")
    listed = tmp_path / "list.toml"
    listed.write_text(MAP.replace('species = "mouse"', 'species = ["mouse", "rat"]'))
    _sentence(_import(tmp_path, table, listed), "constants.species must be one value")
    assert not (tmp_path / "o.xlsx").exists()


def test_map_with_a_byte_order_mark_and_crlf_is_read(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MAP.replace("\n", "\r\n").encode())
    assert read_map(path).columns == read_map(WIDE / "simulated_wide.toml").columns


# --- import-wide: the table -----------------------------------------------------------------

HEADER = "Study,Arm,Outcome,Day,N_T,Mean_T,SD_T,N_C,Mean_C,SD_C\n"
SMALL_MAP = """
[columns]
study_id = "Study"
treat_label = "Arm"
outcome = "Outcome"
timepoint = "Day"
treat_n = "N_T"
treat_mean = "Mean_T"
treat_sd = "SD_T"
control_n = "N_C"
control_mean = "Mean_C"
control_sd = "SD_C"
[options]
control_n_is_split = true
"""


def _wide(tmp_path: Path, rows: str, header: str = HEADER):
    table = tmp_path / "t.csv"
    table.write_text(header + rows)
    map_path = tmp_path / "m.toml"
    map_path.write_text(SMALL_MAP)
    return wide_to_sheets(read_table(table), read_map(map_path))


def test_a_duplicated_header_names_both_columns(tmp_path):
    header = "Study,Arm,Outcome,Day,N_T,Mean_T,SD_T,N_C,Mean_C,SD_C,N_T\n"
    with pytest.raises(SpecError, match=r"2 columns headed 'N_T' \(column E and column K\)"):
        _wide(tmp_path, "S1,EV,cr,3,8,1.1,0.3,8,1.9,0.4,9\n", header)


@pytest.mark.parametrize("split", [("3.33", "3.33", "3.34"), ("3", "3", "4")])
def test_a_split_control_typed_unevenly_is_one_control(tmp_path, split):
    rows = "".join(f"S1,EV{i},cr,3,6,1.{i},0.3,{n},2.1,0.45\n" for i, n in enumerate(split))
    result = _wide(tmp_path, rows)
    controls = [a for a in result.data["arms"] if a["role"] == "vehicle_control"]
    assert len(result.data["experiments"]) == 1 and len(controls) == 1
    control = next(o for o in result.data["outcomes"] if o["arm_id"] == controls[0]["arm_id"])
    assert control["n"] == 10 and " + ".join(split) in control["notes"]


def test_a_row_pasted_twice_is_skipped_and_not_counted_in_the_control(tmp_path):
    rows = "S1,EV low,cr,3,6,1.5,0.3,3,2.1,0.45\nS1,EV high,cr,3,6,1.2,0.3,3,2.1,0.45\n"
    result = _wide(tmp_path, rows + "S1,EV high,cr,3,6,1.2,0.3,3,2.1,0.45\n")
    control = next(o for o in result.data["outcomes"] if o["outcome_id"].endswith("-O0"))
    assert control["n"] == 6  # 3 + 3, not 9
    skipped = result.log[result.log["status"] == "skipped"]
    assert list(skipped["table_row"]) == [4] and "same values as table row 3" in skipped["reason"].iloc[0]


def test_a_treatment_n_below_one_is_refused(tmp_path):
    result = _wide(tmp_path, "S1,EV,cr,3,0.4,1.1,0.3,8,1.9,0.4\nS2,EV,cr,3,8,1.1,0.3,8,1.9,0.4\n")
    reason = result.log.set_index("study_id").loc["S1", "reason"]
    assert "treatment n must be at least 1, got 0.4" in reason
    assert {o["n"] for o in result.data["outcomes"]} == {8}


def test_import_wide_under_an_unwritable_path_is_refused_before_reading(tmp_path):
    fifo = tmp_path / "table.csv"
    os.mkfifo(fifo)  # reading it would block: the output check must come first
    with time_limit(10):
        result = runner.invoke(
            app,
            ["import-wide", str(fifo), "--map", str(WIDE / "simulated_wide.toml"), "-o", "/proc/x/b.xlsx"],
        )
    _sentence(result, "/proc/x/b.xlsx")


# --- prisma, screen-sheet, dedupe -----------------------------------------------------------


@pytest.mark.parametrize("width", ["0", "-5", "nan", "inf", "1e6", "wide"])
def test_prisma_width_outside_20_to_500_mm_is_a_sentence(tmp_path, width):
    args = ["prisma", "--search", str(SEARCH / "pubmed.nbib"), "--dedupe", str(SEARCH / "deduplicated.csv")]
    args += ["--screening", str(SEARCH / "screening.xlsx"), "--extraction", str(EXAMPLE)]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "p.pdf"), "--width", width])
    _sentence(result, "--width must be double, single or a width of 20-500 mm")
    assert not list(tmp_path.iterdir())


def test_an_empty_or_hostile_deduplicated_csv_is_a_sentence(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _sentence(runner.invoke(app, ["screen-sheet", str(empty), "-o", str(tmp_path / "s.xlsx")]), "is empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text("record_id,cluster_id,keep,title\n")
    _sentence(
        runner.invoke(app, ["screen-sheet", str(header_only), "-o", str(tmp_path / "s.xlsx")]), "no records"
    )
    maybe = tmp_path / "maybe.csv"
    table = pd.read_csv(SEARCH / "deduplicated.csv", dtype=str, keep_default_na=False)
    table.loc[1, "keep"] = "maybe"
    table.to_csv(maybe, index=False)
    result = runner.invoke(app, ["screen-sheet", str(maybe), "-o", str(tmp_path / "s.xlsx")])
    _sentence(result, "keep must be true or false", "row(s) 3", "'maybe'")
    with time_limit(10):
        result = runner.invoke(app, ["screen-sheet", "/dev/zero", "-o", str(tmp_path / "s.xlsx")])
    _sentence(result, "a device")
    assert not (tmp_path / "s.xlsx").exists()


# --- digitized ------------------------------------------------------------------------------


def _project(calibration=None, data=None, log=False) -> dict:
    calibration = calibration or [
        {"px": 50, "py": 250, "dx": "0", "dy": "0"},
        {"px": 50, "py": 50, "dx": "0", "dy": "20"},
    ]
    data = data if data is not None else [{"x": 100, "y": 150}, {"x": 100, "y": 120}]
    return {
        "version": [4, 2],
        "axesColl": [{"name": "Bar", "type": "BarAxes", "isLog": log, "calibrationPoints": calibration}],
        "datasetColl": [{"name": "A", "axesName": "Bar", "data": data}],
    }


def _digitize(tmp_path: Path, content: str | bytes, name: str = "p.json"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return runner.invoke(
        app, ["digitized", str(path), "--kind", "bar", "--error", "sd", "-o", str(tmp_path / "r.csv")]
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ("{\"a\": \"\xe9\"}".encode("latin-1"), "not UTF-8"),
        (json.dumps(_project(calibration=[{"py": 250, "dx": "0", "dy": "0"}, {"px": 1, "py": 2, "dy": "5"}])), "'px' is missing"),
        (json.dumps(_project(data=[{"x": [1, 2], "y": 150}, {"x": 100, "y": 120}])), "expected a number"),
        (json.dumps(_project(data=["100,150", {"x": 100, "y": 120}])), "expected an object"),
        (json.dumps(_project(calibration=[{"px": 50, "py": 250, "dy": "NaN"}, {"px": 50, "py": 50, "dy": "20"}])), "finite number"),
        (json.dumps(_project(calibration=[{"px": 50, "py": 250, "dy": "0"}, {"px": 50, "py": 50, "dy": "Infinity"}])), "finite number"),
        (json.dumps(_project(data=[{"x": 100, "y": "Infinity"}, {"x": 100, "y": 120}])), "finite number"),
        ('{"axesColl": [], "datasetColl": [], "x": NaN}', "NaN is not a number"),
        (json.dumps(_project(calibration=[{"px": 50, "py": 250, "dy": "1"}, {"px": 50, "py": 50, "dy": "1e300"}], data=[{"x": 100, "y": -50}, {"x": 100, "y": 120}], log=True)), "not a finite number"),
        (json.dumps(_project(calibration=[{"px": 50, "py": 250, "dy": "0"}, {"px": 50, "py": 50, "dy": "1.7e308"}], data=[{"x": 100, "y": -50}, {"x": 100, "y": 120}])), "not a finite number"),
        (json.dumps(_project(calibration=[{"px": 50, "py": 250, "dy": "1"}, {"px": 50, "py": 249, "dy": "10"}], log=True)), "calibrated spans"),
        (json.dumps(_project(data=[{"x": 100, "y": -900000}, {"x": 100, "y": 120}], log=False)), "calibrated spans"),
    ],
    ids=["nested", "latin1", "no-px", "pair", "string-point", "nan-cal", "inf-cal", "inf-point", "NaN-literal", "extreme-log", "extreme-linear", "off-log-axis", "off-axis"],
)  # fmt: skip
def test_hostile_webplotdigitizer_json_is_a_sentence(tmp_path, content, expected):
    _sentence(_digitize(tmp_path, content), expected)
    assert not (tmp_path / "r.csv").exists()


def test_webplotdigitizer_special_files_and_csv_infinity(tmp_path):
    (tmp_path / "dir.json").mkdir()
    _sentence(
        runner.invoke(
            app,
            [
                "digitized",
                str(tmp_path / "dir.json"),
                "--kind",
                "bar",
                "--error",
                "sd",
                "-o",
                str(tmp_path / "r.csv"),
            ],
        ),
        "is a folder",
    )
    os.mkfifo(tmp_path / "fifo.json")
    with time_limit(10):
        with pytest.raises(DigitizedError, match="named pipe"):
            read_digitized(tmp_path / "fifo.json", kind="bar", error="sd")
    _sentence(_digitize(tmp_path, "Bar0,12.5\nBar0,Infinity\n", "e.csv"), "finite number")
    _sentence(_digitize(tmp_path, "Bar0,1\nBar0,nan\n", "n.csv"), "finite number")


def test_a_sound_project_still_reads(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(_project()))
    rows = read_digitized(path, kind="bar", error="sd")
    assert rows["mean"].tolist() == [10.0] and rows["sd"].tolist() == [3.0]


# --- doses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("5 ug/g/kg", "two_bases"),
        (">100 ug", "bound"),
        ("≥ 100 ug", "bound"),
        ("up to 50 ug/kg", "bound"),
        ("1.000 µg", "ambiguous_number"),
        ("1,500 µg", "ambiguous_number"),
        ("30 ug every 6 h for 2 years", "too_many_doses"),
    ],
)
def test_doses_that_were_silently_wrong_are_refused(text, reason):
    with pytest.raises(DoseTextError) as caught:
        read_dose_text(text)
    assert caught.value.reason == reason


def test_doses_that_were_misread_are_read():
    assert read_dose_text("5 e 3 µg").value == 5000.0
    per_kg = read_dose_text("100 µg·kg⁻¹")
    assert (per_kg.value, per_kg.basis) == (100.0, "per_kg")
    assert read_dose_text("0.125 mg").value == 0.125  # a leading zero is a decimal point
    assert read_dose_text("10 ug daily for 1 year").n_doses == 365
    assert read_dose_text("10 ug over 2 weeks, daily").n_doses == 14  # 'over' a duration is no bound


# --- multiverse -----------------------------------------------------------------------------


def _multiverse_spec(tmp_path: Path, choices: str) -> Path:
    spec = tmp_path / "mv.toml"
    spec.write_text(f'[analysis]\nname = "mv"\nextraction = "{EXAMPLE}"\n\n[multiverse]\n{choices}\n')
    return spec


def _ten_million(tmp_path: Path) -> Path:
    scores = ", ".join(f"{v / 10_000:.4f}" for v in range(10_000))
    species = ", ".join(f'["species {i}"]' for i in range(1000))
    return _multiverse_spec(
        tmp_path, f'"filters.min_quality_score" = [{scores}]\n"filters.species" = [{species}]'
    )


def test_a_multiverse_of_ten_million_specifications_is_refused_before_planning(tmp_path):
    spec = _ten_million(tmp_path)
    started = time.perf_counter()
    with time_limit(60):
        result = runner.invoke(
            app, ["multiverse", str(spec), "-o", str(tmp_path / "o"), "--scheduler", "serial"]
        )
    _sentence(result, "crosses 10,000,000 specifications; the limit is 100,000")
    assert time.perf_counter() - started < 30
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_the_size_check_counts_without_building(tmp_path):
    from evmeta.analysis.multiverse.plan import MAX_SPECIFICATIONS, check_size, count_specifications
    from evmeta.analysis.spec import load_spec

    spec = load_spec(_ten_million(tmp_path))
    assert count_specifications(spec) == 10_000_000 > MAX_SPECIFICATIONS
    with pytest.raises(SpecError, match="crosses 10,000,000 specifications"):
        check_size(spec, 0)
    small = load_spec(_multiverse_spec(tmp_path, '"frequentist.method" = ["REML", "DL"]'))
    assert check_size(small, 100_000) == 2
    with pytest.raises(SpecError, match="model fits; the limit is 20,000,000"):
        check_size(
            load_spec(
                _multiverse_spec(
                    tmp_path,
                    f'"filters.min_quality_score" = [{", ".join(f"{v / 1000:.3f}" for v in range(1000))}]',
                )
            ),
            100_000,
        )


def test_null_resamples_on_the_command_line_have_the_spec_cap(tmp_path):
    spec = _multiverse_spec(tmp_path, '"frequentist.method" = ["REML", "DL"]')
    result = runner.invoke(
        app, ["multiverse", str(spec), "--null-resamples", "1000000", "--scheduler", "serial"]
    )
    assert result.exit_code == 2 and "1000000" in result.output and "Traceback" not in result.output
    from evmeta.analysis.multiverse import run_multiverse

    with pytest.raises(SpecError, match="null_resamples must be 0 to 100,000"):
        run_multiverse(spec, output=tmp_path / "o", scheduler="serial", null_resamples=1_000_000)


def test_a_scheduler_that_accepts_and_never_answers_is_abandoned(tmp_path, monkeypatch):
    import evmeta.analysis.multiverse as multiverse

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setattr(multiverse, "SCHEDULER_HANDSHAKE_TIMEOUT", 1.0)
    spec = _multiverse_spec(tmp_path, '"frequentist.method" = ["REML", "DL"]')
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        started = time.perf_counter()
        with time_limit(30):
            result = runner.invoke(
                app, ["multiverse", str(spec), "-o", str(tmp_path / "o"), "--scheduler", address]
            )
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join(2)
        server.close()
        for connection in held:
            connection.close()
    _sentence(result, "accepted the connection but did not answer within 1 s")
    assert elapsed < 20
    shutil.rmtree(tmp_path / "o", ignore_errors=True)
