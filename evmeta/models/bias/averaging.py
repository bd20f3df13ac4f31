"""Bayesian model averaging over publication-bias models (``bias_model_averaging``).

In the spirit of RoBMA-PSMA (Bartos et al. 2023): an ensemble over {effect, no effect} x
{heterogeneity, none} x {no bias, step selection, PET, PEESE} (16 models). Each model's marginal
likelihood is computed by exact integration (:mod:`evmeta.models.bias.marginal`), so posterior
model probabilities, inclusion Bayes factors and the model-averaged effect carry no Monte Carlo
error.

Priors (on the SMD scale; RoBMA's documented defaults where the exact integration allows):

* effect mu ~ normal(0, 1) (RoBMA: normal(0, 1));
* heterogeneity tau ~ inverse-gamma(1, 0.15) (RoBMA: inv-gamma(1, .15));
* PET slope ~ half-normal(1) and PEESE slope ~ half-normal(5): RoBMA uses half-Cauchy with the
  same scales; the half-normal keeps the slope's integral in closed form (a documented
  difference, lighter tails);
* one-sided step selection at p = 0.025 with omega ~ uniform(0, 1) for p > 0.025 (a cumulative
  Dirichlet(1, 1), as RoBMA's weight functions); RoBMA-PSMA averages six weight functions,
  here one is used;
* prior model probabilities: effect 1/2, heterogeneity 1/2, and bias: none 1/2, selection 1/4,
  PET 1/8, PEESE 1/8 (RoBMA-PSMA's split).

References
----------
Bartos F, Maier M, Wagenmakers E-J, Doucouliagos H, Stanley TD (2023). Robust Bayesian
meta-analysis: model-averaging across complementary publication bias adjustment methods. Res Synth
Methods 14:99-116. Maier M, Bartos F, Wagenmakers E-J (2023). Robust Bayesian meta-analysis:
addressing publication bias with model-averaging. Psychol Methods 28:107-122.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from evmeta.errors import ModelError
from evmeta.models.base.design import ModelData, as_frame, prepare
from evmeta.models.base.protocol import POSTERIOR_SD, Summary, check_level, resolve_level
from evmeta.models.base.result_parts import PrintsSummary
from evmeta.models.bias.marginal import EnsemblePriors, MarginalFit, normal_marginal, selection_marginal
from evmeta.models.bias.moderated_ensemble import (
    MULTILEVEL_NOTE,
    few_per_level_notes,
    fit_moderated_ensemble,
    level_means_table,
)
from evmeta.models.bias.moderator_terms import encode_moderators

#: The note when every comparison has the same sampling variance.
EQUAL_VARIANCES = (
    "PET and PEESE are unidentified: every comparison has the same variance, so their slope on "
    "the standard error (or variance) is confounded with the effect; the data cannot separate "
    "bias from effect and the bias-adjusted estimate rests on the priors"
)
BIAS_PRIOR = {"none": 0.5, "selection": 0.25, "pet": 0.125, "peese": 0.125}


@dataclass(frozen=True, eq=False, repr=False)
class BiasAveragingResult(PrintsSummary):
    """Model-averaged, publication-bias-adjusted meta-analysis (immutable).

    ``models`` has one row per model (effect, heterogeneity, bias, prior_prob, posterior_prob,
    log_marginal_likelihood, mu_mean, slope_mean: posterior means of mu and of the PET/PEESE
    slope); ``inclusion_bf`` maps "effect", "heterogeneity" and "bias"
    to inclusion Bayes factors. ``estimate`` is the model-averaged posterior mean of mu (models
    without an effect contribute mu = 0), ``ci_low``/``ci_high`` the equal-tailed credible
    interval of that mixture; ``conditional_*`` are the same over the effect models only.
    ``inputs`` are the stored inputs (``yi``, ``vi``); ``notes`` carry caveats (e.g. PET and
    PEESE unidentified when every variance is equal).
    """

    models: pd.DataFrame
    inclusion_bf: dict[str, float]
    estimate: float
    ci_low: float
    ci_high: float
    conditional_estimate: float
    conditional_ci_low: float
    conditional_ci_high: float
    level: float
    priors: EnsemblePriors
    cut: float
    inputs: ModelData = field(repr=False)
    components: dict[str, MarginalFit] = field(repr=False, default_factory=dict)
    notes: tuple[str, ...] = ()
    #: Bias-adjusted, model-averaged mean of each level of the categorical moderator
    #: (estimate, posterior_sd, ci_low, ci_high, k; numeric moderators at their mean); None
    #: without one.
    marginal_means: pd.DataFrame | None = None
    moderators: tuple[str, ...] = ()
    cluster: str | None = None

    @property
    def k(self) -> int:
        return self.inputs.k

    @property
    def yi(self) -> np.ndarray:
        return self.inputs.yi

    @property
    def vi(self) -> np.ndarray:
        return self.inputs.vi

    @property
    def measure(self) -> str | None:
        return self.inputs.measure

    @property
    def factor(self) -> str | None:
        """The categorical moderator (the index of :attr:`marginal_means`), or None."""
        return None if self.marginal_means is None else str(self.marginal_means.index.name)

    @property
    def numeric_moderators(self) -> tuple[str, ...]:
        """The numeric moderators (every moderator but :attr:`factor`)."""
        return tuple(name for name in self.moderators if name != self.factor)

    def inclusion_table(self) -> pd.DataFrame:
        """Prior and posterior inclusion probability and inclusion Bayes factor of each
        component: ``effect``, ``heterogeneity``, ``bias`` and every moderator term, in the
        order of :attr:`inclusion_bf` (index ``term``)."""
        columns = {"effect": self.models["effect"], "heterogeneity": self.models["heterogeneity"]}
        columns["bias"] = self.models["bias"] != "none"
        columns.update({name: self.models[f"with_{name}"] for name in self.moderators})
        rows = [
            {
                "term": name,
                "prior_inclusion_prob": float(self.models.loc[included, "prior_prob"].sum()),
                "posterior_inclusion_prob": float(self.models.loc[included, "posterior_prob"].sum()),
                "inclusion_bf": self.inclusion_bf[name],
            }
            for name, included in columns.items()
        ]
        return pd.DataFrame(rows).set_index("term")

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """The inclusion Bayes factor for heterogeneity (the ensemble keeps no tau posterior:
        tau2, tau and their interval are NaN)."""
        row = {"tau2": np.nan, "tau": np.nan, "ci_low": np.nan, "ci_high": np.nan}
        row["inclusion_bf"] = self.inclusion_bf["heterogeneity"]
        return pd.DataFrame([row], index=pd.Index(["comparison"], name="component"))

    def predict(self, newmods: Any = None, level: float | None = None) -> pd.DataFrame:
        """The model-averaged effect mu, one row (no prediction interval)."""
        if newmods is not None:
            raise ModelError("bias model averaging predicts only the averaged effect; it takes no newmods")
        row = self.coef_table(level).iloc[0]
        return pd.DataFrame(
            {
                "pred": [row["estimate"]],
                POSTERIOR_SD: [row[POSTERIOR_SD]],
                "ci_low": [row["ci_low"]],
                "ci_high": [row["ci_high"]],
                "pi_low": [np.nan],
                "pi_high": [np.nan],
            }
        )

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """The effect mu, model-averaged and conditional on an effect: estimate (posterior
        mean), posterior_sd, ci_low, ci_high (equal-tailed at ``level``)."""
        level = resolve_level(level, self.level)
        if level == self.level:
            rows = {
                "mu (model-averaged)": (self.estimate, self.ci_low, self.ci_high),
                "mu (conditional on an effect)": (
                    self.conditional_estimate,
                    self.conditional_ci_low,
                    self.conditional_ci_high,
                ),
            }
        elif self.components:
            rows = {
                "mu (model-averaged)": _mixture(self.models, self.components, level, effect_only=False),
                "mu (conditional on an effect)": _mixture(
                    self.models, self.components, level, effect_only=True
                ),
            }
        else:
            raise ModelError("this result keeps no component fits; refit it to change the level")
        table = pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "ci_low", "ci_high"])
        # The posterior SD of each mixture (NaN when the result keeps no component fits).
        table.insert(1, POSTERIOR_SD, [self._mixture_sd(effect_only) for effect_only in (False, True)])
        table.index.name = "term"
        return table

    def _mixture_sd(self, effect_only: bool) -> float:
        if not self.components:
            return float("nan")
        rows = self.models[self.models["effect"]] if effect_only else self.models
        total = rows["posterior_prob"].sum()
        moment1 = moment2 = 0.0
        for _, row in rows.iterrows():
            fit = self.components[row["model"]]
            weights = fit.mu_weights * row["posterior_prob"] / total
            moment1 += float(np.sum(weights * fit.mu_means))
            moment2 += float(np.sum(weights * (fit.mu_sds**2 + fit.mu_means**2)))
        return float(np.sqrt(max(moment2 - moment1**2, 0.0)))

    def summary(self, level: float | None = None) -> Summary:
        """A RoBMA-like printout (:class:`~evmeta.models.base.protocol.Summary`): inclusion
        Bayes factors and the models, above the table of the effect."""
        level = resolve_level(level, self.level)
        title = (
            f"Bayesian model averaging over publication-bias models (k = {self.k}; {len(self.models)} models)"
        )
        means = (
            []
            if self.marginal_means is None
            else [
                "",
                "Bias-adjusted marginal means (model-averaged):",
                *self.marginal_means.to_string(float_format=lambda x: f"{x:.4g}").splitlines(),
            ]
        )
        lines = [
            "Inclusion Bayes factors: "
            + "; ".join(f"{name} {value:.3g}" for name, value in self.inclusion_bf.items()),
            "",
            *self.models.to_string(index=False, float_format=lambda x: f"{x:.4g}").splitlines(),
            *means,
            *(f"Note: {note}" for note in self.notes),
        ]
        return Summary(title, lines, self.coef_table(level), level)

    def to_frame(self) -> pd.DataFrame:
        """The models table with the ensemble results repeated."""
        out = self.models.copy()
        for name in ["estimate", "ci_low", "ci_high"]:
            out[f"averaged_{name}"] = getattr(self, name)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values."""
        scalars = [
            "k",
            "estimate",
            "ci_low",
            "ci_high",
            "conditional_estimate",
            "conditional_ci_low",
            "conditional_ci_high",
            "level",
            "cut",
        ]
        out: dict[str, Any] = {name: float(getattr(self, name)) for name in scalars}
        out["k"] = int(self.k)
        out["inclusion_bf"] = {key: float(value) for key, value in self.inclusion_bf.items()}
        out["models"] = self.models.to_dict(orient="records")
        out["priors"] = self.priors.describe()
        out["notes"] = list(self.notes)
        out["moderators"] = list(self.moderators)
        out["cluster"] = self.cluster
        if self.marginal_means is not None:
            out["marginal_means"] = self.marginal_means.reset_index().to_dict(orient="records")
        return out


