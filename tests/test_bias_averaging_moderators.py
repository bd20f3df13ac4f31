"""The bias ensemble with moderators (issue 27 item 2): every kind of model's log marginal
likelihood against brute-force integration of the unreduced likelihood x prior on small data
sets (k = 6 and 8), at 1e-4 absolute on the log scale (TOL_LOG).

* Normal models (no bias, PET, PEESE; single-level and multilevel): the brute force writes
  ``y ~ N(b x, V + X P X')`` with the Gaussian coefficients marginalized in the textbook form
  (no Woodbury, no posterior), and integrates tau (and rho, and the half-normal slope b) with
  scipy's adaptive quad / dense Gauss-Legendre.
* Selection models: a dense tensor Gauss-Legendre grid over every parameter at once (mu,
  log tau, omega, each level's deviation, the numeric slope), no factorization by level, on a
  box found by scanning. Doubling its nodes moves it by less than 1e-6 on these data.
* Selection models with effect, heterogeneity and a categorical moderator (5-D with 2 levels,
  6-D with 3): Gauss-Legendre over log tau outside and, at each log-tau node, the dense tensor
  over (mu, log omega, every level's deviation) on a box scanned at that tau; the whole tensor
  is summed (no product of per-level integrals). Each case runs the brute force at two node
  counts, which must agree to 1e-6, with every box's edges exp(-20) below its peak; on the
  same data and on an all-significant variant (omega's posterior at 0) for 2 levels, and for
  3 levels (slow). Measured: brute force and evmeta agree to 1e-8 or better.
"""

from __future__ import annotations

import itertools
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import evmeta as em
from evmeta.errors import ModelError
from evmeta.models.bias.marginal import EnsemblePriors
from evmeta.models.bias.moderated_normal import moderated_normal_marginal
from evmeta.models.bias.moderated_selection import moderated_selection_marginal
from evmeta.models.bias.moderator_terms import encode_moderators

# The target, absolute on the log marginal likelihood (= 1e-4 relative on the
# marginal likelihood). Both sides are accurate to about 1e-6 or better.
TOL_LOG = 1e-4
PRIORS = EnsemblePriors()
CUT = 0.025


def _data(k=6, levels=2, seed=5):
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.05, 0.4, k)
    level = np.arange(k) % levels
    yi = rng.normal(0.4 + 0.3 * level, np.sqrt(vi + 0.05))
    yi[0] = abs(yi[0]) + 1.0  # one significant comparison at least
    return pd.DataFrame(
        {
            "yi": yi,
            "vi": vi,
            "method": np.array(["UC", "SEC", "kit"])[level],
            "dose": rng.normal(size=k),
            "study": np.arange(k) // 2,
        }
    )


# --- normal models: the textbook marginal -----------------------------------------------------


