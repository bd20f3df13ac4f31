"""End to end (issue 25 item 2): a real published preclinical table with the review's own
moderator columns -> ``evmeta import-wide`` with a map that keeps them -> ``evmeta run``
of a spec with the published subgroups, through the command line only (no script between
the two). The table is Ripley et al. 2021 (remote ischemic conditioning in rodent stroke,
tests/data/ric/PROVENANCE.md): it has no risk-of-bias columns (the authors' own analysis
notes "information on randomisation and blinding is not in the data"). A second real table,
Lagisz et al. 2020 (judgement bias in animals, tests/data/judgement_bias/PROVENANCE.md), has
a blinding column (SYRCLE item 7) beside its moderators: imported as risk of bias, it draws
the RoB figure and is a subgroup of the run. The simulated table of
tests/test_wide_import_columns.py has all three items of the low-risk sensitivity analysis.

Reference: metafor 3.8.1, tests/reference/ric_subgroups.R (escalc on the table, REML per
subgroup level, z tests). Tolerance 1e-6 on estimates and SEs: the same closed-form yi/vi
and REML optimised to 1e-12 in R, evmeta's optimiser to its default convergence.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT

RIC = ROOT / "tests/data/ric/ric_infarct_volume_wide.csv"
RIC_MAP = ROOT / "extraction/maps/ric_infarct_volume.toml"
REFERENCE = json.loads((ROOT / "tests/reference/ric_subgroups.json").read_text())
SUBGROUPS = ["species", "stroke_type", "conditioning", "ric_type"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evmeta.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ric_run")
    book = folder / "ric.xlsx"
    imported = _cli("import-wide", str(RIC), "--map", str(RIC_MAP), "-o", str(book))
    assert imported.returncode == 0, imported.stderr
    spec = folder / "ric.toml"
    spec.write_text(
        f"""[analysis]
name = "ric"
title = "Remote ischemic conditioning in rodent stroke (Ripley et al. 2021)"
extraction = "{book.as_posix()}"

[comparisons]
measure = "SMD"

[frequentist]
method = "REML"
test = "z"
subgroups = {json.dumps(SUBGROUPS)}
meta_regression = "~ stroke_type"
multilevel = []
robust = false

[figures]
formats = ["svg"]
forest_by = "conditioning"  # an imported moderator, known only to the comparisons table
"""
    )
    out = folder / "out"
    done = _cli("run", str(spec), "-o", str(out))
    assert done.returncode == 0, done.stderr + done.stdout
    return imported.stdout, done.stdout + done.stderr, out


def test_import_keeps_the_moderators_and_lists_the_other_columns(run):
    imported, _, out = run
    assert "102 comparisons from 65 studies imported" in imported
    assert "conditioning (categorical)" in imported and "ric_occlusion_min (numeric)" in imported
    assert "27 table column(s) not imported (not in the map): Ref.vol, Comments" in imported
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert comparisons["conditioning"].value_counts().to_dict() == {
        "Postconditioning": 67,
        "Preconditioning": 34,
        "Perconditioning": 1,
    }


def test_forest_is_grouped_by_an_imported_moderator(run):
    _, _, out = run
    pages = "".join(p.read_text(encoding="utf-8") for p in sorted(out.glob("forest*.svg")))
    for level in ["Postconditioning", "Preconditioning", "Perconditioning"]:
        assert level in pages, level
    assert "forest plot: drawn without subgroups" not in (out / "report.html").read_text(encoding="utf-8")


def test_published_subgroups_match_metafor(run):
    _, _, out = run
    results = pd.read_csv(out / "results.csv")
    overall = results[results["model"] == "random_effects"].iloc[0]
    assert overall["k"] == REFERENCE["overall"]["k"] == 102
    assert overall["estimate"] == pytest.approx(-REFERENCE["overall"]["estimate"], abs=1e-6)
    checked = 0
    for by in SUBGROUPS:
        rows = results[results["model"] == f"subgroup:{by}"].set_index("term")
        for level, ref in REFERENCE["subgroups"][by].items():
            term = f"{by} = {level}"
            if ref["k"] < 2:
                continue  # one comparison: no pooled estimate to compare
            assert rows.loc[term, "k"] == ref["k"], term
            assert rows.loc[term, "estimate"] == pytest.approx(-ref["estimate"], abs=1e-6), term
            assert rows.loc[term, "se"] == pytest.approx(ref["se"], abs=1e-6), term
            checked += 1
    assert checked == 10  # 2 species, 2 stroke types, 2 conditioning timings, 4 RIC types


def test_meta_regression_on_a_moderator_matches_metafor(run):
    _, _, out = run
    results = pd.read_csv(out / "results.csv")
    reg = results[results["model"] == "meta_regression"].set_index("term")
    ref = REFERENCE["meta_regression_stroke_type"]
    slope = reg.loc[next(t for t in reg.index if t.startswith("stroke_type"))]
    assert slope["estimate"] == pytest.approx(-ref["slope"], abs=1e-6)
    assert slope["se"] == pytest.approx(ref["se_slope"], abs=1e-6)


@pytest.fixture(scope="module")
def rob_run(tmp_path_factory):
    """The simulated table of tests/test_wide_import_columns.py, whose SYRCLE columns are
    imported by the map, run with the low-risk-of-bias sensitivity analysis."""
    from tests.test_wide_import_columns import SIMULATED, SIMULATED_MAP

    folder = tmp_path_factory.mktemp("rob_run")
    (folder / "t.csv").write_text(SIMULATED)
    (folder / "m.toml").write_text(SIMULATED_MAP)
    imported = _cli(
        "import-wide", str(folder / "t.csv"), "--map", str(folder / "m.toml"), "-o", str(folder / "b.xlsx")
    )
    assert imported.returncode == 0, imported.stderr
    (folder / "s.toml").write_text(
        f"""[analysis]
