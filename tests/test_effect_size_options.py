"""Effect-size options (issue 25 item 4): log odds ratios on the SMD scale (Hasselblad &
Hedges 1995 / Chinn 2000), RevMan 5's SMD, and Lajeunesse's (2015) bias-corrected ROM.

Reference values: tests/reference/effect_size_options.R on real published data (metafor's
dat.bcg, dat.normand1999, dat.curtis1998 and the CAR-T tumour volumes of tests/data/cart).
metafor 3.8.1 computes OR, OR2DL (the uncorrected conversion), SMD and ROM; the RevMan SMD
and the corrected ROM (metafor 5.0's ``correct = TRUE``, absent from 3.8.1) are R arithmetic
on the published formulas (Deeks & Higgins 2010; Lajeunesse 2015, Ecology 96:2056).
Tolerance 1e-10 relative throughout: the same closed forms in double precision, so only
rounding (about 1e-15) separates the two.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evmeta as em
from evmeta.analysis.spec import parse_spec
from evmeta.analysis.table import analysis_table
from evmeta.errors import EvmetaError, InputError, SpecError
from evmeta.harmonize.control_split import resplit_shared_controls
from evmeta.harmonize.effect_options import CONVERSION_LABEL, EffectOptions
from evmeta.harmonize.effects import hedges_correction
from evmeta.harmonize.or_to_smd import LOGISTIC_FACTOR, log_odds_ratio_to_smd, smd_to_log_odds_ratio
from evmeta.report.methods import methods_paragraph
from evmeta.results import AnalysisModels
from evmeta.run_tables import RunTables
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests/reference/effect_size_options.json").read_text())
RTOL = 1e-10  # same closed forms as the R script; rounding only


def _close(got, expected):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), rtol=RTOL)


# --- log odds ratio -> SMD, against metafor's escalc("OR2DL") and the formula in R ---------


def test_log_or_to_smd_matches_metafor_or2dl_on_bcg():
    b = REF["bcg"]
    lnor = em.effect_size(
        "OR", ai=b["events_treat"], n1i=b["total_treat"], ci=b["events_control"], n2i=b["total_control"]
    )
    _close(lnor["yi"], b["lnor_yi"])
    _close(lnor["vi"], b["lnor_vi"])
    plain = log_odds_ratio_to_smd(lnor["yi"], lnor["vi"])
    _close(plain["yi"], b["or2dl_yi"])
    _close(plain["vi"], b["or2dl_vi"])


@pytest.mark.parametrize("variant, key", [("exact", "corrected"), ("revman", "revman_corrected")])
def test_small_sample_corrected_conversion_matches_r(variant, key):
    b = REF["bcg"]
    out = log_odds_ratio_to_smd(
        b["lnor_yi"],
        b["lnor_vi"],
        n1i=b["total_treat"],
        n2i=b["total_control"],
        correct=True,
        variant=variant,
    )
    _close(out["yi"], b[f"{key}_yi"])
    _close(out["vi"], b[f"{key}_vi"])


def test_pooled_converted_bcg_matches_rma():
    """REML random effects on the converted BCG trials equal metafor's rma (1e-6: the tau²
    optimizers stop at different points of a flat likelihood, not the conversion)."""
    b = REF["bcg"]
    fit = em.meta_analysis(pd.DataFrame({"yi": b["or2dl_yi"], "vi": b["or2dl_vi"]}), method="REML", test="z")
    ref = b["rma_reml_or2dl"]
    np.testing.assert_allclose(fit.estimate, ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(fit.se, ref["se"], rtol=1e-6)
    np.testing.assert_allclose(fit.tau2, ref["tau2"], rtol=1e-5)


@given(
    st.lists(st.floats(-8, 8, allow_nan=False), min_size=2, max_size=20, unique=True),
    st.integers(3, 500),
    st.integers(3, 500),
)
@settings(max_examples=60, deadline=None)
def test_conversion_is_monotone_and_invertible(log_ors, n1, n2):
    """Strictly increasing in ln OR (with or without the positive factor J), zero at OR = 1,
    and smd_to_log_odds_ratio undoes it."""
    x = np.sort(np.asarray(log_ors))
    v = np.full(x.size, 0.3)
    for out in (
        log_odds_ratio_to_smd(x, v),
        log_odds_ratio_to_smd(x, v, n1i=n1, n2i=n2, correct=True),
        log_odds_ratio_to_smd(x, v, n1i=n1, n2i=n2, correct=True, variant="revman"),
    ):
        assert np.all(np.diff(out["yi"].to_numpy()) > 0)
        assert np.all(np.sign(out["yi"].to_numpy()) == np.sign(x))
    back = smd_to_log_odds_ratio(*log_odds_ratio_to_smd(x, v)[["yi", "vi"]].to_numpy().T)
    np.testing.assert_allclose(back["yi"], x, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(back["vi"], v, rtol=1e-12)
    assert LOGISTIC_FACTOR == pytest.approx(np.sqrt(3) / np.pi, rel=1e-15)


def test_conversion_refuses_what_it_cannot_do():
    with pytest.raises(InputError, match="needs n1i and n2i"):
        log_odds_ratio_to_smd([0.5], [0.1], correct=True)
    with pytest.raises(InputError, match="same length"):
        log_odds_ratio_to_smd([0.5, 0.2], [0.1])
    with pytest.raises(InputError, match="variant"):
        log_odds_ratio_to_smd([0.5], [0.1], n1i=5, n2i=5, correct=True, variant="cohen")
    # n1 + n2 - 2 <= 1: no correction factor, NaN rather than a number
    assert np.isnan(log_odds_ratio_to_smd([0.5], [0.1], n1i=1, n2i=2, correct=True)["yi"]).all()


# --- RevMan's SMD ---------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["normand1999", "cart_tumor_volume"])
def test_smd_variants_match_escalc_and_revman_formulas(dataset):
    d = REF[dataset]
    args = {k: d[k] for k in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")}
    exact = em.effect_size("SMD", **args)
    _close(exact["yi"], d["exact_yi"])
    _close(exact["vi"], d["exact_vi"])
    revman = em.effect_size("SMD", smd_variant="revman", **args)
    _close(revman["yi"], d["revman_yi"])
    _close(revman["vi"], d["revman_vi"])


@given(
    st.integers(2, 2000),
    st.integers(2, 2000),
    st.floats(-50, 50, allow_nan=False),
    st.floats(0.1, 20),
    st.floats(0.1, 20),
)
@settings(max_examples=100, deadline=None)
def test_revman_g_approaches_exact_g(n1, n2, diff, sd1, sd2):
    """The two corrections differ by less than 1/N² (relative; 0.27% at N = 6, 3e-8 at
    N = 1000), and the variances by the g²/(2(N - 3.94)) vs g²/(2N) term only."""
    args = dict(m1i=[diff], sd1i=[sd1], n1i=[n1], m2i=[0.0], sd2i=[sd2], n2i=[n2])
    e = em.effect_size("SMD", **args).iloc[0]
    r = em.effect_size("SMD", smd_variant="revman", **args).iloc[0]
    big_n = n1 + n2
    assert abs(r["yi"] - e["yi"]) <= abs(e["yi"]) / big_n**2 + 1e-15
    expected_vi = (1 / n1 + 1 / n2) + r["yi"] ** 2 / (2 * (big_n - 3.94))
    assert r["vi"] == pytest.approx(expected_vi, rel=1e-12)
    ratio = (1 - 3 / (4 * big_n - 9)) / float(hedges_correction(np.array([big_n - 2.0]))[0])
    assert r["yi"] == pytest.approx(e["yi"] * ratio, rel=1e-12, abs=1e-15)


def test_unknown_smd_variant_is_refused():
    with pytest.raises(InputError, match="smd_variant"):
        em.effect_size("SMD", m1i=[1], sd1i=[1], n1i=[5], m2i=[0], sd2i=[1], n2i=[5], smd_variant="glass")


# --- ROM bias correction ----------------------------------------------------------------------


def test_rom_default_is_uncorrected_and_correct_matches_lajeunesse_on_curtis():
    d = REF["curtis1998"]
    args = {k: d[k] for k in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")}
    plain = em.effect_size("ROM", **args)  # evmeta's default: metafor 3.8 behaviour
    _close(plain["yi"], d["rom_yi"])
    _close(plain["vi"], d["rom_vi"])
    corrected = em.effect_size("ROM", rom_correct=True, **args)
    _close(corrected["yi"], d["corrected_yi"])
    _close(corrected["vi"], d["corrected_vi"])
    # The correction matters on these data (2-48 plants per arm): 0.067 at most.
    assert 0.06 < np.abs(corrected["yi"] - plain["yi"]).max() < 0.07
    assert (corrected["vi"] >= plain["vi"]).all()


@given(st.floats(0.5, 100), st.floats(0.5, 100), st.floats(0.05, 0.8), st.integers(2, 10_000))
@settings(max_examples=60, deadline=None)
def test_rom_correction_vanishes_with_many_animals(m1, m2, cv, n):
    """The correction is O(1/n): it is (cv² - cv²)/2n = 0 for equal CVs and shrinks as n grows."""
    args = dict(m1i=[m1], sd1i=[cv * m1], n1i=[n], m2i=[m2], sd2i=[cv * m2], n2i=[n])
    plain = em.effect_size("ROM", **args).iloc[0]
    corrected = em.effect_size("ROM", rom_correct=True, **args).iloc[0]
    assert corrected["yi"] == pytest.approx(plain["yi"], rel=1e-12, abs=1e-12)
    assert corrected["vi"] - plain["vi"] == pytest.approx(cv**4 / n**2, rel=1e-9)


# --- in build_comparisons, the spec and the report --------------------------------------------


def _mixed(tmp_path):
    """Two experiments: one continuous (infarct volume), one binary (death) with two EV arms
    sharing one control."""
    arms = [
        {"arm_id": "C1", "experiment_id": "E1", "role": "vehicle_control"},
        {"arm_id": "V1", "experiment_id": "E1", "role": "ev", "prep_id": "P"},
        {"arm_id": "C2", "experiment_id": "E2", "role": "vehicle_control"},
        {"arm_id": "V2a", "experiment_id": "E2", "role": "ev", "prep_id": "P"},
        {"arm_id": "V2b", "experiment_id": "E2", "role": "ev", "prep_id": "P"},
    ]
    base = {"higher_is_better": "no", "timepoint": 1, "timepoint_unit": "days", "n": 8}
    outcomes = [
        {
            "outcome_id": "O-C1",
            "arm_id": "C1",
            "experiment_id": "E1",
            "outcome": "infarct volume",
            "mean": 40.0,
            "sd": 7.0,
        },
        {
            "outcome_id": "O-V1",
            "arm_id": "V1",
            "experiment_id": "E1",
            "outcome": "infarct volume",
            "mean": 25.0,
            "sd": 6.0,
        },
        {
            "outcome_id": "O-C2",
            "arm_id": "C2",
            "experiment_id": "E2",
            "outcome": "death",
            "events": 6,
            "total": 8,
        },
        {
            "outcome_id": "O-V2a",
            "arm_id": "V2a",
            "experiment_id": "E2",
            "outcome": "death",
            "events": 2,
            "total": 8,
        },
        {
            "outcome_id": "O-V2b",
            "arm_id": "V2b",
            "experiment_id": "E2",
            "outcome": "death",
            "events": 3,
            "total": 8,
        },
    ]
    folder = tmp_path / "mixed"
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
                {"experiment_id": e, "study_id": "S", "species": "rat", "disease_model": "MCAO"}
                for e in ("E1", "E2")
            ],
            "arms": arms,
            "outcomes": [{**base, **row} for row in outcomes],
            "risk_of_bias": [],
        },
    )
    return folder, em.read_extraction(folder)


def _converted(events_treat, total_treat, events_control, total_control):
    """By hand: -J(N - 2) ln(OR) sqrt(3)/pi (death: lower is better, so flipped)."""
    a, b = events_treat, total_treat - events_treat
    c, d = events_control, total_control - events_control
    j = float(hedges_correction(np.array([total_treat + total_control - 2.0]))[0])
    yi = -j * np.log(a * d / (b * c)) * np.sqrt(3) / np.pi
    vi = j**2 * (1 / a + 1 / b + 1 / c + 1 / d) * 3 / np.pi**2
    return yi, vi


def test_binary_comparisons_join_the_smd_table_when_asked(tmp_path):
    _, book = _mixed(tmp_path)
    without = em.build_comparisons(book, "SMD")
    assert list(without.table["comparison_id"]) == ["O-V1"]
    assert without.exclusions["reason"].str.contains("binary_to_smd").any()
    result = em.build_comparisons(
        book, "SMD", effect_options=EffectOptions(binary_to_smd="hasselblad_hedges")
    )
    table = result.table.set_index("comparison_id")
    assert sorted(table.index) == ["O-V1", "O-V2a", "O-V2b"]
    # The control of 6/8 is split between the two EV arms: 3 events of 4 animals each.
    for arm, events in [("O-V2a", 2), ("O-V2b", 3)]:
        yi, vi = _converted(events, 8, 3, 4)
        assert table.loc[arm, "yi"] == pytest.approx(yi, rel=1e-12)
        assert table.loc[arm, "vi"] == pytest.approx(vi, rel=1e-12)
        assert table.loc[arm, "effect_conversion"] == CONVERSION_LABEL
        assert table.loc[arm, "yi"] > 0  # fewer deaths with EVs is a benefit
    assert table.loc["O-V1", "effect_conversion"] == ""
    assert result.settings["effect_options"]["binary_to_smd"] == "hasselblad_hedges"
    # A filter leaving one EV arm gives it the whole control again, still converted.
    options = EffectOptions(binary_to_smd="hasselblad_hedges")
    alone = resplit_shared_controls(
        result.table[result.table["comparison_id"] == "O-V2a"].reset_index(drop=True), options
    )
    yi, vi = _converted(2, 8, 6, 8)
    assert alone.loc[0, "yi"] == pytest.approx(yi, rel=1e-12)
    assert alone.loc[0, "vi"] == pytest.approx(vi, rel=1e-12)


def _spec(folder, **comparisons):
    return parse_spec(
        {
            "analysis": {"name": "x", "extraction": str(folder)},
            "comparisons": {"measure": "SMD", **comparisons},
        }
    )


def test_spec_options_reach_the_table_and_the_provenance(tmp_path):
    folder, book = _mixed(tmp_path)
    spec = _spec(folder, smd_variant="revman", binary_to_smd="hasselblad_hedges")
    table = analysis_table(book, spec).table.set_index("comparison_id")
    revman = em.effect_size(
        "SMD", m1i=[25.0], sd1i=[6.0], n1i=[8], m2i=[40.0], sd2i=[7.0], n2i=[8], smd_variant="revman"
    )
    assert table.loc["O-V1", "yi"] == pytest.approx(-revman["yi"].iloc[0], rel=1e-12)
    n = 8 + 4
    j = 1 - 3 / (4 * n - 9)  # RevMan's factor on the converted comparisons too
    lnor = np.log(2 * 1 / (6 * 3))
    assert table.loc["O-V2a", "yi"] == pytest.approx(-j * lnor * np.sqrt(3) / np.pi, rel=1e-12)
    dumped = json.loads(spec.model_dump_json(exclude={"source"}))["comparisons"]  # as provenance.json
    assert dumped["smd_variant"] == "revman" and dumped["rom_correct"] is False
    defaults = parse_spec({"analysis": {"name": "x", "extraction": "e"}}).comparisons
    assert (defaults.smd_variant, defaults.rom_correct, defaults.binary_to_smd) == ("exact", False, "none")


@pytest.mark.parametrize(
    "key, value", [("smd_variant", "cohen"), ("binary_to_smd", "probit"), ("rom_correct", "maybe")]
)
def test_bad_option_values_name_the_key(key, value):
    with pytest.raises(SpecError, match=key):
        parse_spec({"analysis": {"name": "x", "extraction": "e"}, "comparisons": {key: value}})


def test_effect_options_validate():
    with pytest.raises(EvmetaError, match="binary_to_smd"):
        EffectOptions(binary_to_smd="chinn")
    with pytest.raises(EvmetaError, match="rom_correct"):
        EffectOptions(rom_correct="yes")
    assert EffectOptions().as_dict() == {
        "smd_variant": "exact",
        "rom_correct": False,
        "binary_to_smd": "none",
    }


def _methods(measure, table=None, **comparisons):
    spec = parse_spec(
        {"analysis": {"name": "x", "extraction": "e"}, "comparisons": {"measure": measure, **comparisons}}
    )
    data = pd.DataFrame({"yi": [0.5, 0.8, 1.1], "vi": [0.1, 0.2, 0.15], "measure": measure})
    main = em.meta_analysis(data)
    return methods_paragraph(
        SimpleNamespace(
            spec=spec,
            models=AnalysisModels(random_effects=main),
            tables=RunTables(analysis_table=data),
            notes=[],
            provenance={},
            comparisons=SimpleNamespace(table=table if table is not None else data),
        )
    )


def test_methods_state_the_rom_default_and_the_options():
    text = _methods("ROM")
    assert "without the small-sample bias correction" in text and "metafor" in text and "5.0" in text
    assert "with the small-sample bias correction and second-order variance" in _methods(
        "ROM", rom_correct=True
    )
    assert "RevMan 5" in _methods("SMD", smd_variant="revman")
    assert "exact small-sample correction" in _methods("SMD")
    converted = pd.DataFrame({"effect_conversion": [CONVERSION_LABEL, "", CONVERSION_LABEL]})
    text = _methods("SMD", converted, binary_to_smd="hasselblad_hedges")
    assert "2 comparisons with a binary outcome" in text and "logistic" in text
    assert "binary outcome" not in _methods("SMD")


@pytest.mark.slow
def test_run_records_the_options_and_the_methods_state_them(tmp_path):
    """evmeta run on the mixed extraction: converted comparisons in comparisons.csv, the
    options in provenance.json, the conversion and the SMD variant in the report's Methods
    (about 15 s; the fast versions are the spec, table and Methods tests above)."""
    folder, _ = _mixed(tmp_path)
    spec = tmp_path / "mixed.toml"
    spec.write_text(
        f'[analysis]\nname = "mixed"\nextraction = "{folder.as_posix()}"\n'
        '[comparisons]\nmeasure = "SMD"\nsmd_variant = "revman"\nbinary_to_smd = "hasselblad_hedges"\n'
        "[frequentist]\nsubgroups = []\nmultilevel = []\nrobust = false\n"
        "[bayesian]\nenabled = false\n[sensitivity]\nleave_one_out = false\nnmd_vs_smd = false\n"
        "low_risk_of_bias = false\n"
        '[figures]\nformats = ["svg"]\n'
    )
    run = em.run_analysis(spec, output=tmp_path / "out", quiet=True)
    table = pd.read_csv(run.output / "comparisons.csv", keep_default_na=False)
    assert (table["effect_conversion"] == CONVERSION_LABEL).sum() == 2
    provenance = json.loads((run.output / "provenance.json").read_text())
    assert provenance["spec"]["comparisons"]["binary_to_smd"] == "hasselblad_hedges"
    assert provenance["spec"]["comparisons"]["rom_correct"] is False
    html = (run.output / "report.html").read_text(encoding="utf-8")
    assert "2 comparisons with a binary outcome" in html and "RevMan 5" in html


def test_shared_control_covariance_of_converted_comparisons(tmp_path):
    """Kept (unsplit) control of 6/8 shared by two converted comparisons: g_i = f_i ln OR_i
    with f = J(8 + 8 - 2) sqrt(3)/pi, so Cov = f² (1/6 + 1/2), the OR covariance scaled
    (delta method, as the OR term itself); the diagonal is each comparison's vi."""
    from evmeta.harmonize.covariance import shared_control_covariance

    _, book = _mixed(tmp_path)
    options = EffectOptions(binary_to_smd="hasselblad_hedges")
    table = em.build_comparisons(book, "SMD", shared_control="keep", effect_options=options).table
    binary = table[table["effect_conversion"] != ""].reset_index(drop=True)
    V = shared_control_covariance(binary)
    f = float(hedges_correction(np.array([14.0]))[0]) * np.sqrt(3) / np.pi
    assert V[0, 1] == pytest.approx(f**2 * (1 / 6 + 1 / 2), rel=1e-12)
    np.testing.assert_allclose(np.diag(V), binary["vi"], rtol=1e-15)
    mixed = binary.assign(effect_conversion=[CONVERSION_LABEL, ""])
    with pytest.raises(InputError, match="not defined"):
        shared_control_covariance(mixed)


def test_harmonize_cli_takes_the_options(tmp_path):
    from typer.testing import CliRunner

    from evmeta.cli import app

    folder, _ = _mixed(tmp_path)
    out = tmp_path / "h" / "comparisons.csv"
    runner = CliRunner()
    args = ["harmonize", str(folder), "-o", str(out), "--measure", "SMD"]
    result = runner.invoke(app, [*args, "--binary-to-smd", "hasselblad_hedges", "--smd-variant", "revman"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, keep_default_na=False)
    assert (table["effect_conversion"] == CONVERSION_LABEL).sum() == 2
    bad = runner.invoke(app, [*args, "--binary-to-smd", "probit", "--force"])
    assert bad.exit_code == 2 and "binary_to_smd must be one of" in bad.output