def _brute_normal(frame, terms, included, effect, heterogeneity, slope, cluster=False):
    y, v = frame["yi"].to_numpy(), frame["vi"].to_numpy()
    cols, sds = [], []
    if effect:
        cols.append(np.ones_like(y))
        sds.append(PRIORS.mu_sd)
    if terms.factor in included:
        for j in range(len(terms.levels)):
            cols.append((terms.level_of == j).astype(float))
            sds.append(PRIORS.moderator_sd)
    for q, name in enumerate(terms.numeric_names):
        if name in included:
            cols.append(terms.numeric[:, q])
            sds.append(PRIORS.moderator_sd)
    X = np.column_stack(cols) if cols else np.zeros((len(y), 0))
    XPX = X @ np.diag(np.asarray(sds, float) ** 2) @ X.T if cols else 0.0
    same = (frame["study"].to_numpy()[:, None] == frame["study"].to_numpy()[None, :]).astype(float)
    x_slope = np.sqrt(v) if slope == "pet" else v
    slope_sd = PRIORS.pet_sd if slope == "pet" else PRIORS.peese_sd
    b, b_w = np.polynomial.legendre.leggauss(120)
    b, b_w = 4 * slope_sd * (b + 1), 4 * slope_sd * b_w  # half-normal mass beyond 8 sd: 1e-15

    def density(tau, rho=0.0):
        """p(y | tau, rho), the slope integrated by Gauss-Legendre (Cholesky by numpy)."""
        cov = np.diag(v + (1 - rho) * tau**2) + rho * tau**2 * same + XPX
        chol = np.linalg.cholesky(cov)
        shifts = np.zeros((1, len(y))) if slope is None else b[:, None] * x_slope[None, :]
        z = np.linalg.solve(chol, (y[None, :] - shifts).T)
        log_pdf = -0.5 * np.sum(z**2, axis=0) - np.sum(np.log(np.diag(chol))) - len(y) / 2 * np.log(2 * np.pi)
        if slope is None:
            return float(np.exp(log_pdf[0]))
        return float(np.sum(b_w * np.exp(log_pdf) * 2 * stats.norm.pdf(b, 0, slope_sd)))

    if not heterogeneity:
        return np.log(density(0.0))
    prior = lambda t: stats.invgamma.pdf(t, PRIORS.tau_shape, scale=PRIORS.tau_scale)  # noqa: E731
    if cluster:  # rho ~ beta(1, 1) by 32 Gauss-Legendre nodes: the integrand is smooth in rho
        r, r_w = np.polynomial.legendre.leggauss(32)
        r, r_w = (r + 1) / 2, r_w / 2
        given_tau = lambda t: sum(w * density(t, rho) for rho, w in zip(r, r_w, strict=True))  # noqa: E731
    else:
        given_tau = density
    parts = [
        integrate.quad(lambda t: given_tau(t) * prior(t), lo, hi, epsabs=0, epsrel=1e-9, limit=200)[0]
        for lo, hi in [(0, 0.3), (0.3, 2), (2, np.inf)]
    ]
    return np.log(sum(parts))


@pytest.mark.parametrize("cluster", [False, True])
@pytest.mark.parametrize("slope", [None, "pet", "peese"])
def test_normal_models_with_moderators_match_brute_force(slope, cluster):
    frame = _data(k=6, levels=3)
    terms = encode_moderators(frame, "~ method + dose")
    cluster_of = pd.factorize(frame["study"])[0] if cluster else None
    combos = [frozenset(), frozenset({"method"}), frozenset({"dose"}), frozenset({"method", "dose"})]
    for included, effect, heterogeneity in itertools.product(combos, (True, False), (True, False)):
        if cluster and (not heterogeneity or len(included) == 1):
            continue  # no heterogeneity: no random effect of study; one term: covered single-level
        fit = moderated_normal_marginal(
            frame["yi"].to_numpy(),
            frame["vi"].to_numpy(),
            PRIORS,
            terms,
            included,
            effect=effect,
            heterogeneity=heterogeneity,
            slope=slope,
            cluster_of=cluster_of,
        )
        brute = _brute_normal(frame, terms, included, effect, heterogeneity, slope, cluster)
        assert fit.log_ml == pytest.approx(brute, abs=TOL_LOG), (sorted(included), effect, heterogeneity)


# --- selection models: a dense tensor grid over every parameter ------------------------------


def _gl_box(lower, upper, panels=2, nodes=10):
    x, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(lower, upper, panels + 1)
    a, b = edges[:-1, None], edges[1:, None]
    return ((b - a) / 2 * x + (b + a) / 2).ravel(), ((b - a) / 2 * w + 0 * a).ravel()


