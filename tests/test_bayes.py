"""Bayesian engine, exact path: quadrature against independent brute-force integration.

Tolerances: the brute force integrates the same posterior on fine uniform grids with
Simpson weights (error of order h^4, below 1e-6 here), so moments must agree to 1e-4;
quantiles from a grid CDF carry interpolation error of order h^2 and are compared at 1e-3.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.integrate import simpson

import evmeta as em
from tests.conftest import ROOT

REF = json.loads((ROOT / "tests" / "reference" / "metafor_reference.json").read_text())
BCG = pd.DataFrame(REF["bcg"])
TRUTH = json.loads((ROOT / "extraction" / "example_truth.json").read_text())


def _simpson_axis(n: int) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4, 2
    return w / 3


def test_one_level_matches_brute_force_grid():
    fit = em.bayesian_meta_analysis(BCG, seed=3, priors={"intercept": "normal(0, 5)", "tau": "halfnormal(2)"})
    assert fit.method_used == "quadrature"
    mu = np.linspace(-3.5, 2.0, 2201)
    tau = np.linspace(0.0, 3.5, 1401)
    M, T = np.meshgrid(mu, tau, indexing="ij")
    log_post = stats.norm.logpdf(M, 0, 5) + stats.halfnorm.logpdf(T, 0, 2)
    for y, v in zip(BCG["yi"], BCG["vi"], strict=True):
        log_post += stats.norm.logpdf(y, M, np.sqrt(v + T**2))
    weight = np.exp(log_post - log_post.max()) * np.outer(_simpson_axis(len(mu)), _simpson_axis(len(tau)))
    weight /= weight.sum()
    brute = {"intercept": M, "tau[comparison]": T}
    summary = fit.summary().table
    for name, grid in brute.items():
        mean = float(np.sum(weight * grid))
        sd = float(np.sqrt(np.sum(weight * grid**2) - mean**2))
        assert summary.loc[name, "estimate"] == pytest.approx(mean, abs=1e-4)
        assert summary.loc[name, "posterior_sd"] == pytest.approx(sd, abs=1e-4)
    density = np.exp(log_post - log_post.max())
    marginal_mu = simpson(density, x=tau, axis=1)
    cdf = np.concatenate([[0], np.cumsum((marginal_mu[1:] + marginal_mu[:-1]) / 2 * np.diff(mu))])
    cdf /= cdf[-1]
    lower, upper = np.interp([0.025, 0.975], cdf, mu)
    assert summary.loc["intercept", "ci_low"] == pytest.approx(lower, abs=1e-3)
    assert summary.loc["intercept", "ci_high"] == pytest.approx(upper, abs=1e-3)
    # Savage-Dickey: posterior density of mu at 0 over the prior density at 0.
    posterior_at_zero = np.interp(0.0, mu, marginal_mu / simpson(marginal_mu, x=mu))
    bf = fit.bayes_factor("intercept")
    assert bf["bf01"] == pytest.approx(posterior_at_zero / stats.norm.pdf(0, 0, 5), rel=1e-3)
    assert bf["method"] == "exact"


def _two_level_data(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for study in range(7):
        u = rng.normal(0, 0.6)
        for experiment in range(rng.integers(1, 4)):
            w = rng.normal(0, 0.4)
            for _ in range(rng.integers(1, 4)):
                x = rng.uniform(0, 1)
                v = rng.uniform(0.05, 0.4)
                rows.append(
                    {
                        "study": f"S{study}",
                        "experiment": f"E{experiment}",
                        "x": x,
                        "vi": v,
                        "yi": 1.0 + 0.8 * x + u + w + rng.normal(0, np.sqrt(v)),
                    }
                )
    return pd.DataFrame(rows)


def test_two_level_matches_dense_brute_force():
    """Sherman-Morrison group sums and the adaptive grid against dense matrices on a fine grid."""
    data = _two_level_data()
    priors = {"intercept": "normal(0, 3)", "coefficients": "normal(0, 2)", "tau": "halfnormal(1)"}
    fit = em.bayesian_meta_analysis(data, mods="~ x", random=["study", "experiment"], priors=priors, seed=1)
    assert fit.method_used == "quadrature"
    y, v = data["yi"].to_numpy(), data["vi"].to_numpy()
    X = np.column_stack([np.ones(len(y)), data["x"]])
    same_study = (data["study"].to_numpy()[:, None] == data["study"].to_numpy()[None, :]).astype(float)
    key = (data["study"] + "/" + data["experiment"]).to_numpy()
    same_experiment = (key[:, None] == key[None, :]).astype(float)
    prior_cov = np.diag([9.0, 4.0])
    n = 161
    axis = np.linspace(0, 4.0, n)
    mean_acc = np.zeros(2)
    second_acc = np.zeros((2, 2))
    tau_acc = np.zeros(2)
    tau2_acc = np.zeros(2)
    total = 0.0
    logs = np.empty((n, n))
    cache = {}
    for i, ts in enumerate(axis):
        for j, te in enumerate(axis):
            marginal_cov = np.diag(v) + ts**2 * same_study + te**2 * same_experiment
            full = marginal_cov + X @ prior_cov @ X.T
            logs[i, j] = (
                stats.multivariate_normal(np.zeros(len(y)), full).logpdf(y)
                + stats.halfnorm.logpdf(ts, 0, 1)
                + stats.halfnorm.logpdf(te, 0, 1)
            )
            inverse = np.linalg.inv(marginal_cov)
            precision = X.T @ inverse @ X + np.linalg.inv(prior_cov)
            cov = np.linalg.inv(precision)
            cache[i, j] = (cov @ (X.T @ inverse @ y), cov)
    weights = np.exp(logs - logs.max()) * np.outer(_simpson_axis(n), _simpson_axis(n))
    for (i, j), (m, c) in cache.items():
        w = weights[i, j]
        total += w
        mean_acc += w * m
        second_acc += w * (c + np.outer(m, m))
        tau_acc += w * np.array([axis[i], axis[j]])
        tau2_acc += w * np.array([axis[i], axis[j]]) ** 2
    mean = mean_acc / total
    sd = np.sqrt(np.diag(second_acc / total) - mean**2)
    tau_mean = tau_acc / total
    tau_sd = np.sqrt(tau2_acc / total - tau_mean**2)
    summary = fit.summary().table
    np.testing.assert_allclose(summary.loc[["intercept", "x"], "estimate"], mean, atol=1e-4)
    np.testing.assert_allclose(summary.loc[["intercept", "x"], "posterior_sd"], sd, atol=1e-4)
    np.testing.assert_allclose(
        summary.loc[["tau[study]", "tau[experiment]"], "estimate"], tau_mean, atol=1e-3
    )
    np.testing.assert_allclose(
        summary.loc[["tau[study]", "tau[experiment]"], "posterior_sd"], tau_sd, atol=1e-3
    )


def test_recovers_the_example_effects_as_coverage_over_seeds():
    """Calibration, not one lucky data set: on the example's design (studies, experiments,
    isolation methods, quality scores, sampling variances) data are simulated 20 times from
    the example's generating model (example_truth.json: reference mean, isolation effects,
    quality slope, tau_study, tau_experiment; the dose term, not in the fitted model, left
    out), refitted, and the 95% credible intervals of the 5 isolation contrasts and the
    quality slope are checked. 120 intervals at 95% coverage: fewer than 102 covered has
    probability < 1e-4 for independent intervals (binomial), so the bound tolerates their
    correlation within a seed. The contrast SEC - UC from the pairwise table matches its
    coefficient, and P(> 0) matches the share of exact draws above 0."""
    book = em.read_extraction(ROOT / "extraction" / "example.xlsx")
    design = em.build_comparisons(book).table
    levels = ["UC", *sorted(m for m in design["isolation_method"].unique() if m != "UC")]
    design["isolation_method"] = pd.Categorical(design["isolation_method"], categories=levels)
    effects = TRUTH["isolation_effects"]
    fixed = (
        TRUTH["mu_reference_UC"]
        + design["isolation_method"].astype(str).map(effects).to_numpy()
        + TRUTH["quality_slope"] * (design["quality_score"].to_numpy() - TRUTH["quality_centre"])
    )
    studies = pd.factorize(design["study_id"])[0]
    experiments = pd.factorize(design["study_id"].astype(str) + "/" + design["experiment_id"].astype(str))[0]
    wanted = {f"isolation_method[T.{m}]": effects[m] for m in levels[1:]}
    wanted["quality_score"] = TRUTH["quality_slope"]
    covered = total = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        y = (
            fixed
            + rng.normal(0, TRUTH["tau_study"], studies.max() + 1)[studies]
            + rng.normal(0, TRUTH["tau_experiment"], experiments.max() + 1)[experiments]
            + rng.normal(0, np.sqrt(design["vi"].to_numpy()))
        )
        fit = em.bayesian_meta_analysis(
            design.assign(yi=y),
            mods="~ isolation_method + quality_score",
            random=["study_id", "experiment_id"],
            seed=seed,
            draws=200,
            chains=1,
        )
        table = fit.coef_table()
        for name, value in wanted.items():
            covered += bool(table.loc[name, "ci_low"] <= value <= table.loc[name, "ci_high"])
            total += 1
    assert total == 120
    assert covered >= 102, f"{covered} of {total} intervals cover the truth"
    contrasts = fit.contrasts("isolation_method").set_index("contrast")
    sec_uc = contrasts.loc["SEC - UC"]
    assert sec_uc["estimate"] == pytest.approx(table.loc["isolation_method[T.SEC]", "estimate"], abs=1e-9)
    column = fit.names.index("isolation_method[T.SEC]")
    share = float(np.mean(fit.beta_draws[..., column] > 0))
    assert sec_uc["p_gt_0"] == pytest.approx(share, abs=4 * np.sqrt(0.25 / fit.beta_draws[..., 0].size))
    assert len(contrasts) == len(levels) * (len(levels) - 1) // 2


def test_result_surface_and_arviz():
    fit = em.bayesian_meta_analysis(BCG, mods="~ alloc", seed=2, draws=500, chains=2)
    summary = fit.summary().table
    assert list(summary.index) == ["intercept", "alloc[T.random]", "alloc[T.systematic]", "tau[comparison]"]
    assert list(summary.columns) == [
        "estimate",
        "posterior_sd",
        "ci_low",
        "ci_high",
        "r_hat",
        "ess_bulk",
        "ess_tail",
    ]
    assert fit.converged and fit.diagnostics["divergences"] == 0
    idata = fit.idata
    assert {"posterior", "log_likelihood", "observed_data", "prior"} <= set(idata.groups())
    assert idata.posterior["beta"].shape == (2, 500, 3)
    loo = fit.loo()
    assert np.isfinite(loo.elpd_loo)
    table = em.models.compare_models(
        {"alloc": fit, "none": em.bayesian_meta_analysis(BCG, seed=2, draws=500, chains=2)}
    )
    assert set(table.index) == {"alloc", "none"}
    estimates = fit.study_estimates()
    assert len(estimates) == 13 and (estimates["posterior_sd"] > 0).all()
    text = str(fit.summary())
    assert "exact posterior" in text and "tau ~ halfnormal" not in text and "tau[comparison]" in text
    frame = fit.to_frame()
    assert set(frame["term"]) == set(summary.index)
    json.dumps(fit.to_dict(), default=float)


def test_contrasts_and_study_estimates_follow_the_protocol():
    """Contrasts use coef_table's columns and level arguments: the contrast of a level
    against the reference is that level's coefficient, at any interval probability."""
    fit = em.bayesian_meta_analysis(BCG, mods="~ alloc", seed=1)
    assert fit.method_used == "quadrature"
    columns = ["estimate", "posterior_sd", "ci_low", "ci_high", "p_gt_0"]
    table = fit.contrasts("alloc")
    assert list(table.columns) == ["contrast", "level", "versus", *columns]
    assert list(table["contrast"]) == ["random - alternate", "systematic - alternate", "systematic - random"]
    narrow = fit.contrasts("alloc", 0.8).set_index("contrast")
    coefficients = fit.coef_table(0.8)
    np.testing.assert_allclose(
        narrow.loc["random - alternate", columns].to_numpy(float),
        coefficients.loc["alloc[T.random]", columns].to_numpy(float),
        atol=1e-12,
    )
    pd.testing.assert_frame_equal(fit.contrasts("alloc", level=80).set_index("contrast"), narrow)
    wide = table.set_index("contrast")
    assert (wide["ci_low"] < narrow["ci_low"]).all() and (narrow["ci_high"] < wide["ci_high"]).all()
    with pytest.raises(em.ModelError, match="between 0 and 1"):
        fit.contrasts("alloc", 150)
    estimates = fit.study_estimates()
    assert list(estimates.columns[-4:]) == ["estimate", "posterior_sd", "ci_low", "ci_high"]
    inner = fit.study_estimates(0.5)
    assert (inner["ci_low"] > estimates["ci_low"]).all() and (inner["ci_high"] < estimates["ci_high"]).all()


