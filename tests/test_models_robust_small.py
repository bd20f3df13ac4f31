"""Cluster-robust (CR2/HTZ) inference on small reviews: matches clubSandwich where CR2 is
defined, and falls back to model-based inference with a note where it is not (one study
per isolation method, a reference level from one study); robustness is an inference
setting that refits, subsets, leave-one-out, influence and subgroups keep.

Reference: tests/reference/robust_small.json, written by tests/reference/robust_small.R
(clubSandwich ``coef_test``/``Wald_test``, CR2, Satterthwaite, HTZ). Tolerance 1e-6
relative: tau^2 and the CR2 algebra agree to ~1e-9; the multilevel model's study-level
sigma^2 is 1e-8 in rma.mv and 0 here (both the boundary), which moves SEs by ~1e-8.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "robust_small.json").read_text())
SMALL = pd.DataFrame(REF["data"]).assign(
    isolation_method=lambda d: pd.Categorical(d["isolation_method"], ["SEC", "UC", "precipitation"])
)
TOL = dict(rtol=1e-6, atol=1e-9)


def _check(fit, ref):
    np.testing.assert_allclose(fit.coefficients["estimate"], ref["beta"], **TOL)
    np.testing.assert_allclose(fit.coefficients["se"], ref["se"], **TOL)
    np.testing.assert_allclose(fit.coefficients["df"], ref["df"], **TOL)
    np.testing.assert_allclose(fit.coefficients["pvalue"], ref["pval"], **TOL)
    np.testing.assert_allclose(
        [fit.qm, fit.qm_df[1], fit.qm_pvalue], [ref["F"], ref["df_denom"], ref["p"]], **TOL
    )
    assert fit.is_robust and fit.notes == ()


def test_cr2_matches_clubsandwich_on_a_small_review():
    uni = em.meta_analysis(SMALL, mods="~ isolation_method", inference="CR2", cluster="study_id")
    assert uni.tau2 == pytest.approx(REF["uni"]["tau2"], rel=1e-6)
    _check(uni, REF["uni"])
    ml = em.multilevel_meta_analysis(
        SMALL, random=["study_id", "experiment_id"], mods="~ isolation_method", inference="CR2"
    )
    _check(ml, REF["multilevel"])


def _one_study_per_method(seed: int = 0) -> pd.DataFrame:
    """Issue 22: three ultracentrifugation studies, SEC and precipitation from one study each."""
    rng = np.random.default_rng(seed)
    methods = {"S1": "UC", "S2": "UC", "S3": "UC", "S4": "SEC", "S5": "precipitation"}
    rows = [
        {"study_id": s, "experiment_id": f"{s}{e}", "isolation_method": m}
        for s, m in methods.items()
        for e in range(2 if m == "UC" else 1)
    ]
    frame = pd.DataFrame(rows)
    return frame.assign(yi=rng.normal(1, 0.5, len(frame)), vi=rng.uniform(0.1, 0.3, len(frame)))


@pytest.mark.parametrize("seed", range(6))
def test_one_study_per_level_falls_back_with_a_note(seed):
    """Before: SE 0.0000 and 'Test of moderators: 7.9e30' (or a LinAlgError in htz_test)."""
    data = _one_study_per_method(seed)
    model = em.meta_analysis(data, mods="~ isolation_method")
    for fit in (
        em.meta_analysis(data, mods="~ isolation_method", inference="CR2", cluster="study_id"),
        em.multilevel_meta_analysis(
            data, random=["study_id", "experiment_id"], mods="~ isolation_method", robust=True
        ),
    ):
        assert not fit.is_robust and fit.inference == "CR2"
        (note,) = fit.notes
        # The note names the moderator levels and the studies they rest on, and the reason.
        assert "isolation_method[T.precipitation]" in note and "study_id S5" in note
        assert "study_id S4" in note and "at least two study_id clusters" in note
        assert (fit.coefficients["se"] > 0.05).all() and fit.qm < 1e3
        assert note in str(fit.summary())
    fallback = em.meta_analysis(data, mods="~ isolation_method", inference="CR2", cluster="study_id")
    np.testing.assert_allclose(fallback.coefficients["se"], model.coefficients["se"], rtol=1e-12)


def test_reference_level_from_one_study_does_not_give_every_coefficient_the_same_se():
    """Reference level (SEC) from one study: every CR2 SE came from that study alone (all
    coefficients got the same SE, no warning). Now: model-based, with the reason."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "study_id": ["A", "A", "B", "C", "D", "E", "F", "G"],
            "isolation_method": [
                "SEC",
                "SEC",
                "UC",
                "UC",
                "UC",
                "precipitation",
                "precipitation",
                "precipitation",
            ],
        }
    ).assign(yi=rng.normal(1, 0.5, 8), vi=0.2)
    model = em.meta_analysis(frame, mods="~ isolation_method")
    fit = model.robust("study_id")
    assert not fit.is_robust
    assert "the intercept (the reference level)" in fit.notes[0] and "study_id A" in fit.notes[0]
    np.testing.assert_allclose(fit.coefficients["se"], model.coefficients["se"], rtol=1e-12)