def _selection_log_joint(frame, terms, included, effect, heterogeneity, tau=0.0):
    """log(likelihood x prior) at rows of parameters (mu?, log tau?, omega, t_j.., gamma..), where
    t_j = mu + beta_j is level j's mean."""
    y, v = frame["yi"].to_numpy(), frame["vi"].to_numpy()
    above = stats.norm.sf(y / np.sqrt(v)) > CUT
    cut_y = np.sqrt(v) * stats.norm.isf(CUT)
    factor = terms.factor in included
    numeric = [q for q, name in enumerate(terms.numeric_names) if name in included]

    def log_joint(theta):
        col = 0
        out = np.zeros(len(theta))
        mu = np.zeros(len(theta))
        if effect:
            mu = theta[:, col]
            out += stats.norm.logpdf(mu, 0, PRIORS.mu_sd)
            col += 1
        tau2 = np.full(len(theta), tau**2)
        if heterogeneity:
            log_tau = theta[:, col]
            out += stats.invgamma.logpdf(np.exp(log_tau), PRIORS.tau_shape, scale=PRIORS.tau_scale) + log_tau
            tau2 = np.exp(2 * log_tau)
            col += 1
        omega = theta[:, col]
        col += 1
        mean = mu[:, None] + np.zeros_like(y)[None, :]
        if factor:  # the level means t_j = mu + beta_j (a shear of unit Jacobian)
            t = theta[:, col : col + len(terms.levels)]
            out += stats.norm.logpdf(t, mu[:, None], PRIORS.moderator_sd).sum(axis=1)
            mean = t[:, terms.level_of]
            col += len(terms.levels)
        for q in numeric:
            out += stats.norm.logpdf(theta[:, col], 0, PRIORS.moderator_sd)
            mean = mean + theta[:, col][:, None] * terms.numeric[None, :, q]
            col += 1
        sd = np.sqrt(v[None, :] + tau2[:, None])
        weight = np.where(above[None, :], omega[:, None], 1.0)
        published = omega[:, None] + (1 - omega[:, None]) * stats.norm.sf((cut_y[None, :] - mean) / sd)
        with np.errstate(divide="ignore"):  # omega = 0 on the scan's edge: log density -inf
            log_weight = np.log(weight)
        return out + np.sum(stats.norm.logpdf(y[None, :], mean, sd) + log_weight - np.log(published), axis=1)

    return log_joint


def _brute_selection(frame, terms, included, effect, heterogeneity, panels=None, tau=0.0):
    log_joint = _selection_log_joint(frame, terms, included, effect, heterogeneity, tau)
    axes = []  # [lower, upper, floor, ceiling]
    if effect:
        axes.append([-6.0, 6.0, False, False])
    if heterogeneity:
        axes.append([np.log(1e-4), np.log(20.0), False, False])
    axes.append([0.0, 1.0, True, True])
    n_coef = (len(terms.levels) if terms.factor in included else 0) + sum(
        n in included for n in terms.numeric_names
    )
    n_levels = len(terms.levels) if terms.factor in included else 0
    axes += [[-5.0, 5.0, False, False] for _ in range(n_levels)]
    axes += [[-2.0, 2.0, False, False] for _ in range(n_coef - n_levels)]

    def grid(rules):
        mesh = np.array(list(itertools.product(*[r[0] for r in rules])))
        log_w = np.sum(np.log(np.array(list(itertools.product(*[r[1] for r in rules])))), axis=1)
        return mesh, log_w

    for _ in range(3):  # scan, shrink the box to where the density is within 30 of its maximum
        rules = [(np.linspace(lo, hi, 13), np.ones(13)) for lo, hi, *_ in axes]
        mesh, _ = grid(rules)
        values = log_joint(mesh)
        inside = mesh[values > values.max() - 30]
        for j, axis in enumerate(axes):
            lo, hi, floor, ceiling = axis
            margin = (hi - lo) / 12
            axis[0] = max(inside[:, j].min() - margin, lo) if floor else inside[:, j].min() - margin
            axis[1] = min(inside[:, j].max() + margin, hi) if ceiling else inside[:, j].max() + margin
    panels = panels or [2] * len(axes)
    mesh, log_w = grid([_gl_box(lo, hi, panels=n) for (lo, hi, *_), n in zip(axes, panels, strict=True)])
    chunks = [log_joint(mesh[s : s + 200_000]) + log_w[s : s + 200_000] for s in range(0, len(mesh), 200_000)]
    return float(special.logsumexp(np.concatenate(chunks)))


