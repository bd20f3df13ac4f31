"""De-duplication: parsers, normalization, clusters, precision/recall on 5,000 simulated records."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from evmeta.review.dedupe import normalize_doi, normalize_text, read_search_export, surname, title_similarity
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks._search_records import pairwise_precision_recall, simulate_records

DATA = Path(__file__).parent / "data" / "search"


def test_parsers_read_every_format():
    ris = read_search_export(DATA / "export.ris")
    assert len(ris) == 3 and ris[0].authors == ["Zhang, Wei", "Li, Xia"] and ris[0].year == 2020
    nbib = read_search_export(DATA / "export.nbib")
    assert len(nbib) == 2
    assert nbib[0].title.endswith("against reperfusion injury.")  # continuation line joined
    assert nbib[0].doi == "10.1000/xyz.2019.7" and nbib[0].pmid == "31234567"
    csv_records = read_search_export(DATA / "export.csv")
    assert csv_records[0].authors == ["Rossi P", "Muller J"]


def test_normalization():
    assert normalize_doi("https://doi.org/10.1000/XYZ.2019.7.") == "10.1000/xyz.2019.7"
    assert normalize_doi("not a doi") == ""
    assert normalize_text("Exosomes &amp; <i>Stroke</i>: Müller’s study") == "exosomes stroke muller s study"
    assert surname("Smith, John") == surname("Smith JA") == surname("John Smith") == "smith"
    full = normalize_text("Exosomes from adipose MSCs and stroke recovery in mice a randomized study")
    assert title_similarity(full[:50], full) >= 99


def test_clusters_across_formats(tmp_path):
    records = [
        *read_search_export(DATA / "export.ris"),
        *read_search_export(DATA / "export.nbib"),
        *read_search_export(DATA / "export.csv"),
    ]
    result = em.review.deduplicate(records)
    table = result.table
    cluster = dict(zip(table["record_id"], table["cluster_id"], strict=True))
    assert cluster[1] == cluster[2]  # case, punctuation, swapped authors, DOI missing
    assert cluster[3] == cluster[4]  # same DOI written differently
    assert cluster[5] == cluster[6] == cluster[7]  # HTML entity, truncated title, umlaut spellings
    assert len({cluster[1], cluster[3], cluster[5], cluster[8]}) == 4
    assert table.groupby("cluster_id")["keep"].sum().eq(1).all()
    assert table.loc[table["record_id"] == 1, "keep"].item()  # the record with a DOI is kept
    assert result.counts == {
        "records_identified": 8,
        "duplicates_removed": 4,
        "records_after_deduplication": 4,
        "clusters_with_duplicates": 3,
        "pairs_compared": result.counts["pairs_compared"],
        "blocks_not_compared": 0,
    }


def test_precision_and_recall_on_5000_simulated_records():
    records, truth = simulate_records(3200, seed=11)
    assert len(records) >= 5000
    result = em.review.deduplicate(records)
    precision, recall = pairwise_precision_recall(list(result.table["cluster_id"]), truth)
    assert precision >= 0.98 and recall >= 0.95, (precision, recall)


def test_cli_writes_csv_and_prisma_counts(tmp_path):
    out = tmp_path / "dedup.csv"
    result = CliRunner().invoke(app, ["dedupe", str(DATA / "export.ris"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns[:4]) == ["record_id", "cluster_id", "keep", "score"]
    assert table["record_id"].tolist() == [1, 2, 3]
    counts = json.loads(out.with_suffix(".prisma.json").read_text())
    assert counts["duplicates_removed"] == 1
    bad = tmp_path / "x.docx"
    bad.write_text("hello")
    assert CliRunner().invoke(app, ["dedupe", str(bad), "-o", str(out)]).exit_code == 2
