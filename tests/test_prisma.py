"""PRISMA 2020 flow diagram: every count equals a hand count of the bundled example search
(extraction/search/make_search.py lists the design the numbers below are counted from), the
files must agree with each other, and no text overlaps or leaves its box at either width."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import openpyxl
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import FancyBboxPatch
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from evmeta.plots import save_figure
from evmeta.plots._style import width_inches
from evmeta.review.dedupe import dedupe_file
from evmeta.review.prisma import PrismaCounts, PrismaError
from evmeta.review.screening import included_study_rows, read_screening
from evmeta.run_tables import RunTables
from tests.conftest import EXAMPLE
from tests.test_figure_layout import layout_problems
from tests.test_screening import EXPORTS, SEARCH, fill_screening

#: Hand count of the bundled example (see the docstring of extraction/search/make_search.py,
#: 68 studies in extraction/example.xlsx; studies 41-68 are 28, 14 of them even, 5 multiples of 5):
#: PubMed 30 + 28 studies + 1 extra report + 6 full-text exclusions + 1 unavailable + 10 off-topic = 76;
#: Embase 31 + 14 studies + 5 + 1 + 8 = 59; Scopus 10 + 5 studies + 3 = 18.
#: 94 distinct works (68 + 1 + 8 + 2 + 15), so 153 - 94 = 59 duplicates.
HAND_COUNT = {
    ("records identified", "database: PubMed"): 76,
    ("records identified", "database: Embase"): 59,
    ("records identified", "database: Scopus"): 18,
    ("records identified", "total"): 153,
    ("records removed before screening", "duplicate records removed"): 59,
    ("records removed before screening", "records removed for other reasons"): 1,  # the retracted record
    ("records screened", "records screened"): 93,
    ("records excluded", "records excluded"): 14,  # 15 off-topic minus the retracted one
    ("reports sought for retrieval", "reports sought for retrieval"): 79,  # 68 + 1 + 8 + 2
    ("reports not retrieved", "reports not retrieved"): 2,
    ("reports assessed for eligibility", "reports assessed for eligibility"): 77,
    ("reports excluded", "reason: not_in_vivo"): 3,
    ("reports excluded", "reason: not_msc_ev"): 2,
    ("reports excluded", "reason: no_control"): 1,
    ("reports excluded", "reason: wrong_publication_type"): 2,
    ("reports excluded", "total"): 8,
    ("studies included in review", "studies included in review"): 68,  # studies of example.xlsx
    ("studies included in review", "reports of included studies"): 69,  # ZHANG2020 has two reports
}


@pytest.fixture(scope="module")
def review(tmp_path_factory) -> dict[str, Path]:
    """dedupe -> screen-sheet -> filled screening fixture, through the command line."""
    folder = tmp_path_factory.mktemp("prisma")
    runner = CliRunner()
    result = runner.invoke(app, ["dedupe", *map(str, EXPORTS), "-o", str(folder / "deduplicated.csv")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["screen-sheet", str(folder / "deduplicated.csv"), "-o", str(folder / "s.xlsx")]
    )
    assert result.exit_code == 0, result.output
    fill_screening(folder / "s.xlsx", folder / "screening.xlsx")
    return {"folder": folder, "dedupe": folder / "deduplicated.csv", "screening": folder / "screening.xlsx"}


def test_end_to_end_counts_equal_the_hand_count(review):
    out = review["folder"] / "out" / "prisma.pdf"
    args = ["prisma", "--search", *map(str, EXPORTS), "--dedupe", str(review["dedupe"])]
    args += ["--screening", str(review["screening"]), "--extraction", str(EXAMPLE), "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:5] == b"%PDF-"
    table = pd.read_csv(out.with_suffix(".csv"))
    counted = {(r.box, r.item): r.n for r in table.itertuples()}
    assert counted == HAND_COUNT
    assert "no record_id column filled" in result.output  # example.xlsx predates the record_id column


def test_committed_fixture_is_current_and_counts_the_same(review):
    """extraction/search/deduplicated.csv and screening.xlsx are what the pipeline makes today."""
    fresh = pd.read_csv(review["dedupe"])
    committed = pd.read_csv(SEARCH / "deduplicated.csv")
    pd.testing.assert_frame_equal(fresh, committed)
    ours = openpyxl.load_workbook(review["screening"])["screening"]
    theirs = openpyxl.load_workbook(SEARCH / "screening.xlsx")["screening"]
    assert [[c.value for c in row] for row in ours.iter_rows()] == [
        [c.value for c in row] for row in theirs.iter_rows()
    ]
    counts = em.review.prisma_counts(EXPORTS, SEARCH / "deduplicated.csv", SEARCH / "screening.xlsx", EXAMPLE)
    assert {(r.box, r.item): r.n for r in counts.to_frame().itertuples()} == HAND_COUNT


def test_counts_with_record_ids_in_the_studies_sheet(review, tmp_path):
    screening = read_screening(review["screening"])
    book = em.write_template(tmp_path / "book.xlsx", data={"studies": included_study_rows(screening)})
    counts = em.review.prisma_counts(EXPORTS, review["dedupe"], screening, book)
    assert (counts.studies_included, counts.reports_included) == (69, 69)
    assert counts.notes == [f"1 record(s) kept by dedupe are not in the screening log and are counted as removed "
                            f"for other reasons: record_id {counts.removed_other_ids[0]}"]  # fmt: skip
    # Two reports of one study: one row carries both record ids.
    rows = included_study_rows(screening)
    rows[0]["record_id"] = f"{rows[0]['record_id']}; {rows[1]['record_id']}"
    both = em.write_template(tmp_path / "both.xlsx", data={"studies": [rows[0], *rows[2:]]})
    counts = em.review.prisma_counts(EXPORTS, review["dedupe"], screening, both)
    assert (counts.studies_included, counts.reports_included) == (68, 69)


def test_files_that_disagree_are_refused(review, tmp_path):
    screening = read_screening(review["screening"])
    with pytest.raises(PrismaError, match="run `evmeta dedupe` on exactly these exports"):
        em.review.prisma_counts(EXPORTS[:2], review["dedupe"], screening, EXAMPLE)
    rows = included_study_rows(screening)
    rows[3]["record_id"] = "9999"
    book = em.write_template(tmp_path / "bad.xlsx", data={"studies": rows})
    with pytest.raises(PrismaError) as caught:
        em.review.prisma_counts(EXPORTS, review["dedupe"], screening, book)
    assert "studies!5 record_id 9999 is not a report included in the screening log" in str(caught.value)
    assert "is included at full text but no study in the studies sheet carries it" in str(caught.value)


def test_cli_reports_disagreement_without_traceback(review):
    args = ["prisma", "--search", str(EXPORTS[0]), "--dedupe", str(review["dedupe"])]
    args += ["--screening", str(review["screening"]), "--extraction", str(EXAMPLE), "-o", "x.png"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "76 records" in result.output


def test_cli_without_suffix_writes_every_journal_format(tmp_path):
    args = ["prisma", "--search", *map(str, EXPORTS), "--dedupe", str(SEARCH / "deduplicated.csv")]
    args += [
        "--screening",
        str(SEARCH / "screening.xlsx"),
        "--extraction",
        str(EXAMPLE),
        "-o",
        str(tmp_path / "flow"),
    ]
    args += ["--width", "single"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.csv", "flow.pdf", "flow.png", "flow.svg"]
    from PIL import Image

    with Image.open(tmp_path / "flow.png") as image:  # 85 mm at 300 dpi
        assert image.size[0] == pytest.approx(85 / 25.4 * 300, abs=2)


def _counts(databases: int = 3, reasons: int = 4) -> PrismaCounts:
    codes = ["not_in_vivo", "not_msc_ev", "no_control", "no_relevant_outcome", "wrong_disease_model",
             "wrong_publication_type", "duplicate_data", "retracted", "language", "other"][:reasons]  # fmt: skip
    return PrismaCounts(
        databases={f"database{i}": 1000 + i for i in range(databases)},
        duplicates_removed=12345,
        removed_other=3,
        screened=9876,
        excluded_screening=9000,
        sought=876,
        not_retrieved=12,
        assessed=864,
        excluded_reasons={c: 10 + i for i, c in enumerate(codes)},
        studies_included=100,
        reports_included=120,
    )


def _geometry(figure):
    renderer = FigureCanvasAgg(figure).get_renderer()
    ax = figure.axes[0]
    boxes = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyBboxPatch)]
    texts = [t.get_window_extent(renderer) for t in ax.texts]
    return np.array([(b.x0, b.y0, b.x1, b.y1) for b in boxes]), np.array(
        [(b.x0, b.y0, b.x1, b.y1) for b in texts]
    )


def _overlaps(boxes: np.ndarray, tolerance: float = 0.5) -> int:
    x0, y0, x1, y1 = (boxes[:, i : i + 1] for i in range(4))
    overlap = (np.minimum(x1, x1.T) - np.maximum(x0, x0.T) > tolerance) & (
        np.minimum(y1, y1.T) - np.maximum(y0, y0.T) > tolerance
    )
    np.fill_diagonal(overlap, False)
    return int(overlap.sum() // 2)


@pytest.mark.parametrize("width", ["double", "single", 120.0])
@pytest.mark.parametrize(("databases", "reasons"), [(1, 1), (3, 4), (8, 10)])
def test_nothing_overlaps_and_text_stays_in_its_box(width, databases, reasons):
    figure = em.plots.prisma_diagram(_counts(databases, reasons), width=width)
    problems = layout_problems(figure)  # the overlap check every figure passes
    assert not problems, problems
    boxes, texts = _geometry(figure)
    assert len(boxes) == 3 + 9 + 1  # 3 phase bars, 9 flow boxes, the header
    assert _overlaps(boxes) == 0
    width_px, height_px = figure.bbox.width, figure.bbox.height
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= width_px).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= height_px).all()
    for x0, y0, x1, y1 in texts:  # every text lies inside exactly one box
        inside = (
            (boxes[:, 0] <= x0 + 0.5)
            & (boxes[:, 2] >= x1 - 0.5)
            & (boxes[:, 1] <= y0 + 0.5)
            & (boxes[:, 3] >= y1 - 0.5)
        )
        assert inside.sum() == 1, (x0, y0, x1, y1)
    assert figure.get_figwidth() == pytest.approx(width_inches(width))


def test_diagram_shows_every_count_and_keeps_text_as_text(tmp_path):
    counts = _counts(3, 4)
    figure = em.plots.prisma_diagram(counts)
    shown = " ".join(t.get_text() for t in figure.axes[0].texts).replace("\u00a0", " ").replace("\n", " ")
    for number in [3003, 12345, 3, 9876, 9000, 876, 12, 864, 10, 11, 12, 13, 46, 100, 120]:
        assert f"(n = {number:,})" in shown, number
    for phrase in ["Identification", "Screening", "Included", "Records removed before screening:",
                   "Reports sought for retrieval", "Reports not retrieved", "Reports assessed for eligibility",
                   "Studies included in review", "Reports of included studies", "No control group"]:  # fmt: skip
        assert phrase in re.sub(r"\s+", " ", shown), phrase
    paths = save_figure(figure, tmp_path / "prisma")
    pdf = paths[0].read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf
    svg = paths[1].read_text(encoding="utf-8")
    assert "<text" in svg and "Records screened" in svg


def test_spec_section_draws_the_diagram_into_the_run(review, tmp_path):
    from evmeta.analysis import prisma_stage
    from evmeta.analysis.spec import parse_spec

    for name in ["dedupe", "screening"]:
        shutil.copy(review[name], tmp_path / review[name].name)
    spec = parse_spec(
        {
            "analysis": {"name": "x", "extraction": str(EXAMPLE)},
            "prisma": {
                "search": [str(p) for p in EXPORTS],
                "dedupe": "deduplicated.csv",
                "screening": "screening.xlsx",
            },
            "figures": {"formats": ["svg"]},
        },
        source=tmp_path / "spec.toml",
    )
    run = SimpleNamespace(spec=spec, output=tmp_path / "report", notes=[], tables=RunTables(), files=[], figures={})
    prisma_stage.prisma(run)
    assert run.figures["prisma"][0].read_text(encoding="utf-8").count("<text") > 20
    assert run.tables.prisma["n"].tolist() == list(HAND_COUNT.values())
    assert "prisma.csv" in dict(run.tables.csv_files())
    inputs = prisma_stage.prisma_inputs(spec)
    assert len(inputs) == 5 and all(len(digest) == 64 for digest in inputs.values())
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("evmeta.report", "templates"), autoescape=True)
    # As the report passes them: the diagram's pages as a list of inline SVG documents.
    from evmeta.report.svg import figure_svgs

    pages = figure_svgs(run.figures["prisma"])
    html = env.get_template("prisma.html.j2").render(figures={"prisma": pages}, prisma_counts="<table/>")
    assert "PRISMA 2020" in html and pages[0] in html
    assert "[" not in html.split('<figure id="prisma">')[1][:5]  # not the list's repr
    assert env.get_template("prisma.html.j2").render(figures={}, prisma_counts="").strip() == ""


def test_spec_without_prisma_section_does_nothing(tmp_path):
    from evmeta.analysis import prisma_stage
    from evmeta.analysis.spec import parse_spec

    spec = parse_spec({"analysis": {"name": "x", "extraction": str(EXAMPLE)}})
    run = SimpleNamespace(spec=spec, output=tmp_path, notes=[], tables=RunTables(), files=[], figures={})
    prisma_stage.prisma(run)
    assert run.figures == {} and run.tables.prisma is None
    with pytest.raises(em.SpecError, match="valid keys in \\[prisma\\]"):
        parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, "prisma": {"searches": []}})


def _delete_screening_row(source: Path, output: Path, doi: str) -> Path:
    book = openpyxl.load_workbook(source)
    sheet = book["screening"]
    column = [c.value for c in sheet[1]].index("doi") + 1
    sheet.delete_rows(next(r for r in range(2, sheet.max_row + 1) if sheet.cell(r, column).value == doi))
    book.save(output)
    return output


def test_screening_sheet_of_an_edited_workbook_is_reread(review, tmp_path):
    """A record deleted by mistake is counted as removed and named in a note, never lost silently;
    deleting the record of an included study is refused, since the study then has no report."""
    edited = _delete_screening_row(review["screening"], tmp_path / "edited.xlsx", "10.9999/evmeta.title.001")
    counts = em.review.prisma_counts(EXPORTS, review["dedupe"], edited, EXAMPLE)
    assert counts.removed_other == 2 and counts.screened == 92
    assert "record_id" in counts.notes[0] and len(counts.removed_other_ids) == 2
    edited = _delete_screening_row(review["screening"], tmp_path / "study.xlsx", "10.9999/evmeta.example.002")
    with pytest.raises(
        PrismaError, match=r"studies!3 doi 10.9999/evmeta.example.002 \(no record_id\) is not a "
    ):
        em.review.prisma_counts(EXPORTS, review["dedupe"], edited, EXAMPLE)


def test_example_studies_are_matched_to_included_reports_by_doi(review):
    """example.xlsx has no record_id: its 68 studies are matched by DOI to the 69 included reports,
    and the one report no study carries (ZHANG2020's follow-up) is named in a note."""
    screening = read_screening(review["screening"])
    counts = em.review.prisma_counts(EXPORTS, review["dedupe"], screening, EXAMPLE)
    follow_up = screening.table.loc[screening.table["doi"] == "10.9999/evmeta.report.041", "record_id"]
    assert counts.notes[1:] == [
        "the studies sheet has no record_id column filled, so included reports were matched to studies by DOI",
        "1 included report(s) carried by no study (another report of a study matched by DOI, or a study "
        f"missing from the studies sheet): record_id {int(follow_up.iloc[0])}",
    ]


def test_studies_the_screening_log_never_included_are_refused(review, tmp_path):
    """A studies sheet holding more studies than the screening log included is never silently counted."""
    screening = read_screening(review["screening"])
    rows = [{k: v for k, v in row.items() if k != "record_id"} for row in included_study_rows(screening)]
    excluded_doi = "10.9999/evmeta.fulltext.001"  # excluded at full text (not_in_vivo)
    extra = [
        {"study_id": "EXTRA2025", "first_author": "Extra", "year": 2025, "doi": "10.9999/evmeta.example.999"},
        {"study_id": "FULLTEXT2019", "first_author": "Fulltext", "year": 2019, "doi": excluded_doi},
    ]
    book = em.write_template(tmp_path / "extra.xlsx", data={"studies": [*rows, *extra]})
    with pytest.raises(PrismaError) as caught:
        em.review.prisma_counts(EXPORTS, review["dedupe"], screening, book)
    message = str(caught.value)
    assert f"studies!{len(rows) + 2} doi 10.9999/evmeta.example.999 (no record_id) is not a record" in message
    rid = int(screening.table.loc[screening.table["doi"] == excluded_doi, "record_id"].iloc[0])
    assert (
        f"studies!{len(rows) + 3} doi {excluded_doi} (no record_id) is record_id {rid} of the screening log, "
        "which is not included (final_decision exclude)"
    ) in message
    # Rows that carry record_ids are strict; a row with neither record_id nor doi is named in a note.
    with_ids = included_study_rows(screening)
    anonymous = {"study_id": "ANON2025", "first_author": "Anon", "year": 2025}
    book = em.write_template(tmp_path / "anon.xlsx", data={"studies": [*with_ids, anonymous]})
    counts = em.review.prisma_counts(EXPORTS, review["dedupe"], screening, book)
    assert counts.studies_included == 70
    assert counts.notes[-1] == (
        f"1 study without record_id or doi counted but not matched to an included report: studies!{len(with_ids) + 2}"
    )


def test_registers_are_counted_beside_databases(tmp_path):
    register = tmp_path / "preclinicaltrials.csv"
    register.write_text(
        "Title,Authors,Year,DOI\n"
        "Mesenchymal stromal cell-derived extracellular vesicles in a mouse model of ischemia/reperfusion AKI,"
        "Zhang A,2020,10.9999/evmeta.example.001\n"  # registered protocol of a study found in PubMed
        "MSC-EVs in canine myocardial infarction: registered protocol,Vet A,2024,10.9999/evmeta.register.001\n",
        encoding="utf-8",
    )
    dedupe = tmp_path / "deduplicated.csv"
    dedupe_file([*EXPORTS, register], dedupe)  # record ids of the databases are unchanged
    counts = em.review.prisma_counts(
        EXPORTS, dedupe, SEARCH / "screening.xlsx", EXAMPLE, registers=[register]
    )
    assert counts.registers == {"PreclinicalTrials.eu": 2} and counts.identified == 155
    assert counts.duplicates_removed == 60  # the registered protocol shares the study's DOI
    assert counts.removed_other == 2  # the retracted record and the unscreened register record
    shown = " ".join(t.get_text() for t in em.plots.prisma_diagram(counts).axes[0].texts).replace(
        "\u00a0", " "
    )
    assert "Databases (n = 153)" in shown and "Registers (n = 2)" in shown
    with pytest.raises(PrismaError, match="run `evmeta dedupe` on exactly these exports"):
        em.review.prisma_counts(
            EXPORTS, SEARCH / "deduplicated.csv", SEARCH / "screening.xlsx", EXAMPLE, registers=[register]
        )
    shutil.copy(EXPORTS[0], tmp_path / "pubmed.nbib")
    with pytest.raises(PrismaError, match="two exports are named 'pubmed'"):
        em.review.prisma_counts(
            [*EXPORTS, tmp_path / "pubmed.nbib"], dedupe, SEARCH / "screening.xlsx", EXAMPLE
        )


def test_databases_are_named_as_the_exports_state_or_as_known(tmp_path):
    # Issue 18: the diagram said "pubmed (n = 76)" (the lowercase file stem).
    from evmeta.review.dedupe import SearchRecord
    from evmeta.review.prisma import count_exports, database_name

    counts = em.review.prisma_counts(EXPORTS, SEARCH / "deduplicated.csv", SEARCH / "screening.xlsx", EXAMPLE)
    assert list(counts.databases) == ["PubMed", "Embase", "Scopus"]
    shown = " ".join(t.get_text() for t in em.plots.prisma_diagram(counts).axes[0].texts).replace(
        "\u00a0", " "
    )
    assert "PubMed (n = 76)" in shown and "pubmed" not in shown
    for stem, name in [
        ("web_of_science_2024", "Web of Science"),
        ("WoS", "Web of Science"),
        ("cochrane-central", "Cochrane Library"),
        ("my_database", "My database"),
        ("LILACS export", "LILACS"),
        ("CNKIsearch", "CNKIsearch"),
    ]:
        assert database_name(Path(f"{stem}.ris")) == name, stem
    stated = [
        SearchRecord(database="Embase Classic"),
        SearchRecord(database="Embase Classic"),
        SearchRecord(),
    ]
    assert database_name(Path("export1.ris"), stated) == "Embase Classic"
    # The name a RIS export states (DB tag) wins; two exports of one database keep apart.
    record = "TY  - JOUR\nTI  - A title {}\nDB  - Embase\nPY  - 2020\nER  - \n"
    for part in ("part1", "part2"):
        (tmp_path / f"{part}.ris").write_text(record.format(part) * 2)
    assert count_exports([tmp_path / "part1.ris", tmp_path / "part2.ris"]) == {
        "Embase (part1)": 2,
        "Embase (part2)": 2,
    }