def _brute_selection_over_tau(frame, terms, included, effect):
    """Heterogeneity models: scipy quad over log tau outside, the tensor grid (its box scanned
    afresh at every tau, which follows the funnel of mu and the coefficients in tau) inside."""
    ref = _brute_selection(frame, terms, included, effect, False, tau=0.2)

    def integrand(u):
        inner = _brute_selection(frame, terms, included, effect, False, tau=np.exp(u))
        prior = stats.invgamma.logpdf(np.exp(u), PRIORS.tau_shape, scale=PRIORS.tau_scale) + u
        return np.exp(inner + prior - ref)

    pieces = [(np.log(1e-3), np.log(0.1)), (np.log(0.1), np.log(1.0)), (np.log(1.0), np.log(30.0))]
    with warnings.catch_warnings():
        # The integrand is a rounded grid sum, so quad reports roundoff near its tolerance;
        # relative 1e-6 on the integral is 1e-6 on the log, far inside the tested 1e-4.
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        total = sum(integrate.quad(integrand, lo, hi, epsabs=0, epsrel=1e-6, limit=100)[0] for lo, hi in pieces)
    return float(np.log(total) + ref)


# The heterogeneity cases take about 3 minutes each (quad over tau of a 3- to 4-D grid): slow.
_SLOW = pytest.mark.slow
SELECTION_CASES = [
    # (levels, formula, included, effect, heterogeneity)
    # effect + heterogeneity + a factor (5-D and 6-D): test_selection_with_effect_heterogeneity_..
    pytest.param(2, "~ method", {"method"}, False, True, marks=_SLOW),
    pytest.param(3, "~ method", {"method"}, True, False, marks=_SLOW),
    pytest.param(2, "~ dose", {"dose"}, True, True, marks=_SLOW),
    (2, "~ method + dose", {"method", "dose"}, True, False),
]


@pytest.mark.parametrize(("levels", "formula", "included", "effect", "heterogeneity"), SELECTION_CASES)
def test_selection_models_with_moderators_match_brute_force(levels, formula, included, effect, heterogeneity):
    frame = _data(k=6, levels=levels)
    terms = encode_moderators(frame, formula)
    fit = moderated_selection_marginal(
        frame["yi"].to_numpy(),
        frame["vi"].to_numpy(),
        PRIORS,
        terms,
        frozenset(included),
        effect=effect,
        heterogeneity=heterogeneity,
        cut=CUT,
    )
    assert fit.error < 1e-6  # the measured convergence of the nested quadrature
    if heterogeneity:
        brute = _brute_selection_over_tau(frame, terms, frozenset(included), effect)
    else:
        brute = _brute_selection(frame, terms, frozenset(included), effect, False)
    assert fit.log_ml == pytest.approx(brute, abs=TOL_LOG)


# --- effect + heterogeneity + a categorical moderator: the 5-D (2 levels) and 6-D (3) grids --


def _gauss_legendre(lower, upper, nodes):
    x, w = np.polynomial.legendre.leggauss(nodes)
    return (upper - lower) / 2 * x + (upper + lower) / 2, (upper - lower) / 2 * w


