"""Three-level REML converges wherever metafor's rma.mv does (issue 22).

Data sets are simulated from the example's design (tests/example_design_sim.py). Before
the quasi-Newton fallback, Fisher scoring alone failed on about 1 in 60 of them (five of
the first 300 with moderators): most studies have one experiment, so the study and
experiment variances trade off along a ridge and scoring zig-zags.

Reference: tests/reference/multilevel_convergence.json, rma.mv (REML) on 30 of the data
sets (effect sizes in multilevel_convergence_yi.csv), written by
tests/reference/multilevel_convergence.R. Tolerances: evmeta's restricted log-likelihood
is at least metafor's minus 1e-9 (the same optimum or a better one) and within 1e-6 of it;
the variance components agree to 1e-5 absolute, because the likelihood is flat along the
ridge and metafor's nlminb, with its default tolerances where the tight ones fail, stops
within ~3e-6 of the optimum there (its log-likelihood is then ~1e-8 lower).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from tests.conftest import ROOT
from tests.example_design_sim import DESIGN, EFFECTS, MODS, RANDOM, simulate

REF = json.loads((ROOT / "tests" / "reference" / "multilevel_convergence.json").read_text())
YI = pd.read_csv(ROOT / "tests" / "reference" / "multilevel_convergence_yi.csv")
HARD = ["66", "69", "101", "105", "193"]  # Fisher scoring alone did not converge on these


def _reference_data(seed: str) -> pd.DataFrame:
    frame = DESIGN.assign(yi=YI[f"y{seed}"])
    frame["isolation_method"] = pd.Categorical(frame["isolation_method"], categories=list(EFFECTS))
    return frame


def _check_against_metafor(seeds: list[str]) -> None:
    for seed in seeds:
        data = _reference_data(seed)
        for key, mods in (("intercept", None), ("mods", MODS)):
            fit = em.multilevel_meta_analysis(data, random=RANDOM, mods=mods)
            ref = REF["fits"][seed][key]
            assert fit.converged
            assert fit.log_likelihood >= ref["loglik"] - 1e-9, (seed, key)
            assert fit.log_likelihood == pytest.approx(ref["loglik"], abs=1e-6), (seed, key)
            np.testing.assert_allclose(fit.sigma2, ref["sigma2"], atol=1e-5, err_msg=f"{seed} {key}")
            np.testing.assert_allclose(fit.coefficients["estimate"], ref["beta"], atol=1e-4)


def test_the_reference_data_are_the_simulator_s():
    for seed in ("66", "0"):
        np.testing.assert_allclose(simulate(int(seed))["yi"], YI[f"y{seed}"], rtol=1e-15)


def test_hard_data_sets_reach_metafor_s_optimum():
    _check_against_metafor(HARD)


@pytest.mark.slow
def test_thirty_data_sets_reach_metafor_s_optimum():
    _check_against_metafor(list(REF["fits"]))


def _converge_all(seeds: range, mods: str | None) -> None:
    for seed in seeds:
        fit = em.multilevel_meta_analysis(simulate(seed), random=RANDOM, mods=mods)
        assert fit.converged and np.all(np.isfinite(fit.sigma2)), seed


def test_fifty_simulated_data_sets_converge():
    _converge_all(range(60, 110), MODS)  # contains 66, 69, 101 and 105


@pytest.mark.slow
@pytest.mark.parametrize("mods", [None, MODS])
def test_five_hundred_simulated_data_sets_converge(mods):
    _converge_all(range(500), mods)