def bias_model_averaging(
    data: Any = None,
    yi: Any = "yi",
    vi: Any = "vi",
    *,
    priors: str | EnsemblePriors | None = None,
    selection_cut: float = 0.025,
    level: float = 0.95,
    mods: str | None = None,
    cluster: str | None = None,
) -> BiasAveragingResult:
    """Average 16 effect x heterogeneity x publication-bias models (x 2^m moderator subsets)
    by their marginal likelihoods.

    Parameters
    ----------
    data : DataFrame or Comparisons, optional
        Then ``yi``/``vi`` name columns; otherwise they are arrays.
    yi, vi : str or array-like
        Effect sizes (SMD scale for the default priors) and sampling variances.
    priors : None, "default", "preclinical" or EnsemblePriors
        None/"default": RoBMA's defaults (module docstring). "preclinical": the heterogeneity
        prior from published animal meta-analyses (:func:`evmeta.models.priors.preclinical_tau_prior`),
        the others unchanged.
    selection_cut : float
        One-sided p-value cut-point of the step selection model.
    level : float
        Credible level of the model-averaged interval.
    mods : str, optional
        ``"~ a + b"``: each term (a categorical column, one coefficient per level; a numeric
        column, one slope per SD) is in or out of every model with prior probability 1/2
        (:mod:`evmeta.models.bias.moderator_terms`), coefficients ~ normal(0,
        ``priors.moderator_sd``). Adds an inclusion Bayes factor per term and, with a
        categorical term, the bias-adjusted marginal means per level.
    cluster : str, optional
        A column of study ids: the models get a random effect of study (RoBMA's multilevel
        parameterization, :mod:`evmeta.models.bias.moderated_normal`). Only the no-bias,
        PET and PEESE models are kept (prior 1/2, 1/4, 1/4): a step-selection model with
        study effects has no closed-form normalizing constant per study, and evmeta does
        not approximate it; a note says so.

    Returns
    -------
    BiasAveragingResult

    Raises
    ------
    ModelError
        Fewer than 2 comparisons, missing or non-positive variances, unknown priors, a bad
        moderator formula or cluster column.
    """
    y, v = _arrays(data, yi, vi)
    inputs = prepare(as_frame(data), y, v, None)
    level = check_level(level)
    ensemble_priors = _resolve_priors(priors)
    if not 0 < selection_cut < 1:
        raise ModelError(f"selection_cut must lie in (0, 1), got {selection_cut}")
    if mods is None and cluster is None:
        rows, fits = _fit_ensemble(y, v, ensemble_priors, selection_cut)
        terms, cluster_of = None, None
    else:
        terms, cluster_of = _moderator_inputs(data, mods, cluster, len(y))
        rows, fits = fit_moderated_ensemble(y, v, ensemble_priors, selection_cut, terms, cluster_of)
    models = _posterior_table(rows, terms)
    inclusion = {
        "effect": _inclusion_bf(models, models["effect"]),
        "heterogeneity": _inclusion_bf(models, models["heterogeneity"]),
        "bias": _inclusion_bf(models, models["bias"] != "none"),
    }
    for name in terms.names if terms is not None else ():
        inclusion[name] = _inclusion_bf(models, models[f"with_{name}"])
    averaged = _mixture(models, fits, level, effect_only=False)
    conditional = _mixture(models, fits, level, effect_only=True)
    notes: tuple[str, ...] = (EQUAL_VARIANCES,) if np.ptp(v) <= 1e-12 * np.max(v) else ()
    if cluster_of is not None:
        notes += (MULTILEVEL_NOTE,)
    if "quadrature_error" in models:
        loose = models.loc[models["quadrature_error"] > 1e-6, "model"]
        if len(loose):
            notes += (
                f"the nested quadrature of {len(loose)} selection model(s) ({', '.join(loose[:3])}) changed by "
                f"up to {models['quadrature_error'].max():.2g} on the log marginal likelihood at its last "
                "refinement (the grid could not be refined further): see the quadrature_error column",
            )
    marginal_means = None
    if terms is not None and terms.factor is not None:
        marginal_means = level_means_table(models, fits, terms, level)
        notes += few_per_level_notes(terms, ensemble_priors.moderator_sd)
    return BiasAveragingResult(
        models=models,
        inclusion_bf=inclusion,
        estimate=averaged[0],
        ci_low=averaged[1],
        ci_high=averaged[2],
        conditional_estimate=conditional[0],
        conditional_ci_low=conditional[1],
        conditional_ci_high=conditional[2],
        level=level,
        priors=ensemble_priors,
        cut=selection_cut,
        components=fits,
        inputs=inputs,
        notes=notes,
        marginal_means=marginal_means,
        moderators=terms.names if terms is not None else (),
        cluster=cluster,
    )


