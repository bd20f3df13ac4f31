"""One-stage dose-response meta-analysis (evmeta.models.dose_response).

Parity: metafor 3.8.1 ``rma.mv(yi, V, mods = ~ ns(log10(dose), knots, Boundary.knots),
random = ~ 1 | study)`` on the example's 82 comparisons with a dose in ug protein per kg
(tests/reference/dose_response.R -> dose_response.json; data in tests/data/dose_response/).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.errors import ModelError
from evmeta.models.dose_response.spline import NaturalSpline, spline_at_quantiles
from evmeta.results import AnalysisModels
from evmeta.run_tables import RunTables

ROOT = Path(__file__).resolve().parent
REFERENCE = json.loads((ROOT / "reference" / "dose_response.json").read_text())
DATA = ROOT / "data" / "dose_response"
# Both sides maximize the same REML/ML likelihood to ~1e-10 relative change; 1e-6 leaves
# room for the two optimizers stopping at slightly different points on a flat likelihood.
TOL = 1e-6
# The Emax ED50 sits on a nearly flat profile likelihood (R's optimize and scipy's bounded
# Brent stop within ~1e-7 of each other in log10 ED50 but the curve is flat there).
TOL_FLAT = 1e-4


@pytest.fixture(scope="module")
def example() -> pd.DataFrame:
    table = pd.read_csv(DATA / "example_dosed.csv")
    table["n_control_reported"] = table["n_control"]
    return table


@pytest.fixture(scope="module")
def V() -> np.ndarray:
    entries = pd.read_csv(DATA / "example_dosed_V.csv")
    k = REFERENCE["k"]
    out = np.zeros((k, k))
    out[entries.i - 1, entries.j - 1] = entries.v
    out[entries.j - 1, entries.i - 1] = entries.v
    return out


@pytest.fixture(scope="module")
def spline_fit(example):
    return em.models.dose_response_meta_analysis(example, model="spline", random="study_id")


def test_fixture_covariance_is_the_shared_control_covariance(example, V):
    """The V written for R is what evmeta.harmonize.shared_control_covariance gives for these rows."""
    mine = em.harmonize.shared_control_covariance(
        example.assign(sd_control=1.0, mean_control=1.0, events_control=0, total_control=1)
    )
    np.testing.assert_allclose(mine, V, rtol=1e-12, atol=1e-15)
    assert (V[~np.eye(len(V), dtype=bool)] != 0).sum() > 0  # shared controls really occur


def test_natural_spline_basis_is_r_ns(example):
    x = np.log10(example["dose_ug_protein_per_kg"].to_numpy())
    spline = spline_at_quantiles(x)
    np.testing.assert_allclose(
        [*spline.boundary[:1], *spline.knots, spline.boundary[1]], REFERENCE["knots_x"], atol=1e-12
    )
    np.testing.assert_allclose(spline.basis(x), REFERENCE["ns_basis"], atol=1e-12)
    # the grid starts below the lower boundary knot: linear extrapolation as in R
    np.testing.assert_allclose(spline.basis(REFERENCE["grid_x"]), REFERENCE["ns_grid"], atol=1e-12)


def test_natural_spline_is_linear_beyond_the_boundary():
    spline = NaturalSpline((0.0,), (-1.0, 1.0))
    left = spline.basis([-3.0, -2.0, -1.0])
    np.testing.assert_allclose(left[0] - left[1], left[1] - left[2], atol=1e-12)
    np.testing.assert_allclose(spline.basis([-1.0]), 0.0, atol=1e-12)  # vanishes at the lower knot


def _check_fit(result, reference, grid_doses):
    np.testing.assert_allclose(result.coefficients["estimate"], reference["beta"], atol=TOL)
    np.testing.assert_allclose(result.coefficients["se"], reference["se"], atol=TOL)
    np.testing.assert_allclose(result.sigma2, np.atleast_1d(reference["sigma2"]), atol=TOL)
    np.testing.assert_allclose(result.fit.log_likelihood, reference["logLik"], atol=TOL)
    pred = result.predict(grid_doses)
    for mine, theirs in [
        ("pred", "pred"),
        ("se", "pred_se"),
        ("ci_low", "ci_lb"),
        ("ci_high", "ci_ub"),
        ("pi_low", "pi_lb"),
        ("pi_high", "pi_ub"),
    ]:
        np.testing.assert_allclose(pred[mine], reference[theirs], atol=TOL, err_msg=mine)


def test_linear_curve_matches_metafor(example):
    fit = em.models.dose_response_meta_analysis(example, model="linear", random="study_id")
    _check_fit(fit, REFERENCE["linear_study"], 10 ** np.array(REFERENCE["grid_x"]))
    assert list(fit.coefficients.index) == ["intercept", "log10_dose"]


def test_spline_curve_matches_metafor(spline_fit):
    _check_fit(spline_fit, REFERENCE["spline_study"], 10 ** np.array(REFERENCE["grid_x"]))


def test_spline_nested_random_effects_match_metafor(example):
    fit = em.models.dose_response_meta_analysis(example, model="spline")  # auto: study/experiment
    assert fit.random == ["study_id", "experiment_id"]
    _check_fit(fit, REFERENCE["spline_study_experiment"], 10 ** np.array(REFERENCE["grid_x"]))


def test_spline_ml_matches_metafor(example):
    fit = em.models.dose_response_meta_analysis(example, model="spline", random="study_id", method="ML")
    _check_fit(fit, REFERENCE["spline_study_ml"], 10 ** np.array(REFERENCE["grid_x"]))


def test_within_between_slopes_and_test_match_metafor(spline_fit):
    wb = spline_fit.within_between
    within, contextual = REFERENCE["within"], REFERENCE["within_between"]
    assert wb.within == pytest.approx(within["slope"], abs=TOL)
    assert wb.within_se == pytest.approx(within["se"], abs=TOL)
    assert wb.between == pytest.approx(REFERENCE["between"]["slope"], abs=TOL)
    assert wb.between_se == pytest.approx(REFERENCE["between"]["se"], abs=TOL)
    assert wb.difference == pytest.approx(contextual["diff"], abs=TOL)
    assert wb.difference_se == pytest.approx(contextual["diff_se"], abs=TOL)
    assert wb.pvalue == pytest.approx(contextual["diff_p"], abs=TOL)
    assert wb.n_multi_dose_studies == 9
    table = wb.to_frame()
    assert table.loc["within - between (contextual)", "pvalue"] == pytest.approx(
        contextual["diff_p"], abs=TOL
    )


def test_emax_profile_likelihood_matches_metafor(example):
    fit = em.models.dose_response_meta_analysis(example, model="emax", random="study_id")
    reference = REFERENCE["emax_study_ml"]
    assert fit.method == "ML"
    assert fit.fit.log_likelihood == pytest.approx(reference["logLik"], abs=TOL)
    assert fit.coefficients.loc["log10_ed50", "estimate"] == pytest.approx(
        reference["log10_ed50"], abs=TOL_FLAT
    )
    assert fit.coefficients.loc["emax", "estimate"] == pytest.approx(reference["emax"], abs=TOL_FLAT)
    assert fit.sigma2[0] == pytest.approx(reference["sigma2"], abs=TOL_FLAT)
    ed = fit.effective_dose
    assert ed.dose == pytest.approx(10 ** reference["log10_ed50"], rel=1e-3)
    # the profile likelihood interval: R's uniroot on the same profile for the upper limit;
    # the profile at two decades below the lowest dose is still above the cutoff (open)
    assert np.log10(ed.ci_high) == pytest.approx(reference["profile_upper"], abs=1e-5)
    assert reference["profile_at_lower_bound"] > reference["logLik"] - 3.8415 / 2
    assert np.isnan(ed.ci_low) and "lower limit is open" in ed.note
    from evmeta.models.dose_response.emax import _profile_fit

    profile = [
        _profile_fit(fit.data, fit.data["dose"].to_numpy(), t, ["study_id"], fit.V).log_likelihood
        for t in reference["profile_at"]
    ]
    np.testing.assert_allclose(profile, reference["profile_logLik"], atol=TOL)
    curve = fit.curve(5)
    assert np.all(np.diff(curve["pred"]) > 0) and np.all(
        curve["pred"] < fit.coefficients.loc["emax", "estimate"]
    )


def test_reported_only_sensitivity_matches_metafor(example):
    fit = em.models.dose_response_meta_analysis(
        example, model="linear", random="study_id", reported_only=True
    )
    reference = REFERENCE["linear_reported"]
    assert fit.k == reference["k"]
    np.testing.assert_allclose(fit.coefficients["estimate"], reference["beta"], atol=TOL)
    np.testing.assert_allclose(fit.coefficients["se"], reference["se"], atol=TOL)
    assert set(fit.data["dose_provenance"]) <= {"reported", "scaled", "derived"}
    assert len(fit.excluded) == len(example) - reference["k"]
    assert fit.excluded["reason"].str.contains("imputed").all()


def test_only_converted_doses_enter_and_the_rest_are_listed_with_a_reason(example):
    table = example.copy()
    table.loc[:2, "dose_ug_protein_per_kg"] = np.nan
    table["dose_note"] = ""
    table.loc[:2, "dose_note"] = "protein <-> particles needs the preparation's particles_per_ug_protein"
    table.loc[3, "dose_ug_protein_per_kg"] = 0.0
    fit = em.models.dose_response_meta_analysis(table, model="linear", random="study_id")
    assert fit.k == len(table) - 4
    reasons = fit.excluded.set_index("comparison_id")["reason"]
    assert reasons.iloc[0].startswith("dose not convertible to µg protein per kg: protein <-> particles")
    assert "not positive" in reasons.iloc[3]
    assert set(fit.excluded["comparison_id"]) == set(table["comparison_id"][:4])


def test_any_harmonized_basis_is_accepted(example):
    fit = em.models.dose_response_meta_analysis(
        example, dose="dose_hed_ug_protein_per_kg", model="linear", random="study_id"
    )
    assert fit.dose == "dose_hed_ug_protein_per_kg" and fit.k == len(example)
    # a human-equivalent dose is the animal dose times a species constant: within a species
    # the slope on log10 dose is unchanged, only the intercept and the spread move.
    assert fit.dose_range[1] < example["dose_ug_protein_per_kg"].max()
    with pytest.raises(
        ModelError, match="unknown dose basis 'dose_ug_per_mouse'; valid doses: dose_ug_protein_per_kg"
    ):
        em.models.dose_response_meta_analysis(example, dose="dose_ug_per_mouse")
    with pytest.raises(ModelError, match="lacks column"):
        em.models.dose_response_meta_analysis(example, dose="dose_particles_per_kg")


def test_bad_arguments_are_named(example):
    with pytest.raises(
        ModelError, match="unknown dose-response model 'cubic'; valid models: linear, spline, emax"
    ):
        em.models.dose_response_meta_analysis(example, model="cubic")
    with pytest.raises(ModelError, match="unknown dose scale"):
        em.models.dose_response_meta_analysis(example, scale="ln")
    with pytest.raises(ModelError, match="share must lie strictly between 0 and 1"):
        em.models.dose_response_meta_analysis(example, share=1.0)


def test_small_data_give_a_sentence_not_a_traceback(example):
    few = example[example["study_id"].isin(["AHMED2015", "AHMED2023"])]
    with pytest.raises(ModelError, match=r"needs at least 4 comparisons from 2 or more studies"):
        em.models.dose_response_meta_analysis(few, model="linear")
    one_dose = example.assign(dose_ug_protein_per_kg=100.0)
    with pytest.raises(ModelError, match="1 distinct doses"):
        em.models.dose_response_meta_analysis(one_dose, model="linear")
    # three distinct doses: a linear curve, but no spline with three knots
    three = example.assign(dose_ug_protein_per_kg=np.resize([10.0, 100.0, 1000.0], len(example)))
    assert em.models.dose_response_meta_analysis(three, model="linear", random="study_id").k == len(example)
    with pytest.raises(ModelError, match="spline dose-response curve needs"):
        em.models.dose_response_meta_analysis(three, model="spline")


def test_result_protocol(spline_fit):
    fit = spline_fit
    assert fit.k == 82 and fit.measure == "SMD" and fit.level == 0.95 and fit.n_studies == 55
    with pytest.raises(AttributeError):
        fit.model = "linear"  # frozen
    assert list(fit.coef_table().columns[:4]) == ["estimate", "se", "ci_low", "ci_high"]
    narrow = fit.coef_table(0.5)
    assert np.all(
        narrow["ci_high"] - narrow["ci_low"] < fit.coef_table()["ci_high"] - fit.coef_table()["ci_low"]
    )
    het = fit.heterogeneity_table()
    assert list(het["component"]) == ["study_id"] and het["tau"].iloc[0] == pytest.approx(
        np.sqrt(fit.sigma2[0])
    )
    summary = fit.summary()
    assert "tau[study_id]" in summary.table.index and "Spline knots" in str(summary)
    frame = fit.to_frame()
    assert {"term", "estimate", "k", "model", "dose"} <= set(frame.columns)
    curve = fit.curve(11)
    assert len(curve) == 11 and curve["dose"].iloc[0] == pytest.approx(fit.dose_range[0])
    assert np.all(curve["pi_low"] < curve["ci_low"]) and np.all(curve["ci_low"] < curve["pred"])
    by_frame = fit.predict(pd.DataFrame({"dose": [100.0, 1000.0]}))
    np.testing.assert_allclose(by_frame["pred"], fit.predict([100.0, 1000.0])["pred"])
    with pytest.raises(ModelError, match="positive"):
        fit.predict([0.0])


def test_effective_dose_of_a_rising_curve_is_located_with_an_interval():
    """A curve rising from 0 over the doses studied has its ED50 inside the range."""
    rng = np.random.default_rng(3)
    rows = []
    for s in range(12):
        for j, dose in enumerate([1.0, 10.0, 100.0, 1000.0]):
            x = np.log10(dose)
            rows.append(
                {
                    "study_id": f"S{s}",
                    "comparison_id": f"S{s}-{j}",
                    "dose_ug_protein_per_kg": dose,
                    "yi": 0.5 * x + rng.normal(0, 0.2),
                    "vi": 0.04,
                }
            )
    fit = em.models.dose_response_meta_analysis(pd.DataFrame(rows), model="linear")
    ed = fit.effective_dose
    # linear in log10 dose from 0 at 1 to 1.5 at 1000: half the maximum at about 10^1.5
    assert 10**1.2 < ed.dose < 10**1.8
    assert ed.ci_low < ed.dose < ed.ci_high
    assert "V = diag(vi)" in " ".join(fit.notes)  # no control ids: independence, said so


# --- simulation: known curves, pointwise coverage of the 95% confidence bands ------------
#
# A fixed design (16 studies, 2 to 4 EV arms each at doses from 1 to 1000 ug/kg, one
# shared control per study, mean differences with a common SD) and new outcomes each
# replicate: y = f(log10 dose) + u_study + e, e ~ N(0, V) with the shared-control V.
# With the doses fixed, the quantile knots are the same in every replicate, so a truth
# inside the model's span is recovered without approximation bias. The plateau truth is
# the Emax curve 1.5 d / (30 + d) projected onto that spline span.
SIM_DOSES = np.array([1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0])
CHECK_DOSES = np.array([2.0, 10.0, 50.0, 200.0, 800.0])


def _design(rng: np.random.Generator, studies: int = 16) -> pd.DataFrame:
    rows = []
    for s in range(studies):
        arms = rng.choice(SIM_DOSES, size=int(rng.integers(2, 5)), replace=False)
        n_c = int(rng.integers(6, 11))
        for a, dose in enumerate(arms):
            rows.append(
                {
                    "study_id": f"S{s:02d}",
                    "experiment_id": f"S{s:02d}-E1",
                    "comparison_id": f"S{s:02d}-A{a}",
                    "control_group_id": f"S{s:02d}-C",
                    "measure": "MD",
                    "n_treat": int(rng.integers(6, 11)),
                    "n_control": n_c,
                    "n_control_reported": n_c,
                    "sd_control": 1.0,
                    "dose_ug_protein_per_kg": dose,
                }
            )
    table = pd.DataFrame(rows)
    table["vi"] = 1.0 / table["n_treat"] + 1.0 / table["n_control"]
    table["yi"] = 0.0
    return table


def _truths(design: pd.DataFrame) -> dict[str, tuple[str, object]]:
    x = np.log10(design["dose_ug_protein_per_kg"].to_numpy())
    spline = spline_at_quantiles(x)
    dense = np.linspace(0, 3, 61)
    B = np.column_stack([np.ones(61), spline.basis(dense)])
    coef = np.linalg.lstsq(B, 1.5 * 10**dense / (30 + 10**dense), rcond=None)[0]
    return {
        "linear": ("linear", lambda xs: 0.2 + 0.4 * xs),
        "plateau": ("spline", lambda xs: np.column_stack([np.ones(len(xs)), spline.basis(xs)]) @ coef),
    }


def _coverage(
    truth_name: str, replicates: int, seed: int, test: str = "z"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    design = _design(rng)
    model, f = _truths(design)[truth_name]
    V = em.harmonize.shared_control_covariance(design.assign(yi=0.0))
    L = np.linalg.cholesky(V)
    codes = pd.factorize(design["study_id"])[0]
    mean = f(np.log10(design["dose_ug_protein_per_kg"].to_numpy()))
    target = f(np.log10(CHECK_DOSES))
    hits, estimates = np.zeros((replicates, len(CHECK_DOSES))), np.zeros((replicates, len(CHECK_DOSES)))
    for r in range(replicates):
        u = rng.normal(0, 0.3, codes.max() + 1)[codes]
        table = design.assign(yi=mean + u + L @ rng.standard_normal(len(design)))
        fit = em.models.dose_response_meta_analysis(
            table, model=model, random="study_id", test=test, contrast_within_between=False
        )
        band = fit.predict(CHECK_DOSES)
        hits[r] = (band["ci_low"] <= target) & (target <= band["ci_high"])
        estimates[r] = band["pred"]
    return hits, estimates, target


@pytest.mark.parametrize("truth", ["linear", "plateau"])
def test_simulation_recovers_a_known_curve_fast(truth):
    """40 replicates: unbiased curve (within 4 Monte Carlo SEs) and pointwise coverage
    near 95% (40 draws give an MC SE of 3.4% per point; averaged over 5 points, ~2%)."""
    hits, estimates, target = _coverage(truth, 40, seed=11)
    mc_se = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(axis=0) - target) < 4 * mc_se)
    assert 0.87 <= hits.mean() <= 1.0
    assert hits.mean(axis=0).min() >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("truth", ["linear", "plateau"])
@pytest.mark.parametrize("test", ["z", "t"])
def test_simulation_nominal_coverage_of_pointwise_bands(truth, test):
    """400 replicates: the pointwise 95% bands cover the true curve close to 95% of the time
    (MC SE 1.1% per point, ~0.7% for the average). With REML tau2 from 16 studies, z bands
    run slightly below nominal (93.2% linear, 93.8% plateau at seed 12) and t bands with
    k - p df are closer (94.2%, 94.2%): average in [93%, 97%] (z) or [93.5%, 97%] (t), every
    point in [91%, 98%]; the curve is unbiased within 4 Monte Carlo SEs."""
    hits, estimates, target = _coverage(truth, 400, seed=12, test=test)
    mc_se = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(axis=0) - target) < 4 * mc_se)
    assert (0.93 if test == "z" else 0.935) <= hits.mean() <= 0.97
    assert np.all((hits.mean(axis=0) >= 0.91) & (hits.mean(axis=0) <= 0.98))


def test_dose_plot_draws_the_curve_bands_and_human_equivalent_axes(spline_fit, example):
    pytest.importorskip("matplotlib")
    figure = em.plots.dose_response_plot(spline_fit, width="single", total=113)
    ax = figure.axes[0]
    bands = [c for c in ax.collections if type(c).__name__ in {"FillBetweenPolyCollection", "PolyCollection"}]
    assert len(bands) == 2  # prediction band and confidence band
    line = ax.lines[0]
    curve = spline_fit.curve(101)
    np.testing.assert_allclose(line.get_ydata(), curve["pred"])
    np.testing.assert_allclose(10 ** np.asarray(line.get_xdata()), curve["dose"])
    tops = list(ax.child_axes)
    labels = sorted(t.get_xlabel() for t in tops)
    assert labels == [
        "Human-equivalent dose from mouse (µg protein per kg)",
        "Human-equivalent dose from rat (µg protein per kg)",
    ]
    # rat Km 6, human Km 37: the rat axis reads the bottom dose x 6/37
    rat = next(t for t in tops if "rat" in t.get_xlabel())
    assert rat._functions[0](np.log10(370.0)) == pytest.approx(np.log10(60.0))
    assert "82 of 113 comparisons" in ax.get_title(loc="left").replace("\n", " ")


# --- evmeta run: the [dose_response] spec section and its report section ------------------


def _run(tmp_path, section: dict):
    from types import SimpleNamespace

    from evmeta.analysis.spec import parse_spec

    spec = parse_spec({"analysis": {"name": "t", "extraction": "x.xlsx"}, "dose_response": section})
    return SimpleNamespace(
        spec=spec,
        models=AnalysisModels(),
        tables=RunTables(),
        notes=[],
        files=[],
        report_sections=[],
        output=tmp_path,
        figures={},
    )


def test_spec_section_is_validated():
    from evmeta.analysis.spec import parse_spec
    from evmeta.errors import SpecError

    base = {"analysis": {"name": "t", "extraction": "x.xlsx"}}
    assert parse_spec(base).dose_response is None  # absent: the meta-regression on log dose
    assert parse_spec({**base, "dose_response": {}}).dose_response.model == "spline"
    with pytest.raises(
        SpecError, match=r"unknown key 'dose_response.modle'; valid keys in \[dose_response\]: dose, model"
    ):
        parse_spec({**base, "dose_response": {"modle": "emax"}})
    with pytest.raises(
        SpecError, match=r"dose_response\.dose: unknown dose 'dose_mg_per_rat'; valid doses: dose_ug_protein"
    ):
        parse_spec({**base, "dose_response": {"dose": "dose_mg_per_rat"}})
    with pytest.raises(SpecError, match=r"dose_response\.model: 'cubic' is not allowed"):
        parse_spec({**base, "dose_response": {"model": "cubic"}})


def test_stage_fits_the_curve_and_renders_its_section(tmp_path, example):
    from evmeta.analysis.dose_response import dose_response_stage
    from evmeta.report.sections import render_sections

    run = _run(tmp_path, {"model": "linear"})
    dose_response_stage(run, example)
    fit = run.models.dose_response
    assert fit.model == "linear" and fit.test == "t"  # the spec's knha maps to t tests
    assert (tmp_path / "dose_response_curve.csv").exists()
    (section,) = render_sections(run)
    html = section["html"]
    assert "fitted in one stage to 82 of 82 comparisons from 55 studies" in html
    assert "sampling covariance of comparisons sharing a control arm" in html
    assert "9 of 55 studies gave two or more doses" in html
    assert "Sensitivity: doses reported, not imputed (25 comparisons)" in html
    assert "<table" in html and "&lt;table" not in html
    assert "ED50 not located" not in html and "ED50 = not located" in html


def test_stage_turns_an_unfittable_curve_into_a_note(tmp_path, example):
    from evmeta.analysis.dose_response import dose_response_stage

    run = _run(tmp_path, {"model": "spline"})
    dose_response_stage(run, example.assign(dose_ug_protein_per_kg=100.0))
    assert run.models.dose_response is None and not run.report_sections
    assert run.notes[0].startswith("dose-response (spline curve on µg protein per kg): not fitted (a spline")


# --- Bayesian counterpart ---------------------------------------------------------------------


def _bayes_vs_reml(table: pd.DataFrame, draws: int):
    """The Bayesian spline curve with isolation method (reference UC) and wide priors, and
    the REML fit of the same mean model (same spline columns and contrasts)."""
    fit = em.models.bayesian_dose_response(
        table,
        random="study_id",
        reference="UC",
        seed=1,
        draws=draws,
        priors={"coefficients": "normal(0, 10)", "intercept": "normal(0, 10)"},
    )
    x = np.log10(table["dose_ug_protein_per_kg"].to_numpy())
    B = spline_at_quantiles(x).basis(x)
    data = table.assign(
        ns1=B[:, 0],
        ns2=B[:, 1],
        isolation_method=pd.Categorical(table["isolation_method"], categories=list(fit.levels)),
    )
    reml = em.multilevel_meta_analysis(data, random=["study_id"], mods="~ ns1 + ns2 + isolation_method")
    return fit, reml


def _check_bayes(fit, reml, tolerance):
    assert fit.method == "quadrature"  # no shared-control covariance: the exact engine
    assert fit.levels[0] == "UC" and fit.level_by == "isolation_method"
    np.testing.assert_allclose(fit.coef_table()["estimate"], reml.coefficients["estimate"], atol=tolerance)
    np.testing.assert_allclose(fit.coef_table()["posterior_sd"], reml.coefficients["se"], rtol=0.1)
    # isolation method moves the curve's level only: a constant shift, its coefficient
    shift = fit.curve(5, at="SEC")["pred"] - fit.curve(5)["pred"]
    np.testing.assert_allclose(shift, fit.coef_table().loc["isolation_method[T.SEC]", "estimate"], atol=1e-10)
    assert {"dose", "pred", "ci_low", "ci_high", "pi_low", "pi_high"} <= set(fit.curve(3).columns)
    assert list(fit.heterogeneity_table()["component"]) == ["tau[study_id]"]
    with pytest.raises(ModelError, match="level 'XX' is not in the model"):
        fit.predict([100.0], at="XX")


def test_bayesian_curve_agrees_with_reml_under_wide_priors_fast():
    """Simulated 16-study design with two isolation methods: with normal(0, 10) priors the
    exact posterior means lie within 0.05 of the REML estimates (the posterior integrates
    over tau where REML plugs in its estimate; the difference is a fraction of an SE)."""
    rng = np.random.default_rng(5)
    design = _design(rng)
    design["isolation_method"] = np.where(pd.factorize(design["study_id"])[0] % 2 == 0, "UC", "SEC")
    codes = pd.factorize(design["study_id"])[0]
    x = np.log10(design["dose_ug_protein_per_kg"].to_numpy())
    table = design.drop(columns="control_group_id").assign(
        yi=0.3 * x
        + 0.4 * (design["isolation_method"] == "SEC")
        + rng.normal(0, 0.3, codes.max() + 1)[codes]
        + rng.normal(0, np.sqrt(design["vi"]))
    )
    fit, reml = _bayes_vs_reml(table, draws=200)
    _check_bayes(fit, reml, 0.05)
    with pytest.raises(ModelError, match="linear or spline"):
        em.models.bayesian_dose_response(table, model="emax")


@pytest.mark.slow
def test_bayesian_curve_agrees_with_reml_on_the_example(example):
    fit, reml = _bayes_vs_reml(example.drop(columns="control_group_id"), draws=1000)
    _check_bayes(fit, reml, 0.02)