name = "rob"
extraction = "{(folder / "b.xlsx").as_posix()}"

[frequentist]
method = "DL"
subgroups = ["drug_class"]
meta_regression = "~ drug_class"
multilevel = []
robust = false

[sensitivity]
low_risk_of_bias = true
leave_one_out = false
nmd_vs_smd = false

[figures]
formats = ["svg"]
"""
    )
    done = _cli("run", str(folder / "s.toml"), "-o", str(folder / "out"))
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout + done.stderr, folder / "out"


def test_imported_risk_of_bias_feeds_the_figure_and_the_sensitivity_analysis(rob_run):
    console, out = rob_run
    assert "no risk-of-bias judgements are entered" not in console
    assert (out / "risk_of_bias.svg").stat().st_size > 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "low risk on randomization and blinding" in html
    comparisons = pd.read_csv(out / "comparisons.csv")
    # S1 (Y/Y/yes, two comparisons) and S3 (Low x3) are at low risk; S2 (N/?/No) is not.
    low = comparisons.groupby("study_id")["rob_low_randomization_blinding"].all().to_dict()
    assert low == {"S1": True, "S2": False, "S3": True}
    results = pd.read_csv(out / "results.csv")
    # S1's two comparisons (one drug class) have identical effect sizes: Knapp-Hartung's scale
    # is roundoff there (it gave an SE of ~1e-16), so the subgroups are a note, not a result.
    assert not (results["model"] == "subgroup:drug_class").any()
    assert "subgroups by drug_class: not fitted (Knapp-Hartung needs residual variation" in " ".join(
        console.split()
    )


JUDGEMENT_BIAS = ROOT / "tests/data/judgement_bias/lagisz2020.csv"
JUDGEMENT_BIAS_MAP = ROOT / "extraction/maps/lagisz2020_judgement_bias.toml"


@pytest.fixture(scope="module")
def blinding_run(tmp_path_factory):
    """Lagisz et al. 2020: a real table with a risk-of-bias column (blinding) and the review's
    moderators, imported and run with its published moderators as subgroups."""
    folder = tmp_path_factory.mktemp("jb_run")
    book = folder / "jb.xlsx"
    imported = _cli("import-wide", str(JUDGEMENT_BIAS), "--map", str(JUDGEMENT_BIAS_MAP), "-o", str(book))
    assert imported.returncode == 0, imported.stderr
    (folder / "jb.toml").write_text(
        f"""[analysis]
name = "judgement_bias"
extraction = "{book.as_posix()}"

[comparisons]
measure = "SMD"
outcomes = ["proportion"]
shared_control = "split"

[frequentist]
method = "REML"
test = "z"
subgroups = ["rob_blinding_assessor", "affect_manipulation", "taxa"]
meta_regression = "~ affect_manipulation"
multilevel = []
robust = false

[figures]
formats = ["svg"]
"""
    )
    done = _cli("run", str(folder / "jb.toml"), "-o", str(folder / "out"))
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout + done.stderr, folder / "out"


def test_real_table_with_blinding_runs_with_its_published_subgroups(blinding_run):
    console, out = blinding_run
    ref = json.loads((ROOT / "tests/reference/judgement_bias_blinding.json").read_text())
    assert "no risk-of-bias judgements are entered" not in console
    assert (out / "risk_of_bias.svg").stat().st_size > 0
    results = pd.read_csv(out / "results.csv")
    overall = results[results["model"] == "random_effects"].iloc[0]
    assert overall["k"] == ref["k"] == 258
    ref = ref["split"]  # evmeta run divides a shared control among its comparisons, as R does here
    assert ref["shared"] == 54
    assert overall["estimate"] == pytest.approx(ref["overall"]["estimate"], abs=1e-6)
    names = {
        "rob_blinding_assessor": "rob_blinding_assessor",
        "AffectManipCat": "affect_manipulation",
        "Taxa": "taxa",
    }
    for column, name in names.items():
        rows = results[results["model"] == f"subgroup:{name}"].set_index("term")
        for level, expected in ref["subgroups"][column].items():
            term = f"{name} = {level}"
            assert rows.loc[term, "k"] == expected["k"], term
            assert rows.loc[term, "estimate"] == pytest.approx(expected["estimate"], abs=1e-6), term
            assert rows.loc[term, "se"] == pytest.approx(expected["se"], abs=1e-6), term
