"""import-wide, the reviewer's own columns (issue 25 item 2): [moderators] kept and carried
to the comparisons table, [risk_of_bias] imported as SYRCLE items, every other column
logged as not imported, duplicate headers refused naming both columns, and one line per
root cause however many rows it touches."""

from __future__ import annotations

import csv
import datetime
import re

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.errors import SpecError
from evmeta.schema.columns import SHEETS
from evmeta.schema.wide_import import import_wide, read_map, read_table, wide_to_sheets
from evmeta.schema.wide_map import COMPARISON_COLUMNS, COMPARISON_PREFIXES, ROB_WORDS, parse_map
from tests.conftest import ROOT

RIC = ROOT / "tests/data/ric/ric_infarct_volume_wide.csv"
RIC_MAP = ROOT / "extraction/maps/ric_infarct_volume.toml"

#: A small simulated table (typed for these tests, no real study): two studies, a drug
#: class with stray whitespace and case, a numeric moderator with "Not reported", three
#: SYRCLE columns in the spellings tables use, and a column the map does not read.
SIMULATED = """Study,Author,Year,N_T,Mean_T,SD_T,N_C,Mean_C,SD_C,Drug class,Dose mg,Random,Blind care,Blind outcome,Comment
S1,Alpha,2019,8,1.1,0.3,8,1.9,0.4, statin ,10,Y,Y,yes,first
S1,Alpha,2019,8,1.2,0.3,8,2.0,0.4,Statin,20,Y,Y,yes,
S2,Beta,2020,6,1.5,0.35,6,2.1,0.45,fibrate,Not reported,N,?,No,x
S3,Gamma,2021,7,1.3,0.3,7,2.2,0.5,fibrate,5,Low,Low,Low,
"""
SIMULATED_MAP = """[columns]
study_id = "Study"
first_author = "Author"
year = "Year"
treat_n = "N_T"
treat_mean = "Mean_T"
treat_sd = "SD_T"
control_n = "N_C"
control_mean = "Mean_C"
control_sd = "SD_C"
[constants]
outcome = "serum creatinine"
higher_is_better = "no"
species = "rat"
disease_model = "aki_ischemia_reperfusion"
isolation_method = "UC"
msc_tissue_source = "bone_marrow"
[moderators]
drug_class = "Drug class"
drug_dose_mg = "Dose mg"
[risk_of_bias]
sequence_generation = "Random"
rob_blinding_caregivers = "Blind care"
blinding_assessor = "Blind outcome"
"""


def _write(tmp_path, table=SIMULATED, wide_map=SIMULATED_MAP):
    (tmp_path / "t.csv").write_text(table)
    (tmp_path / "m.toml").write_text(wide_map)
    return tmp_path / "t.csv", tmp_path / "m.toml"


def test_moderators_are_cleaned_typed_and_reach_the_comparisons(tmp_path):
    table, wide_map = _write(tmp_path)
    result = import_wide(table, wide_map, tmp_path / "book.xlsx")
    assert result.moderators == {"drug_class": "categorical", "drug_dose_mg": "numeric"}
    assert any("'Not reported' (1 row) read as missing" in n for n in result.notes)
    book = em.read_extraction(tmp_path / "book.xlsx")
    t = em.build_comparisons(book, "SMD").table.set_index("study_id")
    # Whitespace cleaned, case variants merged (" statin " and "Statin" once each: the first
    # seen wins a tie), numbers as floats, "Not reported" missing in a numeric moderator.
    levels = t.groupby(level=0)["drug_class"].agg(list).to_dict()
    assert levels == {"S1": ["statin", "statin"], "S2": ["fibrate"], "S3": ["fibrate"]}
    assert any("'Statin' read as 'statin'" in n for n in result.notes)
    assert t["drug_dose_mg"].dtype == float
    assert t.loc["S1", "drug_dose_mg"].tolist() == [10.0, 20.0]
    assert np.isnan(t.loc["S2", "drug_dose_mg"]) and t.loc["S3", "drug_dose_mg"] == 5.0
    # Usable as a subgroup and in a meta-regression formula.
    dosed = t[t["drug_dose_mg"].notna()].reset_index()
    fit = em.meta_analysis(dosed, mods="~ drug_dose_mg", method="DL")
    assert fit.k == 3 and len(fit.coef_table()) == 2
    sub = em.subgroup_analysis(t.reset_index(), "drug_class", method="DL")
    assert sorted(sub.to_frame()["k"].tolist()) == [2, 2]


