"""NUTS without PyMC: the nested normal model with every random level integrated out, its
log posterior and gradient written out (compiled once by Numba and cached on disk), sampled
by nutpie.

The posterior is the one :func:`evmeta.models.bayes.pymc_backend.build_model` defines for a
normal likelihood without a known sampling covariance: coefficients ``beta = R^-1 theta`` on
the QR-orthogonalized design ``Q* = Q sqrt(k - 1)`` with the coefficient priors on ``beta``,
one SD per random level with its prior, and the likelihood

    y ~ N(X beta, diag(v) + sum_l tau_l^2 Z_l Z_l'),

evaluated by the group-sum recursion of :mod:`evmeta.models.base.nesting` (innermost level
first; Sherman-Morrison and the determinant lemma at each level). NUTS moves on
``(theta, log tau)``: the Jacobian ``log tau`` is added, so the draws of tau have exactly the
prior times likelihood density. The gradient is the recursion differentiated by hand in
reverse order (tested against finite differences and the dense multivariate normal).

Why: PyMC's import and the compilation of its model graph (PyTensor to Numba for nutpie)
cost several times the sampling itself for these small models; this path imports neither
PyMC nor PyTensor, and Numba's on-disk cache makes the compiled log posterior a file load
after the first run (``NUMBA_CACHE_DIR`` moves the cache). Models it does not cover
(Student-t likelihood, a known covariance V, uniform priors on a SD) keep the PyMC model.

Reference: Hoffman MD, Gelman A (2014). The No-U-Turn sampler. JMLR 15:1593-1623; nutpie
(Seyboldt et al.), https://github.com/pymc-devs/nutpie.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evmeta.models.base.nesting import NestedStructure
from evmeta.models.priors import Prior, PriorSet

#: Coefficient prior families this path writes out, by code.
COEFFICIENT_FAMILIES = {"normal": 0, "student_t": 1}
#: SD prior families this path writes out, by code (uniform has bounds: PyMC's interval
#: transform handles them; it stays on the PyMC path).
TAU_FAMILIES = {"halfnormal": 0, "halfcauchy": 1, "halfstudent_t": 2, "exponential": 3, "lognormal": 4}


def applicable(priors: PriorSet, *, student_t: bool, V: np.ndarray | None) -> bool:
    """Whether the model is one this path samples (else the PyMC model is used)."""
    return (
        not student_t
        and V is None
        and all(p.family in COEFFICIENT_FAMILIES for p in priors.coefficients.values())
        and all(p.family in TAU_FAMILIES for p in priors.taus.values())
    )


def orthogonal_design(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NUTS moves theta = R* beta on the orthogonal design Q* = Q sqrt(k - 1) (X = QR), which
    removes the correlation between coefficients (e.g. an intercept and an uncentred
    moderator); the priors stay on beta = R*^-1 theta (a linear map: constant Jacobian).
    Returns (Q*, R*^-1); shared by this path and the PyMC model."""
    k = X.shape[0]
    Q, R = np.linalg.qr(X)
    scale = np.sqrt(max(k - 1, 1))
    return Q * scale, np.linalg.inv(R / scale)


