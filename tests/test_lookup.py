"""Bibliographic look-up against a real local HTTP server serving recorded responses."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner
from werkzeug import Response

import evmeta as em
from evmeta.cli import app
from evmeta.harmonize.quality import syrcle_columns
from evmeta.review.lookup import LookupClient, lookup_studies, run_lookup

DATA = Path(__file__).parent / "data" / "lookup"
WORK = json.loads((DATA / "crossref_work.json").read_text())
SUMMARY = json.loads((DATA / "esummary.json").read_text())
SYRCLE = syrcle_columns()


def _workbook(folder: Path) -> Path:
    studies = [
        {
            "study_id": "OK1",
            "first_author": "Zhang",
            "year": 2020,
            "doi": "10.9999/evmeta.example.001",
            "title": "Mesenchymal stromal cell-derived extracellular vesicles in a mouse model of ischemia/reperfusion AKI",
        },
        {
            "study_id": "MISMATCH",
            "first_author": "Zhang",
            "year": 2021,
            "doi": "10.9999/mismatch",
            "title": "A completely different title about something else",
        },
        {"study_id": "PUBMED", "first_author": "Wang", "year": 2018, "pmid": "31234567"},
        {"study_id": "GONE", "first_author": "Li", "year": 2019, "doi": "10.9999/gone"},
        {
            "study_id": "BUSY",
            "first_author": "Zhang",
            "year": 2020,
            "doi": "10.9999/busy",
            "title": "Mesenchymal stromal cell-derived extracellular vesicles in a mouse model of ischemia/reperfusion AKI",
        },
        {"study_id": "FLAKY", "first_author": "Zhang", "year": 2020, "doi": "10.9999/flaky"},
        {"study_id": "GARBLED", "first_author": "Chen", "year": 2020, "doi": "10.9999/garbled"},
        {"study_id": "BADDOI", "first_author": "Chen", "year": 2020, "doi": "not a doi"},
        # Last: the test server is single-threaded and this handler keeps it busy.
        {"study_id": "SLOW", "first_author": "Chen", "year": 2020, "doi": "10.9999/slow"},
    ]
    path = folder / "book.xlsx"
    em.write_template(
        path, data={"studies": studies, "risk_of_bias": [{"study_id": "OK1", **dict.fromkeys(SYRCLE, "low")}]}
    )
    return path


@pytest.fixture
def served(httpserver):
    httpserver.expect_request("/works/10.9999/evmeta.example.001").respond_with_json(WORK)
    httpserver.expect_request("/works/10.9999/mismatch").respond_with_json(WORK)
    httpserver.expect_request("/esummary.fcgi").respond_with_json(SUMMARY)
    httpserver.expect_request("/works/10.9999/gone").respond_with_data("not found", status=404)
    httpserver.expect_oneshot_request("/works/10.9999/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"}
    )
    httpserver.expect_request("/works/10.9999/busy").respond_with_json(WORK)
    httpserver.expect_oneshot_request("/works/10.9999/flaky").respond_with_data("oops", status=500)
    httpserver.expect_request("/works/10.9999/flaky").respond_with_json(WORK)

    def slow(request):
        time.sleep(1.5)
        return Response(json.dumps(WORK), content_type="application/json")

    httpserver.expect_request("/works/10.9999/slow").respond_with_handler(slow)
    httpserver.expect_request("/works/10.9999/garbled").respond_with_data(
        "{not json", content_type="application/json"
    )
    return httpserver


@pytest.fixture
def environment(served, monkeypatch):
    base = served.url_for("").rstrip("/")
    monkeypatch.setenv("EVMETA_CROSSREF_URL", base)
    monkeypatch.setenv("EVMETA_EUTILS_URL", base)
    monkeypatch.setenv("EVMETA_CONTACT_EMAIL", "reviewer@example.org")
    return served


def test_messages_per_row_and_cache(environment, tmp_path):
    book = _workbook(tmp_path)
    client = LookupClient(tmp_path / "cache", timeout=(2.0, 0.5), retries=2, backoff=0.1)
    started = time.perf_counter()
    result, _ = run_lookup(book, client=client)
    messages = dict(zip(result.rows["study_id"], result.rows["message"], strict=True))
    assert messages["OK1"] == ""
    assert (
        "title differs from Crossref" in messages["MISMATCH"]
        and "year 2021 but Crossref has 2020" in messages["MISMATCH"]
    )
    assert messages["PUBMED"] == "year 2018 but PubMed has 2019"
    assert messages["GONE"] == "Crossref: not found (404)"
    assert messages["BUSY"] == ""  # 429 then success after Retry-After
    assert messages["FLAKY"] == ""  # 500 then success
    assert messages["SLOW"].startswith("Crossref:") and (
        "time" in messages["SLOW"] or "failing" in messages["SLOW"]
    )
    assert messages["GARBLED"] == "Crossref: the service answered with invalid JSON"
    assert "doi:" in messages["BADDOI"]
    assert time.perf_counter() - started >= 1.0  # Retry-After was honoured
    agent = next(r for r, _ in environment.log if "/works/" in r.path).headers["User-Agent"]
    assert agent.startswith("evmeta/") and "mailto:reviewer@example.org" in agent
    # Second run: everything that succeeded comes from the cache.
    before = len(environment.log)
    again = LookupClient(tmp_path / "cache", timeout=(2.0, 0.5), retries=0)
    second, _ = run_lookup(book, client=again)
    successful = {
        "/works/10.9999/evmeta.example.001",
        "/works/10.9999/mismatch",
        "/esummary.fcgi",
        "/works/10.9999/busy",
        "/works/10.9999/flaky",
    }
    new_paths = {r.path for r, _ in environment.log[before:]}
    assert not new_paths & successful, new_paths
    assert dict(zip(second.rows["study_id"], second.rows["message"], strict=True))["OK1"] == ""


def test_offline_uses_only_the_cache(environment, tmp_path):
    book = _workbook(tmp_path)
    before = len(environment.log)
    result, _ = run_lookup(book, client=LookupClient(tmp_path / "empty", offline=True))
    assert len(environment.log) == before
    assert (result.rows.set_index("study_id").loc["OK1", "message"]) == "Crossref: not in the cache (offline)"


def test_fill_missing_writes_a_new_workbook(environment, tmp_path):
    book = _workbook(tmp_path)
    original = book.read_bytes()
    _result, target = run_lookup(
        book, client=LookupClient(tmp_path / "cache", timeout=(2, 0.5), retries=1, backoff=0.05), fill=True
    )
    assert target == tmp_path / "book.filled.xlsx" and book.read_bytes() == original
    sheet = openpyxl.load_workbook(target)["studies"]
    headers = {c.value: c.column for c in sheet[1]}
    rows = {sheet.cell(r, 1).value: r for r in range(2, sheet.max_row + 1)}
    assert sheet.cell(rows["PUBMED"], headers["journal"]).value == "Theranostics"
    assert sheet.cell(rows["PUBMED"], headers["title"]).value.startswith(
        "Extracellular vesicles from bone marrow"
    )
    assert sheet.cell(rows["PUBMED"], headers["year"]).value == 2018  # typed cells are never overwritten
    assert (
        sheet.cell(rows["MISMATCH"], headers["title"]).value
        == "A completely different title about something else"
    )


def test_cli(environment, tmp_path):
    book = _workbook(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["lookup", str(book), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "studies!3 MISMATCH: title differs" in result.output
    assert "request(s)" in result.output.strip().splitlines()[-1]
    offline = runner.invoke(app, ["lookup", str(book), "--cache", str(tmp_path / "c"), "--offline"])
    assert offline.exit_code == 0 and "0 request(s)" in offline.output


def test_direct_client_malformed_ids(tmp_path):
    client = LookupClient(tmp_path, offline=True)
    assert client.crossref_work("nonsense") == (None, "malformed DOI 'nonsense'")
    assert client.pubmed_summary("12ab") == (None, "malformed PMID '12ab'")
    result = lookup_studies(em.read_extraction(_workbook(tmp_path), strict=False).studies.head(1), client)
    assert result.requests_made == 0
