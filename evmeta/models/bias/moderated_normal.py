"""Exact marginal likelihoods of the ensemble's normal models (no bias, PET, PEESE) with
moderators, single-level or multilevel.

Given the heterogeneity the model is linear and Gaussian in all of its coefficients: the
effect ``mu`` (normal(0, mu_sd)), the level deviations ``beta_j`` and numeric slopes
``gamma`` (normal(0, moderator_sd)), and the PET/PEESE slope ``b`` (half-normal). With
``V = diag(v_i + tau_w^2) + tau_b^2 Z Z'`` (``Z`` the study indicators; ``tau_b = 0``
single-level), ``y ~ N(X theta, V)`` and ``theta ~ N(0, P)`` give in closed form

``log p(y | tau) = -1/2 [log|2 pi V| + y'V^-1 y - c'A^-1 c + log|A| + log|P|]``,
``A = X'V^-1 X + P^-1``, ``c = X'V^-1 y``,

and the half-normal slope adds the exact factor ``2 P(b > 0 | y, tau)``. ``V^-1`` is applied
by the Woodbury identity study by study. What is left is numerical and smooth:

* single-level: tau by the trapezoid rule on the 2,001-node log-tau grid of
  :func:`~evmeta.models.bias.marginal.tau_grid`;
* multilevel (RoBMA's parameterization): total tau with the same prior, the share of it
  between studies ``rho = tau_b^2 / tau^2 ~ beta(1, 1)``; ``log tau`` on ``N_TAU_MULTILEVEL``
  trapezoid nodes times ``N_RHO`` Gauss-Legendre nodes in rho.

The posterior of every linear combination of the coefficients (``mu``, each level's mean
``mu + beta_j``) is returned as a Gaussian mixture over the nodes (and over ``N_SLOPE``
quantile nodes of the truncated slope for PET/PEESE).
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from evmeta.models.bias.marginal import N_SLOPE, EnsemblePriors, MarginalFit, tau_grid
from evmeta.models.bias.moderator_terms import ModeratorTerms

#: log-tau trapezoid nodes and rho Gauss-Legendre nodes of the multilevel models.
N_TAU_MULTILEVEL = 301
N_RHO = 24

Components = tuple[np.ndarray, np.ndarray, np.ndarray]


def heterogeneity_nodes(yi, vi, priors: EnsemblePriors, heterogeneity: bool, clustered: bool):
    """(tau2 within, tau2 between, log quadrature weight x prior) of the heterogeneity nodes."""
    if not heterogeneity:
        return np.zeros(1), np.zeros(1), np.zeros(1)
    u, du = tau_grid(yi, vi, priors)
    if clustered:
        u = np.linspace(u[0], u[-1], N_TAU_MULTILEVEL)
        du = float(u[1] - u[0])
    log_w = priors.log_tau_density(np.exp(u)) + u + np.log(du)  # density per unit log tau
    if not clustered:
        return np.exp(2 * u), np.zeros_like(u), log_w
    x, w = np.polynomial.legendre.leggauss(N_RHO)
    rho, rho_w = (x + 1) / 2, w / 2  # beta(1, 1) has density 1 on (0, 1)
    tau2 = np.exp(2 * u)[:, None]
    return (
        (tau2 * (1 - rho)).ravel(),
        (tau2 * rho).ravel(),
        (log_w[:, None] + np.log(rho_w)[None, :]).ravel(),
    )


def design(yi, vi, priors: EnsemblePriors, terms: ModeratorTerms | None, included, effect, slope):
    """Design columns, prior variances, and the contrast vectors of mu and of each level mean."""
    columns, sds = [], []
    if effect:
        columns.append(np.ones_like(yi))
        sds.append(priors.mu_sd)
    factor_in = terms is not None and terms.factor is not None and terms.factor in included
    first_level = len(columns)
    if factor_in and terms is not None:
        for j in range(len(terms.levels)):
            columns.append((terms.level_of == j).astype(float))
            sds.append(priors.moderator_sd)
    if terms is not None:
        for q, name in enumerate(terms.numeric_names):
            if name in included:
                columns.append(terms.numeric[:, q])
                sds.append(priors.moderator_sd)
    if slope is not None:
        columns.append(np.sqrt(vi) if slope == "pet" else vi)
        sds.append(priors.pet_sd if slope == "pet" else priors.peese_sd)
    X = np.column_stack(columns) if columns else np.zeros((len(yi), 0))
    p = X.shape[1]
    mu_c = np.zeros(p)
    if effect:
        mu_c[0] = 1.0
    n_levels = len(terms.levels) if terms is not None and terms.factor else 0
    level_c = []
    for j in range(n_levels):
        c = mu_c.copy()
        if factor_in:
            c[first_level + j] = 1.0
        level_c.append(c)
    return X, np.asarray(sds, float) ** 2, mu_c, level_c


def gaussian_marginal(yi, vi, X, prior_var, tau2_w, tau2_b, onehot):
    """log p(y | heterogeneity node) with the coefficients integrated out, and their Gaussian
    posterior (means (G, p), covariances (G, p, p)); ``onehot`` (k, studies) or None."""
    D = vi[None, :] + tau2_w[:, None]
    w = 1.0 / D
    xw = X[None, :, :] * w[:, :, None]
    xtwx = np.einsum("gki,kj->gij", xw, X)
    xtwy = np.einsum("gki,k->gi", xw, yi)
    ytwy = np.sum(w * yi**2, axis=1)
    logdet = np.sum(np.log(2 * np.pi * D), axis=1)
    if onehot is not None:
        W = w @ onehot
        a = tau2_b[:, None] / (1 + tau2_b[:, None] * W)  # Woodbury, study by study
        sx = np.einsum("gki,kc->gci", xw, onehot)
        sy = (w * yi) @ onehot
        xtwx = xtwx - np.einsum("gc,gci,gcj->gij", a, sx, sx)
        xtwy = xtwy - np.einsum("gc,gci,gc->gi", a, sx, sy)
        ytwy = ytwy - np.sum(a * sy**2, axis=1)
        logdet = logdet + np.sum(np.log1p(tau2_b[:, None] * W), axis=1)
    base = -0.5 * (logdet + ytwy)
    if X.shape[1] == 0:
        return base, np.zeros((len(D), 0)), np.zeros((len(D), 0, 0))
    precision = xtwx + np.diag(1.0 / prior_var)[None]
    cov = np.linalg.inv(precision)
    mean = np.einsum("gij,gj->gi", cov, xtwy)
    log_l = base + 0.5 * np.einsum("gi,gi->g", mean, xtwy) - 0.5 * np.linalg.slogdet(precision)[1]
    return log_l - 0.5 * np.sum(np.log(prior_var)), mean, cov


def moderated_normal_marginal(
    yi: np.ndarray,
    vi: np.ndarray,
    priors: EnsemblePriors,
    terms: ModeratorTerms | None,
    included: frozenset[str],
    *,
    effect: bool,
    heterogeneity: bool,
    slope: str | None,
    cluster_of: np.ndarray | None = None,
) -> MarginalFit:
    """Exact marginal likelihood of one normal model with the moderators in ``included``;
    ``cluster_of`` (study index of each comparison) makes it multilevel."""
    X, prior_var, mu_c, level_c = design(yi, vi, priors, terms, included, effect, slope)
    onehot = None if cluster_of is None else np.eye(int(cluster_of.max()) + 1)[cluster_of]
    tau2_w, tau2_b, log_w = heterogeneity_nodes(yi, vi, priors, heterogeneity, onehot is not None)
    log_l, mean, cov = gaussian_marginal(yi, vi, X, prior_var, tau2_w, tau2_b, onehot)
    slope_mean = float("nan")
    if slope is not None:
        sd_b = np.sqrt(cov[:, -1, -1])
        ratio = mean[:, -1] / sd_b
        log_l = log_l + special.log_ndtr(ratio) + np.log(2.0)  # half-normal: 2 P(b > 0 | y, tau)
    log_terms = log_l + log_w
    log_ml = float(special.logsumexp(log_terms))
    weights = np.exp(log_terms - log_ml)
    if slope is not None:  # mean of the slope's posterior truncated to b > 0, averaged over nodes
        truncated = mean[:, -1] + sd_b * np.exp(stats.norm.logpdf(ratio) - special.log_ndtr(ratio))
        slope_mean = float(np.sum(weights * truncated))
    keep = weights > 1e-12 * weights.max()
    args = (mean[keep], cov[keep], weights[keep] / weights[keep].sum(), slope is not None)
    mu = contrast_components(*args, mu_c)
    levels = [contrast_components(*args, c) for c in level_c]
    return MarginalFit(log_ml, *mu, slope_mean, level_components=levels)


def contrast_components(mean, cov, weights, has_slope: bool, c: np.ndarray) -> Components:
    """Posterior of ``c' theta`` as a Gaussian mixture (means, sds, weights); a point mass at 0
    when ``c`` is zero (the quantity is fixed at 0 in this model)."""
    if not np.any(c):
        return np.zeros(1), np.zeros(1), np.ones(1)
    m_c = mean @ c
    v_c = np.einsum("i,gij,j->g", c, cov, c)
    if not has_slope:
        return m_c, np.sqrt(v_c), weights
    m_b, c_bb = mean[:, -1], cov[:, -1, -1]
    c_cb = cov[:, :, -1] @ c
    s_b = np.sqrt(c_bb)
    nodes, node_w = np.polynomial.legendre.leggauss(N_SLOPE)
    u = (nodes + 1) / 2
    low = special.ndtr(-m_b / s_b)
    # slope quantiles of its posterior truncated to b > 0; c'theta | b is then Gaussian.
    q = np.clip(low[:, None] + u[None, :] * (1 - low[:, None]), 1e-300, 1 - 1e-16)
    b = m_b[:, None] + s_b[:, None] * special.ndtri(q)
    means = m_c[:, None] + (c_cb / c_bb)[:, None] * (b - m_b[:, None])
    sds = np.broadcast_to(np.sqrt(np.maximum(v_c - c_cb**2 / c_bb, 0))[:, None], means.shape)
    comp_w = weights[:, None] * node_w[None, :] / 2
    return means.ravel(), sds.ravel(), comp_w.ravel()
