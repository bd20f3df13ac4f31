"""The living review end to end, through the CLI: init, first pass on the bundled search,
an update with a second export of new and repeated records, screening, a second extraction
version, the refit and its what-changed report, and the log (SQLite; the database steps
also run on PostgreSQL in tests/test_project_db.py)."""

from __future__ import annotations

import re
import shutil

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from evmeta.cli import app
from tests.project_support import BUNDLED_EXPORTS, PROJECT_DATA, ROOT, SEARCH, updated_extraction

EXAMPLE = ROOT / "extraction" / "example.xlsx"
UPDATE = PROJECT_DATA / "pubmed_update.ris"
NEW_STUDIES = {"update.001": "WANG2018", "update.002": "LI2019"}
#: What the reviewers decide on the four new works (tests/data/project/README.md).
PLAN = {
    "update.001": ("include", "include", None),
    "update.002": ("include", "include", None),
    "update.003": ("exclude", None, None),
    "update.004": ("include", "exclude", "not_in_vivo"),
}


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def fill(sheet_path, target) -> None:
    """Two reviewers' decisions on the update's screening workbook, as PLAN says."""
    book = openpyxl.load_workbook(sheet_path)
    sheet = book["screening"]
    col = {c.value: c.column for c in sheet[1]}
    for row in range(2, sheet.max_row + 1):
        ta, ft, reason = PLAN[sheet.cell(row, col["doi"]).value.rsplit("evmeta.", 1)[1]]
        for name in ("ta_reviewer_1", "ta_reviewer_2", "ta_decision"):
            sheet.cell(row, col[name]).value = ta
        for name in ("ft_reviewer_1", "ft_reviewer_2", "ft_decision"):
            sheet.cell(row, col[name]).value = ft
        sheet.cell(row, col["exclusion_reason"]).value = reason
        sheet.cell(row, col["final_decision"]).value = "include" if ft == "include" else "exclude"
    book.save(target)


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    """A project taken through two versions; returns (folder, outputs of each step)."""
    base = tmp_path_factory.mktemp("living")
    folder = base / "review"
    out = {"init": invoke("init", folder, "--spec", PROJECT_DATA / "living.toml")}
    out["search1"] = invoke("update", folder, "--search", *BUNDLED_EXPORTS, "--searched-on", "2025-01-15")
    out["screen1"] = invoke("update", folder, "--screening", SEARCH / "screening.xlsx", "--reviewer", "ana",
                            "--reviewer", "ben")  # fmt: skip
    out["extract1"] = invoke("update", folder, "--extraction", EXAMPLE)
    out["search2"] = invoke("update", folder, "--search", UPDATE, "--searched-on", "2026-06-01")
    out["search2_again"] = invoke("update", folder, "--search", UPDATE, "--searched-on", "2026-07-01")
    sheet = folder / "screening" / "screening_004.xlsx"
    fill(sheet, base / "screened_update.xlsx")
    out["screen2"] = invoke("update", folder, "--screening", base / "screened_update.xlsx")
    v2 = updated_extraction(EXAMPLE, base / "extraction_v2.xlsx", NEW_STUDIES)
    out["extract2"] = invoke("update", folder, "--extraction", v2)
    out["log"] = invoke("log", folder)
    return folder, out


def test_first_pass_screens_every_unique_record_of_the_bundled_search(review):
    folder, out = review
    assert "new unique records: 94" in out["search1"]
    first = pd.read_csv(folder / "screening" / "deduplicated_003.csv")
    bundled = pd.read_csv(SEARCH / "deduplicated.csv")
    # Same records kept as `evmeta dedupe` keeps, under the same ids: the bundled screening
    # log (keyed by those ids) is recorded without a single unknown record.
    assert set(first.loc[first["keep"], "record_id"]) == set(bundled.loc[bundled["keep"], "record_id"])
    assert "batch 1, 609 decision(s) recorded" in out["screen1"]


def test_update_lists_exactly_the_new_unique_records(review):
    folder, out = review
    assert "9 records, 4 new unique" in out["search2"]
    assert "duplicates of records already held: 4; duplicates among the new records: 1" in out["search2"]
    book = openpyxl.load_workbook(folder / "screening" / "screening_004.xlsx")
    rows = list(book["screening"].iter_rows(min_row=2, values_only=True))
    dois = sorted(row[4] for row in rows)
    assert dois == [f"10.9999/evmeta.update.00{i}" for i in (1, 2, 3, 4)]
    # The same export again (even under another search date) adds nothing.
    assert "already imported on" in out["search2_again"] and "new unique records: 0" in out["search2_again"]
    assert sorted(p.name for p in (folder / "screening").glob("screening_*.xlsx")) == [
        "screening_003.xlsx",
        "screening_004.xlsx",
    ]


