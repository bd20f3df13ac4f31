"""build_comparisons: row accounting, recomputation from raw rows, shared controls, NMD rule,
binary outcomes, time-point rules, and the harmonize CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from evmeta.harmonize.quality import syrcle_columns
from tests.conftest import EXAMPLE, ROOT

SYRCLE = syrcle_columns()


@pytest.fixture(scope="module")
def example():
    return em.read_extraction(EXAMPLE)


@pytest.fixture(scope="module")
def comparisons(example):
    return em.build_comparisons(example, "SMD")


def test_every_outcome_row_is_used_or_excluded(example, comparisons):
    table, excluded = comparisons.table, comparisons.exclusions
    used = set(table["treat_outcome_row"]) | set(table["control_outcome_row"])
    logged = list(excluded["row"])
    assert len(logged) == len(set(logged)), "a row is logged twice"
    assert not used & set(logged), "a row is both used and excluded"
    assert used | set(logged) == set(example.outcomes["_row"])
    assert (excluded["reason"].str.len() > 0).all()
    assert set(excluded.columns) >= {"sheet", "row", "reason"}


@pytest.mark.parametrize("measure", ["SMD", "MD", "ROM"])
def test_yi_matches_escalc_on_the_raw_rows(example, measure):
    """yi and vi equal metafor's escalc on the workbook's raw outcome rows (read by readxl in
    tests/reference/example_escalc.R: SD from SEM, Wan et al. 2014 from quartiles, control n
    split among the arms sharing it), sign flipped where lower is better; tolerance 1e-10
    (same closed forms). The pairing itself is pinned in example_pairs.csv."""
    ref = json.loads((ROOT / "tests/reference/example_escalc.json").read_text())[measure]
    pairs = pd.read_csv(ROOT / "tests/reference/example_pairs.csv")
    table = em.build_comparisons(example, measure).table.set_index("treat_outcome_row")
    expected = pd.DataFrame(ref).set_index("treat_outcome_row").dropna()
    assert sorted(table.index) == sorted(expected.index)
    got = table.loc[expected.index]
    assert (
        got["control_outcome_row"].tolist()
        == pairs.set_index("treat_outcome_row").loc[expected.index, "control_outcome_row"].tolist()
    )
    np.testing.assert_allclose(got["yi"], expected["yi"], rtol=1e-10)
    np.testing.assert_allclose(got["vi"], expected["vi"], rtol=1e-10)
    if measure == "SMD":
        assert (table["yi"] > 0).mean() > 0.8  # benefit is positive in the simulated data


def test_contract_columns(comparisons):
    required = [
        "comparison_id",
        "study_id",
        "experiment_id",
        "outcome",
        "timepoint",
        "label",
        "yi",
        "vi",
        "n_treat",
        "n_control",
        "isolation_method",
        "isolation_family",
        "msc_tissue_source",
        "species",
        "disease_model",
        "route",
        "log10_dose_ug_protein_per_kg",
        "quality_score",
        "evmetric_like",
        "rob_low_count",
        "direction_flipped",
        "source_file",
        "treat_outcome_row",
        "control_outcome_row",
        "misev_transmembrane_protein",
        "dose_ug_protein_per_kg",
        "dose_provenance_ug_protein_per_kg",
    ]
    missing = [c for c in required if c not in comparisons.table.columns]
    assert not missing
    assert comparisons.table["comparison_id"].is_unique
    assert comparisons.table["quality_score"].between(0, 1).all()


def test_shared_control_split_and_keep(example):
    split = em.build_comparisons(example, shared_control="split").table
    keep = em.build_comparisons(example, shared_control="keep").table
    k = split.groupby("control_group_id")["comparison_id"].transform("count")
    assert (k > 1).any(), "the example must have multi-arm experiments"
    np.testing.assert_allclose(split["n_control"], split["n_control_reported"] / k)
    np.testing.assert_allclose(keep["n_control"], keep["n_control_reported"])
    shared = keep[keep.groupby("control_group_id")["comparison_id"].transform("count") > 1]
    assert shared["control_group_id"].duplicated().any()


def test_timepoint_rules(example):
    last = em.build_comparisons(example, timepoint="last").table
    first = em.build_comparisons(example, timepoint="first").table
    every = em.build_comparisons(example, timepoint="all").table
    assert len(every) > len(last) == len(first)
    for (exp, out), group in every.groupby(["experiment_id", "outcome"]):
        chosen = last[(last["experiment_id"] == exp) & (last["outcome"] == out)]["timepoint"]
        assert (chosen == group["timepoint"].max()).all()
    near = em.build_comparisons(example, timepoint=1.5).table  # 1.5 d: 24 h is closer than 72 h
    times = every[every["outcome"] == "serum creatinine"].groupby("experiment_id")["timepoint"].agg(set)
    both = times[times.map(lambda t: t == {1.0, 3.0})].index
    assert len(both) > 0
    chosen = near[(near["outcome"] == "serum creatinine") & near["experiment_id"].isin(both)]["timepoint"]
    assert (chosen == 1.0).all()
    with pytest.raises(ValueError, match="timepoint must be"):
        em.build_comparisons(example, timepoint="latest")


def test_outcome_filter_logs_other_outcomes(example):
    result = em.build_comparisons(example, outcome="Serum creatinine")
    assert set(result.table["outcome"]) == {"serum creatinine"}
    assert result.exclusions["reason"].str.startswith("outcome not selected").any()


def _mini(tmp_path, *, sham_everywhere: bool, binary: bool = False):
    """A two-study extraction written as CSV files."""
    studies = [{"study_id": f"S{i}", "first_author": f"Author{i}", "year": 2020 + i} for i in (1, 2)]
    preps = [
        {
            "prep_id": f"S{i}-P",
            "study_id": f"S{i}",
            "msc_tissue_source": "bone marrow",
            "isolation_method": "SEC" if i == 1 else "ExoQuick",
            "particles_per_ug_protein": 1e9 if i == 2 else None,
        }
        for i in (1, 2)
    ]
    experiments = [
        {"experiment_id": f"S{i}-E", "study_id": f"S{i}", "species": "rat", "disease_model": "MCAO"}
        for i in (1, 2)
    ]
    arms, outcomes = [], []
    for i in (1, 2):
        e = f"S{i}-E"
        arms += [
            {"arm_id": f"{e}-C", "experiment_id": e, "role": "vehicle_control"},
            {
                "arm_id": f"{e}-V",
                "experiment_id": e,
                "role": "ev",
                "prep_id": f"S{i}-P",
                "dose_text": "2e10 particles",
            },
            {"arm_id": f"{e}-P", "experiment_id": e, "role": "positive_control"},
        ]
        if sham_everywhere or i == 1:
            arms.append({"arm_id": f"{e}-S", "experiment_id": e, "role": "sham"})
        for arm, value in [("C", 40.0), ("V", 25.0), ("P", 20.0), ("S", 10.0)]:
            if not any(a["arm_id"] == f"{e}-{arm}" for a in arms):
                continue
            row = {
                "outcome_id": f"{e}-{arm}",
                "experiment_id": e,
                "arm_id": f"{e}-{arm}",
                "outcome": "infarct volume",
                "higher_is_better": "no",
                "n": 8,
                "timepoint": 1,
                "timepoint_unit": "days",
            }
            if binary:
                row.update(outcome="death", events={"C": 6, "V": 2, "P": 1, "S": 0}[arm], total=8)
            else:
                row.update(mean=value, sd=6.0)
            outcomes.append(row)
    rob = [{"study_id": f"S{i}", **dict.fromkeys(SYRCLE, "low" if i == 1 else "unclear")} for i in (1, 2)]
    folder = tmp_path / ("binary" if binary else f"mini{sham_everywhere}")
    em.write_template(
        folder,
        csv_dir=True,
        data={
            "studies": studies,
            "preparations": preps,
            "experiments": experiments,
            "arms": arms,
            "outcomes": outcomes,
            "risk_of_bias": rob,
        },
    )
    return em.read_extraction(folder)


def test_nmd_rule_and_hand_values(tmp_path):
    all_sham = _mini(tmp_path, sham_everywhere=True)
    result = em.build_comparisons(all_sham, "NMD_or_SMD")
    assert result.measure == "NMD"
    np.testing.assert_allclose(result.table["yi"], [50.0, 50.0])  # 100 (40 - 25) / (40 - 10)
    assert not result.table["direction_flipped"].any()
    half = _mini(tmp_path, sham_everywhere=False)
    result = em.build_comparisons(half, "NMD_or_SMD")
    assert result.measure == "SMD"  # 1 of 2 comparisons has a sham: 50% < 70%
    assert (result.table["yi"] > 0).all() and result.table["direction_flipped"].all()
    nmd = em.build_comparisons(half, "NMD")
    assert len(nmd.table) == 1
    assert nmd.exclusions["reason"].str.contains("sham mean missing").any()
    assert nmd.exclusions["reason"].str.contains("positive_control").sum() == 2


def test_binary_outcomes_and_dose_reliability(tmp_path):
    book = _mini(tmp_path, sham_everywhere=True, binary=True)
    result = em.build_comparisons(book, "OR")
    table = result.table
    # Death is bad (higher_is_better = no), so the log OR of EVs vs control is flipped.
    expected = -np.log((2 / 6) / (6 / 2))
    np.testing.assert_allclose(table["yi"], [expected, expected], rtol=1e-12)
    smd = em.build_comparisons(book, "SMD")
    assert len(smd.table) == 0
    assert smd.exclusions["reason"].str.contains("binary data").any()
    # Precipitation-only particle dose of an impure preparation is flagged.
    reliability = dict(zip(table["isolation_method"], table["dose_reliability"], strict=True))
    assert reliability == {"SEC": "ok", "precipitation": "low"}
    assert table.set_index("study_id").loc["S1", "rob_low_count"] == 10


def _three_arms(tmp_path, treat_n: list[int], control_n: int, name: str):
    """One experiment: a control arm (mean 40, SD 7) shared by three EV arms (SD 6)."""
    folder = tmp_path / name
    arms = [{"arm_id": "C", "experiment_id": "E", "role": "vehicle_control"}]
    outcomes = [
        {"outcome_id": "O-C", "arm_id": "C", "n": control_n, "mean": 40.0, "sd": 7.0},
    ]
    for j, (n, mean) in enumerate(zip(treat_n, [25.0, 28.0, 30.0], strict=True), start=1):
        arms.append({"arm_id": f"V{j}", "experiment_id": "E", "role": "ev", "prep_id": "P"})
        outcomes.append({"outcome_id": f"O-V{j}", "arm_id": f"V{j}", "n": n, "mean": mean, "sd": 6.0})
    for row in outcomes:
        row.update(experiment_id="E", outcome="infarct volume", higher_is_better="yes", timepoint=1)
    em.write_template(
        folder,
        csv_dir=True,
        data={
            "studies": [{"study_id": "S", "first_author": "Author", "year": 2020}],
            "preparations": [
                {
                    "prep_id": "P",
                    "study_id": "S",
                    "msc_tissue_source": "bone marrow",
                    "isolation_method": "UC",
                }
            ],
            "experiments": [
                {"experiment_id": "E", "study_id": "S", "species": "rat", "disease_model": "MCAO"}
            ],
            "arms": arms,
            "outcomes": outcomes,
            "risk_of_bias": [],
        },
    )
    return em.read_extraction(folder)


def test_split_control_is_divided_among_the_comparisons_kept(tmp_path):
    """Three EV arms share a control of 9; one arm (n = 1) cannot give an effect size. The
    two comparisons left share the control: n_control = 9/2 = 4.5, not 9/3 (escalc with
    n2i = 4.5: MD vi = 6^2/8 + 7^2/4.5). ``keep`` leaves n_control at 9."""
    book = _three_arms(tmp_path, [8, 1, 8], 9, "dropped_arm")
    result = em.build_comparisons(book, "MD", shared_control="split")
    table = result.table.set_index("comparison_id")
    assert list(table.index) == ["O-V1", "O-V3"]
    np.testing.assert_allclose(table["n_control"], [4.5, 4.5])
    np.testing.assert_allclose(table["n_control_reported"], [9.0, 9.0])
    np.testing.assert_allclose(table["yi"], [25.0 - 40.0, 30.0 - 40.0])
    np.testing.assert_allclose(table["vi"], [6**2 / 8 + 7**2 / 4.5] * 2, rtol=1e-12)
    assert (
        result.exclusions.set_index("outcome_id")
        .loc["O-V2", "reason"]
        .startswith("effect size not computable: n must be >= 2")
    )
    smd = em.build_comparisons(book, "SMD").table
    expected = em.effect_size(
        "SMD", m1i=[25.0, 30.0], sd1i=[6.0, 6.0], n1i=[8, 8], m2i=[40.0] * 2, sd2i=[7.0] * 2, n2i=[4.5] * 2
    )
    np.testing.assert_allclose(smd["yi"], expected["yi"], rtol=1e-12)
    np.testing.assert_allclose(smd["vi"], expected["vi"], rtol=1e-12)
    kept = em.build_comparisons(book, "MD", shared_control="keep").table
    np.testing.assert_allclose(kept["n_control"], [9.0, 9.0])


def test_split_that_leaves_too_few_animals_is_logged_and_the_rest_resplit(tmp_path):
    """A control of 3 split among three arms gives 1 animal each: SMD then needs
    n1 + n2 - 2 > 1, which the arms of n = 2 fail (logged with the split). The arm left
    uses the whole control."""
    book = _three_arms(tmp_path, [2, 2, 5], 3, "too_few")
    result = em.build_comparisons(book, "SMD")
    assert result.table["comparison_id"].tolist() == ["O-V3"]
    assert result.table["n_control"].tolist() == [3.0]
    reasons = result.exclusions.set_index("outcome_id")["reason"]
    for dropped in ("O-V1", "O-V2"):
        assert reasons[dropped] == (
            "effect size not computable: SMD needs n1 + n2 - 2 > 1 (control n split among 3 arms: 1)"
        )
    # Every outcome row is still either used or logged.
    used = set(result.table["treat_outcome_row"]) | set(result.table["control_outcome_row"])
    assert used | set(result.exclusions["row"]) == set(book.outcomes["_row"])


def test_harmonize_cli(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out" / "comparisons.csv"
    result = runner.invoke(app, ["harmonize", str(EXAMPLE), "-o", str(out), "--measure", "SMD"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    exclusions = pd.read_csv(out.parent / "exclusions.csv")
    assert len(table) > 50 and len(exclusions) > 0
    bad = runner.invoke(app, ["harmonize", str(EXAMPLE), "-o", str(out), "--measure", "XYZ", "--force"])
    assert bad.exit_code == 2 and "valid measures" in bad.output


def test_make_demo_runs_the_example_spec():
    # `evmeta demo` itself runs end to end in tests/test_cli_newcomer.py (from any folder).
    makefile = (ROOT / "Makefile").read_text()
    lines = makefile.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("demo:")) + 1
    recipe = [line.strip() for line in lines[start:] if line.startswith("\t")]
    assert "$(BIN)/evmeta run analyses/example.toml" in recipe[:3]


def test_a_filtered_arm_leaves_its_share_of_the_control_to_the_arms_left():
    """[filters] after build_comparisons: a control split among 3 arms of which one is
    filtered out is divided between the 2 left (as if the third arm had not been entered),
    checked against a direct escalc-style computation with n2i = n_control / 2."""
    from evmeta.analysis.spec import FiltersSection
    from evmeta.analysis.table import filter_comparisons
    from evmeta.harmonize.control_split import resplit_shared_controls

    book = em.read_extraction(EXAMPLE)
    table = em.build_comparisons(book, outcome=["serum creatinine", "infarct volume", "infarct size"]).table
    unchanged = resplit_shared_controls(table)
    pd.testing.assert_frame_equal(unchanged, table)  # nothing removed: nothing changes
    group = table.loc[table["control_split_among"] == 3, "control_group_id"].iloc[0]
    subset = table.drop(index=table.index[table["control_group_id"] == group][0]).reset_index(drop=True)
    left = resplit_shared_controls(subset)
    rows = left[left["control_group_id"] == group]
    assert len(rows) == 2 and (rows["control_split_among"] == 2).all()
    for _, row in rows.iterrows():
        direct = em.effect_size(
            "SMD",
            m1i=[row["mean_treat"]],
            sd1i=[row["sd_treat"]],
            n1i=[row["n_treat"]],
            m2i=[row["mean_control"]],
            sd2i=[row["sd_control"]],
            n2i=[row["n_control_reported"] / 2],
        )
        sign = -1.0 if row["direction_flipped"] else 1.0
        assert row["yi"] == pytest.approx(sign * direct["yi"].iloc[0], abs=1e-12)
        assert row["vi"] == pytest.approx(direct["vi"].iloc[0], abs=1e-12)
        assert row["n_control"] == pytest.approx(row["n_control_reported"] / 2)
    # Rows of other controls are untouched.
    others = subset["control_group_id"] != group
    pd.testing.assert_frame_equal(left[others], subset[others])
    # Through the spec's filters: every split control is divided among the rows that use it.
    filtered, _ = filter_comparisons(table, FiltersSection(min_quality_score=0.3))
    split = filtered[filtered["control_split_among"] > 1]
    using = filtered.groupby("control_group_id")["control_group_id"].transform("count")
    assert (split["control_split_among"] == using[split.index]).all()
    assert np.allclose(split["n_control"], split["n_control_reported"] / using[split.index])
    assert (
        table.groupby("control_group_id").size()
        > filtered.groupby("control_group_id")
        .size()
        .reindex(table["control_group_id"].unique(), fill_value=0)
    ).any()  # the filter did remove arms of some shared control
