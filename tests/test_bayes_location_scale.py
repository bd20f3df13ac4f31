"""Bayesian location-scale model by exact quadrature (evmeta.models.bayes.location_scale).

Each level's posterior is checked against evmeta's independent quadrature engine for the
random-effects model (bayesian_meta_analysis(method="quadrature"), which integrates mu
numerically rather than in closed form) on that level's data, with the same priors:
posterior means and SDs to 1e-4 relative, credible limits to 2e-3 (interpolation of the
two grids' quantiles), the predictive probability to 1e-4. Contrasts are checked by their
exact symmetries (P(tau_a < tau_b) + P(tau_b < tau_a) = 1; identical data give 1/2)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import evmeta as em
from evmeta.models.bayes.location_scale import bayesian_location_scale
from tests.conftest import ROOT

DATA = pd.DataFrame(json.loads((ROOT / "tests" / "reference" / "location_scale.json").read_text())["data"])
PRIORS = {"intercept": "normal(0, 5)", "tau": "halfnormal(1)"}


@pytest.mark.parametrize("level", ["yes", "no"])
def test_each_level_matches_the_quadrature_engine(level):
    result = bayesian_location_scale(DATA, "meta", mu_prior="normal(0, 5)", tau_prior="halfnormal(1)")
    row = result.heterogeneity_table().set_index("meta").loc[level]
    bayes = em.bayesian_meta_analysis(
        DATA[DATA["meta"] == level], priors=PRIORS, method="quadrature", progress=False
    )
    table = bayes.summary().table
    assert row["mu_mean"] == pytest.approx(table.loc["intercept", "estimate"], rel=1e-4)
    assert row["mu_sd"] == pytest.approx(table.loc["intercept", "posterior_sd"], rel=1e-4)
    assert row["tau_mean"] == pytest.approx(table.loc["tau[comparison]", "estimate"], rel=1e-4)
    assert row["tau_sd"] == pytest.approx(table.loc["tau[comparison]", "posterior_sd"], rel=1e-4)
    assert row["tau_ci_low"] == pytest.approx(table.loc["tau[comparison]", "ci_low"], rel=2e-3, abs=1e-3)
    assert row["tau_ci_high"] == pytest.approx(table.loc["tau[comparison]", "ci_high"], rel=2e-3)
    ours = result.predict(0.2).set_index("meta").loc[level, "p_true_above"]
    assert ours == pytest.approx(bayes.predict(threshold=0.2)["p_true_above"].iloc[0], rel=1e-4)


def test_tau_contrasts_are_exact_probabilities():
    result = bayesian_location_scale(DATA, "meta")
    assert result.p_tau_less("yes", "no") + result.p_tau_less("no", "yes") == pytest.approx(1, abs=1e-6)
    # Level "no" (tau ~0.10) is more consistent than "yes" (tau ~0.34).
    assert result.p_tau_less("no", "yes") > 0.95
    twin = pd.concat([DATA.assign(meta="A"), DATA.assign(meta="B")])
    assert bayesian_location_scale(twin, "meta").p_tau_less("A", "B") == pytest.approx(0.5, abs=1e-6)
    assert len(result.tau_contrasts()) == 2 and result.k == len(DATA)


def test_errors_are_sentences():
    with pytest.raises(em.ModelError, match="normal prior"):
        bayesian_location_scale(DATA, "meta", mu_prior="halfnormal(1)")
    with pytest.raises(em.ModelError, match="not a level"):
        bayesian_location_scale(DATA, "meta").p_tau_less("SEC", "no")
    with pytest.raises(em.ModelError, match="column"):
        bayesian_location_scale(DATA, "isolation_method")
    with pytest.raises(em.ModelError, match="needs data"):
        bayesian_location_scale(None, "meta")
