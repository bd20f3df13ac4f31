"""Reconciliation: 20 planted disagreements found (and no others), kappa by hand, apply."""

from __future__ import annotations

import shutil

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from tests.conftest import EXAMPLE, edit, header_index, set_cell

ROB = "rob_blinding_assessor"


def _plant(path) -> set[tuple[str, str, str]]:
    """20 disagreements of every kind in reviewer B's copy; returns (sheet, key, column)."""
    book = edit(path)
    planted = set()

    def change(sheet, row, column, value):
        ws = book[sheet]
        key_column = (
            "study_id"
            if sheet == "risk_of_bias"
            else {
                "studies": "study_id",
                "preparations": "prep_id",
                "experiments": "experiment_id",
                "arms": "arm_id",
                "outcomes": "outcome_id",
            }[sheet]
        )
        key = ws.cell(row, header_index(ws, key_column)).value
        if sheet == "risk_of_bias":
            key = f"{key}/"
        set_cell(book, sheet, row, column, value)
        planted.add((sheet, str(key), column))

    for row in range(2, 8):  # 6 numeric changes on outcomes
        ws = book["outcomes"]
        current = ws.cell(row, header_index(ws, "n")).value
        change("outcomes", row, "n", current + 1)
    # Not a time point: an EV row at a time its control lacks is now an error of B's workbook
    # (validation checks every EV row has its control row), not a value disagreement.
    ws = book["outcomes"]
    change("outcomes", 10, "n", ws.cell(10, header_index(ws, "n")).value + 2)
    change("studies", 3, "title", "A different title typed by reviewer B")
    change("studies", 4, "year", 2001)
    change("experiments", 5, "species", "rabbit")
    change("experiments", 6, "body_weight_kg", 0.777)
    change("arms", 7, "n_doses", 5)
    change("arms", 9, "route", "intranasal")
    change(
        "preparations",
        2,
        "misev_negative_marker",
        "yes"
        if book["preparations"].cell(2, header_index(book["preparations"], "misev_negative_marker")).value
        == "no"
        else "no",
    )
    ws = book["preparations"]
    method = ws.cell(3, header_index(ws, "isolation_method")).value
    change(
        "preparations",
        3,
        "isolation_method",
        "SEC" if method != "SEC" and method != "size-exclusion chromatography" else "UC",
    )
    ws = book["risk_of_bias"]
    for row in range(2, 7):  # 5 SYRCLE judgement changes on one item
        current = ws.cell(row, header_index(ws, ROB)).value
        change("risk_of_bias", row, ROB, {"low": "high", "high": "unclear", "unclear": "low"}[current])
    # Spelling differences that mean the same value are not disagreements.
    set_cell(
        book,
        "experiments",
        8,
        "sex",
        {"male": "Male", "female": "F", "mixed": "both"}.get(
            book["experiments"].cell(8, header_index(book["experiments"], "sex")).value, "NR"
        ),
    )
    book.save(path)
    assert len(planted) == 20
    return planted


@pytest.fixture
def pair(tmp_path):
    a = tmp_path / "A.xlsx"
    b = tmp_path / "B.xlsx"
    shutil.copy(EXAMPLE, a)
    shutil.copy(EXAMPLE, b)
    return a, b, _plant(b)


def test_finds_exactly_the_planted_disagreements(pair):
    a, b, planted = pair
    result = em.review.reconcile(a, b)
    found = {(r.sheet, str(r.key), r.column) for r in result.discrepancies.itertuples()}
    assert found == planted
    assert (result.discrepancies["kind"] == "value").all()


def test_kappa_matches_a_hand_calculation(pair):
    a, b, _ = pair
    result = em.review.reconcile(a, b)
    first = openpyxl.load_workbook(a)["risk_of_bias"]
    second = openpyxl.load_workbook(b)["risk_of_bias"]
    column = header_index(first, ROB)
    x = [first.cell(r, column).value for r in range(2, first.max_row + 1)]
    y = [second.cell(r, column).value for r in range(2, second.max_row + 1)]
    n = len(x)
    observed = sum(i == j for i, j in zip(x, y, strict=True)) / n
    expected = sum((x.count(c) / n) * (y.count(c) / n) for c in {"low", "unclear", "high"})
    by_hand = (observed - expected) / (1 - expected)
    row = result.fields.set_index(["sheet", "column"]).loc[("risk_of_bias", ROB)]
    assert row["kappa"] == pytest.approx(by_hand, abs=1e-12)
    assert row["percent_agreement"] == pytest.approx(100 * (n - 5) / n)
    assert em.review.cohen_kappa(["a", "a", "b", "b"], ["a", "a", "b", "b"]) == 1.0
    assert em.review.cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)


def test_workbooks_and_apply(pair, tmp_path):
    a, b, planted = pair
    runner = CliRunner()
    out = tmp_path / "reconciliation.xlsx"
    result = runner.invoke(app, ["reconcile", str(a), str(b), "-o", str(out)])
    assert result.exit_code == 0, result.output
    consensus = tmp_path / "reconciliation.consensus.xlsx"
    assert out.exists() and consensus.exists()
    book = openpyxl.load_workbook(consensus)
    ws = book["outcomes"]
    n_column = header_index(ws, "n")
    assert ws.cell(2, n_column).value is None and ws.cell(2, n_column).fill.fgColor.rgb.endswith("FFEB84")
    assert ws.cell(8, n_column).value is not None  # agreed cells are filled
    # Undecided discrepancies stop the final build, naming them.
    assert runner.invoke(app, ["reconcile", "--apply", str(out)]).exit_code == 1
    decisions = openpyxl.load_workbook(out)
    sheet = decisions["discrepancies"]
    column = [c.value for c in sheet[1]].index("decision") + 1
    for row in range(2, sheet.max_row + 1):
        sheet.cell(row, column).value = "b"
    decisions.save(out)
    result = runner.invoke(app, ["reconcile", "--apply", str(out)])
    assert result.exit_code == 0, result.output
    final = em.read_extraction(tmp_path / "reconciliation.final.xlsx")
    reviewer_b = em.read_extraction(b)
    for name in ["outcomes", "studies", "risk_of_bias", "arms"]:
        left = (
            final.sheets[name]
            .drop(columns=["_file", "_row", "notes", "reviewer"], errors="ignore")
            .reset_index(drop=True)
        )
        right = (
            reviewer_b.sheets[name]
            .drop(columns=["_file", "_row", "notes", "reviewer"], errors="ignore")
            .reset_index(drop=True)
        )
        pd.testing.assert_frame_equal(left, right, check_dtype=False)
    assert len(planted) == 20
