"""The compiled log posterior of :mod:`evmeta.models.bayes.marginal_nuts` (Numba, cached on
disk, the GIL released while it runs so nutpie's chains evaluate it in parallel).

Forward pass: the group-sum recursion, innermost level first,

    g_j = 1 + tau_l^2 S_a[j],   quad -= tau_l^2 S_ar[j]^2 / g_j,   logdet += log g_j,
    S_a[parent] += S_a[j] / g_j,   S_ar[parent] += S_ar[j] / g_j,

from S_a = sum a_i and S_ar = sum a_i r_i over the innermost groups (a = 1/v, r = y - Q* theta),
log-likelihood -(quad + logdet) / 2 up to a constant. Backward pass: the same loop outermost
first, carrying d ll / d S_a and d ll / d S_ar from each group to its children.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def log_posterior(x, grad, y, a, Q, R_inv, inner, sizes, parent, cfam, cpar, tfam, tpar):
    """Log posterior at ``x = (theta, log tau)`` (up to a constant); writes the gradient
    into ``grad``. Families: coefficient 0 normal(mu, sigma), 1 student_t(nu, mu, sigma);
    SD 0 halfnormal(sigma), 1 halfcauchy(beta), 2 halfstudent_t(nu, sigma), 3
    exponential(lam), 4 lognormal(mu, sigma) (PyMC's parametrizations)."""
    p = Q.shape[1]
    grad[:] = 0.0
    lp = _coefficient_prior(x[:p], grad, R_inv, cfam, cpar)
    lp += _tau_prior(x[p:], grad, p, tfam, tpar)
    return lp + _likelihood(x, grad, y, a, Q, inner, sizes, parent)


@njit(cache=True, nogil=True)
def _coefficient_prior(theta, grad, R_inv, cfam, cpar):
    """Coefficient priors on beta = R^-1 theta; adds d/d theta to ``grad[:p]``."""
    p = theta.shape[0]
    lp = 0.0
    beta = R_inv @ theta
    g_beta = np.zeros(p)
    for j in range(p):
        if cfam[j] == 0:
            z = (beta[j] - cpar[j, 0]) / cpar[j, 1]
            lp -= 0.5 * z * z
            g_beta[j] = -z / cpar[j, 1]
        else:
            nu, sigma = cpar[j, 0], cpar[j, 2]
            z = (beta[j] - cpar[j, 1]) / sigma
            lp -= 0.5 * (nu + 1.0) * np.log1p(z * z / nu)
            g_beta[j] = -(nu + 1.0) * z / (nu + z * z) / sigma
    grad[:p] += R_inv.T @ g_beta
    return lp


@njit(cache=True, nogil=True)
def _tau_prior(eta, grad, p, tfam, tpar):
    """SD priors with the Jacobian of tau = exp(eta); adds d/d eta to ``grad[p:]``."""
    lp = 0.0
    for level in range(eta.shape[0]):
        t, f = np.exp(eta[level]), tfam[level]
        if f == 0:
            u = t / tpar[level, 0]
            lp += -0.5 * u * u + eta[level]
            grad[p + level] += -u * u + 1.0
        elif f == 1:
            b = tpar[level, 0]
            lp += -np.log1p((t / b) ** 2) + eta[level]
            grad[p + level] += -2.0 * t * t / (b * b + t * t) + 1.0
        elif f == 2:
            nu, s = tpar[level, 0], tpar[level, 1]
            lp += -0.5 * (nu + 1.0) * np.log1p(t * t / (nu * s * s)) + eta[level]
            grad[p + level] += -(nu + 1.0) * t * t / (nu * s * s + t * t) + 1.0
        elif f == 3:
            lam = tpar[level, 0]
            lp += -lam * t + eta[level]
            grad[p + level] += -lam * t + 1.0
        else:
            mu, s = tpar[level, 0], tpar[level, 1]
            d = (eta[level] - mu) / s
            lp += -0.5 * d * d  # log-normal density times the Jacobian tau: normal in log tau
            grad[p + level] += -d / s
    return lp


@njit(cache=True, nogil=True)
def _likelihood(x, grad, y, a, Q, inner, sizes, parent):
    """The marginal log-likelihood (group-sum recursion) and its gradient (added to ``grad``)."""
    k, p = Q.shape
    L = sizes.shape[0]
    theta = x[:p]
    tau = np.exp(x[p:])
    r = np.empty(k)  # y - Q theta, as loops (BLAS calls cost more than they save at this size)
    for i in range(k):
        acc = y[i]
        for j in range(p):
            acc -= Q[i, j] * theta[j]
        r[i] = acc
    M = sizes.max()
    S_a = np.zeros((L, M))
    S_ar = np.zeros((L, M))
    G = np.ones((L, M))
    quad = 0.0
    for i in range(k):
        quad += a[i] * r[i] * r[i]
        S_a[L - 1, inner[i]] += a[i]
        S_ar[L - 1, inner[i]] += a[i] * r[i]
    logdet = 0.0
    for level in range(L - 1, -1, -1):
        t2 = tau[level] * tau[level]
        for j in range(sizes[level]):
            g = 1.0 + t2 * S_a[level, j]
            G[level, j] = g
            quad -= t2 / g * S_ar[level, j] ** 2
            logdet += np.log(g)
            if level > 0:
                up = parent[level, j]
                S_a[level - 1, up] += S_a[level, j] / g
                S_ar[level - 1, up] += S_ar[level, j] / g
    # Backward: A_a, A_ar = d ll / d S_a, d ll / d S_ar of each group, outermost first.
    A_a = np.zeros((L, M))
    A_ar = np.zeros((L, M))
    for level in range(L):
        t2 = tau[level] * tau[level]
        d_t2 = 0.0
        for j in range(sizes[level]):
            g, sa, sar = G[level, j], S_a[level, j], S_ar[level, j]
            up_a = 0.0
            up_ar = 0.0
            if level > 0:
                up_a = A_a[level - 1, parent[level, j]]
                up_ar = A_ar[level - 1, parent[level, j]]
            A_ar[level, j] = (t2 * sar + up_ar) / g
            d_g = -0.5 * t2 * sar * sar / (g * g) - 0.5 / g - (up_a * sa + up_ar * sar) / (g * g)
            A_a[level, j] = d_g * t2 + up_a / g
            d_t2 += 0.5 * sar * sar / g + d_g * sa
        grad[p + level] += d_t2 * 2.0 * t2
    for i in range(k):
        d_r = -a[i] * r[i] + a[i] * A_ar[L - 1, inner[i]]
        for j in range(p):
            grad[j] -= Q[i, j] * d_r
    return -0.5 * (quad + logdet)
