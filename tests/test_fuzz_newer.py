"""Fuzz the newer commands (issue 29 item 6): hostile input ends with a clear answer.

For each of import-wide, screen-sheet, prisma, digitized, .ods reading, multiverse specs and
dose texts, hypothesis generates hostile input; every example must end (time limit) with
either a result or one of evmeta's own errors (an exit code of 0, 1 or 2 and no traceback
for commands). The examples are few and derandomized so the file runs in well under a
minute and the same inputs run in CI every time; ``EVMETA_FUZZ_EXAMPLES=200`` runs more.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from evmeta.cli import app
from evmeta.errors import EvmetaError
from tests.conftest import EXAMPLE
from tests.test_hostile_sheets import time_limit

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
WIDE = Path(__file__).parent / "data" / "wide"
SEARCH = ROOT / "extraction" / "search"
EXAMPLES = int(os.environ.get("EVMETA_FUZZ_EXAMPLES", "12"))
SECONDS = 60

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
HOSTILE = st.one_of(
    st.sampled_from(
        [
            "", " ", "NaN", "nan", "inf", "-inf", "Infinity", "1e309", "-0", "0", "0.4", "1,500", "1.000",
            "=1/0", "+1", "@SUM(A1)", "#N/A", "\x00", "\ufeff", "é", "𝔘", '"', "'", ",", ";", "\r\n",
            "3.33", "10^9", "5 e 3", "9" * 400, "x" * 2000, "true", "maybe", "-5", "1e-320",
        ]
    ),
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)  # fmt: skip


def _clean_exit(result, codes=(0, 1, 2)) -> None:
    assert result.exit_code in codes, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


# --- import-wide ----------------------------------------------------------------------------

TABLE = (WIDE / "simulated_wide.csv").read_text().splitlines()


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(1, len(TABLE) - 1), st.integers(0, 13), HOSTILE), max_size=6))
def test_import_wide_fuzz(tmp_path_factory, edits):
    folder = tmp_path_factory.mktemp("wide")
    rows = [line.split(",") for line in TABLE]
    for row, column, value in edits:
        rows[row][column] = _csv_cell(value)
    table = folder / "t.csv"
    table.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8", errors="surrogatepass")
    with time_limit(SECONDS):
        result = runner.invoke(
            app,
            [
                "import-wide",
                str(table),
                "--map",
                str(WIDE / "simulated_wide.toml"),
                "-o",
                str(folder / "b.xlsx"),
            ],
        )
    _clean_exit(result, (0, 2))
    assert (result.exit_code == 0) == (folder / "b.xlsx").exists()


@FUZZ
@given(
    key=st.sampled_from(["study_id", "treat_n", "species", "control_n_is_split", "treat_mean", "nonsense"]),
    section=st.sampled_from(["columns", "constants", "options"]),
    value=st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)),
    prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]),
)
def test_import_wide_map_fuzz(tmp_path_factory, key, section, value, prefix):
    folder = tmp_path_factory.mktemp("map")
    base = (WIDE / "simulated_wide.toml").read_text()
    extra = f"{key} = {json.dumps(value)}\n"  # JSON strings, numbers, booleans and lists are TOML
    text = base.replace(f"[{section}]\n", f"[{section}]\n{extra}", 1) if f"[{section}]" in base else base
    path = folder / "m.toml"
    path.write_bytes(prefix + text.encode())
    with time_limit(SECONDS):
        result = runner.invoke(
            app,
            [
                "import-wide",
                str(WIDE / "simulated_wide.csv"),
                "--map",
                str(path),
                "-o",
                str(folder / "b.xlsx"),
            ],
        )
    _clean_exit(result, (0, 2))


# --- screen-sheet and prisma ----------------------------------------------------------------

DEDUPLICATED = pd.read_csv(SEARCH / "deduplicated.csv", dtype=str, keep_default_na=False)


def _mutated_deduplicated(folder: Path, edits, truncate: int | None) -> Path:
    table = DEDUPLICATED.head(12).copy()
    for row, column, value in edits:
        table.iat[row % len(table), column % table.shape[1]] = value
    path = folder / "deduplicated.csv"
    text = table.to_csv(index=False)
    path.write_text(
        text[:truncate] if truncate is not None else text, encoding="utf-8", errors="surrogatepass"
    )
    return path


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 30), HOSTILE), max_size=5),
    truncate=st.one_of(st.none(), st.integers(0, 400)),
)
def test_screen_sheet_fuzz(tmp_path_factory, edits, truncate):
    folder = tmp_path_factory.mktemp("screen")
    path = _mutated_deduplicated(folder, edits, truncate)
    with time_limit(SECONDS):
        result = runner.invoke(app, ["screen-sheet", str(path), "-o", str(folder / "s.xlsx")])
    _clean_exit(result, (0, 2))


@settings(FUZZ, max_examples=max(3, EXAMPLES // 3))
@given(width=HOSTILE, edits=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 30), HOSTILE), max_size=3))
def test_prisma_fuzz(tmp_path_factory, width, edits):
    folder = tmp_path_factory.mktemp("prisma")
    dedupe = _mutated_deduplicated(folder, edits, None) if edits else SEARCH / "deduplicated.csv"
    args = ["prisma", "--search", str(SEARCH / "pubmed.nbib"), "--dedupe", str(dedupe)]
    args += ["--screening", str(SEARCH / "screening.xlsx"), "--extraction", str(EXAMPLE)]
    with time_limit(SECONDS):
        result = runner.invoke(app, [*args, "-o", str(folder / "p.svg"), "--width", width])
    _clean_exit(result)


# --- digitized ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
POINT = st.fixed_dictionaries(
    {"x": st.one_of(st.floats(-1e6, 1e6), JSON), "y": st.one_of(st.floats(-1e6, 1e6), JSON)}
)
CALIBRATION = st.fixed_dictionaries(
    {
        "px": st.floats(-1e3, 1e3),
        "py": st.floats(-1e3, 1e3),
        "dy": st.one_of(st.floats(-1e300, 1e300), st.sampled_from(["NaN", "Infinity", "0", "1e308"])),
    }
)


@FUZZ
@given(
    project=st.fixed_dictionaries(
        {
            "axesColl": st.lists(
                st.fixed_dictionaries(
                    {"name": st.just("Bar"), "type": st.sampled_from(["BarAxes", "XYAxes", "Polar"]), "isLog": st.booleans(),
                     "calibrationPoints": st.one_of(st.lists(CALIBRATION, max_size=4), JSON)}
                ),
                max_size=2,
            ),
            "datasetColl": st.lists(
                st.fixed_dictionaries({"name": st.text(max_size=5), "axesName": st.just("Bar"), "data": st.one_of(st.lists(POINT, max_size=6), JSON)}),
                max_size=2,
            ),
        }
    )
)  # fmt: skip
def test_digitized_fuzz(tmp_path_factory, project):
    from evmeta.review.digitized import read_digitized

    folder = tmp_path_factory.mktemp("wpd")
    path = folder / "p.json"
    path.write_text(json.dumps(project))
    with time_limit(SECONDS):
        try:
            rows = read_digitized(path, kind="bar", error="sd")
        except EvmetaError:
            return
    numbers = rows[["mean", "sd", "value_per_pixel"]].to_numpy(dtype=float).ravel()
    assert all(math.isfinite(v) for v in numbers), rows


# --- .ods reading ---------------------------------------------------------------------------

ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)
ODS_CELL = st.one_of(
    st.builds(lambda v: f'<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>', st.sampled_from(["a", "&amp;", "x" * 50, ""])),
    st.builds(lambda v: f'<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>', HOSTILE.map(lambda s: s.replace("<", "").replace("&", "").replace('"', ""))),
    st.builds(lambda n: f'<table:table-cell table:number-columns-repeated="{n}"/>', st.sampled_from(["1", "0", "-1", "16384", "99999999999", "x"])),
    st.sampled_from(["<table:table-cell", "<!DOCTYPE x [<!ENTITY a 'b'>]>", "&a;", "</table:table-row>"]),
)  # fmt: skip


@FUZZ
@given(
    rows=st.lists(st.lists(ODS_CELL, max_size=5), max_size=5),
    repeat=st.sampled_from(["1", "2", "100000", "0", "x"]),
    zipped=st.booleans(),
)
def test_ods_reading_fuzz(tmp_path_factory, rows, repeat, zipped):
    from evmeta.sheets.ods import read_ods

    folder = tmp_path_factory.mktemp("ods")
    body = "".join(
        f'<table:table-row table:number-rows-repeated="{repeat}">{"".join(r)}</table:table-row>' for r in rows
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODS_NS}><office:body><office:spreadsheet>'
        f'<table:table table:name="outcomes">{body}</table:table></office:spreadsheet></office:body></office:document-content>'
    )
    path = folder / "b.ods"
    if zipped:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
            archive.writestr("content.xml", content)
    else:
        path.write_text(content)
    with time_limit(SECONDS):
        try:
            read_ods(path)
        except EvmetaError:
            pass


# --- multiverse specs -----------------------------------------------------------------------

KEYS = [
    "comparisons.measure", "comparisons.timepoint", "comparisons.shared_control", "filters.min_quality_score",
    "filters.low_risk_of_bias_only", "frequentist.method", "frequentist.test", "frequentist.multilevel",
    "nonsense.key", "outliers", "model",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["SMD", "ROM", "REML", "DL", "z", "knha", "split", "keep", "last", "first", "none", "three_level", "bayes_quadrature", "random_effects", "studentized_residual_gt_2"]),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-2, max_value=2),
    st.booleans(),
    st.lists(st.sampled_from(["study_id", "experiment_id"]), max_size=2),
)  # fmt: skip


@FUZZ
@given(
    choices=st.dictionaries(
        st.sampled_from(KEYS), st.one_of(st.lists(VALUES, max_size=5), VALUES), max_size=6
    )
)
def test_multiverse_spec_fuzz(choices):
    from evmeta.analysis.multiverse.plan import MAX_SPECIFICATIONS, check_size, plan
    from evmeta.analysis.spec import parse_spec

    data = {"analysis": {"name": "fuzz", "extraction": str(EXAMPLE)}, "multiverse": choices}
    with time_limit(SECONDS):
        try:
            spec = parse_spec(data, Path("fuzz.toml"))
            count = check_size(spec, 0)
            specs = plan(spec)
        except EvmetaError:
            return
    assert len(specs) == count <= MAX_SPECIFICATIONS
    assert all(s.status in {"planned", "skipped"} for s in specs)


# --- dose texts -----------------------------------------------------------------------------

DOSE_WORDS = st.sampled_from(
    [
        "5", "1.000", "1,500", "100", "0.125", "2 x 10^9", "5 e 3", "1e400", "10^", "x10", ">", "≥", "~", "up to",
        "ug", "µg", "mg", "particles", "cells", "/kg", "/g", "·kg⁻¹", "/mouse", "/100 ul", "ul", "ml", "every",
        "6 h", "daily", "for", "2 years", "7 days", "twice", "times", "i.v.", "-", "–", "(", ")", ",", ";", "and",
        "or", "NR", "per", "dose", "0", "-5", "⁹", "×",
    ]
)  # fmt: skip


@settings(FUZZ, max_examples=EXAMPLES * 10)
@given(parts=st.lists(DOSE_WORDS, min_size=1, max_size=8))
def test_dose_text_fuzz(parts):
    from evmeta.schema.doses.schedule import MAX_DOSES
    from evmeta.schema.doses.text import REASONS, DoseTextError, read_dose_text

    text = " ".join(parts)
    with time_limit(10):
        try:
            reading = read_dose_text(text)
        except DoseTextError as exc:
            assert exc.reason in REASONS
            return
    assert math.isfinite(reading.value) and reading.value > 0, (text, reading)
    assert reading.n_doses is None or 1 <= reading.n_doses <= MAX_DOSES
