"""The bias ensemble with moderators: 16 x 2^m models (or 12 x 2^m multilevel ones), their
marginal likelihoods and the model-averaged, bias-adjusted mean of each level.

Every moderator term is in or out of every model with prior probability 1/2, independently of
the effect, heterogeneity and bias components (RoBMA 3's default); a model's prior probability
is ``1/4 x P(bias) x 2^-m``. The marginal likelihoods come from
:func:`~evmeta.models.bias.moderated_normal.moderated_normal_marginal` (closed form given the
heterogeneity) and :func:`~evmeta.models.bias.moderated_selection.moderated_selection_marginal`
(nested quadrature, measured convergence).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import optimize, special

from evmeta.models.bias.marginal import EnsemblePriors, merge_components, selection_marginal
from evmeta.models.bias.moderated_normal import moderated_normal_marginal
from evmeta.models.bias.moderated_selection import moderated_selection_marginal
from evmeta.models.bias.moderator_terms import ModeratorTerms

BIAS_PRIOR = {"none": 0.5, "selection": 0.25, "pet": 0.125, "peese": 0.125}
#: Without selection models (multilevel ensembles): RoBMA-PSMA's split of the rest.
MULTILEVEL_BIAS_PRIOR = {"none": 0.5, "pet": 0.25, "peese": 0.25}
MULTILEVEL_NOTE = (
    "multilevel ensemble: the step-selection models are left out (with a random effect of study "
    "the selection model's normalizing constant has no exact form per study, and evmeta does not "
    "approximate it); bias is PET or PEESE (prior 1/4 each) against none (1/2)"
)


def fit_moderated_ensemble(
    y: np.ndarray,
    v: np.ndarray,
    priors: EnsemblePriors,
    cut: float,
    terms: ModeratorTerms | None,
    cluster_of: np.ndarray | None,
):
    """Marginal likelihood and posteriors of every model: (rows, fits by name)."""
    names = terms.names if terms is not None else ()
    bias_prior = BIAS_PRIOR if cluster_of is None else MULTILEVEL_BIAS_PRIOR
    rows, fits = [], {}
    for subset in itertools.product((False, True), repeat=len(names)):
        included = frozenset(name for name, on in zip(names, subset, strict=True) if on)
        for effect, heterogeneity in itertools.product((True, False), repeat=2):
            for bias, p_bias in bias_prior.items():
                fit = _fit_one(y, v, priors, cut, terms, included, effect, heterogeneity, bias, cluster_of)
                name = f"{'effect' if effect else 'null'}/{'het' if heterogeneity else 'fixed'}/{bias}"
                name += "".join(f"+{term}" for term in names if term in included)
                fits[name] = fit
                rows.append(
                    {
                        "model": name,
                        "effect": effect,
                        "heterogeneity": heterogeneity,
                        "bias": bias,
                        **{f"with_{term}": term in included for term in names},
                        "prior_prob": 0.25 * p_bias * 0.5 ** len(names),
                        "log_marginal_likelihood": fit.log_ml,
                        "mu_mean": fit.mu_mean,
                        "slope_mean": fit.slope_mean,
                        "quadrature_error": fit.error,
                    }
                )
    return rows, fits


def _fit_one(y, v, priors, cut, terms, included, effect, heterogeneity, bias, cluster_of):
    if bias != "selection":
        slope = None if bias == "none" else bias
        fit = moderated_normal_marginal(
            y,
            v,
            priors,
            terms,
            included,
            effect=effect,
            heterogeneity=heterogeneity,
            slope=slope,
            cluster_of=cluster_of,
        )
        return _thinned(fit)
    if included:
        return moderated_selection_marginal(
            y, v, priors, terms, included, effect=effect, heterogeneity=heterogeneity, cut=cut
        )
    fit = selection_marginal(y, v, priors, effect=effect, heterogeneity=heterogeneity, cut=cut)
    if terms is not None and terms.factor is not None:  # every level's mean is mu
        fit.level_components = [(fit.mu_means, fit.mu_sds, fit.mu_weights)] * len(terms.levels)
    return fit


def _thinned(fit):
    fit.mu_means, fit.mu_sds, fit.mu_weights = merge_components(fit.mu_means, fit.mu_sds, fit.mu_weights)
    fit.level_components = [merge_components(*c) for c in fit.level_components]
    return fit


def mixture_summary(parts, level: float) -> tuple[float, float, float, float]:
    """Mean, SD and equal-tailed interval of a mixture of Gaussians (sd 0: point masses);
    ``parts`` is a list of (means, sds, weights) already weighted by model probability."""
    m = np.concatenate([p[0] for p in parts])
    s = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] for p in parts])
    keep = w > 1e-12 * w.max()
    m, s, w = m[keep], s[keep], w[keep] / w[keep].sum()
    mean = float(np.sum(w * m))
    sd = float(np.sqrt(max(np.sum(w * (s**2 + m**2)) - mean**2, 0.0)))
    point = s == 0

    def cdf(x):
        return np.sum(w[~point] * special.ndtr((x - m[~point]) / s[~point])) + np.sum(
            w[point] * (m[point] <= x)
        )

    span = np.max(np.abs(m)) + 10 * (np.max(s) if s.size else 0) + 1.0
    tail = (1 - level) / 2
    low, high = (optimize.brentq(lambda x, q=q: cdf(x) - q, -span, span, xtol=1e-8) for q in (tail, 1 - tail))
    return mean, sd, low, high


def level_means_table(models: pd.DataFrame, fits: dict, terms: ModeratorTerms, level: float) -> pd.DataFrame:
    """Model-averaged posterior of each level's mean (bias-adjusted: at standard error 0 for
    PET/PEESE, the unselected mean for selection; numeric moderators at their mean)."""
    rows = []
    counts = terms.level_counts()
    for j, name in enumerate(terms.levels):
        parts = []
        for row in models.itertuples():
            means, sds, weights = fits[row.model].level_components[j]
            parts.append((means, sds, weights * row.posterior_prob))
        mean, sd, low, high = mixture_summary(parts, level)
        rows.append(
            {
                terms.factor: name,
                "k": int(counts[j]),
                "estimate": mean,
                "posterior_sd": sd,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows).set_index(terms.factor)


def few_per_level_notes(terms: ModeratorTerms, moderator_sd: float) -> tuple[str, ...]:
    """A caveat when a level rests on one comparison (``moderator_sd``: the prior SD of a
    level's deviation, as printed)."""
    single = [name for name, count in zip(terms.levels, terms.level_counts(), strict=True) if count == 1]
    if not single:
        return ()
    return (
        f"{len(single)} level(s) of {terms.factor} rest on one comparison ({', '.join(single[:5])}"
        f"{' ...' if len(single) > 5 else ''}): their means lean on the normal(0, {moderator_sd:g}) prior of the deviation",
    )
