"""The FitResult protocol (issue 21): every result type satisfies it, is frozen, prints its
summary and speaks one vocabulary; metafor habits (issue 22 item 9); small-data sentences
for the bias methods (issue 29).

confint() is checked against tests/reference/confint_reference.json (metafor's confint,
written by tests/reference/confint_reference.R): coefficient intervals to 1e-6 relative
(tau^2 agrees to ~1e-9), Q-profile bounds to 1e-6 (both solve the same equation to ~1e-12),
profile-likelihood bounds of rma.mv to 1e-5 relative (metafor's uniroot run at tol 1e-12,
our brentq at 1e-10 on sigma^2 of order 0.01-0.2; the inner maximizations agree to ~1e-9).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.models import FitResult
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "metafor_reference.json").read_text())
CONFINT = json.loads((ROOT / "tests" / "reference" / "confint_reference.json").read_text())
BCG = pd.DataFrame(REF["bcg"])
K11 = pd.DataFrame(REF["konstantopoulos"])


@pytest.fixture(scope="module")
def results():
    pooled = em.meta_analysis(BCG)
    grouped = BCG.assign(group=np.arange(len(BCG)) % 2, study=np.arange(len(BCG)) // 2)
    return {
        "meta": pooled,
        "robust meta": em.meta_analysis(grouped, mods="~ ablat", inference="CR2", cluster="study"),
        "multilevel": em.multilevel_meta_analysis(K11, random=["district", "school"]),
        "robust multilevel": em.multilevel_meta_analysis(K11, random=["district", "school"], robust=True),
        "bayes quadrature": em.bayesian_meta_analysis(BCG, seed=1),
        "subgroup": em.subgroup_analysis(grouped, "group"),
        "egger": em.models.egger_test(pooled),
        "trim and fill": em.models.trim_and_fill(pooled),
        "pet-peese": em.models.pet_peese(pooled),
        "selection": em.models.selection_model(pooled, alternative="less"),
        "bias averaging": em.models.bias_model_averaging(BCG),
        "bias averaging with a moderator": em.models.bias_model_averaging(BCG, mods="~ alloc"),
    }


def test_every_result_type_is_a_fit_result(results):
    for name, result in results.items():
        assert isinstance(result, FitResult), name
        assert 0 < result.level < 1 and result.k >= 13, name
        assert result.inputs.k == result.k and len(result.inputs.yi) == result.k, name
        assert set(result.coef_table().columns[[0, 2, 3]]) == {"estimate", "ci_low", "ci_high"}, name
        assert result.heterogeneity_table().index.name == "component", name
        assert isinstance(result.to_frame(), pd.DataFrame) and len(result.to_frame()), name
        assert str(result) == str(result.summary()) == repr(result), name  # print(fit) = summary
    assert not isinstance(BCG, FitResult)


def test_every_result_refuses_attribute_assignment(results):
    for name, result in results.items():
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.level = 0.5
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.notes = ("changed",)
        assert dataclasses.is_dataclass(result), name


def test_predict_gives_the_protocol_columns(results):
    for name, result in results.items():
        table = result.predict(level=0.9)
        spread = (
            "posterior_sd"
            if name in {"bayes quadrature", "bias averaging", "bias averaging with a moderator"}
            else "se"
        )
        assert list(table.columns[:6]) == ["pred", spread, "ci_low", "ci_high", "pi_low", "pi_high"], name
        assert (table["ci_low"] <= table["pred"]).all() and (table["pred"] <= table["ci_high"]).all(), name


def test_one_vocabulary(results):
    """The p-value is ``pvalue``; the Bayesian spread says it is a posterior SD."""
    for name in ("meta", "multilevel", "egger", "pet-peese", "selection"):
        assert "pvalue" in results[name].coef_table().columns, name
    bayes = results["bayes quadrature"].coef_table()
    assert "posterior_sd" in bayes.columns and "se" not in bayes.columns
    assert "posterior_sd" in results["bias averaging"].coef_table().columns


def test_scalars_are_derived_from_the_stored_coefficients(results):
    fit = results["robust meta"]
    assert fit.se == fit.coefficients["se"].iloc[0] and fit.pvalue == fit.coefficients["pvalue"].iloc[0]
    pooled = results["meta"]
    assert pooled.pi_low == pytest.approx(pooled.predict().iloc[0]["pi_low"], rel=1e-15)
    fields = {f.name for f in dataclasses.fields(pooled)}
    assert not {"estimate", "se", "ci_low", "pi_low", "measure", "tau"} & fields


def test_no_deprecation_shims():
    fit = em.meta_analysis(BCG)
    with pytest.raises(AttributeError):
        fit.summary().tabel  # noqa: B018
    with pytest.raises(TypeError):
        fit.predict(newdata=[[1.0]])
    with pytest.raises(TypeError):
        fit.coef_table(conf_level=0.9)


def test_rr_measure_is_the_same_in_all_three_engines():
    """Regression: with attrs['measure'] = 'RR' the Bayesian intercept prior was normal(0, 3.469)."""
    data = BCG.copy()
    data.attrs["measure"] = "RR"
    data = data.assign(study=np.arange(len(data)) // 2)
    fits = [
        em.meta_analysis(data),
        em.multilevel_meta_analysis(data, random=["study"]),
        em.bayesian_meta_analysis(data, seed=1),
    ]
    assert [fit.measure for fit in fits] == ["RR", "RR", "RR"]
    assert fits[2].priors["intercept"] == "normal(0, 5)"
    column = data.assign(measure="RR")
    column.attrs = {}
    assert em.bayesian_meta_analysis(column, seed=1).priors["intercept"] == "normal(0, 5)"


def test_metafor_spellings():
    knha = em.meta_analysis(BCG, mods="~ ablat", test="knha")
    t = em.meta_analysis(BCG, mods="~ ablat", test="t", level=95)
    assert t.test == "knha" and t.level == 0.95
    pd.testing.assert_frame_equal(t.coefficients, knha.coefficients)
    assert em.meta_analysis(BCG, method="FE").method == "EE"
    for bad in (0, 100, -5, "x"):
        with pytest.raises(em.ModelError, match="level must"):
            em.meta_analysis(BCG, level=bad)
    formula = em.multilevel_meta_analysis(K11, random="~ 1 | district/school")
    listed = em.multilevel_meta_analysis(K11, random=["district", "school"])
    assert formula.random == ["district", "school"] and formula.sigma2 == listed.sigma2
    bayes = em.bayesian_meta_analysis(K11, random="~ 1 | district/school", seed=1)
    assert bayes.levels == ["district", "school"]
    with pytest.raises(em.ModelError, match="nested random intercepts"):
        em.multilevel_meta_analysis(K11, random="~ year | district")
    assert em.multilevel_meta_analysis(K11, random=["district", "school"], test="knha").test == "t"


def test_confint_matches_metafor():
    uni = em.meta_analysis(BCG).confint(90)
    ref = CONFINT["uni90"]
    np.testing.assert_allclose(uni.loc["intercept"].to_numpy(float), ref["fixed"], rtol=1e-6)
    for ours, theirs in [("tau2", "tau2"), ("tau", "tau"), ("i2", "i2"), ("h2", "h2")]:
        np.testing.assert_allclose(uni.loc[ours].to_numpy(float), ref[theirs], rtol=1e-6)
    ml = em.multilevel_meta_analysis(K11, random=["district", "school"]).confint()
    ref = CONFINT["multilevel"]
    for level in ("district", "school"):
        np.testing.assert_allclose(ml.loc[f"sigma2[{level}]"].to_numpy(float), ref[level], rtol=1e-5)
        np.testing.assert_allclose(
            ml.loc[f"sigma[{level}]"].to_numpy(float), ref[f"{level}_sigma"], rtol=1e-5
        )
    het = em.multilevel_meta_analysis(K11, random=["district", "school"]).heterogeneity_table()
    np.testing.assert_allclose(
        het.loc["school", ["ci_low", "ci_high"]].to_numpy(float), ref["school_sigma"][1:], rtol=1e-5
    )


def test_pet_peese_with_equal_variances_is_a_sentence():
    """Regression (issue 29): KeyError: 0."""
    fit = em.meta_analysis(yi=np.linspace(0.1, 1.0, 10), vi=np.full(10, 0.2))
    result = em.models.pet_peese(fit)
    assert result.selected == "none" and np.isnan(result.estimate)
    assert "same variance" in result.notes[0] and "same variance" in str(result)
    with pytest.raises(em.ModelError, match="same sei"):
        em.models.egger_test(fit)


def test_bias_averaging_notes_unidentified_pet_peese():
    ten = em.models.bias_model_averaging(yi=np.full(10, 0.5), vi=np.full(10, 0.1))
    assert any("PET and PEESE are unidentified" in note for note in ten.notes)
    assert not em.models.bias_model_averaging(BCG).notes


def test_funnel_methods_carry_the_small_k_caveat():
    small = em.meta_analysis(BCG.iloc[:6])
    for result in (em.models.egger_test(small), em.models.trim_and_fill(small), em.models.pet_peese(small)):
        assert any("k = 6" in note and "fewer than 10" in note for note in result.notes)
    assert em.models.egger_test(em.meta_analysis(BCG)).notes == ()


def test_isolation_evidence_says_which_rows_it_left_out():
    rows = []
    for s, methods in enumerate([("UC", "SEC"), ("UC", "SEC"), ("UC",), ("SEC",), ("UC", None)]):
        for e, m in enumerate(methods):
            rows.append(
                {
                    "study_id": f"S{s}",
                    "experiment_id": f"S{s}E{e}",
                    "isolation_method": m,
                    "comparison_id": f"C{s}{e}",
                    "yi": 0.3 * s + 0.2 * e,
                    "vi": 0.1,
                }
            )
    table = em.models.isolation_method_evidence(pd.DataFrame(rows), reference="UC")
    (note,) = table.attrs["notes"]
    assert "1 comparison(s) without an isolation method" in note and "C41" in note
