"""Degenerate and extreme inputs: every model returns a valid fit or raises ModelError, never
hangs, never leaks LinAlgError / ZeroDivisionError / overflow warnings (issues #13, #17).

Hang tests run under a wall-clock limit (SIGALRM); a fit that loops forever fails the test
instead of stalling the suite.
"""

from __future__ import annotations

import contextlib
import signal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import evmeta as em


@contextlib.contextmanager
def time_limit(seconds: int):
    def stop(signum, frame):
        raise TimeoutError(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _valid_or_model_error(fit_function):
    """Run a fit; it must give finite estimates or raise ModelError (anything else fails)."""
    try:
        fit = fit_function()
    except em.ModelError as exc:
        assert str(exc)
        return None
    assert np.isfinite(fit.estimate) and np.isfinite(fit.se) and fit.se >= 0
    return fit


def test_one_study_one_experiment_three_arms_ends_with_boundary_notes():
    """Regression (#17a): this looped forever in the step-halving of Fisher scoring."""
    data = pd.DataFrame(
        {"study_id": ["S1"] * 3, "experiment_id": ["E1"] * 3, "yi": [0.3, 0.5, 0.9], "vi": [0.1, 0.2, 0.1]}
    )
    for method in ("REML", "ML"):
        with time_limit(20):
            fit = em.multilevel_meta_analysis(data, random=["study_id", "experiment_id"], method=method)
        assert fit.sigma2 == [0.0, 0.0]
        assert any("study_id" in note and "fixed at 0" in note for note in fit.notes)
        assert any("experiment_id" in note for note in fit.notes)
        # With both components at 0 the model is the common-effect model.
        common = em.meta_analysis(data, method="EE")
        assert fit.estimate == pytest.approx(common.estimate, abs=1e-10)
        assert fit.se == pytest.approx(common.se, abs=1e-10)
        assert "Note: sigma^2[study_id] is fixed at 0" in str(fit.summary())


def test_identical_studies_and_knapp_hartung_without_residual_variation():
    fit = em.meta_analysis(yi=[0.5] * 10, vi=[0.1] * 10)
    assert fit.estimate == pytest.approx(0.5) and fit.tau2 == 0.0 and fit.se == pytest.approx(np.sqrt(0.01))
    with pytest.raises(em.ModelError, match="Knapp-Hartung needs residual variation"):
        em.meta_analysis(yi=[0.5] * 5, vi=[0.1] * 5, test="knha")
    same = pd.DataFrame({"study": range(10), "yi": [0.5] * 10, "vi": [0.1] * 10})
    multi = em.multilevel_meta_analysis(same, random="study")
    assert multi.estimate == pytest.approx(0.5) and multi.sigma2 == [0.0]


@pytest.mark.parametrize("method", ["EE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB"])
@pytest.mark.parametrize(
    "yi, vi",
    [([0.1, 0.5, 0.3], [1e-300] * 3), ([0.1, 0.5, 0.3], [1e300] * 3), ([1e200, -1e200, 1e200], [0.1] * 3)],
)
def test_extreme_values_raise_model_error(method, yi, vi):
    with pytest.raises(em.ModelError, match="must lie within"):
        em.meta_analysis(yi=yi, vi=vi, method=method)


def test_extreme_values_in_the_other_engines():
    frame = pd.DataFrame({"s": [1, 1, 2, 2], "yi": [1e200, -1e200, 1.0, 2.0], "vi": [0.1] * 4})
    with pytest.raises(em.ModelError, match="must lie within"):
        em.multilevel_meta_analysis(frame, random="s")
    with pytest.raises(em.ModelError, match="must lie within"):
        em.bayesian_meta_analysis(yi=[0.1, 0.5, 0.3], vi=[1e-300] * 3, seed=1)


def test_near_extreme_values_still_fit_or_fail_cleanly():
    """Inside the accepted range numerical breakdown must still surface as ModelError."""
    rng = np.random.default_rng(0)
    for scale in (1e-90, 1e-40, 1e40, 1e90):
        yi = rng.normal(0, 1, 6) * np.sqrt(scale)
        vi = np.full(6, scale)
        for method in ("REML", "DL", "PM", "SJ"):
            _valid_or_model_error(
                lambda yi=yi, vi=vi, method=method: em.meta_analysis(yi=yi, vi=vi, method=method)
            )


def test_bad_bayesian_settings_give_clear_errors():
    with pytest.raises(em.ModelError, match="must be finite"):
        em.bayesian_meta_analysis(yi=[0.1, 0.5, 0.3], vi=[0.1] * 3, priors={"tau": "halfnormal(inf)"})
    with pytest.raises(em.ModelError, match="seed must be None or a whole number >= 0"):
        em.bayesian_meta_analysis(yi=[0.1, 0.5, 0.3], vi=[0.1] * 3, seed=-1)
    with pytest.raises(em.ModelError, match=r"exceeds the limit of 1,000,000 posterior draws"):
        em.bayesian_meta_analysis(yi=[0.1, 0.5, 0.3], vi=[0.1] * 3, draws=200_000_000, chains=16)
    with pytest.raises(em.ModelError, match="chains=100 exceeds the limit of 64"):
        em.bayesian_meta_analysis(yi=[0.1, 0.5, 0.3], vi=[0.1] * 3, chains=100, draws=10)
    with pytest.raises(em.ModelError, match="draws must be a whole number"):
        em.bayesian_meta_analysis(yi=[0.1, 0.5, 0.3], vi=[0.1] * 3, draws=2.5)


@st.composite
def nestings(draw):
    """Small random nestings: 1-3 groups per level, k 2-8, one or two levels, maybe a moderator."""
    k = draw(st.integers(2, 8))
    studies = draw(st.lists(st.integers(0, 2), min_size=k, max_size=k))
    experiments = draw(st.lists(st.integers(0, 2), min_size=k, max_size=k))
    yi = draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(0.01, 2, allow_nan=False), min_size=k, max_size=k))
    levels = draw(st.sampled_from([["study"], ["study", "experiment"]]))
    method = draw(st.sampled_from(["REML", "ML"]))
    frame = pd.DataFrame({"study": studies, "experiment": experiments, "yi": yi, "vi": vi, "x": np.arange(k)})
    mods = draw(st.sampled_from([None, "~ x"]))
    return frame, levels, method, mods


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nestings())
def test_fuzz_multilevel_ends_with_a_fit_or_model_error(case):
    frame, levels, method, mods = case
    with time_limit(10):
        fit = _valid_or_model_error(
            lambda: em.multilevel_meta_analysis(frame, random=levels, method=method, mods=mods)
        )
    if fit is not None:
        assert all(s >= 0 for s in fit.sigma2)
        assert fit.converged
        # The estimate is a (boundary-constrained) local maximum: no nearby admissible point
        # of the free components has a higher likelihood.
        sigma2 = np.asarray(fit.sigma2)
        best = _loglik(fit, sigma2)
        assert best == pytest.approx(fit.log_likelihood, rel=1e-10, abs=1e-10)
        free = [
            i for i, name in enumerate(fit.random) if not any(f"[{name}] is fixed" in n for n in fit.notes)
        ]
        for i in free:
            for delta in (-0.05, 0.05):
                nearby = sigma2.copy()
                nearby[i] = max(0.0, sigma2[i] + delta * max(sigma2[i], 0.01))
                assert _loglik(fit, nearby) <= best + 1e-8 * max(1.0, abs(best))


def _loglik(fit, sigma2: np.ndarray) -> float:
    from evmeta.models.frequentist.blocks import evaluate, log_likelihood

    return log_likelihood(evaluate(fit.batches, fit.yi, fit.X, sigma2), fit.X, fit.method == "REML")
