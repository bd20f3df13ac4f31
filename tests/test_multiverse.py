"""Multiverse analysis: spec section, plan and skip rules, each fit against the public API,
the Dask run against the serial run, the null test, the summary rules, figure and CLI.

Tolerances: a specification must reproduce a direct call of the public model functions on
the same table exactly (1e-12: same code path, same arithmetic); Dask and serial runs must
be identical to the last bit (the design promises identical results whatever the workers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import evmeta as em
from evmeta.analysis.multiverse import make_batches, run_multiverse
from evmeta.analysis.multiverse.fit import apply_filters, outlier_threshold
from evmeta.analysis.multiverse.null import null_test, resample_rows, study_draws
from evmeta.analysis.multiverse.outliers import VECTORIZED, studentized_deleted_residuals
from evmeta.analysis.multiverse.plan import plan, spec_hash
from evmeta.analysis.multiverse.summary import choice_influence, curve_summary, summary_sentences
from evmeta.analysis.spec import load_spec, parse_spec
from evmeta.cli import app
from evmeta.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
EXTRACTION = ROOT / "extraction" / "example.xlsx"
OUTCOMES = ["serum creatinine", "infarct volume", "infarct size"]
MULTIVERSE = """
[multiverse]
"comparisons.measure" = ["SMD", "ROM"]
"frequentist.method" = ["REML", "DL"]
outliers = ["none", "studentized_residual_gt_2.5"]
model = ["random_effects", "three_level", "bayes_quadrature"]
"""
EXACT = 1e-12
RESULT_COLUMNS = [
    "spec_id",
    "k",
    "estimate",
    "ci_low",
    "ci_high",
    "p",
    "tau2",
    "i2",
    "fingerprint",
    "status",
    "reason",
]


def write_spec(folder: Path, multiverse: str = MULTIVERSE, options: str = "") -> Path:
    path = folder / "mv.toml"
    path.write_text(
        f"""