def test_risk_of_bias_items_are_imported_per_study(tmp_path):
    table, wide_map = _write(tmp_path)
    result = import_wide(table, wide_map, tmp_path / "book.xlsx")
    rob = {r["study_id"]: r for r in result.data["risk_of_bias"]}
    assert rob["S1"]["experiment_id"] is None  # both rows agree: one study-level row
    assert [rob[s]["rob_sequence_generation"] for s in ("S1", "S2", "S3")] == ["low", "high", "low"]
    assert rob["S2"]["rob_blinding_caregivers"] == "unclear" and rob["S2"]["rob_blinding_assessor"] == "high"
    assert rob["S1"]["rob_random_housing"] is None  # not in the table: left empty
    book = em.read_extraction(tmp_path / "book.xlsx")
    t = em.build_comparisons(book, "SMD").table.set_index("study_id")
    # Low risk on randomization and both blinding items: S1 (Y/Y/yes) and S3 (Low x3), not S2.
    low = t.groupby(level=0)["rob_low_randomization_blinding"].agg(list).to_dict()
    assert low == {"S1": [True, True], "S2": [False], "S3": [True]}
    assert t.loc["S3", "rob_low_count"] == 3 and t.loc["S2", "rob_low_count"] == 0


def test_risk_of_bias_word_mapping_and_override(tmp_path):
    assert {ROB_WORDS[w] for w in ("y", "yes", "low", "+")} == {"low"}
    assert {ROB_WORDS[w] for w in ("n", "no", "high", "-")} == {"high"}
    assert {ROB_WORDS[w] for w in ("?", "unclear", "not reported")} == {"unclear"}
    # A word the defaults do not know is one error line per (item, word), with the fix.
    odd = SIMULATED.replace(",Y,Y,yes,first", ",Partly,Y,yes,first").replace(
        ",Y,Y,yes,\n", ",Partly,Y,yes,\n"
    )
    table, wide_map = _write(tmp_path, odd)
    with pytest.raises(SpecError) as info:
        import_wide(table, wide_map, tmp_path / "book.xlsx")
    message = str(info.value)
    assert (
        "risk_of_bias.rob_sequence_generation (column 'Random'): 'Partly' in 2 row(s) (table rows 2, 3)"
        in message
    )
    assert "[risk_of_bias.values]" in message
    # The map's own words: "No" read as unclear (a checklist where no = not reported).
    table, wide_map = _write(
        tmp_path, odd, SIMULATED_MAP + '[risk_of_bias.values]\nPartly = "unclear"\nNo = "unclear"\n'
    )
    rob = {
        r["study_id"]: r for r in wide_to_sheets(read_table(table), read_map(wide_map)).data["risk_of_bias"]
    }
    assert rob["S1"]["rob_sequence_generation"] == "unclear"
    assert rob["S2"]["rob_blinding_assessor"] == "unclear" and rob["S2"]["rob_sequence_generation"] == "high"


def test_rows_of_one_experiment_that_disagree_keep_the_most_severe(tmp_path):
    text = SIMULATED.replace(
        "S1,Alpha,2019,8,1.2,0.3,8,2.0,0.4,Statin,20,Y,Y,yes,",
        "S1,Alpha,2019,8,1.2,0.3,8,1.9,0.4,Statin,20,N,Y,yes,",
    )
    table, wide_map = _write(tmp_path, text)
    result = import_wide(table, wide_map, tmp_path / "book.xlsx")
    s1 = [r for r in result.data["risk_of_bias"] if r["study_id"] == "S1"]
    assert len(s1) == 1 and s1[0]["experiment_id"] == "S1-E1"  # both rows share one control: one experiment
    assert s1[0]["rob_sequence_generation"] == "high"
    assert "table rows give high, low; the most severe is kept" in s1[0]["notes"]
    assert any("disagree" in n for n in result.notes)


def test_every_unread_column_is_logged_as_not_imported(tmp_path):
    table, wide_map = _write(tmp_path)
    result = import_wide(table, wide_map, tmp_path / "book.xlsx")
    unread = result.log[result.log["status"] == "not imported"]
    assert unread["column"].tolist() == ["Comment"]
    assert "column O (2 non-empty cells) is not in the map" in unread["reason"].iloc[0]
    written = pd.read_csv(tmp_path / "book.import_log.csv")
    assert written.loc[written["status"] == "not imported", "column"].tolist() == ["Comment"]
    assert "1 table column(s) not imported (not in the map): Comment" in result.summary()


def test_real_table_logs_each_column_it_does_not_read(tmp_path):
    """Ripley et al. 2021: 56 columns, of which the map reads 29 (fields, moderators); the 27
    others are listed by name, and nothing else."""
    result = import_wide(RIC, RIC_MAP, tmp_path / "ric.xlsx")
    header = next(csv.reader(RIC.read_text().splitlines()))
    unread = result.log.loc[result.log["status"] == "not imported", "column"].tolist()
    wide_map = read_map(RIC_MAP)
    assert set(unread) == set(header) - wide_map.headers()
    assert "Comments" in unread and "Condition2" in unread and "Time.cond" not in unread


