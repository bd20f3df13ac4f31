"""import-wide: a real published comparison table (remote ischemic conditioning, 102
comparisons) and a simulated one round-trip to metafor's escalc and rma; CAR-T data; the
map contract, placeholders, the import log and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from evmeta.errors import SpecError
from evmeta.models import meta_analysis
from evmeta.schema.wide_import import import_wide, parse_map
from tests.conftest import ROOT

RIC = ROOT / "tests/data/ric/ric_infarct_volume_wide.csv"
RIC_MAP = ROOT / "extraction/maps/ric_infarct_volume.toml"
SIMULATED = ROOT / "tests/data/wide/simulated_wide.csv"
SIMULATED_MAP = ROOT / "tests/data/wide/simulated_wide.toml"
runner = CliRunner()


def _reference(name: str) -> dict:
    return json.loads((ROOT / "tests/reference" / name).read_text())


def _by_table_row(result, table: pd.DataFrame) -> pd.DataFrame:
    """Comparison rows in table-row order, through the import log."""
    log = result.log[result.log["status"] == "imported"].set_index("treat_outcome_id")
    out = table.set_index("treat_outcome_id").join(log["table_row"])
    return out.sort_values("table_row")


@pytest.fixture(scope="module")
def ric(tmp_path_factory):
    out = tmp_path_factory.mktemp("ric") / "ric.xlsx"
    result = import_wide(RIC, RIC_MAP, out)
    book = em.read_extraction(out)  # strict: the imported book validates
    return result, book, out


def test_real_table_keeps_every_comparison_and_matches_metafor(ric):
    """102 comparisons from 65 studies (one median-only row logged); yi, vi equal escalc on
    the table (1e-10: same closed forms; signs flipped because smaller infarcts are better);
    DL and REML pooled estimates, SEs and tau^2 equal metafor's rma to 1e-6."""
    result, book, _ = ric
    ref = _reference("ric_reference.json")
    comparisons = em.build_comparisons(book, "SMD", shared_control="split")
    assert len(comparisons) == ref["k"] == 102
    assert comparisons.table["study_id"].nunique() == ref["studies"]
    assert comparisons.exclusions.empty
    ordered = _by_table_row(result, comparisons.table)
    assert ordered["table_row"].tolist() == ref["table_row"]
    np.testing.assert_allclose(ordered["yi"], -np.array(ref["yi"]), rtol=1e-10)
    np.testing.assert_allclose(ordered["vi"], ref["vi"], rtol=1e-10)
    for method in ("DL", "REML"):
        fit = meta_analysis(comparisons.table, method=method, test="z")
        assert fit.estimate == pytest.approx(-ref[method]["estimate"], abs=1e-6)
        assert fit.se == pytest.approx(ref[method]["se"], abs=1e-6)
        assert fit.tau2 == pytest.approx(ref[method]["tau2"], abs=1e-6)


def test_real_table_shared_controls_and_log(ric):
    result, book, _ = ric
    log = result.log[result.log["status"] != "not imported"]
    assert len(log) == 103 and log["table_row"].tolist() == list(range(2, 105))
    skipped = log[log["status"] == "skipped"]
    assert skipped["study_id"].tolist() == ["287"]
    assert skipped["reason"].iloc[0] == "treatment n is missing"
    # Study 327: five arms shared one control of 10 animals, typed as 2 each.
    controls = book.outcomes[book.outcomes["arm_id"].str.endswith("-C")].set_index("experiment_id")
    assert controls.loc["327-E1", "n"] == 10
    assert (book.arms["experiment_id"] == "327-E1").sum() == 6
    # Study 264: two control groups of 5 (typed 1.67), each shared by three arms.
    assert controls.loc[["264-E1", "264-E2"], "n"].tolist() == [5, 5]
    # Placeholders are named in the rows; the table is of another intervention
    # (preparation_kind = non_ev), so the EV-only ones are not notes to act on.
    assert not any("isolation_method" in n or "msc_tissue_source" in n for n in result.notes)
    assert book.preparations["notes"].str.contains("placeholder").all()
    assert book.studies.set_index("study_id").loc["115", "year"] == 2019  # read from "Zhao, Y (2019)"