def _moderator_inputs(data, mods, cluster, k):
    frame = as_frame(data)
    if frame is None:
        raise ModelError("mods= and cluster= name columns: pass the data frame as data")
    terms = encode_moderators(frame, mods) if mods is not None else None
    cluster_of = None
    if cluster is not None:
        if cluster not in frame.columns:
            raise ModelError(
                f"cluster={cluster!r} is not a column; columns: {', '.join(map(str, frame.columns))}"
            )
        if frame[cluster].isna().any():
            raise ModelError(f"cluster column {cluster!r} has missing values")
        cluster_of = pd.factorize(frame[cluster])[0]
    return terms, cluster_of


def _posterior_table(rows: list[dict], terms=None) -> pd.DataFrame:
    """The models table with posterior model probabilities (prior x marginal likelihood)."""
    models = pd.DataFrame(rows)
    log_post = np.log(models["prior_prob"]) + models["log_marginal_likelihood"]
    models["posterior_prob"] = np.exp(log_post - special.logsumexp(log_post))
    order = ["model", "effect", "heterogeneity", "bias"]
    order += [f"with_{name}" for name in (terms.names if terms is not None else ())]
    order += ["prior_prob", "posterior_prob"]
    extra = ["quadrature_error"] if "quadrature_error" in models else []
    return models[[*order, "log_marginal_likelihood", "mu_mean", "slope_mean", *extra]]