[analysis]
name = "mv"
extraction = "{EXTRACTION.as_posix()}"
[comparisons]
measure = "SMD"
outcomes = {OUTCOMES!r}
[filters]
min_quality_score = 0.3
[bayesian]
random = ["study_id", "experiment_id"]
[bayesian.priors]
tau = "halfnormal(2)"
{multiverse}
[multiverse.options]
seed = 7
{options}
""",
        encoding="utf-8",
    )
    return path


def spec_filters(table: pd.DataFrame) -> pd.DataFrame:
    """The test spec's [filters] (min_quality_score = 0.3), shared controls re-divided among
    the comparisons left, as evmeta run does."""
    from evmeta.analysis.spec import FiltersSection
    from evmeta.analysis.table import filter_comparisons

    return filter_comparisons(table, FiltersSection(min_quality_score=0.3))[0]


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory) -> Path:
    return write_spec(tmp_path_factory.mktemp("mv"))


@pytest.fixture(scope="module")
def serial(spec_path, tmp_path_factory):
    return run_multiverse(spec_path, output=tmp_path_factory.mktemp("serial"), scheduler="serial", quiet=True)


@pytest.fixture(scope="module")
def book():
    return em.read_extraction(EXTRACTION)


# --- spec section -------------------------------------------------------------------------
def test_section_parses_dotted_keys_and_options(spec_path):
    section = load_spec(spec_path).multiverse
    assert section.choices == {
        "comparisons.measure": ["SMD", "ROM"],
        "frequentist.method": ["REML", "DL"],
    }
    assert section.outliers == ["none", "studentized_residual_gt_2.5"]
    assert section.options.seed == 7 and section.options.min_k == 3


@pytest.mark.parametrize(
    ("multiverse", "message"),
    [
        (
            '[multiverse]\n"figures.width" = ["single"]',
            "'figures.width' is not a spec key the multiverse can cross",
        ),
        (
            '[multiverse]\n"comparisons.measure" = ["SMD", "XYZ"]',
            "'comparisons.measure': value 'XYZ' is not valid",
        ),
        ('[multiverse]\n"frequentist.method" = []', "needs a non-empty list"),
        ('[multiverse]\n"frequentist.method" = ["DL", "DL"]', "values repeat"),
        ('[multiverse]\noutliers = ["cook_d_gt_1"]', "outlier rule 'cook_d_gt_1' is not allowed"),
        ('[multiverse]\nmodel = ["random_effects", "nuts"]', "multiverse.model.1: 'nuts' is not allowed"),
    ],
)
def test_bad_choices_name_the_key(tmp_path, multiverse, message):
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_spec(write_spec(tmp_path, multiverse))


def test_example_spec_without_multiverse_is_refused(tmp_path):
    with pytest.raises(SpecError, match="no \\[multiverse\\] section"):
        run_multiverse(ROOT / "analyses" / "example.toml", output=tmp_path, scheduler="serial", quiet=True)


def test_example_multiverse_spec_is_valid():
    spec = load_spec(ROOT / "analyses" / "example_multiverse.toml")
    assert len(plan(spec)) == 3 * 2 * 2 * 3 * 3 * 2 * 2 * 3


# --- plan ---------------------------------------------------------------------------------
def test_plan_crosses_every_choice_and_skips_with_reasons(spec_path):
    specs = plan(load_spec(spec_path))
    assert len(specs) == 2 * 2 * 2 * 3
    assert [s.spec_id for s in specs] == list(range(1, 25))
    by_id = {s.spec_id: s for s in specs}
    three_dl = [s for s in specs if s.model == "three_level" and s.settings["frequentist.method"] == "DL"]
    assert three_dl and all(s.status == "skipped" and "REML or ML only" in s.reason for s in three_dl)
    bayes_dl = [
        s for s in specs if s.model == "bayes_quadrature" and s.settings["frequentist.method"] == "DL"
    ]
    for item in bayes_dl:
        twin = by_id[int(item.reason.split("specification ")[1].split(":")[0])]
        assert twin.status == "planned" and twin.model == "bayes_quadrature"
        assert twin.settings["frequentist.method"] == "REML"
        assert {k: v for k, v in twin.choices.items() if k != "frequentist.method"} == {
            k: v for k, v in item.choices.items() if k != "frequentist.method"
        }
    assert sum(s.status == "planned" for s in specs) == 24 - 4 - 4


def test_shared_control_keep_fits_three_level_with_the_covariance(tmp_path, book):
    """Under shared_control = "keep", comparisons sharing a control are correlated: the
    three-level model takes their sampling covariance (rma.mv's V); the univariate models and
    the univariate outlier rule are skipped, each with its reason."""
    from evmeta.models import multilevel_meta_analysis

    multiverse = """
[multiverse]
"comparisons.shared_control" = ["split", "keep"]
outliers = ["none", "studentized_residual_gt_2.5"]
model = ["random_effects", "three_level", "bayes_quadrature"]
"""
    spec = load_spec(write_spec(tmp_path, multiverse))
    assert all(item.status == "planned" for item in plan(spec))  # decided per table, when fitted
    rows = run_multiverse(spec.source, output=tmp_path / "out", scheduler="serial", quiet=True).results
    keep = rows[rows["comparisons.shared_control"] == "keep"].set_index(["model", "outliers"])
    assert (keep["status"] == "skipped").sum() == 5
    for model in ("random_effects", "bayes_quadrature"):
        assert "independent sampling errors" in keep.loc[(model, "none"), "reason"]
    assert "univariate" in keep.loc[("three_level", "studentized_residual_gt_2.5"), "reason"]
    row = keep.loc[("three_level", "none")]
    assert row["status"] == "ok"

    table = em.build_comparisons(book, "SMD", outcome=OUTCOMES, shared_control="keep").table
    table = spec_filters(table)
    assert table["control_group_id"].duplicated().any()  # the example does share controls
    V = em.harmonize.shared_control_covariance(table)
    fit = multilevel_meta_analysis(table, random=["study_id", "experiment_id"], test="t", V=V)
    assert row["k"] == len(table)
    assert row["estimate"] == pytest.approx(fit.estimate, abs=EXACT)
    assert row["ci_low"] == pytest.approx(fit.ci_low, abs=EXACT)
    assert row["tau2"] == pytest.approx(float(np.sum(fit.sigma2)), abs=EXACT)
    # The covariance matters: ignoring it gives another answer.
    naive = multilevel_meta_analysis(table, random=["study_id", "experiment_id"], test="t")
    assert abs(naive.estimate - fit.estimate) > 1e-6
    split = rows[(rows["comparisons.shared_control"] == "split") & (rows["status"] == "ok")]
    assert len(split) == 6  # every split specification is fitted


def test_spec_hash_ignores_key_order():
    assert spec_hash({"a": 1, "b": [1, 2]}) == spec_hash({"b": [1, 2], "a": 1})
    assert spec_hash({"a": 1}) != spec_hash({"a": 2})


def test_batches_share_one_table_and_cover_every_spec(spec_path):
    specs = [s for s in plan(load_spec(spec_path)) if s.status == "planned"]
    for workers, size in [(1, None), (8, None), (2, 3)]:
        batches = make_batches(specs, workers, size)
        assert sorted(s.spec_id for _, b in batches for s in b) == sorted(s.spec_id for s in specs)
        assert all(len({s.build_key for s in b}) == 1 and key == b[0].build_key for key, b in batches)
        if size:
            assert max(len(b) for _, b in batches) <= size


# --- each specification against the public API --------------------------------------------
def test_random_effects_rows_equal_direct_fits(serial, book):
    from evmeta.models import meta_analysis

    rows = serial.results[(serial.results["model"] == "random_effects") & (serial.results["status"] == "ok")]
    assert len(rows) == 8
    tables = {m: em.build_comparisons(book, m, outcome=OUTCOMES).table for m in ("SMD", "ROM")}
    for row in rows.to_dict("records"):
        table = tables[row["comparisons.measure"]]
        table = spec_filters(table)
        if row["outliers"] != "none":
            first = meta_analysis(table, method="REML", test="knha")  # the spec's [frequentist]
            table = table[~(first.influence()["rstudent"].abs() > 2.5).to_numpy()].reset_index(drop=True)
        fit = meta_analysis(table, method=row["frequentist.method"], test="knha")
        assert row["k"] == fit.k
        for name, theirs in [("estimate", fit.estimate), ("ci_low", fit.ci_low), ("p", fit.pvalue)]:
            assert row[name] == pytest.approx(theirs, abs=EXACT)
        assert row["tau2"] == pytest.approx(fit.tau2, abs=EXACT)
        assert row["i2"] == pytest.approx(fit.i2, abs=EXACT)


def test_three_level_and_bayes_rows_equal_direct_fits(serial, book):
    from evmeta.models import bayesian_meta_analysis, multilevel_meta_analysis

    table = em.build_comparisons(book, "SMD", outcome=OUTCOMES).table
    table = spec_filters(table)
    r = serial.results
    base = (r["comparisons.measure"] == "SMD") & (r["outliers"] == "none")
    row = r[base & (r["model"] == "three_level") & (r["frequentist.method"] == "REML")].iloc[0]
    fit = multilevel_meta_analysis(table, random=["study_id", "experiment_id"], test="t")
    assert row["estimate"] == pytest.approx(fit.estimate, abs=EXACT)
    assert row["ci_high"] == pytest.approx(fit.ci_high, abs=EXACT)
    assert row["tau2"] == pytest.approx(float(np.sum(fit.sigma2)), abs=EXACT)
    row = r[base & (r["model"] == "bayes_quadrature") & (r["status"] == "ok")].iloc[0]
    bfit = bayesian_meta_analysis(
        table,
        random=["study_id", "experiment_id"],
        priors={"tau": "halfnormal(2)"},
        method="quadrature",
        draws=1000,
        chains=1,
        seed=1,
        progress=False,
    )
    average = bfit.predict().iloc[0]
    # The posterior mean and interval are exact (quadrature): the seed does not change them.
    assert row["estimate"] == pytest.approx(average["pred"], abs=EXACT)
    assert row["ci_low"] == pytest.approx(average["ci_low"], abs=EXACT)
    assert np.isnan(row["p"])


def test_filters_and_outlier_rule():
    table = pd.DataFrame(
        {
            "species": ["rat", "mouse", "rat", "rat"],
            "disease_model": ["a", "a", "b", "a"],
            "isolation_family": ["x", "x", "x", "y"],
            "quality_score": [0.2, 0.6, 0.7, 0.9],
            "rob_low_randomization_blinding": [True, True, None, False],
        }
    )
    settings = {
        "filters.species": ["rat"],
        "filters.disease_model": [],
        "filters.isolation_family": [],
        "filters.min_quality_score": 0.5,
        "filters.low_risk_of_bias_only": False,
    }
    assert apply_filters(table, settings)["quality_score"].tolist() == [0.7, 0.9]
    settings["filters.low_risk_of_bias_only"] = True
    assert apply_filters(table, settings).empty
    assert outlier_threshold("studentized_residual_gt_2.5") == 2.5 and outlier_threshold("none") is None


@pytest.mark.parametrize("method", VECTORIZED)
@pytest.mark.parametrize("test", ["z", "knha"])
def test_vectorized_deleted_residuals_equal_influence(book, method, test):
    """The k leave-one-out fits at once equal influence()'s k refits (1e-10: same
    estimators and stopping rule; the difference is summation order)."""
    from evmeta.models import meta_analysis

    table = em.build_comparisons(book, "SMD", outcome=OUTCOMES).table
    for rows in [slice(None), slice(0, 6), slice(10, 14)]:
        yi, vi = table["yi"].to_numpy()[rows], table["vi"].to_numpy()[rows]
        reference = meta_analysis(yi=yi, vi=vi, method=method, test=test).influence()["rstudent"].to_numpy()
        ours = studentized_deleted_residuals(yi, vi, method, test)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-10)


def test_small_tables_are_skipped_with_k(serial):
    skipped = serial.results[serial.results["status"] != "ok"]
    assert set(skipped["status"]) <= {"skipped", "failed"}
    assert (skipped["reason"].str.len() > 0).all()
    assert (
        serial.summary["specifications"] == 24
        and serial.summary["fitted"] == (serial.results["status"] == "ok").sum()
    )


# --- Dask equals serial ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_run_equals_serial_run(serial, spec_path, dask_client, tmp_path):
    run = run_multiverse(spec_path, output=tmp_path, client=dask_client, quiet=True)
    assert run.provenance["workers"] == 2
    pd.testing.assert_frame_equal(
        run.results[RESULT_COLUMNS], serial.results[RESULT_COLUMNS], check_exact=True
    )
    written = pd.read_csv(tmp_path / "multiverse.csv")
    assert list(written.columns[:8]) == ["spec_id", *serial.results.columns[1:8]]
    assert written["estimate"].to_numpy() == pytest.approx(serial.results["estimate"].to_numpy(), nan_ok=True)


def test_null_test_is_identical_across_workers_and_batches(tmp_path, dask_client):
    multiverse = '[multiverse]\n"comparisons.timepoint" = ["first", "last"]'
    path = write_spec(tmp_path, multiverse, "null_resamples = 19\nbatch_size = 1")
    serial = run_multiverse(path, output=tmp_path / "a", scheduler="serial", quiet=True, figures=False)
    path = write_spec(tmp_path, multiverse, "null_resamples = 19")
    parallel = run_multiverse(path, output=tmp_path / "b", client=dask_client, quiet=True, figures=False)
    pd.testing.assert_frame_equal(serial.null_test, parallel.null_test, check_exact=True)
    test = serial.null_test.set_index("statistic")
    assert (test["resamples"] == 19).all()
    # Every pooled SMD is near 1.6-1.9 with tight intervals: no null curve reaches it.
    assert test.loc["median estimate", "p"] == pytest.approx(1 / 20)
    assert test.loc["share significant in the observed direction", "observed"] == 1.0
    assert abs(test.loc["median estimate", "null_median"]) < 0.5


def test_resampling_draws_whole_studies():
    codes = np.array([0, 0, 1, 2, 2, 2])
    draw = np.array([2, 0, 2])
    rows, copy = resample_rows(codes, draw, 3)
    assert rows.tolist() == [0, 1, 3, 3, 4, 4, 5, 5]
    assert copy.tolist() == [0, 0, 0, 1, 0, 1, 0, 1]
    a, b = study_draws(list("abcd"), 5, 3), study_draws(list("abcd"), 7, 3)
    assert np.array_equal(a, b[:5]) and a.shape == (5, 4)


# --- summary rules ------------------------------------------------------------------------
def test_summary_shares_and_choice_influence():
    frame = pd.DataFrame(
        {
            "spec_id": range(1, 7),
            "a": ["x", "x", "x", "y", "y", "y"],
            "b": [1, 2, 1, 2, 1, 2],
            "estimate": [0.1, 0.2, 0.3, 1.1, 1.2, -0.1],
            "ci_low": [-0.1, 0.1, 0.2, 0.9, 1.0, -0.3],
            "ci_high": [0.3, 0.3, 0.4, 1.3, 1.4, 0.1],
            "status": "ok",
            "measure_used": "SMD",
        }
    )
    s = curve_summary(frame)
    assert s["median"] == pytest.approx(0.25)
    assert s["share_same_sign"] == pytest.approx(5 / 6)
    assert s["share_significant"] == pytest.approx(4 / 6)
    influence = choice_influence(frame, ["a", "b"]).set_index("choice")
    assert influence.loc["a", "range_of_medians"] == pytest.approx(1.1 - 0.2)
    total = np.sum((frame["estimate"] - frame["estimate"].mean()) ** 2)
    mean = 2.8 / 6
    between = 3 * (0.6 / 3 - mean) ** 2 + 3 * (2.2 / 3 - mean) ** 2
    assert influence.loc["a", "eta2"] == pytest.approx(between / total, rel=1e-9)
    assert influence.index[0] == "a"


# --- figure, report section and CLI ---------------------------------------------------------
def test_specification_curve_figure_and_section(serial):
    from tests.test_figure_layout import WIDTHS, assert_journal_ready

    for width in WIDTHS:  # no text overlaps or leaves the figure, at 85 and 180 mm
        assert_journal_ready(em.plots.specification_curve_plot(serial.results, width=width), WIDTHS[width])
    figure = em.plots.specification_curve_plot(serial.results)
    *tops, bottom = figure.axes
    assert len(tops) == 2  # SMD and ROM: one panel each
    points = sum(
        len(c.get_offsets())
        for top in tops
        for c in top.collections
        if hasattr(c, "get_sizes") and len(c.get_sizes())
    )
    assert points == serial.summary["fitted"]
    assert len(bottom.get_yticks()) == 2 + 2 + 2 + 3
    names = {p.name for p in serial.files}
    assert {
        "multiverse.csv",
        "specification_curve.pdf",
        "specification_curve.svg",
        "multiverse.html",
    } <= names
    page = (serial.output / "multiverse.html").read_text(encoding="utf-8")
    assert "Specification curve" in page and "<svg" in page and "moves the estimate most" in page
    assert "each has its own panel" in page and "pooled over the measures ROM, SMD" in page


def mixed_measures() -> pd.DataFrame:
    """Four SMD specifications near 1.6-2 and four ROM (log ratio) near 0.5: two scales."""
    return pd.DataFrame(
        {
            "spec_id": range(1, 9),
            "comparisons.measure": ["SMD"] * 4 + ["ROM"] * 4,
            "model": ["random_effects", "three_level"] * 4,
            "k": 10,
            "estimate": [1.6, 1.7, 1.9, 2.0, 0.4, 0.5, 0.6, -0.1],
            "ci_low": [1.2, 1.3, 1.5, 1.6, 0.1, 0.2, -0.1, -0.3],
            "ci_high": [2.0, 2.1, 2.3, 2.4, 0.7, 0.8, 1.3, 0.1],
            "p": [0.001, 0.001, 0.001, 0.001, 0.01, 0.01, 0.09, 0.3],
            "status": "ok",
            "measure_used": ["SMD"] * 4 + ["ROM"] * 4,
        }
    )


def test_summary_is_per_measure_when_measures_differ():
    """A median over SMD and log-ratio estimates describes neither: each measure used gets
    its own median, range, IQR and shares; only the scale-free shares are pooled."""
    frame = mixed_measures()
    s = curve_summary(frame)
    assert "median" not in s and "minimum" not in s  # no statistic mixing the two scales
    by = {m["measure"]: m for m in s["by_measure"]}
    assert by["SMD"]["median"] == pytest.approx(1.8) and by["SMD"]["fitted"] == 4
    assert by["ROM"]["median"] == pytest.approx(0.45)
    assert (by["ROM"]["minimum"], by["ROM"]["maximum"]) == (-0.1, 0.6)
    assert by["ROM"]["share_same_sign"] == pytest.approx(3 / 4)
    assert by["ROM"]["share_significant"] == pytest.approx(2 / 4)
    assert s["share_same_sign"] == pytest.approx(7 / 8)  # pooled: the sign is scale-free
    assert s["share_significant"] == pytest.approx(6 / 8)
    lines = summary_sentences(s, choice_influence(frame, ["model"]))
    assert any(line.startswith("ROM (4 fitted): median estimate 0.450") for line in lines)
    assert any(line.startswith("SMD (4 fitted): median estimate 1.800") for line in lines)
    assert any("pooled over the measures ROM, SMD" in line for line in lines)
    assert not any("measures ROM, SMD)" in line for line in lines)  # the old pooled median line
    # One measure: the summary and its sentences are as before.
    smd = curve_summary(frame[frame["measure_used"] == "SMD"])
    assert smd["median"] == pytest.approx(1.8) and len(smd["by_measure"]) == 1
    assert summary_sentences(smd, pd.DataFrame())[1].startswith("median estimate 1.800 (range 1.600")


def test_null_test_is_computed_per_measure():
    frame = mixed_measures()
    rng = np.random.default_rng(1)
    null = {}
    for row in frame.itertuples():
        estimate = rng.normal(0, 0.05, size=5)
        null[row.spec_id] = np.column_stack([estimate, np.zeros(5), estimate / 0.05])
    test = null_test(frame, null).set_index(["measure_used", "statistic"])
    assert sorted(set(test.index.get_level_values(0))) == ["ROM", "SMD"]
    assert test.loc[("SMD", "median estimate"), "observed"] == pytest.approx(1.8)
    assert test.loc[("ROM", "median estimate"), "observed"] == pytest.approx(0.45)
    assert test.loc[("ROM", "share significant in the observed direction"), "observed"] == 0.5


def test_specification_curve_has_one_panel_per_measure():
    from tests.test_figure_layout import WIDTHS, assert_journal_ready

    frame = mixed_measures()
    for width in WIDTHS:
        assert_journal_ready(em.plots.specification_curve_plot(frame, width=width), WIDTHS[width])
    figure = em.plots.specification_curve_plot(frame)
    *tops, bottom = figure.axes
    assert [ax.get_title(loc="left").split(" ")[0] for ax in tops] == ["ROM", "SMD"]
    for ax, median in zip(tops, [0.45, 1.8], strict=True):
        dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert len(dotted) == 1 and dotted[0].get_ydata()[0] == pytest.approx(median)
        low, high = ax.get_ylim()
        assert high < 1.5 if median < 1 else low < 0 < 1.2 < high  # each on its own scale
    # Each panel's points sit above their own specifications in the indicator panel.
    indicator_x = sorted(x for c in bottom.collections for x, _ in c.get_offsets())
    curve_x = sorted(
        x for ax in tops for c in ax.collections if hasattr(c, "get_sizes") for x, _ in c.get_offsets()
    )
    assert np.allclose(sorted(set(indicator_x)), curve_x)
    assert len(em.plots.specification_curve_plot(frame[frame["measure_used"] == "SMD"]).axes) == 2


def test_cli_multiverse_serial(tmp_path):
    spec_path = write_spec(tmp_path, '[multiverse]\n"frequentist.method" = ["REML", "DL"]')
    out = tmp_path / "out"
    argv = ["multiverse", str(spec_path), "-o", str(out), "--scheduler", "serial", "--quiet"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "specifications fitted" in result.output
    assert (out / "multiverse.csv").exists() and (out / "specification_curve.png").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".evmeta")]  # staged, then moved
    again = CliRunner().invoke(app, argv)  # its own earlier outputs are replaced
    assert again.exit_code == 0, again.output
    # The folder holding the spec, or a user's multiverse.csv, is refused (issue 29).
    refused = CliRunner().invoke(app, [*argv[:3], str(tmp_path), *argv[4:]])
    assert refused.exit_code == 2 and "holds the input" in refused.output


def test_cli_reports_a_bad_spec_without_traceback(tmp_path):
    path = write_spec(tmp_path, '[multiverse]\n"filters.nonsense" = [1]')
    result = CliRunner().invoke(app, ["multiverse", str(path), "--scheduler", "serial"])
    assert result.exit_code == 2 and "filters.nonsense" in result.output and "Traceback" not in result.output


def test_parse_spec_keeps_other_sections_unchanged():
    spec = parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}})
    assert spec.multiverse is None