def test_simulated_table_round_trip(tmp_path):
    """Split controls, SEM-only rows, missing values: yi and vi equal escalc on the table
    (SD from SEM with the arm's real n), 1e-10; unusable rows are logged with their reason."""
    out = tmp_path / "sim.xlsx"
    result = import_wide(SIMULATED, SIMULATED_MAP, out)
    book = em.read_extraction(out)
    ref = _reference("wide_simulated_reference.json")
    for measure in ("SMD", "MD"):
        table = em.build_comparisons(book, measure).table
        ordered = _by_table_row(result, table)
        assert ordered["table_row"].tolist() == ref["table_row"]
        np.testing.assert_allclose(ordered["yi"], -np.array(ref[measure]["yi"]), rtol=1e-10)
        np.testing.assert_allclose(ordered["vi"], ref[measure]["vi"], rtol=1e-10)
    reasons = result.log.set_index("table_row")["reason"]
    assert (
        reasons[8]
        == "treatment arm has no usable statistic (mean with SD or SEM, median with quartiles, or events with total)"
    )
    assert reasons[9] == "control n is missing"
    assert reasons[10] == "study id is empty"
    assert reasons[13] == "treat_sd must be > 0, got 0"
    assert reasons[14] == "treat_mean: expected a number, got '1.2a'"
    assert set(result.log["table_row"]) == set(range(2, 16))
    # S2: one control arm of 9 shared by three arms; S6: two separate controls.
    controls = book.arms[book.arms["role"] == "vehicle_control"]
    assert controls["experiment_id"].str.startswith("S2-").sum() == 1
    assert controls["experiment_id"].str.startswith("S6-").sum() == 2
    s2 = book.outcomes[(book.outcomes["arm_id"] == "S2-E1-C")]
    assert s2["n"].tolist() == [9]
    log_file = tmp_path / "sim.import_log.csv"
    assert len(pd.read_csv(log_file)) == 14


def _simulated_without_ev_fields(tmp_path, kind: str | None, column: list[str] | None = None):
    """The simulated table imported with no isolation method or tissue source given, and
    ``preparation_kind`` as a constant (``kind``) or as a table column (``column``)."""
    tmp_path.mkdir(parents=True)
    text = SIMULATED_MAP.read_text(encoding="utf-8")
    text = text.replace('isolation_method = "UC"\n', "").replace('msc_tissue_source = "bone_marrow"\n', "")
    table = SIMULATED
    if kind is not None:
        text = text.replace("[constants]\n", f'[constants]\npreparation_kind = "{kind}"\n')
    if column is not None:
        frame = pd.read_csv(SIMULATED, dtype=str, keep_default_na=False)
        frame["Kind"] = (column * len(frame))[: len(frame)]
        table = tmp_path / "with_kind.csv"
        frame.to_csv(table, index=False)
        text = text.replace("[columns]\n", '[columns]\npreparation_kind = "Kind"\n')
    map_path = tmp_path / "map.toml"
    map_path.write_text(text, encoding="utf-8")
    out = tmp_path / "book.xlsx"
    return import_wide(table, map_path, out), out


def _fill_in_lines(workbook) -> list[str]:
    from openpyxl import load_workbook

    sheet = load_workbook(workbook, read_only=True)["README"]
    return [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c and "TO FILL IN" in str(c)]