def _params(priors: list[Prior], codes: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    family = np.array([codes[p.family] for p in priors], dtype=np.int64)
    params = np.zeros((len(priors), 3))
    for row, prior in enumerate(priors):
        params[row, : len(prior.params)] = prior.params
    return family, params


class MarginalModel:
    """The arrays the compiled log posterior reads, and its Python entry points.

    Parameters
    ----------
    y, v : ndarray (k,)
        Effect sizes and sampling variances.
    X : ndarray (k, p)
        Design matrix.
    structure : NestedStructure
        Random levels, outermost first.
    priors : PriorSet
        One prior per coefficient and per level's SD (:func:`applicable` must hold).
    """

    def __init__(self, y: np.ndarray, v: np.ndarray, X: np.ndarray, structure: NestedStructure, priors: PriorSet):
        p = X.shape[1]
        Q_star, R_inv = orthogonal_design(X)
        self.Q_star, self.R_inv = np.ascontiguousarray(Q_star), np.ascontiguousarray(R_inv)
        # Fresh writable C arrays: one compiled signature whatever the caller passes.
        self.y = np.array(y, dtype=float, order="C")
        self.a = np.array(1.0 / np.asarray(v, dtype=float), order="C")
        self.inner = np.ascontiguousarray(structure.inner, dtype=np.int64)
        self.sizes = np.asarray(structure.sizes, dtype=np.int64)
        levels = len(structure.sizes)
        self.parent = np.zeros((levels, int(self.sizes.max())), dtype=np.int64)
        for level in range(1, levels):
            parent = structure.parent[level]
            assert parent is not None  # every level below the outermost has a parent
            self.parent[level, : len(parent)] = parent
        self.coefficient_family, self.coefficient_params = _params(
            list(priors.coefficients.values()), COEFFICIENT_FAMILIES
        )
        self.tau_family, self.tau_params = _params(list(priors.taus.values()), TAU_FAMILIES)
        self.p, self.levels = p, levels
        self.n_dim = p + levels

    def logp_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior of ``x = (theta, log tau)`` up to a constant, and its gradient."""
        from evmeta.models.bayes import _marginal_kernel

        grad = np.zeros(self.n_dim)
        value = _marginal_kernel.log_posterior(
            np.asarray(x, dtype=float),
            grad,
            self.y,
            self.a,
            self.Q_star,
            self.R_inv,
            self.inner,
            self.sizes,
            self.parent,
            self.coefficient_family,
            self.coefficient_params,
            self.tau_family,
            self.tau_params,
        )
        return float(value), grad

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The stored draw: ``beta`` and one ``tau_<level>`` per level."""
        out = {"beta": self.R_inv @ x[: self.p]}
        for level in range(self.levels):
            out[f"tau_{level}"] = np.asarray(np.exp(x[self.p + level]))
        return out

    def initial_point(self, seed: int) -> np.ndarray:
        """A start near the data: least-squares theta and log SD of the residuals, jittered
        by uniform(-1, 1) on the log SDs and +-0.1 on theta (seeded per chain)."""
        rng = np.random.default_rng(seed)
        k = len(self.y)
        theta = self.Q_star.T @ self.y / max(k - 1, 1)
        spread = np.std(self.y - self.Q_star @ theta) / np.sqrt(self.levels) + 1e-3
        log_tau = np.full(self.levels, np.log(spread))
        return np.concatenate([theta + rng.uniform(-0.1, 0.1, self.p), log_tau + rng.uniform(-1, 1, self.levels)])


def compiled_model(model: MarginalModel) -> Any:
    """The nutpie model (``nutpie.compiled_pyfunc.from_pyfunc``) of ``model``."""
    from nutpie.compiled_pyfunc import from_pyfunc

    names = ["beta", *(f"tau_{level}" for level in range(model.levels))]
    shapes = [(model.p,), *([()] * model.levels)]

    def make_logp() -> Any:
        return lambda x, **_: model.logp_and_grad(x)

    def make_expand(seed1: int, seed2: int, chain: int) -> Any:
        return lambda x, **_: model.expand(x)

    return from_pyfunc(
        ndim=model.n_dim,
        make_logp_fn=make_logp,
        make_expand_fn=make_expand,
        make_initial_point_fn=model.initial_point,
        expanded_dtypes=[np.dtype("float64")] * len(names),
        expanded_shapes=shapes,
        expanded_names=names,
    )


def sample(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    structure: NestedStructure,
    priors: PriorSet,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int | None,
    progress: bool,
    target_accept: float,
) -> tuple[Any, str] | None:
    """nutpie's trace (an ArviZ InferenceData with ``beta`` and ``tau_<level>``) and the
    sampler's label, or None when nutpie or Numba is not installed (the caller then uses
    the PyMC model)."""
    import warnings

    try:
        import numba  # noqa: F401  (compiles the log posterior)
        import nutpie
    except ImportError:
        return None
    model = MarginalModel(y, v, X, structure, priors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace = nutpie.sample(
            compiled_model(model),
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=progress,
            target_accept=target_accept,
            save_warmup=False,
        )
    return trace, f"nutpie {nutpie.__version__} (evmeta's marginal log posterior, no PyMC)"


__all__ = ["COEFFICIENT_FAMILIES", "TAU_FAMILIES", "MarginalModel", "applicable", "compiled_model", "sample"]