def test_every_row_its_own_cluster_with_one_row_per_level():
    frame = pd.DataFrame({"m": ["a", "a", "a", "b", "c"], "yi": [0.1, 0.5, 0.3, 1.0, 0.2], "vi": 0.1})
    fit = em.meta_analysis(frame, mods="~ m", inference="CR2")
    assert not fit.is_robust and "row" in fit.notes[0]


def test_singular_htz_matrix_is_a_note_not_a_linalg_error():
    """Two clusters, three tested slopes: the CR2 covariance has rank 2 (before: an error
    from htz_test; the issue's run ended in LinAlgError: Singular matrix)."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"study_id": list("AAAAABBBBB"), "yi": rng.normal(size=10), "vi": 0.1})
    frame = frame.assign(**{f"x{j}": rng.normal(size=10) for j in (1, 2, 3)})
    fit = em.meta_analysis(frame, mods="~ x1 + x2 + x3", inference="CR2", cluster="study_id")
    assert not fit.is_robust and "singular" in fit.notes[0]
    assert np.all(fit.coefficients["se"] > 0) and np.isfinite(fit.qm)


def test_inference_is_a_setting_separate_from_test():
    """Regression: robust() set test='CR2', so refit() raised "unknown test 'CR2'"."""
    data = SMALL.assign(yi2=SMALL["yi"])
    fit = em.meta_analysis(data, mods="~ isolation_method", test="knha").robust("study_id")
    assert fit.test == "knha" and fit.inference == "CR2" and fit.cluster == "study_id"
    again = fit.refit()
    assert again.is_robust and again.test == "knha"
    np.testing.assert_allclose(again.coefficients["se"], fit.coefficients["se"], rtol=1e-12)
    assert not fit.refit(inference="model", cluster=None).is_robust
    part = fit.refit(rows=data.index[data["study_id"] != "S1"])
    assert part.is_robust and part.k == len(data) - 2
    direct = em.meta_analysis(data[data["study_id"] != "S1"], mods="~ isolation_method", test="knha").robust(
        "study_id"
    )
    np.testing.assert_allclose(part.coefficients["se"], direct.coefficients["se"], rtol=1e-12)


def test_leave_one_out_and_influence_keep_cr2():
    pooled = em.meta_analysis(SMALL, inference="CR2", cluster="study_id")
    loo = pooled.leave_one_out()
    for i in range(len(SMALL)):
        keep = np.arange(len(SMALL)) != i
        direct = em.meta_analysis(SMALL[keep], inference="CR2", cluster="study_id")
        assert direct.is_robust
        assert loo.loc[i, "se"] == pytest.approx(direct.se, rel=1e-12)
    model = em.meta_analysis(SMALL).leave_one_out()
    assert not np.allclose(loo["se"], model["se"])  # not silently model-based
    infl = pooled.influence()
    assert np.isfinite(infl["cook_d"]).all()


def test_subgroups_keep_cr2_and_say_where_it_fell_back():
    fit = em.meta_analysis(SMALL, inference="CR2", cluster="study_id")
    result = em.subgroup_analysis(SMALL, "isolation_method", **fit.settings)
    assert result.overall.is_robust and result.mixed.is_robust
    # SEC (3 studies) and UC (3 studies) are robust; precipitation has 2 studies of 2 rows.
    assert result.fits["SEC"].is_robust and result.fits["UC"].is_robust
    for sub in result.fits.values():
        assert sub.inference == "CR2" and (sub.is_robust or sub.notes)


def test_multilevel_refit_and_subset_keep_cr2():
    fit = em.multilevel_meta_analysis(
        SMALL, random=["study_id", "experiment_id"], mods="~ isolation_method", robust=True
    )
    again = fit.refit()
    assert again.is_robust and again.test == "z"
    np.testing.assert_allclose(again.coefficients["se"], fit.coefficients["se"], rtol=1e-10)
    pooled = fit.refit(mods=None)
    assert pooled.is_robust and pooled.inference == "CR2"


def test_unknown_inference_is_a_clear_error():
    with pytest.raises(em.ModelError, match="unknown inference 'sandwich'; valid: model, CR2"):
        em.meta_analysis(SMALL, inference="sandwich")
    with pytest.raises(em.ModelError, match="inference='CR2'"):
        em.meta_analysis(SMALL, cluster="study_id")


def test_forest_by_subgroup_of_a_robust_fit_keeps_cr2():
    """Regression: forest_plot(robust_fit, by=...) raised "unknown test 'CR2'"."""
    import matplotlib

    matplotlib.use("Agg")
    fit = em.meta_analysis(SMALL, inference="CR2", cluster="study_id")
    figure = em.forest_plot(fit, by="isolation_method")
    assert figure is not None