def test_ev_placeholders_ask_to_be_replaced_only_for_ev_preparations(tmp_path):
    """An MSC-EV table without isolation method or tissue source: a note (and a README line)
    per placeholder. A non_ev table (docs/import_wide.md): no such note, the placeholder
    still written (the book validates) and named in the preparation rows' notes. One EV
    row among non_ev rows keeps the notes."""
    ev, ev_book = _simulated_without_ev_fields(tmp_path / "ev", None)
    for name, value in (("isolation_method", "'UC'"), ("msc_tissue_source", "'other'")):
        assert (
            f"{name} is not in the table: every row has the placeholder {value}; replace it in the workbook"
            in ev.notes
        )
        assert any(name in line for line in _fill_in_lines(ev_book))
    non_ev, non_ev_book = _simulated_without_ev_fields(tmp_path / "non_ev", "non_ev")
    assert not any("isolation_method" in n or "msc_tissue_source" in n for n in non_ev.notes)
    assert not any(
        "isolation_method" in line or "msc_tissue_source" in line for line in _fill_in_lines(non_ev_book)
    )
    preparations = em.read_extraction(non_ev_book).preparations
    assert (preparations["isolation_method"] == "UC").all()
    assert (
        preparations["notes"]
        .str.contains("placeholder (not in the table): isolation_method", regex=False)
        .all()
    )
    assert (preparations["preparation_kind"] == "non_ev").all()
    mixed, _ = _simulated_without_ev_fields(tmp_path / "mixed", None, column=["non_ev", "non_ev", "msc_ev"])
    assert any(n.startswith("isolation_method is not in the table") for n in mixed.notes)
    all_non_ev, _ = _simulated_without_ev_fields(tmp_path / "column", None, column=["non_ev"])
    assert not any("isolation_method" in n for n in all_non_ev.notes)


def test_split_control_restored_from_every_row_sharing_it(tmp_path):
    """S2's control of 9 is typed as 3 on three rows; with one of those rows left out (its
    SD blanked) the control is still 9 animals (3 x 3, not 3 x 2), the left-out row is named
    in the control row's notes and its log row points at the control, and build_comparisons
    divides the 9 animals between the two arms imported (escalc with n2i = 4.5)."""
    lines = SIMULATED.read_text().splitlines()
    assert lines[3].startswith("S2,Beta,2020,EV mid,") and ",1.30,0.30,," in lines[3]  # table row 4
    lines[3] = lines[3].replace(",1.30,0.30,,", ",1.30,,,")
    table = tmp_path / "sim.csv"
    table.write_text("\n".join(lines) + "\n")
    out = tmp_path / "sim.xlsx"
    result = import_wide(table, SIMULATED_MAP, out)
    book = em.read_extraction(out)
    control = book.outcomes.set_index("outcome_id").loc["S2-E1-O0"]
    assert control["n"] == 9
    assert "n restored as 3 x 3 = 9" in control["notes"]
    assert "table row 4 not imported: treatment arm has no usable statistic" in control["notes"]
    assert "the 2 imported arms share all 9 control animals" in control["notes"]
    log = result.log.set_index("table_row")
    assert log.loc[4, "status"] == "skipped"
    assert log.loc[4, "control_outcome_id"] == "S2-E1-O0"
    assert log.loc[4, "treat_outcome_id"] == ""
    # A row left out that shares no control keeps an empty control id.
    assert log.loc[8, "control_outcome_id"] == ""
    s2 = em.build_comparisons(book, "MD").table.query("study_id == 'S2'")
    np.testing.assert_allclose(s2["n_control"], [4.5, 4.5])
    # Table rows 3 and 5: N_T 6 and 7, means 1.50 and 1.05, SDs 0.35 and 0.28; control 2.10 (0.45).
    np.testing.assert_allclose(s2["yi"], [-(1.50 - 2.10), -(1.05 - 2.10)], rtol=1e-12)
    np.testing.assert_allclose(
        s2["vi"], [0.35**2 / 6 + 0.45**2 / 4.5, 0.28**2 / 7 + 0.45**2 / 4.5], rtol=1e-12
    )


def test_split_control_note_without_left_out_rows(tmp_path):
    """The unchanged fixture: S2's control note says how n was restored and nothing more."""
    out = tmp_path / "sim.xlsx"
    import_wide(SIMULATED, SIMULATED_MAP, out)
    book = em.read_extraction(out)
    note = book.outcomes.set_index("outcome_id").loc["S2-E1-O0", "notes"]
    assert note == "control shared by 3 treatment arms (table rows 3, 4, 5); n restored as 3 x 3 = 9"