def test_predictions_and_shrinkage():
    fit = em.bayesian_meta_analysis(BCG, seed=1)
    prediction = fit.predict(threshold=0.0).iloc[0]
    summary = fit.summary().table
    assert prediction["pred"] == pytest.approx(summary.loc["intercept", "estimate"], abs=1e-9)
    assert prediction["pi_low"] < prediction["ci_low"] < prediction["ci_high"] < prediction["pi_high"]
    assert 0 < prediction["p_effect_gt_threshold"] < 0.5  # the BCG vaccine lowers risk: effect < 0
    estimates = fit.study_estimates()
    pooled = summary.loc["intercept", "estimate"]
    # Shrinkage: every estimate moves from its observed value towards the pooled mean.
    assert (np.abs(estimates["estimate"] - pooled) <= np.abs(estimates["yi"] - pooled) + 1e-9).all()
    with_mods = em.bayesian_meta_analysis(BCG, mods="~ ablat", seed=1)
    rows = with_mods.predict(pd.DataFrame({"ablat": [10, 50]}))
    assert rows.loc[0, "pred"] > rows.loc[1, "pred"]  # higher latitude, stronger protection


def test_priors_are_validated_and_recorded():
    with pytest.raises(
        em.ModelError, match=r"unknown prior name.*valid names: intercept, coefficients, alloc"
    ):
        em.bayesian_meta_analysis(BCG, mods="~ alloc", priors={"allocation": "normal(0, 1)"})
    with pytest.raises(em.ModelError, match="valid families"):
        em.bayesian_meta_analysis(BCG, priors={"tau": "gamma(2, 1)"})
    with pytest.raises(em.ModelError, match="positive values"):
        em.bayesian_meta_analysis(BCG, priors={"tau": "normal(0, 1)"})
    with pytest.raises(em.ModelError, match="takes 1 parameter"):
        em.bayesian_meta_analysis(BCG, priors={"tau": "halfnormal(0, 1)"})
    fit = em.bayesian_meta_analysis(
        BCG.assign(measure="RR"),
        mods="~ alloc",
        priors={"alloc": "normal(0, 0.5)", "tau": "halfcauchy(0.5)"},
        seed=1,
    )
    assert fit.priors["alloc[T.random]"] == "normal(0, 0.5)"
    assert fit.priors["tau[comparison]"] == "halfcauchy(0.5)"
    assert fit.priors["intercept"] == "normal(0, 5)"  # documented default on the log scale (s = 1)
    unknown_scale = em.bayesian_meta_analysis(BCG, seed=1)  # no measure: s = SD of yi
    assert unknown_scale.priors["intercept"] == f"normal(0, {5 * BCG['yi'].std():g})"