def _tensor_log_joint(frame, terms, tau, axes, log_w=None):
    """log(likelihood x prior of mu, log omega and the deviations) given tau (plus the log
    weights ``log_w`` per axis, if given) on the full tensor ``mu x log omega x beta_1 x .. x
    beta_J`` of the node vectors ``axes``.

    Written from docs/bias_moderators.md and EnsemblePriors, not from evmeta's code: comparison
    ``i`` in level ``j`` is ``N(mu + beta_j, v_i + tau^2)`` times its selection weight
    (``omega`` when its one-sided p-value is above CUT, else 1) over its probability of
    publication ``omega + (1 - omega) P(y_i > cut_i)``; mu ~ normal(0, 1), beta_j ~ normal(0,
    0.25), omega ~ uniform(0, 1). Each comparison's term is a function of (mu, omega, beta_j),
    so it is evaluated on that 3-D face and broadcast (terms of one level added first): the
    tensor holds the integrand at every node and the caller sums all of it (no product of
    per-level integrals, which is what the nested quadrature uses)."""
    y, v = frame["yi"].to_numpy(), frame["vi"].to_numpy()
    above = stats.norm.sf(y / np.sqrt(v)) > CUT
    cut_y = np.sqrt(v) * stats.norm.isf(CUT)
    mu, log_omega, betas = axes[0], axes[1], axes[2:]
    omega = np.exp(log_omega)
    log_w = log_w or [np.zeros(len(a)) for a in axes]
    sd = np.sqrt(v + tau**2)
    with np.errstate(divide="ignore"):  # omega = 1 at a scan's edge: log(1 - omega) = -inf, on purpose
        log_rest = np.log1p(-omega)[None, :, None]
    # (mu, omega, beta_j) per level; the priors (omega ~ uniform(0, 1): the Jacobian omega per
    # unit log omega) and the weights go to level 0
    face = (len(mu), len(omega))
    parts = [
        np.broadcast_to(stats.norm.logpdf(b, 0, PRIORS.moderator_sd) + w, (*face, len(b))).copy()
        for b, w in zip(betas, log_w[2:], strict=True)
    ]
    parts[0] += (stats.norm.logpdf(mu, 0, PRIORS.mu_sd) + log_w[0])[:, None, None]
    parts[0] += (log_omega + log_w[1])[None, :, None]
    log_omega = log_omega[None, :, None]
    for i, j in enumerate(terms.level_of):
        mean = (mu[:, None] + betas[j][None, :])[:, None, :]
        # log P(published) = log(omega + (1 - omega) P(y_i > cut_i)), finite at omega = 1
        log_published = np.logaddexp(log_omega, log_rest + stats.norm.logsf((cut_y[i] - mean) / sd[i]))
        parts[j] += stats.norm.logpdf(y[i], mean, sd[i]) - log_published + (log_omega if above[i] else 0.0)
    out = 0.0  # two levels at least (a one-level factor is refused), so the sum is the full tensor
    for j, part in enumerate(parts):
        out = out + part.reshape([*face] + [len(b) if q == j else 1 for q, b in enumerate(betas)])
    return out


def _scanned_box(frame, terms, tau, scans=3, points=13):
    """Box [lower, upper] per axis (mu, log omega, beta_j..) holding every node of a 13^d scan
    within 30 of the scan's maximum, plus one scan step; three scans, each on the last box."""
    box = [[-6.0, 6.0], [-40.0, 0.0]] + [[-2.0, 2.0] for _ in terms.levels]
    for _ in range(scans):
        grids = [np.linspace(lo, hi, points) for lo, hi in box]
        values = _tensor_log_joint(frame, terms, tau, grids)
        inside = values > values.max() - 30
        for a, grid in enumerate(grids):
            hit = np.flatnonzero(inside.any(axis=tuple(b for b in range(values.ndim) if b != a)))
            step = grid[1] - grid[0]
            box[a] = [grid[hit[0]] - step, grid[hit[-1]] + step]
        box[1][1] = min(box[1][1], 0.0)  # omega <= 1
    return box


