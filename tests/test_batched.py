"""Batched estimation (evmeta.models.frequentist.batched) against the single-fit path.

Reference: the single fit ``meta_analysis`` / ``fit_design`` (itself checked against
metafor in tests/test_models_meta.py). Tolerance 1e-10 on tau^2 and on every coefficient
statistic: both paths run the same iterations with the same stopping rule (PM: Newton
against Brent to 1e-15), so they differ by rounding only (observed ~1e-13).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.errors import ModelError
from evmeta.models.frequentist.batched import BATCHED_METHODS, batched_meta_analysis
from evmeta.models.frequentist.meta import fit_design

DATA = Path(__file__).resolve().parent / "data"
TOL = 1e-10
METHODS = ["EE", "DL", "HE", "PM", "ML", "REML"]


def assert_same(batch, j, single, test="z"):
    """Data set ``j`` of a batched fit equals the single fit."""
    assert batch.valid[j], batch.reason[j]
    assert abs(batch.tau2[j] - single.tau2) <= TOL * max(1.0, single.tau2)
    coefficients = single.coefficients
    for name, column in [("beta", "estimate"), ("se", "se"), ("ci_low", "ci_low"), ("ci_high", "ci_high")]:
        np.testing.assert_allclose(getattr(batch, name)[j], coefficients[column], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(batch.pvalue[j], coefficients["pvalue"], rtol=1e-8, atol=TOL)
    np.testing.assert_allclose(
        [batch.q[j], batch.i2[j], batch.h2[j]], [single.q, single.i2, single.h2], atol=1e-9
    )
    if np.isfinite(single.tau2_se):
        assert abs(batch.tau2_se[j] - single.tau2_se) <= 1e-9 * max(1.0, single.tau2_se)


def simulated(rng, n, k, tau2=(0.0, 0.05, 0.5)):
    V = rng.uniform(0.02, 1.0, (n, k))
    tau = np.sqrt(rng.choice(tau2, n))
    return rng.normal(0.3, np.sqrt(V + tau[:, None] ** 2)), V


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("test", ["z", "knha"])
def test_intercept_only_equals_single_fits_at_k_2_to_10(method, test):
    rng = np.random.default_rng(11)
    for k in range(2, 11):
        Y, V = simulated(rng, 4, k)
        batch = batched_meta_analysis(Y, V, method=method, test=test)
        for j in range(len(Y)):
            assert_same(batch, j, em.meta_analysis(yi=Y[j], vi=V[j], method=method, test=test), test)


def test_boundary_tau2_zero_is_exactly_zero():
    """Homogeneous data (Q below its df) give tau^2 = 0 in both paths, not a tiny number."""
    rng = np.random.default_rng(3)
    V = rng.uniform(0.5, 1.0, (30, 6))
    Y = 0.2 + 0.01 * rng.normal(size=V.shape)  # far less spread than the sampling variances
    for method in ["DL", "PM", "ML", "REML"]:
        batch = batched_meta_analysis(Y, V, method=method, test="knha")
        assert np.all(batch.tau2 == 0.0)
        for j in range(0, 30, 7):
            assert_same(batch, j, em.meta_analysis(yi=Y[j], vi=V[j], method=method, test="knha"))


@pytest.mark.parametrize("method", ["DL", "PM", "ML", "REML"])
def test_moderators_shared_and_stacked_designs(method):
    rng = np.random.default_rng(5)
    k, n = 9, 10
    X = np.column_stack([np.ones(k), rng.normal(size=k), np.r_[np.zeros(4), np.ones(5)]])
    Y, V = simulated(rng, n, k)
    Y = Y + X[:, 1] * 0.4
    stacked = np.stack([np.column_stack([np.ones(k), rng.normal(size=k)]) for _ in range(n)])
    shared = batched_meta_analysis(Y, V, X, method=method, test="knha")
    per_set = batched_meta_analysis(Y, V, stacked, method=method, test="z")
    names = ["intercept", "x", "group"]
    for j in range(n):
        assert_same(shared, j, fit_design(Y[j], V[j], X, names, method=method, test="knha"))
        assert_same(per_set, j, fit_design(Y[j], V[j], stacked[j], names[:2], method=method))


def test_counts_equal_the_repeated_rows_on_real_data():
    """Bootstrap resamples of dat.curtis1998 (k = 102) as counts, against the built resamples."""
    frame = pd.read_csv(DATA / "curtis1998.csv")
    y, v = frame["yi"].to_numpy(), frame["vi"].to_numpy()
    rng = np.random.default_rng(8)
    draws = rng.integers(0, len(y), size=(6, len(y)))
    counts = np.stack([np.bincount(d, minlength=len(y)) for d in draws])
    X = np.column_stack([np.ones(len(y)), (frame["fungrp"] == "ANGIO").to_numpy(float)])
    for method in ["DL", "PM", "REML"]:
        batch = batched_meta_analysis(y, v, counts=counts, method=method, test="knha")
        moderated = batched_meta_analysis(y, v, X, counts=counts, method=method)
        for j, draw in enumerate(draws):
            rows = np.sort(draw)
            assert_same(batch, j, em.meta_analysis(yi=y[rows], vi=v[rows], method=method, test="knha"))
            single = fit_design(y[rows], v[rows], X[rows], ["intercept", "angio"], method=method)
            assert_same(moderated, j, single)


def test_leave_one_out_as_counts_equals_leave_one_out():
    frame = pd.read_csv(DATA / "curtis1998.csv").iloc[:12]
    fit = em.meta_analysis(frame, method="REML", test="knha")
    batch = batched_meta_analysis(frame["yi"], frame["vi"], counts=1 - np.eye(12), test="knha")
    loo = fit.leave_one_out()
    np.testing.assert_allclose(batch.estimate, loo["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(batch.tau2, loo["tau2"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(batch.ci_low[:, 0], loo["ci_low"], rtol=TOL, atol=TOL)


def test_data_sets_that_cannot_be_fitted_are_marked_with_a_reason():
    y = np.array([[0.5, 0.5, 0.5, 0.5], [0.1, 0.9, 0.3, 0.6], [0.1, 0.9, 0.3, 0.6]])
    v = np.full(4, 0.1)
    counts = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 0, 0]])
    batch = batched_meta_analysis(y, v, counts=counts, method="DL", test="knha")
    assert batch.valid.tolist() == [False, True, False]
    assert "residual variation" in batch.reason[0] and "counted rows" in batch.reason[2]
    assert np.isnan(batch.estimate[0]) and np.isfinite(batch.estimate[1])
    with pytest.raises(ModelError, match="residual variation"):
        em.meta_analysis(yi=y[0], vi=v, method="DL", test="knha")
    X = np.column_stack([np.ones(4), [0, 0, 0, 1]])
    deficient = batched_meta_analysis(y[1], v, X, counts=[[1, 2, 1, 0], [1, 1, 1, 1]])
    assert deficient.valid.tolist() == [False, True]
    assert "rank-deficient" in deficient.reason[0]


def test_bad_input_is_refused_with_a_sentence():
    with pytest.raises(ModelError, match="no batched form"):
        batched_meta_analysis([[1.0, 2.0]], [[1.0, 1.0]], method="SJ")
    with pytest.raises(ModelError, match="non-negative"):
        batched_meta_analysis([[1.0, 2.0, 3.0]], [1.0, 1.0, 1.0], counts=[[1, -1, 1]])
    with pytest.raises(ModelError, match="data set 0, row 1"):
        batched_meta_analysis([[1.0, 2.0, 3.0]], [1.0, 0.0, 1.0])
    with pytest.raises(ModelError, match="do not broadcast"):
        batched_meta_analysis(np.ones((2, 3)), np.ones((3, 2)))
    assert set(BATCHED_METHODS) >= {"DL", "PM", "ML", "REML"}
    # Rows not counted may hold NaN (padding of ragged data sets).
    padded = batched_meta_analysis([[0.2, 0.6, np.nan]], [[0.1, 0.2, np.nan]], counts=[[1, 1, 0]])
    single = em.meta_analysis(yi=[0.2, 0.6], vi=[0.1, 0.2])
    assert_same(padded, 0, single)


NULL_SPEC = """
[analysis]
name = "null"
extraction = "{extraction}"
[comparisons]
measure = "SMD"
outcomes = ["serum creatinine", "infarct volume", "infarct size"]
[frequentist]
multilevel = ["study_id", "experiment_id"]
[multiverse]
"comparisons.measure" = ["SMD", "ROM"]
"frequentist.method" = ["REML", "DL", "PM", "ML"]
"frequentist.test" = ["z", "knha"]
outliers = ["none", "studentized_residual_gt_2.5"]
model = ["random_effects"]
"""


def null_both_ways(tmp_path, text, resamples=12):
    """(batched, unbatched) null refits of every planned specification of ``text``."""
    from evmeta.analysis.multiverse import _context
    from evmeta.analysis.multiverse.fit import build_table, fit_one
    from evmeta.analysis.multiverse.null import null_one, study_draws
    from evmeta.analysis.multiverse.plan import plan
    from evmeta.analysis.spec import load_spec

    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "null.toml"
    path.write_text(
        text.format(extraction=(root / "extraction" / "example.xlsx").as_posix()), encoding="utf-8"
    )
    spec = load_spec(path)
    extraction = em.read_extraction(spec.extraction_path)
    context = _context(spec)
    out = []
    tables: dict = {}
    for item in [s for s in plan(spec) if s.status == "planned"]:
        if item.build_key not in tables:
            tables[item.build_key] = build_table(extraction, item.settings)
        built = tables[item.build_key]
        row = fit_one(built, (item.spec_id, item.settings, item.spec_hash), context, {})
        if row["status"] != "ok":
            continue
        studies = sorted(built.table["study_id"].astype(str).unique())
        draws = study_draws(studies, resamples, 3)
        task = (item.spec_id, item.settings, item.spec_hash, row["estimate"])
        fast = null_one(built, task, context, draws, studies, {}, batched=True)
        slow = null_one(built, task, context, draws, studies, {}, batched=False)
        out.append((item.settings, fast, slow))
    return out


def cluster_resamples(frame, cluster, resamples, seed):
    """Row counts of a cluster bootstrap and the built resamples (copies relabelled)."""
    codes = pd.factorize(frame[cluster])[0]
    rng = np.random.default_rng(seed)
    n = codes.max() + 1
    draws = rng.integers(0, n, size=(resamples, n))
    counts = np.stack([np.bincount(d, minlength=n) for d in draws])[:, codes]
    built = []
    for row_counts in counts:
        rows = np.repeat(np.arange(len(frame)), row_counts)
        copy = np.concatenate([np.arange(c) for c in row_counts])
        sample = frame.iloc[rows].reset_index(drop=True)
        for column in (cluster, "id"):
            sample[column] = sample[column].astype(str) + "#" + pd.Series(copy).astype(str)
        built.append(sample)
    return counts, built


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_three_level_over_cluster_resamples_equals_single_fits(method):
    """dat.curtis1998, comparisons (id) within papers: resamples of papers, batched against
    multilevel_meta_analysis of each built resample (t tests, as the multiverse's knha)."""
    from evmeta.models.base.nesting import nested_structure
    from evmeta.models.frequentist.batched_multilevel import batched_multilevel_meta_analysis

    frame = pd.read_csv(DATA / "curtis1998.csv").iloc[:60]
    random = ["paper", "id"]
    counts, built = cluster_resamples(frame, "paper", 5, seed=4)
    codes = nested_structure(frame, random).codes
    batch = batched_multilevel_meta_analysis(frame["yi"], frame["vi"], codes, counts, method=method, test="t")
    for j, sample in enumerate(built):
        single = em.multilevel_meta_analysis(sample, random=random, method=method, test="t")
        assert batch.valid[j]
        np.testing.assert_allclose(batch.sigma2[j], single.sigma2, rtol=TOL, atol=TOL)
        for name in ("estimate", "se", "ci_low", "ci_high", "pvalue"):
            value = batch.estimate[j] if name == "estimate" else getattr(batch, name)[j, 0]
            assert abs(value - getattr(single, name)) <= TOL * max(1.0, abs(getattr(single, name)))
    with pytest.raises(ModelError, match="equal within each outermost group"):
        batched_multilevel_meta_analysis(frame["yi"], frame["vi"], codes, np.eye(len(frame))[:2])


def check_null(results, minimum):
    assert len(results) >= minimum
    methods = set()
    for settings, fast, slow in results:
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
        np.testing.assert_allclose(fast, slow, rtol=TOL, atol=TOL, equal_nan=True)
        methods.add(settings["frequentist.method"])
        assert np.isfinite(fast[:, 0]).sum() >= 4
    assert methods == {"REML", "DL", "PM", "ML"}


def test_null_test_batched_equals_unbatched(tmp_path):
    """The multiverse's null refits: batched random-effects fits equal the refit loop
    (same NaN pattern: resamples below min_k or failing, e.g. Knapp-Hartung on copies of
    one study)."""
    small = NULL_SPEC.replace('["SMD", "ROM"]', '["SMD"]').replace(
        '["none", "studentized_residual_gt_2.5"]', '["none"]'
    )
    check_null(null_both_ways(tmp_path, small, resamples=6), 8)


@pytest.mark.slow
def test_null_test_batched_equals_unbatched_every_choice(tmp_path):
    check_null(null_both_ways(tmp_path, NULL_SPEC, resamples=25), 20)


THREE_LEVEL = NULL_SPEC.replace('model = ["random_effects"]', 'model = ["three_level"]').replace(
    '"frequentist.method" = ["REML", "DL", "PM", "ML"]',
    '"frequentist.method" = ["REML", "ML"]\n"comparisons.shared_control" = ["split", "keep"]',
)


def test_null_test_three_level_batched_equals_unbatched(tmp_path):
    """Three-level null refits, with shared controls kept (their covariance) and split."""
    small = THREE_LEVEL.replace('["SMD", "ROM"]', '["SMD"]').replace('["REML", "ML"]', '["REML"]')
    small = small.replace('["z", "knha"]', '["knha"]').replace(
        '["none", "studentized_residual_gt_2.5"]', '["none"]'
    )
    results = null_both_ways(tmp_path, small, resamples=4)
    assert {r[0]["comparisons.shared_control"] for r in results} == {"split", "keep"}
    for _, fast, slow in results:
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
        np.testing.assert_allclose(fast, slow, rtol=TOL, atol=TOL, equal_nan=True)


@pytest.mark.slow
def test_null_test_three_level_every_choice(tmp_path):
    results = null_both_ways(
        tmp_path, THREE_LEVEL.replace('["none", "studentized_residual_gt_2.5"]', '["none"]'), 10
    )
    assert len(results) == 16
    for _, fast, slow in results:
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
        np.testing.assert_allclose(fast, slow, rtol=TOL, atol=TOL, equal_nan=True)


def test_three_level_resamples_too_small_to_fit_are_marked():
    from evmeta.models.base.nesting import nested_structure
    from evmeta.models.frequentist.batched_multilevel import batched_multilevel_meta_analysis

    frame = pd.read_csv(DATA / "curtis1998.csv").iloc[:20]
    codes = nested_structure(frame, ["paper", "id"]).codes
    counts = np.ones((3, len(frame)))
    counts[1] = 0  # nothing drawn (a resample of studies outside this table)
    counts[2] = (frame["paper"] == frame["paper"].iloc[0]).to_numpy()
    fit = batched_multilevel_meta_analysis(frame["yi"], frame["vi"], codes, counts)
    assert fit.valid[0] and not fit.valid[1]
    assert "fewer than 2 rows" in fit.reason[1] and np.isnan(fit.estimate[1])
    single = em.multilevel_meta_analysis(frame, random=["paper", "id"])
    assert abs(fit.estimate[0] - single.estimate) <= TOL


PERMUTATION = Path(__file__).resolve().parent / "reference" / "permutation_reference.json"


@pytest.mark.parametrize("case", ["intercept", "ablat"])
@pytest.mark.parametrize("method", ["REML", "DL"])
@pytest.mark.parametrize("test", ["z", "knha"])
def test_exact_permutation_test_equals_metafor_permutest(case, method, test):
    """metafor 3.8.1 permutest(exact = TRUE) on dat.bcg: the 2^10 sign patterns of trials
    1-10 (no moderators) and the 360 distinct row permutations of trials 1-6 (~ ablat). The p-values
    are counts over the same permutations, so they must agree exactly (1e-12)."""
    import json

    from evmeta.models.frequentist.permutation import permutation_test

    reference = json.loads(PERMUTATION.read_text())
    bcg = pd.DataFrame(reference["bcg"])
    expected = reference["cases"][f"{case} {method} {test}"]
    if case == "intercept":
        fit = em.meta_analysis(bcg.iloc[:10], method=method, test=test)
    else:
        fit = em.meta_analysis(bcg.iloc[:6], mods="~ ablat", method=method, test=test)
    np.testing.assert_allclose(fit.coefficients["stat"], expected["zval"], rtol=1e-6)
    result = permutation_test(fit, exact=True)
    assert result.exact and result.failed == 0
    np.testing.assert_allclose(
        result.coefficients["pvalue_perm"], np.atleast_1d(expected["perm_pval"]), atol=1e-12
    )
    if case == "ablat":
        assert abs(result.qm_pvalue_perm - expected["perm_QMp"]) <= 1e-12
        assert result.permutations == 360  # two of the six trials share a latitude: 6! / 2!


def test_random_permutations_start_from_the_data_and_approach_the_exact_test():
    from evmeta.models.frequentist.permutation import permutation_test

    frame = pd.read_csv(DATA / "curtis1998.csv").iloc[:14]
    fit = em.meta_analysis(frame, mods="~ time", method="REML")
    exact_intercept = permutation_test(em.meta_analysis(frame.iloc[:10]), exact=True)
    assert exact_intercept.permutations == 1024
    random = permutation_test(fit, permutations=2000, seed=1)
    assert not random.exact and random.permutations + random.failed == 2000
    p = random.coefficients["pvalue_perm"].to_numpy()
    assert np.all((p >= 1 / 2000) & (p <= 1))  # the observed data are the first permutation
    again = permutation_test(fit, permutations=2000, seed=1)
    pd.testing.assert_frame_equal(random.coefficients, again.coefficients)
    with pytest.raises(ModelError, match="methods"):
        permutation_test(em.meta_analysis(frame, method="SJ"))


def test_identical_effect_sizes_with_roundoff_are_refused_as_the_single_fit_refuses_them():
    """Effect sizes equal up to rounding (0.1 + 0.2 vs 0.3) leave a Knapp-Hartung scale of
    ~1e-32, an SE of ~1e-16; the batched fit refuses it as :func:`evmeta.meta_analysis` does."""
    yi = np.array([[0.1 + 0.2, 0.3, 0.3, 0.3], [0.3, 0.5, 0.9, 0.2]])
    vi = np.array([0.1, 0.2, 0.15, 0.3])
    batch = batched_meta_analysis(yi, vi, method="REML", test="knha")
    assert list(batch.valid) == [False, True] and "residual variation" in batch.reason[0]
    with pytest.raises(ModelError, match="residual variation"):
        em.meta_analysis(yi=yi[0], vi=vi, method="REML", test="knha")