@pytest.mark.parametrize("twice", ["Mean_T", "Comment"])
def test_duplicate_headers_are_an_error_naming_both_columns(tmp_path, twice):
    """Read from the header cells themselves: pandas would call the second one 'x.1' and the
    map's header would silently mean the first (or, by dict order, the last)."""
    lines = SIMULATED.splitlines()
    lines[0] = lines[0].replace("Dose mg", twice)
    table, wide_map = _write(
        tmp_path, "\n".join(lines) + "\n", SIMULATED_MAP.replace('drug_dose_mg = "Dose mg"\n', "")
    )
    letters = [chr(65 + i) for i, h in enumerate(lines[0].split(",")) if h == twice]
    with pytest.raises(
        SpecError,
        match=re.escape(f"2 columns headed {twice!r} (column {letters[0]} and column {letters[1]})"),
    ):
        import_wide(table, wide_map, tmp_path / "book.xlsx")
    assert not (tmp_path / "book.xlsx").exists()


def test_a_stripped_header_duplicate_is_caught(tmp_path):
    lines = SIMULATED.splitlines()
    lines[0] = lines[0].replace("Comment", " Drug class ")
    table, wide_map = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(SpecError, match=r"2 columns headed 'Drug class' \(column J and column O\)"):
        import_wide(table, wide_map, tmp_path / "book.xlsx")


def _ric_copies(tmp_path, copies: int, year) -> tuple:
    """The real RIC table repeated ``copies`` times (study ids made unique) with a year column."""
    rows = list(csv.reader(RIC.read_text().splitlines()))
    header, body = rows[0] + ["Year"], rows[1:]
    out = [header]
    for c in range(copies):
        for r in body:
            out.append([f"{r[0]}-{c}", *r[1:], year(r)])
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(out)
    wide_map = RIC_MAP.read_text().replace(
        'first_author = "Author"', 'first_author = "Author"\nyear = "Year"'
    )
    (tmp_path / "big.toml").write_text(wide_map)
    return path, tmp_path / "big.toml", len(out) - 1


def test_a_date_formatted_year_column_is_one_line_not_thousands(tmp_path):
    """4,120 rows (the real table x 40) whose year column holds dates, as a year typed into
    date-formatted cells exports: one folded line with the count, not 4,120 lines."""
    table, wide_map, n = _ric_copies(tmp_path, 40, lambda r: "1905-07-11")
    result = wide_to_sheets(read_table(table), read_map(wide_map))
    assert n == 4120
    lines = result.summary().splitlines()
    year_lines = [line for line in lines if "year:" in line]
    assert len(year_lines) == 1
    assert year_lines[0].strip().startswith("4120  year: the column holds dates")
    assert "... and 4,119 more rows with the same cause" in year_lines[0]
    assert "format the column as numbers" in year_lines[0]
    assert len(lines) < 10