def _inner_given_tau(frame, terms, tau, nodes, chunk=2_000_000):
    """log of the dense Gauss-Legendre sum over (mu, log omega, beta_j..) given tau (``nodes``
    = per-axis counts for mu, log omega and every beta), and per axis the largest log integrand
    on its first and last node minus the largest overall: the box's edges, which must lie far
    below the peak (omega = 1 is its own bound, no truncation: -inf there)."""
    n_mu, n_omega, n_beta = nodes
    box = _scanned_box(frame, terms, tau)
    rules = [_gauss_legendre(*box[0], n_mu), _gauss_legendre(*box[1], n_omega)]
    rules += [_gauss_legendre(*edges, n_beta) for edges in box[2:]]
    step = max(1, chunk // (n_omega * n_beta ** len(terms.levels)))
    sums, tops, edges = [], [], np.full((len(rules), 2), -np.inf)
    for s in range(0, n_mu, step):
        rows = slice(s, s + step)
        axes = [rules[0][0][rows]] + [r[0] for r in rules[1:]]
        log_w = [np.log(rules[0][1][rows])] + [np.log(r[1]) for r in rules[1:]]
        values = _tensor_log_joint(frame, terms, tau, axes, log_w)
        for a in range(1, len(rules)):
            edges[a] = np.maximum(edges[a], [np.take(values, 0, a).max(), np.take(values, -1, a).max()])
        if s == 0:
            edges[0, 0] = values[0].max()
        edges[0, 1] = values[-1].max()  # the last chunk's last mu node in the end
        top = float(values.max())
        tops.append(top)
        sums.append(top + np.log(np.sum(np.exp(values - top))))
    if box[1][1] == 0.0:
        edges[1, 1] = -np.inf
    return float(special.logsumexp(sums)), edges - max(tops)


def _brute_selection_effect_tau_factor(frame, terms, nodes):
    """log marginal likelihood of the step model with mu, tau, omega and one deviation per
    level, and the largest edge value of any grid relative to that grid's maximum (log scale).

    Gauss-Legendre over log tau (``nodes[0]`` nodes) outside, on the range where a coarse inner
    integral (on log-tau points 0.34 apart from 1e-4 to 1e3, extended upwards by 0.5 while the
    last is within 30 of the maximum) is within 30 of its maximum, plus one step; at each
    log-tau node the dense tensor over (mu, log omega, beta_j..) (``nodes[1:]`` per axis) on a
    box scanned at that tau, which follows the funnel of mu in tau. Omega is integrated on the
    log scale: with every comparison significant its posterior piles up at omega = 0, where
    Gauss-Legendre on [0, 1] converges slowly (8e-4 off with 64 omega nodes on such data)."""
    log_prior = lambda u: stats.invgamma.logpdf(np.exp(u), PRIORS.tau_shape, scale=PRIORS.tau_scale) + u  # noqa: E731
    coarse_at = lambda u: _inner_given_tau(frame, terms, np.exp(u), (12, 12, 12))[0] + log_prior(u)  # noqa: E731
    scan = list(np.linspace(np.log(1e-4), np.log(1e3), 49))
    coarse = [coarse_at(u) for u in scan]
    for _ in range(30):  # small k: the tail in log tau falls like tau^-(k + 1), so extend it
        if coarse[-1] < max(coarse) - 30:
            break
        scan.append(scan[-1] + 0.5)
        coarse.append(coarse_at(scan[-1]))
    hit = np.flatnonzero(np.array(coarse) > max(coarse) - 30)
    assert 0 < hit[0] and hit[-1] < len(scan) - 1  # the scan brackets the posterior of log tau
    u, w = _gauss_legendre(scan[hit[0] - 1], scan[hit[-1] + 1], nodes[0])
    inner = [_inner_given_tau(frame, terms, np.exp(ui), nodes[1:]) for ui in u]
    values = np.array([log_i + log_prior(ui) for (log_i, _), ui in zip(inner, u, strict=True)])
    worst = max([float(edges.max()) for _, edges in inner] + [float(values[[0, -1]].max() - values.max())])
    return float(special.logsumexp(values + np.log(w))), worst


def _all_significant(frame):
    """The same comparisons with every effect just significant (z from 2.0 to 2.6): the pattern
    of strong selection, whose omega posterior piles up at 0."""
    return frame.assign(yi=np.sqrt(frame["vi"]) * np.linspace(2.0, 2.6, len(frame)))


# Node counts (log tau, mu, log omega, each beta): the coarse and the fine brute force, which
# must agree to 1e-6 (on these data they agree to 4e-7; the fine one is within 1e-9 (2 levels,
# against 56/48/48/56 nodes) and 7e-9 (3 levels, against 48/48/28/32) of finer grids).
# 5-D: about 1 and 2 s; 6-D (3 levels): about 5 and 12 s on 2 cores (more when loaded).
BRUTE_NODES = {2: ((40, 32, 32, 40), (48, 40, 40, 48)), 3: ((32, 32, 20, 24), (40, 40, 24, 28))}


@pytest.mark.parametrize(
    ("levels", "significant"),
    [(2, False), pytest.param(2, True, marks=_SLOW), pytest.param(3, False, marks=_SLOW)],
)
def test_selection_with_effect_heterogeneity_and_factor_matches_brute_force(levels, significant):
    """mu + tau + omega + one deviation per level (5-D with 2 levels, 6-D with 3): the nested
    quadrature (factorized by level) against the dense tensor grid, at TOL_LOG."""
    frame = _data(k=6, levels=levels)
    frame = _all_significant(frame) if significant else frame
    terms = encode_moderators(frame, "~ method")
    fit = moderated_selection_marginal(
        frame["yi"].to_numpy(),
        frame["vi"].to_numpy(),
        PRIORS,
        terms,
        frozenset({"method"}),
        effect=True,
        heterogeneity=True,
        cut=CUT,
    )
    # Its own convergence measure: the adaptive Gauss-Hermite rule reports 3e-6 on the
    # all-significant variant (omega's posterior piled up at 0), below 1e-6 on the others.
    assert fit.error < 1e-5
    (coarse, coarse_edge), (fine, fine_edge) = (
        _brute_selection_effect_tau_factor(frame, terms, nodes) for nodes in BRUTE_NODES[levels]
    )
    assert max(coarse_edge, fine_edge) < -20  # every box reaches exp(-20) below its peak
    assert coarse == pytest.approx(fine, abs=1e-6)  # the brute force has converged
    assert fit.log_ml == pytest.approx(fine, abs=TOL_LOG)


# --- the ensemble -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "n_models"), [("~ method", 32), pytest.param("~ method + dose", 64, marks=pytest.mark.slow)]
)
def test_ensemble_with_moderators_outputs(formula, n_models):
    frame = _data(k=8, levels=2)
    bma = em.models.bias_model_averaging(frame, mods=formula)
    models = bma.models
    assert len(models) == n_models and models["prior_prob"].sum() == pytest.approx(1)
    assert models["posterior_prob"].sum() == pytest.approx(1)
    assert set(bma.inclusion_bf) == {"effect", "heterogeneity", "bias", *bma.moderators}
    post = models.loc[models["with_method"], "posterior_prob"].sum()
    assert bma.inclusion_bf["method"] == pytest.approx(post / (1 - post))  # prior odds 1
    means = bma.marginal_means
    assert list(means.index) == ["SEC", "UC"] and list(means["k"]) == [4, 4]
    assert ((means["ci_low"] < means["estimate"]) & (means["estimate"] < means["ci_high"])).all()
    assert (means["posterior_sd"] > 0).all()
    text = str(bma.summary())
    assert "marginal means" in text and f"{n_models} models" in text
    assert bma.to_dict()["marginal_means"][0]["method"] == "SEC"