def _fit_ensemble(y: np.ndarray, v: np.ndarray, ensemble_priors: EnsemblePriors, selection_cut: float):
    """Marginal likelihood and posterior of mu of each of the 16 models: (rows, fits by name)."""
    rows, fits = [], {}
    for effect in (True, False):
        for heterogeneity in (True, False):
            for bias, bias_prior in BIAS_PRIOR.items():
                if bias == "selection":
                    fit = selection_marginal(
                        y, v, ensemble_priors, effect=effect, heterogeneity=heterogeneity, cut=selection_cut
                    )
                else:
                    fit = normal_marginal(
                        y,
                        v,
                        ensemble_priors,
                        effect=effect,
                        heterogeneity=heterogeneity,
                        slope=None if bias == "none" else bias,
                    )
                name = f"{'effect' if effect else 'null'}/{'het' if heterogeneity else 'fixed'}/{bias}"
                fits[name] = fit
                rows.append(
                    {
                        "model": name,
                        "effect": effect,
                        "heterogeneity": heterogeneity,
                        "bias": bias,
                        "prior_prob": 0.25 * bias_prior,
                        "log_marginal_likelihood": fit.log_ml,
                        "mu_mean": fit.mu_mean,
                        "slope_mean": fit.slope_mean,
                    }
                )
    return rows, fits