def test_cart_table(tmp_path):
    """The vendored CAR-T tumour-volume table: every row imported or logged, and the rows
    escalc can compute give escalc's yi and vi (tolerance 1e-10)."""
    map_path = tmp_path / "cart.toml"
    map_path.write_text(
        '[columns]\nstudy_id = "Study.ID"\nunit = "Unit.of.Analysis"\ntimepoint = "End.point.days"\n'
        'treat_n = "no.ex"\ntreat_mean = "mean.ex"\ntreat_sd = "sd.ex"\n'
        'control_n = "no.nc"\ncontrol_mean = "mean.nc"\ncontrol_sd = "sd.nc"\n'
        '[constants]\noutcome = "tumour volume"\nhigher_is_better = "no"\nspecies = "mouse"\n'
    )
    table = pd.read_csv(ROOT / "tests/data/cart/cart_tumor_volume.csv")
    result = import_wide(ROOT / "tests/data/cart/cart_tumor_volume.csv", map_path, tmp_path / "cart.xlsx")
    assert len(result.log[result.log["status"] != "not imported"]) == len(table)
    book = em.read_extraction(tmp_path / "cart.xlsx")
    comparisons = em.build_comparisons(book, "SMD", shared_control="keep").table
    ref = _reference("escalc_reference.json")["cart_tumor_volume"]
    ordered = _by_table_row(result, comparisons)
    studies = table["Study.ID"].to_numpy()[ordered["table_row"].to_numpy() - 2]
    assert studies.tolist() == ref["study"]
    np.testing.assert_allclose(ordered["yi"], -np.array(ref["yi"]), rtol=1e-10)
    np.testing.assert_allclose(ordered["vi"], ref["vi"], rtol=1e-10)
    skipped = result.log[result.log["status"] == "skipped"]
    assert len(skipped) == len(table) - len(ref["yi"])
    assert skipped["reason"].str.contains("sd", case=False).all()  # a missing SD or an SD of 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"columns": {"study_id": "A"}}, "needs treat_n, control_n"),
        ({"columns": {"studyid": "A"}}, "unknown key(s) ['studyid'] in [columns]"),
        ({"mapping": {}}, "unknown section(s) ['mapping']"),
        (
            {"columns": {"study_id": "A", "treat_n": "B", "control_n": "C", "treat_mean": "D"}},
            "maps no statistic for the control arm",
        ),
        (
            {
                "columns": {
                    "study_id": "A",
                    "treat_n": "B",
                    "control_n": "C",
                    "treat_mean": "D",
                    "control_mean": "E",
                },
                "options": {"control_n_is_split": "yes"},
            },
            "must be true or false",
        ),
    ],
)
def test_map_errors_name_the_key(data, message):
    with pytest.raises(SpecError) as info:
        parse_map(data)
    assert message in str(info.value)


def test_cli_import_wide(tmp_path):
    out = tmp_path / "book.xlsx"
    result = runner.invoke(app, ["import-wide", str(SIMULATED), "--map", str(SIMULATED_MAP), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "9 comparisons from 5 studies imported" in result.output
    assert out.exists() and (tmp_path / "book.import_log.csv").exists()
    bad_map = tmp_path / "bad.toml"
    bad_map.write_text(
        '[columns]\nstudy_id = "Nope"\ntreat_n = "N_T"\ncontrol_n = "N_C"\ntreat_mean = "Mean_T"\ncontrol_mean = "Mean_C"\n'
    )
    before = out.read_bytes()
    result = runner.invoke(
        app, ["import-wide", str(SIMULATED), "--map", str(bad_map), "-o", str(out), "--force"]
    )
    assert result.exit_code == 2
    assert "the table does not have" in result.output and "Traceback" not in result.output
    assert out.read_bytes() == before  # a failed import leaves the earlier workbook as it was