def test_marginal_mean_of_one_model_against_direct_integration():
    """The level mean's posterior mean in effect/fixed/none+method: Gaussian, by quad."""
    frame = _data(k=6, levels=2)
    terms = encode_moderators(frame, "~ method")
    fit = moderated_normal_marginal(
        frame["yi"].to_numpy(),
        frame["vi"].to_numpy(),
        PRIORS,
        terms,
        frozenset({"method"}),
        effect=True,
        heterogeneity=False,
        slope=None,
    )
    y, v = frame["yi"].to_numpy(), frame["vi"].to_numpy()
    sel = terms.level_of == 0
    # t = mu + beta_0 has prior N(0, 1 + 0.25^2); the other level's data inform mu only.
    # Brute force: integrate (mu, beta_0, beta_1) on a dense Gauss-Legendre cube.
    x, w = np.polynomial.legendre.leggauss(100)  # mu within 4, beta within 2 (8 prior SDs)
    mu, b0, b1 = np.meshgrid(4 * x, 2 * x, 2 * x, indexing="ij")
    weights = (4 * w)[:, None, None] * (2 * w)[None, :, None] * (2 * w)[None, None, :]
    log_p = stats.norm.logpdf(mu) + stats.norm.logpdf(b0, 0, 0.25) + stats.norm.logpdf(b1, 0, 0.25)
    for i in range(len(y)):
        mean = mu + (b0 if sel[i] else b1)
        log_p = log_p + stats.norm.logpdf(y[i], mean, np.sqrt(v[i]))
    p = weights * np.exp(log_p - log_p.max())
    direct = float(np.sum(p * (mu + b0)) / np.sum(p))
    means, _sds, comp_w = fit.level_components[0]
    assert float(np.sum(comp_w * means)) == pytest.approx(direct, abs=1e-7)