def _arrays(data, yi, vi) -> tuple[np.ndarray, np.ndarray]:
    if data is not None:
        frame = data.table if hasattr(data, "table") else data
        for name in (yi, vi):
            if isinstance(name, str) and name not in frame.columns:
                raise ModelError(f"column {name!r} not found; columns: {', '.join(map(str, frame.columns))}")
        yi = frame[yi] if isinstance(yi, str) else yi
        vi = frame[vi] if isinstance(vi, str) else vi
    try:
        y = np.asarray(yi, dtype=float)
        v = np.asarray(vi, dtype=float)
    except (TypeError, ValueError) as err:
        raise ModelError(f"yi and vi must be numbers: {err}") from None
    if y.shape != v.shape or y.ndim != 1:
        raise ModelError(f"yi and vi must be 1-D of equal length, got {y.shape} and {v.shape}")
    if len(y) < 2:
        raise ModelError(f"bias_model_averaging needs at least 2 comparisons, got {len(y)}")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ModelError("yi must be finite and vi finite and > 0 in every comparison")
    return y, v


def _resolve_priors(priors) -> EnsemblePriors:
    if priors is None or priors == "default":
        return EnsemblePriors()
    if isinstance(priors, EnsemblePriors):
        return priors
    if priors == "preclinical":
        from evmeta.models.priors import preclinical_tau_prior

        meanlog, sdlog = preclinical_tau_prior().params
        return replace(EnsemblePriors(), tau_lognormal=(meanlog, sdlog))
    raise ModelError(f"unknown priors {priors!r}; valid: 'default', 'preclinical' or an EnsemblePriors")


def _inclusion_bf(models: pd.DataFrame, included: pd.Series) -> float:
    """Posterior inclusion odds over prior inclusion odds."""
    post_in = models.loc[included, "posterior_prob"].sum()
    prior_in = models.loc[included, "prior_prob"].sum()
    post_out, prior_out = 1 - post_in, 1 - prior_in
    if post_out <= 0:
        return float("inf")
    return float((post_in / post_out) / (prior_in / prior_out))


def _mixture(models, fits, level, effect_only: bool) -> tuple[float, float, float]:
    """Mean and equal-tailed interval of the model-averaged posterior of mu."""
    means, sds, weights = [], [], []
    rows = models[models["effect"]] if effect_only else models
    total = rows["posterior_prob"].sum()
    for _, row in rows.iterrows():
        fit = fits[row["model"]]
        means.append(fit.mu_means)
        sds.append(fit.mu_sds)
        weights.append(fit.mu_weights * row["posterior_prob"] / total)
    m, s, w = np.concatenate(means), np.concatenate(sds), np.concatenate(weights)
    keep = w > 1e-12
    m, s, w = m[keep], s[keep], w[keep] / w[keep].sum()
    mean = float(np.sum(w * m))

    def cdf(x: float) -> float:
        point = s == 0
        value = np.sum(w[~point] * stats.norm.cdf((x - m[~point]) / s[~point]))
        return value + np.sum(w[point] * (m[point] <= x))

    span = np.max(np.abs(m)) + 10 * (np.max(s) if s.size else 0) + 1.0
    tail = (1 - level) / 2
    bounds = [optimize.brentq(lambda x, q=q: cdf(x) - q, -span, span, xtol=1e-8) for q in (tail, 1 - tail)]
    return mean, bounds[0], bounds[1]