def test_date_cells_in_a_workbook_year_column_are_refused(tmp_path):
    """An .xlsx table whose year cells are dates (2019 formatted as a date is 1905-07-11)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    rows = list(csv.reader(SIMULATED.splitlines()))
    sheet.append(rows[0])
    for r in rows[1:]:
        sheet.append([datetime.datetime(1905, 7, 11) if i == 2 else v for i, v in enumerate(r)])
    sheet.append(["S9", "Delta", 2018, 5, 1.0, 0.2, 5, 2.0, 0.3, "statin", 3, "Y", "Y", "Y", ""])
    book.save(tmp_path / "t.xlsx")
    (tmp_path / "m.toml").write_text(SIMULATED_MAP)
    result = wide_to_sheets(read_table(tmp_path / "t.xlsx"), read_map(tmp_path / "m.toml"))
    assert [s["study_id"] for s in result.data["studies"]] == ["S9"]
    assert [s["year"] for s in result.data["studies"]] == [2018]
    assert "4  year: the column holds dates" in result.summary()
    assert "... and 3 more rows with the same cause" in result.summary()


def test_a_missing_mapped_column_is_one_error(tmp_path):
    table, wide_map, _ = _ric_copies(tmp_path, 40, lambda r: "2019")
    (tmp_path / "big.toml").write_text(wide_map.read_text().replace('"Mean_RIC"', '"Mean RIC"'))
    with pytest.raises(SpecError) as info:
        wide_to_sheets(read_table(table), read_map(wide_map))
    assert str(info.value).count("\n") == 0 and "['Mean RIC']" in str(info.value)


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("species", "experiments.species"),
        ("yi", "the comparison table's yi"),
        ("notes", "studies.notes"),
        ("dose_mg_per_kg", "the comparison table's dose_mg_per_kg"),
        ("rob_other", "risk_of_bias.rob_other"),
    ],
)
def test_a_moderator_named_like_a_schema_column_is_an_error_naming_both(name, where):
    with pytest.raises(
        SpecError, match=re.escape(f"moderators.{name} has the name of the schema column {where}")
    ):
        parse_map(
            {
                "columns": {
                    "study_id": "S",
                    "treat_n": "a",
                    "control_n": "b",
                    "treat_mean": "c",
                    "control_mean": "d",
                },
                "moderators": {name: "Some column"},
            }
        )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"moderators": {"Drug Class": "x"}}, "lower-case letters"),
        ({"moderators": {"drug": []}}, "names no column"),
        ({"moderators": {"drug": 3}}, "header text"),
        (
            {"risk_of_bias": {"randomisation": "x"}},
            "unknown SYRCLE item risk_of_bias.randomisation; valid items: sequence_generation",
        ),
        ({"risk_of_bias": {"other": "x", "values": {"Y": "maybe"}}}, "must be one of low, high, unclear"),
    ],
)
def test_map_sections_are_checked(section, message):
    base = {
        "columns": {"study_id": "S", "treat_n": "a", "control_n": "b", "treat_mean": "c", "control_mean": "d"}
    }
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_map({**base, **section})


def test_comparison_column_list_is_complete(tmp_path):
    """A moderator may not take a computed column's name: every column build_comparisons
    writes is in the map's reserved list, a sheet column, a dose_* column or a moderator."""
    result = import_wide(RIC, RIC_MAP, tmp_path / "ric.xlsx")
    table = em.build_comparisons(em.read_extraction(tmp_path / "ric.xlsx"), "SMD").table
    sheet_columns = {c.name for cols in SHEETS.values() for c in cols}
    left = {
        c
        for c in table.columns
        if c not in COMPARISON_COLUMNS and c not in sheet_columns and not c.startswith(COMPARISON_PREFIXES)
    }
    assert left == set(result.moderators)


JUDGEMENT_BIAS = ROOT / "tests/data/judgement_bias/lagisz2020.csv"
JUDGEMENT_BIAS_MAP = ROOT / "extraction/maps/lagisz2020_judgement_bias.toml"


def test_real_table_with_a_blinding_column_imports_it_as_syrcle_item_7(tmp_path):
    """Lagisz et al. 2020: 'Blind' yes/no becomes rob_blinding_assessor low/high, one
    study-level row per article (every article gives one answer); the review's moderators
    are kept; subgroups by blinding, affect manipulation and taxon on the proportion
    outcomes equal metafor's (k exactly; estimates and SEs to 1e-6, REML optimised to 1e-12
    in R)."""
    import json

    ref = json.loads((ROOT / "tests/reference/judgement_bias_blinding.json").read_text())
    result = import_wide(JUDGEMENT_BIAS, JUDGEMENT_BIAS_MAP, tmp_path / "jb.xlsx")
    rob = pd.DataFrame(result.data["risk_of_bias"])
    assert len(rob) == 71 and rob["experiment_id"].isna().all()
    table = pd.read_csv(JUDGEMENT_BIAS)
    blind = table.groupby("ArticleID")["Blind"].first().map({"yes": "low", "no": "high"})
    assert rob.set_index("study_id")["rob_blinding_assessor"].to_dict() == blind.to_dict()
    assert rob["rob_sequence_generation"].isna().all()  # not in the table: not judged
    assert result.moderators["taxa"] == "categorical" and result.moderators["test_sessions"] == "categorical"
    book = em.read_extraction(tmp_path / "jb.xlsx")
    comparisons = em.build_comparisons(book, "SMD", outcome="proportion", shared_control="keep").table
    assert len(comparisons) == ref["k"] == 258
    by_study = comparisons.groupby("rob_blinding_assessor")["study_id"].nunique().to_dict()
    assert by_study == ref["blind_studies"]
    names = {
        "rob_blinding_assessor": "rob_blinding_assessor",
        "AffectManipCat": "affect_manipulation",
        "Taxa": "taxa",
    }
    for column, name in names.items():
        fit = (
            em.subgroup_analysis(comparisons, name, method="REML", test="z").to_frame().set_index("subgroup")
        )
        for level, expected in ref["subgroups"][column].items():
            assert fit.loc[level, "k"] == expected["k"], (name, level)
            assert fit.loc[level, "estimate"] == pytest.approx(expected["estimate"], abs=1e-6), (name, level)
            assert fit.loc[level, "se"] == pytest.approx(expected["se"], abs=1e-6), (name, level)
