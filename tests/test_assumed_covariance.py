"""sampling_covariance: metafor vcalc parity (rho between outcomes/observations, phi between
time points) on real data, rma.mv(yi, V, ...) parity of the multilevel model with that V,
and the refusals (singular or inconsistent correlations, missing values)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.errors import InputError
from evmeta.harmonize.assumed_covariance import sampling_covariance
from evmeta.models import multilevel_meta_analysis
from tests.conftest import DATA, ROOT

REFERENCE = json.loads((ROOT / "tests/reference/aggregate_vcalc.json").read_text())
#: vcalc is a closed form (products of correlations and standard deviations): equal in
#: floating point up to rounding, so 1e-8 relative leaves four orders of magnitude to spare.
CLOSED_FORM = 1e-8


def ishak() -> pd.DataFrame:
    return pd.read_csv(DATA / "correlated/ishak2007_long.csv")


def assink() -> pd.DataFrame:
    return pd.read_csv(DATA / "correlated/assink2016.csv")


def berkey() -> pd.DataFrame:
    return pd.read_csv(DATA / "correlated/berkey1998.csv")


def test_time_points_phi_matches_vcalc():
    """dat.ishak2007: up to four follow-ups of the same patients, phi = 0.9 per time unit."""
    V = sampling_covariance(ishak(), "study", time="time", phi=0.9)
    np.testing.assert_allclose(V, np.array(REFERENCE["ishak"]["V_phi09"]), rtol=CLOSED_FORM, atol=1e-14)


def test_observations_rho_matches_vcalc():
    V = sampling_covariance(assink(), "study", obs="esid", rho=0.6)
    np.testing.assert_allclose(V, np.array(REFERENCE["assink"]["V_obs_rho06"]), rtol=CLOSED_FORM, atol=1e-14)


def test_outcome_and_obs_rho_pair_matches_vcalc():
    """rho = (0.7 within a delinquency type, 0.5 between types), as metafor's help page."""
    V = sampling_covariance(assink(), "study", obs="esid", outcome="deltype", rho=(0.7, 0.5))
    np.testing.assert_allclose(
        V, np.array(REFERENCE["assink"]["V_type_obs_rho07_05"]), rtol=CLOSED_FORM, atol=1e-14
    )


def test_outcome_and_time_rho_phi_matches_vcalc():
    """Different outcomes at different (non-integer) times: rho * phi ** |t1 - t2|."""
    table = assink().assign(t=lambda d: d["esid"] / 2)
    V = sampling_covariance(table, "study", outcome="deltype", time="t", rho=0.5, phi=0.8)
    np.testing.assert_allclose(
        V, np.array(REFERENCE["assink"]["V_type_time_rho05_phi08"]), rtol=CLOSED_FORM, atol=1e-14
    )


def test_two_outcomes_matches_vcalc():
    V = sampling_covariance(berkey(), "trial", outcome="outcome", rho=0.5)
    np.testing.assert_allclose(V, np.array(REFERENCE["berkey"]["V_type_rho05"]), rtol=CLOSED_FORM, atol=1e-14)


def test_subgroups_are_independent():
    t = pd.DataFrame({"e": ["x"] * 3, "arm": ["a", "a", "b"], "o": ["p", "q", "p"], "vi": [1.0, 4.0, 9.0]})
    V = sampling_covariance(t, "e", subgroup="arm", outcome="o", rho=0.5)
    assert V[0, 1] == pytest.approx(0.5 * 2.0)
    assert V[0, 2] == 0.0 and V[1, 2] == 0.0


# rma.mv is iterative: both optima agree in log-likelihood to ~1e-12, but the REML surface is
# flat there, so variance components differ by up to ~1e-6 relative (a change that moves the
# log-likelihood by ~1e-12). Hence: log-likelihood 1e-8 relative (the closed-form check of
# the objective), coefficients and SEs 1e-6, variance components 1e-5.
RMA_MV = [
    ("ishak", "rma_mv_study", None, ["study"]),
    ("ishak", "rma_mv_study_esid", None, ["study", "esid"]),
    ("ishak", "rma_mv_time_mods", "~ time_f", ["study"]),
    ("assink", "rma_mv_study_esid", None, ["study", "esid"]),
    ("berkey", "rma_mv_outcome", "~ outcome", ["trial"]),
]


