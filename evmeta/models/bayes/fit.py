"""Bayesian hierarchical meta-analysis and meta-regression.

Model: y_i ~ Normal(theta_i, sqrt(v_i)); theta_i = X_i beta + sum over levels of
u_level[j(i)], u_level ~ Normal(0, tau_level) (Student-t at the outermost level with
``likelihood="student_t"``). ``random=None`` gives the classic random-effects model (every
comparison its own group); ``random=["study_id", "experiment_id"]`` nests experiments in
studies. ``method="quadrature"`` computes the exact posterior (one or two levels, normal
likelihood and normal priors on the coefficients); ``"nuts"`` samples with nutpie;
``"auto"`` takes quadrature wherever it is exact.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from evmeta.errors import ConvergenceWarning, ModelError
from evmeta.models.base.design import prepare
from evmeta.models.base.nesting import NestedStructure, nested_structure, parse_random, sample_random_effects
from evmeta.models.base.provenance import fingerprint, versions
from evmeta.models.bayes.quadrature import fit_quadrature, precompute
from evmeta.models.bayes.result import BayesResult
from evmeta.models.priors import measure_scale, prior_dict, resolve_priors

METHODS = ("auto", "quadrature", "nuts")
LIKELIHOODS = ("normal", "student_t")
#: target_accept of the first NUTS run and of the single retry.
TARGET_ACCEPT = (0.9, 0.99)
#: Most posterior draws kept (draws x chains): 1e6 draws of ~10 parameters is ~100 MB.
MAX_TOTAL_DRAWS = 1_000_000
#: Most chains (each is a process or thread of the sampler).
MAX_CHAINS = 64


def _quadrature_possible(structure: NestedStructure, likelihood: str, V: Any, all_normal: bool) -> str | None:
    """None when quadrature is exact for this model; else the reason it is not."""
    if likelihood != "normal":
        return "a Student-t likelihood"
    if V is not None:
        return "a known sampling covariance V"
    if len(structure.levels) > 2:
        return "more than two random levels"
    if not all_normal:
        return "non-normal priors on the coefficients"
    return None


def bayesian_meta_analysis(
    data: Any = None,
    yi: Any = "yi",
    vi: Any = "vi",
    *,
    mods: str | None = None,
    random: list[str] | str | None = None,
    priors: dict[str, str] | str | None = None,
    method: str = "auto",
    likelihood: str = "normal",
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progress: bool = True,
    V: Any = None,
) -> BayesResult:
    """Fit a Bayesian (hierarchical) meta-analysis or meta-regression.

    Parameters
    ----------
    data : DataFrame or Comparisons, optional
        Then ``yi``/``vi`` name columns; otherwise they are arrays.
    mods : str, optional
        Moderator formula (same contrasts and coefficient order as :func:`meta_analysis`).
    random : list of str or str, optional
        Nested grouping columns, outermost first, or metafor's ``"~ 1 | study_id/experiment_id"``;
        None: every comparison its own group.
    priors : dict or {"default", "preclinical"}, optional
        E.g. ``{"intercept": "normal(0, 1)", "tau[experiment_id]": "halfnormal(0.3)"}``; the
        families, the documented defaults and ``"preclinical"`` (the animal-study tau prior,
        also usable for one key) are described in :mod:`evmeta.models.priors`.
    method : {"auto", "quadrature", "nuts"}
    likelihood : {"normal", "student_t"}
        ``student_t``: Student-t outermost random effects (outlying studies); needs NUTS.
    draws, tune, chains : int
        Draws per chain (also the exact draws kept under quadrature), warm-up, chains.
    seed : int, optional
        Random seed (recorded in the result).
    progress : bool
        Show the sampler's progress bar.
    V : array-like (k x k), optional
        Known sampling covariance (shared controls); needs NUTS.

    Returns
    -------
    BayesResult

    Raises
    ------
    ModelError
        Unknown method, likelihood or named priors, a bad prior, or invalid data.

    Warns
    -----
    ConvergenceWarning
        When NUTS still has R-hat > 1.01, bulk ESS < 400 or divergences after one retry
        with a higher ``target_accept``; the result then has ``converged=False``.
    """
    _check_settings(method, likelihood)
    _check_sampling(draws, tune, chains, seed)
    priors_given = prior_dict(priors)  # a named set as its dict: refit and prior_sensitivity merge into it
    model = prepare(data, yi, vi, mods)
    random_list = parse_random(random)
    structure = nested_structure(model.frame, random_list)
    prior_set, scale = _priors(priors_given, model, structure, likelihood)
    V_matrix = None if V is None else np.asarray(V.toarray() if hasattr(V, "toarray") else V, dtype=float)
    reason = _quadrature_possible(structure, likelihood, V_matrix, prior_set.all_normal)
    if method == "quadrature" and reason:
        raise ModelError(f"quadrature is not exact with {reason}; use method='nuts' (or 'auto')")
    chosen = "quadrature" if (method == "quadrature" or (method == "auto" and reason is None)) else "nuts"
    named = isinstance(yi, str) and isinstance(vi, str)
    settings = dict(yi_column=yi if named else None, vi_column=vi if named else None, random=random_list)
    settings.update(
        method=method, draws=draws, tune=tune, chains=chains, priors_given=priors_given, scale=scale
    )
    common = _common(model, structure, prior_set, seed, likelihood, V_matrix)
    if chosen == "quadrature":
        return _checked_quadrature(common, settings, draws, chains, seed)
    return _fit_nuts(common, settings, draws, tune, chains, seed, progress)


def _check_settings(method: str, likelihood: str) -> None:
    if method not in METHODS:
        raise ModelError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    if likelihood not in LIKELIHOODS:
        raise ModelError(f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")


def _common(model: Any, structure: Any, prior_set: Any, seed: Any, likelihood: str, V: Any) -> dict:
    """The BayesResult fields every engine sets the same way."""
    return dict(
        model=model,
        structure=structure,
        prior_set=prior_set,
        seed=seed,
        likelihood=likelihood,
        fingerprint=fingerprint(model.yi, model.vi, model.X),
        versions=versions(),
        V=V,
        fitter=bayesian_meta_analysis,
    )


def _priors(priors_given: dict, model: Any, structure: NestedStructure, likelihood: str) -> tuple[Any, float]:
    """The resolved prior set and the scale of the default priors, from the measure that
    :func:`evmeta.models.base.design.detect_measure` found (the one detection every engine uses)."""
    scale = measure_scale(model.measure, model.yi)
    prior_set = resolve_priors(
        priors_given,
        names=model.names,
        terms=model.term_columns,
        levels=structure.levels,
        scale=scale,
        student_t=likelihood == "student_t",
    )
    return prior_set, scale


def _checked_quadrature(common: dict, settings: dict, draws: int, chains: int, seed: Any) -> BayesResult:
    """The quadrature fit, with numerical breakdown (overflow, singular matrices) as a ModelError."""
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            return _fit_quadrature(common, settings, draws, chains, seed)
    except (np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError) as exc:
        raise ModelError(
            f"the posterior cannot be computed numerically ({exc}); check for extreme effect sizes or variances"
        ) from None


def _check_sampling(draws: Any, tune: Any, chains: Any, seed: Any) -> None:
    """Clear errors for sampling settings that are not whole numbers, negative or too large."""
    for name, value, least in (("draws", draws, 1), ("chains", chains, 1), ("tune", tune, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ModelError(f"{name} must be a whole number >= {least}, got {value!r}")
    if chains > MAX_CHAINS:
        raise ModelError(f"chains={chains} exceeds the limit of {MAX_CHAINS} chains")
    if draws * chains > MAX_TOTAL_DRAWS:
        raise ModelError(
            f"draws x chains = {draws * chains:,} exceeds the limit of {MAX_TOTAL_DRAWS:,} posterior draws "
            "(memory); under quadrature the summaries are exact, so a few thousand draws suffice"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ModelError(f"seed must be None or a whole number >= 0, got {seed!r}")


def _fit_quadrature(common: dict, settings: dict, draws: int, chains: int, seed: int | None) -> BayesResult:
    model, structure, prior_set = common["model"], common["structure"], common["prior_set"]
    pre = precompute(model.yi, model.vi, model.X, structure, list(prior_set.coefficients.values()))
    quad = fit_quadrature(pre, list(prior_set.taus.values()), settings["scale"])
    rng = np.random.default_rng(seed)
    taus, beta = quad.draw(draws * chains, rng)
    outer = []
    if len(structure.levels) > 1:
        resid = model.yi[None, :] - beta @ model.X.T
        effects = sample_random_effects(
            resid, model.vi, taus, structure, rng, list(range(len(structure.levels) - 1))
        )
        outer = [e.reshape(chains, draws, -1) for e in effects]
    settings = {**settings, "grid_evaluations": quad.n_evaluations}
    return BayesResult(
        method_used="quadrature",
        beta_draws=beta.reshape(chains, draws, -1),
        tau_draws=taus.reshape(chains, draws, -1),
        outer_draws=outer,
        quadrature=quad,
        settings=settings,
        **common,
    )


def _fit_nuts(
    common: dict, settings: dict, draws: int, tune: int, chains: int, seed: int | None, progress: bool
) -> BayesResult:
    from evmeta.models.bayes.pymc_backend import sample_nuts

    model, structure, prior_set = common["model"], common["structure"], common["prior_set"]
    for attempt, target_accept in enumerate(TARGET_ACCEPT):  # not empty: ``result`` is set below
        out = sample_nuts(
            model.yi,
            model.vi,
            model.X,
            structure,
            prior_set,
            student_t=common["likelihood"] == "student_t",
            V=common["V"],
            draws=draws,
            tune=tune,
            chains=chains,
            seed=None if seed is None else seed + attempt,
            progress=progress,
            target_accept=target_accept,
        )
        outer = _outer_effects(model, structure, out, seed)
        result = BayesResult(
            method_used="nuts",
            beta_draws=out.beta,
            tau_draws=out.tau,
            outer_draws=outer,
            nu_draws=out.nu,
            diverging=out.diverging,
            energy=out.energy,
            sampler=out.sampler,
            settings={**settings, "target_accept": target_accept, "attempts": attempt + 1},
            **common,
        )
        if result.converged:
            return result
    d = result.diagnostics
    warnings.warn(
        f"NUTS did not converge after a retry with target_accept={TARGET_ACCEPT[-1]}: max R-hat {d['max_r_hat']:.3f}, "
        f"min bulk ESS {d['min_ess_bulk']:.0f}, {d['divergences']} divergence(s). Do not report this fit as final; "
        "increase tune/draws, reparametrize, or use stronger priors.",
        ConvergenceWarning,
        stacklevel=2,
    )
    return result


def _outer_effects(model, structure: NestedStructure, out, seed: int | None) -> list[np.ndarray]:
    """Random effects of every level but the innermost, per draw: the explicitly sampled
    Student-t level as sampled, the marginalized normal levels from their exact conditional."""
    chains, draws = out.beta.shape[:2]
    beta = out.beta.reshape(chains * draws, -1)
    taus = out.tau.reshape(chains * draws, -1)
    resid = model.yi[None, :] - beta @ model.X.T
    explicit = [e.reshape(chains * draws, -1) for e in out.outer_effects]
    for level, effects in enumerate(explicit):
        resid = resid - effects[:, structure.codes[level]]
    wanted = list(range(len(explicit), len(structure.levels) - 1))
    drawn = sample_random_effects(resid, model.vi, taus, structure, np.random.default_rng(seed), wanted)
    return [e.reshape(chains, draws, -1) for e in [*explicit, *drawn]]