def test_method_choice_and_refusals():
    with pytest.raises(em.ModelError, match="Student-t"):
        em.bayesian_meta_analysis(BCG, method="quadrature", likelihood="student_t")
    with pytest.raises(em.ModelError, match="non-normal priors"):
        em.bayesian_meta_analysis(BCG, method="quadrature", priors={"intercept": "student_t(3, 0, 2)"})
    with pytest.raises(em.ModelError, match="valid methods"):
        em.bayesian_meta_analysis(BCG, method="gibbs")


def test_prior_sensitivity_table():
    fit = em.bayesian_meta_analysis(BCG, seed=1)
    table = fit.prior_sensitivity(
        {"tight tau": {"tau": "halfnormal(0.2)"}, "wide tau": {"tau": "halfcauchy(2)"}}
    )
    assert set(table["alternative"]) == {"base", "tight tau", "wide tau"}
    tight = table[(table["alternative"] == "tight tau") & (table["parameter"] == "tau[comparison]")].iloc[0]
    assert tight["shift"] < 0  # a tighter prior on tau pulls it down
    base = table[table["alternative"] == "base"]
    assert (base["shift"] == 0).all()


def test_preclinical_priors_are_the_bias_ensembles_tau_prior():
    from types import SimpleNamespace

    from evmeta.models.priors import preclinical_tau_prior
    from evmeta.report.methods import bayesian_sentences

    rng = np.random.default_rng(16)
    vi = rng.uniform(0.1, 0.5, 15)
    smd = pd.DataFrame({"yi": rng.normal(1.5, np.sqrt(vi + 0.8)), "vi": vi, "measure": "SMD"})
    fit = em.bayesian_meta_analysis(smd, priors="preclinical", method="quadrature", seed=1)
    bma = em.models.bias_model_averaging(smd, priors="preclinical")
    tau_prior = fit.prior_set.taus["comparison"]
    assert tau_prior == preclinical_tau_prior() and tau_prior.params == bma.priors.tau_lognormal
    assert fit.priors["tau[comparison]"] == bma.priors.describe()["tau"] == "lognormal(0, 0.5)"
    taus = np.linspace(0.05, 6, 50)
    assert np.allclose(tau_prior.logpdf(taus), bma.priors.log_tau_density(taus), rtol=1e-12)
    assert fit.priors["intercept"] == "normal(0, 5)"  # coefficient priors stay the defaults
    explicit = em.bayesian_meta_analysis(
        smd, priors={"tau": "lognormal(0, 0.5)"}, method="quadrature", seed=1
    )
    pd.testing.assert_frame_equal(fit.summary().table, explicit.summary().table)
    # Stored as the dict it stands for: refits keep it, a named alternative replaces it.
    assert fit.settings["priors_given"] == {"tau": "preclinical"}
    assert fit.refit().priors == fit.priors
    table = fit.prior_sensitivity({"default": "default"})
    default_tau = table[(table["alternative"] == "default") & (table["parameter"] == "tau[comparison]")]
    assert default_tau["priors"].iloc[0] == "default" and default_tau["shift"].iloc[0] != 0
    # Two levels: every tau, or one level as a dict value; other measures on their scale.
    nested = _two_level_data().assign(measure="SMD")
    both = em.bayesian_meta_analysis(nested, random=["study", "experiment"], priors="preclinical", seed=1)
    assert both.priors["tau[study]"] == both.priors["tau[experiment]"] == "lognormal(0, 0.5)"
    one = em.bayesian_meta_analysis(
        nested, random=["study", "experiment"], priors={"tau[study]": "preclinical"}, seed=1
    )
    assert (
        one.priors["tau[study]"] == "lognormal(0, 0.5)" and one.priors["tau[experiment]"] == "halfnormal(2)"
    )
    nmd = em.bayesian_meta_analysis(smd.assign(measure="NMD"), priors="preclinical", seed=1)
    assert nmd.prior_set.taus["comparison"] == preclinical_tau_prior(25.0)  # median 25 percentage points
    run = SimpleNamespace(spec=SimpleNamespace(bayesian=SimpleNamespace(mods=None)))
    assert "derived from published animal meta-analyses" in bayesian_sentences(run, fit)
    assert "derived from" not in bayesian_sentences(run, explicit)


def test_unknown_named_priors_are_errors():
    with pytest.raises(
        em.ModelError, match=r"unknown priors 'flat'; valid: 'default', 'preclinical' or a dict"
    ):
        em.bayesian_meta_analysis(BCG, priors="flat")
    with pytest.raises(em.ModelError, match="priors must be 'default', 'preclinical' or a dict"):
        em.bayesian_meta_analysis(BCG, priors=["tau", "halfnormal(1)"])
    with pytest.raises(em.ModelError, match="'preclinical' is the heterogeneity prior; use it for tau"):
        em.bayesian_meta_analysis(BCG, priors={"intercept": "preclinical"})
    assert (
        em.bayesian_meta_analysis(BCG, priors="default", seed=1).priors
        == em.bayesian_meta_analysis(BCG, seed=1).priors
    )


def test_quadrature_never_imports_pymc():
    code = (
        "import sys, pandas as pd, evmeta as em\n"
        "em.bayesian_meta_analysis(pd.DataFrame({'yi': [0.1, 0.5, 0.9], 'vi': [0.1, 0.1, 0.2]}), seed=1).summary()\n"
        "print(','.join(m for m in ('pymc', 'pytensor', 'nutpie') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