@pytest.mark.parametrize(("data", "key", "mods", "random"), RMA_MV)
def test_multilevel_with_assumed_V_matches_rma_mv(data, key, mods, random):
    if data == "ishak":
        table = ishak().assign(time_f=lambda d: d["time"].astype(str))
        V = sampling_covariance(table, "study", time="time", phi=0.9)
    elif data == "assink":
        table = assink()
        V = sampling_covariance(table, "study", obs="esid", outcome="deltype", rho=(0.7, 0.5))
    else:
        table, V = berkey(), np.array(REFERENCE["berkey"]["V"])  # the reported covariances
    fit = multilevel_meta_analysis(table, mods=mods, random=random, V=V)
    ref = REFERENCE[data][key]
    assert fit.log_likelihood == pytest.approx(ref["logLik"], rel=1e-8)
    coefs = fit.coef_table()
    np.testing.assert_allclose(coefs["estimate"], ref["beta"], rtol=1e-6)
    np.testing.assert_allclose(coefs["se"], ref["se"], rtol=1e-6)
    np.testing.assert_allclose(np.atleast_1d(fit.sigma2), ref["sigma2"], rtol=1e-5)


def test_public_name():
    assert em.harmonize.sampling_covariance is sampling_covariance


def test_same_outcome_and_time_is_refused_with_the_rows():
    """Two arms on the same outcome and time, without subgroup=, would be correlated 1."""
    t = pd.DataFrame({"e": ["x", "x"], "o": ["p", "p"], "vi": [1.0, 2.0]}, index=[10, 11])
    with pytest.raises(InputError, match=r"rows 10 and 11 get correlation 1"):
        sampling_covariance(t, "e", outcome="o", rho=0.5)


def test_rho_one_is_refused():
    t = pd.DataFrame({"e": ["x", "x"], "o": ["p", "q"], "vi": [1.0, 2.0]})
    with pytest.raises(InputError, match="singular"):
        sampling_covariance(t, "e", outcome="o", rho=1.0)


def test_inconsistent_correlations_are_refused():
    """rho = -0.9 between three outcomes cannot hold (needs rho > -1/2)."""
    t = pd.DataFrame({"e": ["x"] * 3, "o": ["p", "q", "r"], "vi": [1.0, 1.0, 1.0]})
    with pytest.raises(InputError, match="not positive definite"):
        sampling_covariance(t, "e", outcome="o", rho=-0.9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": "o"}, "rho is needed"),
        ({"time": "t"}, "phi is needed"),
        ({"time": "t", "phi": 1.5}, "phi must be"),
        ({"outcome": "o", "rho": (0.5, 0.2)}, "one correlation"),
        ({"outcome": "o", "obs": "o", "rho": 0.5}, "within, between"),
        ({"outcome": "nope", "rho": 0.5}, "not a column"),
    ],
)
def test_bad_arguments(kwargs, message):
    t = pd.DataFrame({"e": ["x", "x"], "o": ["p", "q"], "t": [1.0, 2.0], "vi": [1.0, 2.0]})
    with pytest.raises(InputError, match=message):
        sampling_covariance(t, "e", **kwargs)


def test_missing_time_and_bad_variance_are_named():
    t = pd.DataFrame({"e": ["x", "x"], "t": [1.0, None], "vi": [1.0, 2.0]})
    with pytest.raises(InputError, match="no value in row"):
        sampling_covariance(t, "e", time="t", phi=0.5)
    with pytest.raises(InputError, match="vi must be positive"):
        sampling_covariance(t.assign(vi=[1.0, 0.0]), "e")
