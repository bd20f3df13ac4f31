"""``[bias] mods`` in ``evmeta run`` (issue 27 item 2): the spec section, the stage
(:mod:`evmeta.analysis.bias_moderators_stage`), its two CSV files, the report's subsection and
the Methods sentence, and the notes the stage leaves when the data cannot support it."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.analysis.bias_moderators_stage import bias_moderators_stage
from evmeta.analysis.intervention import without_ev_checks
from evmeta.analysis.spec import load_spec, parse_spec
from evmeta.analysis.table import analysis_table
from evmeta.errors import SpecError
from evmeta.report.methods import bias_moderators_sentence
from evmeta.results import AnalysisModels
from tests.conftest import EXAMPLE, ROOT

OUTCOMES = '["serum creatinine", "infarct volume", "infarct size"]'
#: The example's comparisons with only what this module checks: no subgroups, multilevel or
#: Bayesian model, no sensitivity refits, SVG figures (the run takes seconds, not a minute).
FAST = (
    "[frequentist]\nsubgroups = []\nmultilevel = []\n[bayesian]\nenabled = false\n"
    "[sensitivity]\nleave_one_out = false\nlow_risk_of_bias = false\nnmd_vs_smd = false\n"
    '[figures]\nformats = ["svg"]\n[certainty]\nenabled = false\n'
)
SMALL_REVIEW = ROOT / "tests" / "data" / "small_review" / "extraction"
#: The same computation written to CSV and read back: only the decimal text of the floats
#: (pandas writes 17 significant digits) stands between them.
CSV_RTOL = 1e-12


def _spec(tmp_path: Path, bias: str, extraction: Path = EXAMPLE, name: str = "bias_mods") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[analysis]\nname = "{name}"\nextraction = "{extraction}"\n'
        f"[comparisons]\noutcomes = {OUTCOMES}\n"
        '[moderators]\nisolation_method = "UC"\n' + FAST + f"[bias]\n{bias}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bias_mods")
    spec = _spec(folder, 'mods = "~ isolation_method"')
    return em.run_analysis(spec, output=folder / "out", quiet=True), spec


def test_the_run_writes_both_files_and_keeps_the_typed_result(example_run):
    run, _ = example_run
    fit = run.models.bias_moderators
    assert fit is not None, run.notes
    assert fit.moderators == ("isolation_method",) and fit.cluster is None
    assert len(fit.models) == 32  # 16 models x the moderator in or out
    names = {Path(f).name for f in run.files}
    assert {"bias_moderators.csv", "bias_marginal_means.csv"} <= names
    for name in ("bias_moderators.csv", "bias_marginal_means.csv"):
        assert (run.output / name).exists()
    # The run's default ensemble is still there, and results.csv is unchanged by the new model.
    assert "default" in run.models.bias_averaging
    results = pd.read_csv(run.output / "results.csv")
    assert not results["model"].str.startswith("bias").any()


def test_the_files_hold_a_direct_call_on_the_same_table(example_run):
    run, spec = example_run
    built = analysis_table(em.read_extraction(EXAMPLE), load_spec(spec))
    direct = em.models.bias_model_averaging(built.table, mods="~ isolation_method")
    factors = pd.read_csv(run.output / "bias_moderators.csv").set_index("term")
    assert list(factors.index) == ["effect", "heterogeneity", "bias", "isolation_method"]
    for term, value in direct.inclusion_bf.items():
        np.testing.assert_allclose(factors.loc[term, "inclusion_bf"], value, rtol=CSV_RTOL)
    assert (factors["k"] == direct.k).all() and direct.k == run.models.main.k
    means = pd.read_csv(run.output / "bias_marginal_means.csv").set_index("isolation_method")
    expected = direct.marginal_means
    assert list(means.index) == list(expected.index)
    for column in ("k", "estimate", "posterior_sd", "ci_low", "ci_high"):
        np.testing.assert_allclose(means[column], expected[column], rtol=CSV_RTOL, err_msg=column)
    assert (means["credible_level"] == 0.95).all()


def test_the_report_shows_the_subsection_with_its_level(example_run):
    run, _ = example_run
    html = (run.output / "report.html").read_text(encoding="utf-8")
    start = html.index('id="bias-moderators"')
    section = html[start : html.index("</ul>", start) if "</ul>" in html[start:] else None]
    section = section[: section.find("<figure")] if "<figure" in section else section
    assert "The ensemble was refitted with isolation method as a moderator:" in section
    for heading in ("95% CrI low", "95% CrI high", "inclusion BF₁₀", "bias-adjusted mean"):
        assert f"<th>{heading}</th>" in section, heading
    for component in ("effect", "heterogeneity", "publication bias", "isolation method"):
        assert f"<td>{component}</td>" in section, component
    # Vocabulary values in words: "precipitation" and the isolation codes as the field writes them.
    assert "<td>TFF+SEC</td>" in section and "<td>precipitation</td>" in section
    # The Methods sentence: which moderator, which priors; no selection-model caveat without cluster.
    methods = re.search(r"Isolation method was put into the Bayesian model-averaged.*?\.(?= [A-Z])", html)
    assert methods is not None
    assert "standard deviation 0.25" in html and "inverse-gamma prior with shape 1 and scale 0.15" in html
    assert "left out of this multilevel ensemble" not in html
    assert "Robust Bayesian meta-regression" in html  # its reference


@pytest.mark.parametrize(
    ("bias", "message"),
    [
        ('mod = "~ isolation_method"', "unknown key 'bias.mod'; valid keys in [bias]: mods, cluster"),
        ('mods = "~ isolaton_method"', "bias.mods: 'isolaton_method' is not a column of the comparisons table; did you mean 'isolation_method'?"),
        ('mods = "~ isolation_method * quality_score"', "bias.mods: '~ isolation_method * quality_score': the bias ensemble takes a sum of distinct column names"),
        ('mods = "~ isolation_method"\ncluster = "studyid"', "bias.cluster: 'studyid' is not a column of the comparisons table; did you mean 'study_id'?"),
        ('cluster = "study_id"', "bias: cluster is set without mods"),
    ],
)  # fmt: skip
def test_a_bad_bias_section_is_a_spec_error_naming_the_key(tmp_path, bias, message):
    with pytest.raises(SpecError) as caught:
        load_spec(_spec(tmp_path, bias))
    assert message in str(caught.value)


def test_the_section_reads_a_formula_without_tilde_and_blank_as_unset():
    base = {"analysis": {"name": "x", "extraction": "e.xlsx"}}
    spec = parse_spec({**base, "bias": {"mods": "isolation_method+quality_score", "cluster": "study_id"}})
    assert (spec.bias.mods, spec.bias.cluster) == ("~ isolation_method + quality_score", "study_id")
    assert parse_spec({**base, "bias": {"mods": "  "}}).bias.mods is None
    assert parse_spec(base).bias.mods is None  # default: not set


def test_five_studies_with_one_comparison_per_level_give_notes_not_a_traceback(tmp_path):
    """The five-study review (tests/data/small_review): k of a few, precipitation on one
    comparison. The ensemble is fitted and the level resting on one comparison is named in
    the notes and the report."""
    spec = _spec(tmp_path, 'mods = "~ isolation_method"', SMALL_REVIEW, "small")
    run = em.run_analysis(spec, output=tmp_path / "out", quiet=True)
    fit = run.models.bias_moderators
    assert fit is not None and 2 <= fit.k <= 10, run.notes
    notes = " ".join(run.notes)
    single = fit.marginal_means.index[fit.marginal_means["k"] == 1]
    assert len(single), fit.marginal_means  # precipitation: one comparison
    assert "rest on one comparison" in notes
    html = (run.output / "report.html").read_text(encoding="utf-8")
    assert "rests on one comparison and leans on that prior" in html
    assert "Traceback" not in html


def _stage_run(tmp_path: Path, table: pd.DataFrame, bias: dict) -> SimpleNamespace:
    spec = parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, "bias": bias})
    main = em.meta_analysis(table)
    return SimpleNamespace(
        spec=spec, models=AnalysisModels(random_effects=main), notes=[], files=[], output=tmp_path
    )


TINY = pd.DataFrame(
    {
        "yi": [0.9, 0.2, 1.4],
        "vi": [0.21, 0.30, 0.26],
        "isolation_method": ["UC", "SEC", "precipitation"],
        "quality_score": [0.5, 0.5, 0.5],
        "species": ["rat", "mouse", "rat"],
        "study_id": ["A", "B", "C"],
    }
)


def test_k3_cases_end_in_a_note(tmp_path):
    # Three comparisons, one per level: fitted, with the caveat naming the levels.
    run = _stage_run(tmp_path, TINY, {"mods": "~ isolation_method"})
    bias_moderators_stage(run, TINY)
    assert run.models.bias_moderators is not None and run.models.bias_moderators.k == 3
    assert any("rest on one comparison" in note for note in run.notes)
    assert (tmp_path / "bias_marginal_means.csv").exists()
    # A constant moderator: left out, and nothing else to fit.
    run = _stage_run(tmp_path, TINY, {"mods": "~ quality_score"})
    bias_moderators_stage(run, TINY)
    assert run.models.bias_moderators is None
    assert "moderator 'quality_score' left out, because every comparison has the same value" in run.notes[0]
    assert "not fitted, because none of its moderators varies" in run.notes[1]
    # Two categorical moderators: the model's refusal becomes a note.
    run = _stage_run(tmp_path, TINY, {"mods": "~ isolation_method + species"})
    bias_moderators_stage(run, TINY)
    assert run.models.bias_moderators is None
    assert len(run.notes) == 1
    assert run.notes[0].startswith(
        "bias model averaging with moderators: not fitted (the bias ensemble takes"
    )
    # A moderator missing in a row: that comparison is left out, counted (k = 2 is fitted).
    gappy = TINY.assign(isolation_method=["UC", None, "SEC"])
    run = _stage_run(tmp_path, gappy, {"mods": "~ isolation_method"})
    bias_moderators_stage(run, gappy)
    assert run.models.bias_moderators is not None and run.models.bias_moderators.k == 2
    assert "fitted on 2 of 3 comparisons; 1 have no value for 'isolation_method'" in run.notes[0]
    # ... and when the rows left have one level only, a note says so.
    gappy = TINY.assign(isolation_method=["UC", "SEC", None], species=[None, "rat", "rat"])
    run = _stage_run(tmp_path, gappy, {"mods": "~ isolation_method", "cluster": "species"})
    bias_moderators_stage(run, gappy)
    assert run.models.bias_moderators is None
    assert "fitted on 1 of 3 comparisons; 2 have no value for 'isolation_method', 'species'" in run.notes[0]
    assert "left out, because every comparison has the same value ('SEC')" in run.notes[1]
    # A column the comparisons do not have (the spec accepts every extraction column).
    run = _stage_run(tmp_path, TINY.drop(columns="species"), {"mods": "~ species"})
    bias_moderators_stage(run, TINY.drop(columns="species"))
    assert run.notes == [
        "bias model averaging with moderators: not fitted, because the comparisons have no column "
        "'species' (named in [bias])."
    ]


def test_multilevel_ensemble_methods_say_selection_models_are_left_out(tmp_path):
    table = pd.concat([TINY, TINY.assign(yi=TINY["yi"] - 0.3, vi=TINY["vi"] + 0.05)], ignore_index=True)
    run = _stage_run(tmp_path, table, {"mods": "~ isolation_method", "cluster": "study_id"})
    bias_moderators_stage(run, table)
    fit = run.models.bias_moderators
    assert (
        fit is not None and fit.cluster == "study_id" and set(fit.models["bias"]) == {"none", "pet", "peese"}
    )
    assert any("step-selection models are left out" in note for note in run.notes)
    sentence = bias_moderators_sentence(run)
    assert sentence.startswith("Isolation method was put into the Bayesian model-averaged publication-bias")
    assert "as a moderator" in sentence and "no bias, PET or PEESE" in sentence
    assert "step-selection models were left out of this multilevel ensemble" in sentence
    assert "relative publication probability" not in sentence  # no selection model, no weight prior


def test_a_table_of_another_intervention_drops_the_ev_moderators_with_a_note():
    spec = parse_spec(
        {"analysis": {"name": "x", "extraction": "e.xlsx"}, "bias": {"mods": "~ isolation_method + species"}}
    )
    preparations = pd.DataFrame({"preparation_kind": ["non_ev"]})
    changed, notes = without_ev_checks(spec, preparations)
    assert changed.bias.mods == "~ species"
    assert (
        "bias model averaging with moderators: moderator(s) 'isolation_method' left out, because"
        in " ".join(notes)
    )
    only_ev = parse_spec(
        {"analysis": {"name": "x", "extraction": "e.xlsx"}, "bias": {"mods": "~ quality_score"}}
    )
    changed, notes = without_ev_checks(only_ev, preparations)
    assert changed.bias.mods is None
    assert any(
        n.startswith("bias model averaging with moderators: not fitted, because its moderator(s)")
        for n in notes
    )


@pytest.mark.slow
def test_the_issues_formula_with_a_numeric_moderator_runs_and_matches_a_direct_call(tmp_path):
    """``mods = "~ isolation_method + quality_score"`` (the issue's example): 64 models, the
    numeric slope integrated by adaptive Gauss-Hermite in the selection models (seconds)."""
    spec = _spec(tmp_path, 'mods = "~ isolation_method + quality_score"')
    run = em.run_analysis(spec, output=tmp_path / "out", quiet=True)
    fit = run.models.bias_moderators
    assert fit is not None, run.notes
    assert fit.moderators == ("isolation_method", "quality_score") and len(fit.models) == 64
    assert fit.models["quadrature_error"].max() < 1e-4
    direct = em.models.bias_model_averaging(run.tables.pooled, mods="~ isolation_method + quality_score")
    factors = pd.read_csv(run.output / "bias_moderators.csv").set_index("term")
    assert list(factors.index) == ["effect", "heterogeneity", "bias", "isolation_method", "quality_score"]
    for term, value in direct.inclusion_bf.items():
        np.testing.assert_allclose(factors.loc[term, "inclusion_bf"], value, rtol=CSV_RTOL)
    assert any("adaptive Gauss-Hermite" in note for note in run.notes)