def test_what_changed_names_the_new_studies_and_the_shift(review):
    folder, out = review
    report = folder / "reports" / "living" / "v002"
    assert "living: refitted" in out["extract2"] and (report / "report.html").is_file()
    text = (report / "what_changed.md").read_text()
    assert "new (2): NEW1, NEW2" in text
    assert "Comparisons: 113 before, 116 now; new (3)" in text
    before = pd.read_csv(folder / "reports" / "living" / "v001" / "results.csv")
    now = pd.read_csv(report / "results.csv")
    pooled = [f[(f["model"] == "random_effects")]["estimate"].iloc[0] for f in (before, now)]
    assert f"from {pooled[0]:.2f} to {pooled[1]:.2f}" in text
    assert re.search(r"\| 95% PI \| \[[-\d.]+, [-\d.]+\] \| \[[-\d.]+, [-\d.]+\] \|", text)
    sec = "| subgroup:isolation_method | isolation_method = SEC | 1.53 [1.13, 1.92] (18) |"
    assert sec in text  # the SEC subgroup gained the three new comparisons (18 -> 21)
    assert "| 2026-06-01 | 70 | 116 |" in text and "| 2025-01-15 | 68 | 113 |" in text


def test_cumulative_last_step_is_the_pooled_estimate(review):
    folder, _ = review
    for version in ("v001", "v002"):
        cumulative = pd.read_csv(folder / "reports" / "living" / version / "cumulative.csv")
        results = pd.read_csv(folder / "reports" / "living" / version / "results.csv")
        main = results[results["model"] == "random_effects"].iloc[0]
        # Same estimator on the same comparisons: equal up to floating-point summation order.
        assert cumulative["estimate"].iloc[-1] == pytest.approx(main["estimate"], rel=1e-10)
        assert cumulative["ci_low"].iloc[-1] == pytest.approx(main["ci_low"], rel=1e-10)
        assert cumulative["k"].iloc[-1] == main["k"]


def test_updated_prisma_counts(review):
    folder, _ = review
    first = pd.read_csv(folder / "reports" / "living" / "v001" / "prisma_update.csv")
    second = pd.read_csv(folder / "reports" / "living" / "v002" / "prisma_update.csv")

    def n(frame, item, box=None):
        rows = frame[(frame["item"] == item) & ((frame["box"] == box) if box else True)]
        return int(rows["n"].iloc[0])

    # First pass: the hand count of extraction/search/make_search.py.
    assert [n(first, "total", "records identified"), n(first, "duplicate records removed"),
            n(first, "records screened"), n(first, "reports assessed for eligibility"),
            n(first, "studies included in review")] == [153, 59, 93, 77, 68]  # fmt: skip
    # Update: 9 records, 5 duplicates, 4 screened, 1 out at title/abstract, 1 at full text.
    assert [n(second, "total", "records identified"), n(second, "duplicate records removed"),
            n(second, "records screened"), n(second, "records excluded"), n(second, "reason: not_in_vivo"),
            n(second, "studies included in review"), n(second, "studies", "studies included in previous version"),
            n(second, "studies", "total studies included in review"),
            n(second, "reports", "total studies included in review")] == [9, 5, 4, 1, 1, 2, 68, 70, 71]  # fmt: skip
    assert (folder / "reports" / "living" / "v002" / "prisma_update.svg").read_text().count('id="box') >= 12


def test_log_lists_every_step_and_the_report_names_the_state(review):
    folder, out = review
    log = out["log"]
    kinds = re.findall(r"^\S+ \S+ (\w+) +#\d+", log, flags=re.MULTILINE)
    assert kinds == ["search"] * 3 + [
        "screening",
        "extraction",
        "run",
        "search",
        "screening",
        "extraction",
        "run",
    ]
    assert "schema 0001_initial" in log and "records: 162" in log
    text = (folder / "reports" / "living" / "v002" / "what_changed.md").read_text()
    assert (
        "schema revision 0001_initial" in text and "records 162" in text and "extraction versions 2" in text
    )


def test_outputs_are_never_replaced_without_force(review, tmp_path):
    folder, _ = review
    again = tmp_path / "again.xlsx"
    shutil.copy(folder / "extraction" / "v002.xlsx", again)
    assert "already imported as version 2" in invoke("update", folder, "--extraction", again)
    assert "already holds a report; use --force" in invoke("update", folder, "--refit", code=2)
    invoke("init", folder, code=2)  # an existing project is not re-created
    output = invoke("update", folder, code=2)
    assert "give --search" in output