def test_multilevel_ensemble_leaves_out_selection():
    frame = _data(k=8, levels=2)
    bma = em.models.bias_model_averaging(frame, mods="~ method", cluster="study")
    assert set(bma.models["bias"]) == {"none", "pet", "peese"} and len(bma.models) == 24
    assert bma.models["prior_prob"].sum() == pytest.approx(1)
    assert any("multilevel" in note for note in bma.notes)
    assert bma.cluster == "study"


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_small_data_one_comparison_per_level(k):
    rng = np.random.default_rng(k)
    frame = pd.DataFrame(
        {
            "yi": rng.normal(0.5, 0.4, k),
            "vi": rng.uniform(0.05, 0.3, k),
            "method": [f"m{i}" for i in range(k)],
        }
    )
    bma = em.models.bias_model_averaging(frame, mods="~ method")
    assert np.isfinite(bma.models["log_marginal_likelihood"]).all()
    assert len(bma.marginal_means) == k and (bma.marginal_means["posterior_sd"] > 0).all()
    assert any("rest on one comparison" in note for note in bma.notes)


def test_bad_moderators():
    frame = _data(k=6, levels=2)
    with pytest.raises(ModelError, match="unknown moderator"):
        em.models.bias_model_averaging(frame, mods="~ nothing")
    with pytest.raises(ModelError, match="one level"):
        em.models.bias_model_averaging(frame.assign(method="UC"), mods="~ method")
    with pytest.raises(ModelError, match="at most one categorical"):
        em.models.bias_model_averaging(frame.assign(other=list("ababab")), mods="~ method + other")
    with pytest.raises(ModelError, match="sum of column names"):
        em.models.bias_model_averaging(frame, mods="~ method * dose")
    with pytest.raises(ModelError, match="cluster"):
        em.models.bias_model_averaging(frame, mods="~ method", cluster="lab")


@pytest.mark.slow
def test_k100_five_level_ensemble_meets_its_time():
    """k = 100, one 5-level moderator, the whole 32-model ensemble: under 10 s on 2 cores
    (the issue's goal); asserted at 15 s, a margin for a machine shared with other jobs."""
    from benchmarks.bench_bias_moderators import simulate_moderated

    frame = simulate_moderated(100)
    start = time.perf_counter()
    bma = em.models.bias_model_averaging(frame, mods="~ isolation_method")
    elapsed = time.perf_counter() - start
    assert len(bma.models) == 32 and len(bma.marginal_means) == 5
    assert elapsed < 15.0
