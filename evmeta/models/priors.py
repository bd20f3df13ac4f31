"""Priors as small printable value objects, parsed from strings such as ``"normal(0, 1)"``.

Families: normal(mu, sigma), student_t(nu, mu, sigma), halfnormal(sigma),
halfcauchy(beta), halfstudent_t(nu, sigma), exponential(lam), uniform(lower, upper),
lognormal(mu, sigma). Densities come from scipy so the exact (quadrature) engine and the
PyMC engine use the same definitions.

Default priors are weakly informative on the scale of the effect measure. Preclinical
MSC-EV effects are large (pooled SMDs of 2-4 in absolute value, I^2 of 60-90%;
shared/domain/effect_sizes.md), so the defaults must not pull such effects towards 0:

* intercept ~ normal(0, 5 s): an SMD of 4 is 0.8 prior SD from 0;
* coefficients ~ normal(0, 2.5 s): moderator differences of 2 SMD are well inside;
* each tau ~ halfnormal(2 s): median 1.3 s, 95% below 3.9 s; heterogeneity SDs of 1-2
  SMD, usual in animal studies, are typical under it.

``s`` is 1 for SMD and the log-scale measures (ROM, OR, RR), 0.25 for RD, 25 for NMD
(percent) and the empirical SD of yi for MD or an unknown measure.

Named prior sets (``priors="default"`` or ``priors="preclinical"`` instead of a dict, also
``[bayesian] priors = "preclinical"`` in an analysis spec): ``"preclinical"`` puts the
preclinical heterogeneity prior (:func:`preclinical_tau_prior`, lognormal(log s, 0.5): median
s, i.e. 1 SMD) on every tau and keeps the default coefficient priors. In a dict, the value
``"preclinical"`` does the same for one key: ``{"tau[study_id]": "preclinical"}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from evmeta.errors import ModelError


class FrozenDistribution(Protocol):
    """What evmeta uses of a frozen scipy.stats distribution (``Prior.scipy()``)."""

    def logpdf(self, x: ArrayLike) -> np.ndarray: ...

    def ppf(self, q: ArrayLike) -> np.ndarray: ...

    def rvs(self, size: int | tuple[int, ...] | None = None, random_state: Any = None) -> np.ndarray: ...


#: Family -> parameter names.
FAMILIES: dict[str, tuple[str, ...]] = {
    "normal": ("mu", "sigma"),
    "student_t": ("nu", "mu", "sigma"),
    "halfnormal": ("sigma",),
    "halfcauchy": ("beta",),
    "halfstudent_t": ("nu", "sigma"),
    "exponential": ("lam",),
    "uniform": ("lower", "upper"),
    "lognormal": ("mu", "sigma"),
}
#: Families whose support is the positive half-line (allowed for standard deviations).
POSITIVE = {"halfnormal", "halfcauchy", "halfstudent_t", "exponential", "uniform", "lognormal"}

_PATTERN = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class Prior:
    """One prior distribution: a family and its parameters."""

    family: str
    params: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.family}({', '.join(f'{p:g}' for p in self.params)})"

    @property
    def is_normal(self) -> bool:
        return self.family == "normal"

    def scipy(self) -> FrozenDistribution:
        """The frozen scipy distribution (scipy.stats is imported here, not on the exact path)."""
        from scipy import stats

        f, p = self.family, self.params
        if f == "normal":
            return stats.norm(p[0], p[1])
        if f == "student_t":
            return stats.t(p[0], p[1], p[2])
        if f == "halfnormal":
            return stats.halfnorm(0, p[0])
        if f == "halfcauchy":
            return stats.halfcauchy(0, p[0])
        if f == "halfstudent_t":
            return _HalfT(p[0], p[1])
        if f == "exponential":
            return stats.expon(0, 1 / p[0])
        if f == "uniform":
            return stats.uniform(p[0], p[1] - p[0])
        if f == "lognormal":
            return stats.lognorm(p[1], 0, math.exp(p[0]))
        raise ModelError(f"unknown prior family {f!r}")

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """Log density (closed forms; equal to scipy.stats, tested), -inf outside the support."""
        f, p = self.family, self.params
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore"):
            if f == "normal":
                return _normal_log(x, p[0], p[1])
            if f == "student_t":
                return _student_log(x, p[0], p[1], p[2])
            if f == "uniform":
                return np.where((x >= p[0]) & (x <= p[1]), -math.log(p[1] - p[0]), -np.inf)
            if f == "lognormal":
                safe = np.where(x > 0, x, 1.0)
                value = -np.log(safe * p[1] * math.sqrt(2 * math.pi)) - (np.log(safe) - p[0]) ** 2 / (
                    2 * p[1] ** 2
                )
                return np.where(x > 0, value, -np.inf)
            if f == "halfnormal":
                value = math.log(2) + _normal_log(x, 0.0, p[0])
            elif f == "halfcauchy":
                value = math.log(2 / (math.pi * p[0])) - np.log1p((x / p[0]) ** 2)
            elif f == "halfstudent_t":
                value = math.log(2) + _student_log(x, p[0], 0.0, p[1])
            elif f == "exponential":
                value = math.log(p[0]) - p[0] * x
            else:
                raise ModelError(f"unknown prior family {f!r}")
        return np.where(x >= 0, value, -np.inf)

    def ppf(self, q: float) -> float:
        """Quantile function (closed forms through scipy.special)."""
        f, p = self.family, self.params
        values = {
            "normal": lambda: p[0] + p[1] * special.ndtri(q),
            "student_t": lambda: p[1] + p[2] * special.stdtrit(p[0], q),
            "halfnormal": lambda: p[0] * special.ndtri((1 + q) / 2),
            "halfcauchy": lambda: p[0] * math.tan(math.pi * q / 2),
            "halfstudent_t": lambda: p[1] * special.stdtrit(p[0], (1 + q) / 2),
            "exponential": lambda: -math.log1p(-q) / p[0],
            "uniform": lambda: p[0] + q * (p[1] - p[0]),
            "lognormal": lambda: math.exp(p[0] + p[1] * special.ndtri(q)),
        }
        return float(values[f]())


def _normal_log(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return -0.5 * math.log(2 * math.pi) - math.log(sigma) - 0.5 * ((x - mu) / sigma) ** 2


def _student_log(x: np.ndarray, nu: float, mu: float, sigma: float) -> np.ndarray:
    const = (
        special.gammaln((nu + 1) / 2)
        - special.gammaln(nu / 2)
        - 0.5 * math.log(nu * math.pi)
        - math.log(sigma)
    )
    return const - (nu + 1) / 2 * np.log1p(((x - mu) / sigma) ** 2 / nu)


class _HalfT:
    """Half Student-t with nu degrees of freedom and scale sigma (|t_nu| x sigma)."""

    def __init__(self, nu: float, sigma: float) -> None:
        from scipy import stats

        self.nu, self.sigma = nu, sigma
        self._t = stats.t(nu, 0, sigma)

    def logpdf(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.where(x >= 0, math.log(2) + self._t.logpdf(x), -np.inf)

    def ppf(self, q: ArrayLike) -> np.ndarray:
        return self._t.ppf(0.5 + np.asarray(q) / 2)

    def rvs(self, size: int | tuple[int, ...] | None = None, random_state: Any = None) -> np.ndarray:
        return np.abs(self._t.rvs(size=size, random_state=random_state))


def parse_prior(text: Any, name: str = "prior") -> Prior:
    """Parse ``"normal(0, 1)"`` (or pass a Prior through); errors say what was expected."""
    if isinstance(text, Prior):
        return text
    match = _PATTERN.match(str(text).strip().lower())
    if not match:
        raise ModelError(
            f"{name}: cannot read prior {text!r}; expected e.g. 'normal(0, 1)' or 'halfnormal(0.5)'"
        )
    family, inside = match.group(1), match.group(2)
    if family not in FAMILIES:
        raise ModelError(f"{name}: unknown prior family {family!r}; valid families: {', '.join(FAMILIES)}")
    try:
        params = tuple(float(p) for p in inside.split(",")) if inside.strip() else ()
    except ValueError:
        raise ModelError(f"{name}: prior parameters of {text!r} must be numbers") from None
    if not all(math.isfinite(value) for value in params):
        raise ModelError(f"{name}: prior parameters of {text!r} must be finite numbers")
    expected = FAMILIES[family]
    if len(params) != len(expected):
        raise ModelError(
            f"{name}: {family} takes {len(expected)} parameter(s) ({', '.join(expected)}), got {len(params)}"
        )
    positive = {"sigma", "beta", "nu", "lam"}
    for label, value in zip(expected, params, strict=True):
        if label in positive and value <= 0:
            raise ModelError(f"{name}: {family} parameter {label} must be > 0, got {value:g}")
    if family == "uniform" and params[1] <= params[0]:
        raise ModelError(f"{name}: uniform needs lower < upper")
    return Prior(family, params)


def measure_scale(measure: str | None, yi: np.ndarray) -> float:
    """The scale ``s`` of the default priors (see the module docstring)."""
    known = {"SMD": 1.0, "ROM": 1.0, "OR": 1.0, "RR": 1.0, "RD": 0.25, "NMD": 25.0}
    if measure in known:
        return known[measure]
    spread = float(np.std(yi, ddof=1)) if len(yi) > 1 else 1.0
    return spread if spread > 0 else 1.0


@dataclass
class PriorSet:
    """The priors of one model, resolved to one Prior per coefficient and per tau."""

    coefficients: dict[str, Prior]
    taus: dict[str, Prior]
    nu: Prior | None = None

    def as_strings(self) -> dict[str, str]:
        out = {name: str(p) for name, p in self.coefficients.items()}
        out.update({f"tau[{level}]": str(p) for level, p in self.taus.items()})
        if self.nu is not None:
            out["nu"] = str(self.nu)
        return out

    @property
    def all_normal(self) -> bool:
        return all(p.is_normal for p in self.coefficients.values())


#: Named prior sets accepted instead of a dict, and the dict each stands for.
NAMED_PRIORS: dict[str, dict[str, str]] = {"default": {}, "preclinical": {"tau": "preclinical"}}
#: The prior value (for ``tau`` or ``tau[<level>]``) that names the preclinical tau prior.
PRECLINICAL = "preclinical"


def prior_dict(given: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """The user's priors as a dict: a dict as given, a named set as the dict it stands for.

    Parameters
    ----------
    given : dict, str or None
        A dict of priors, ``"default"`` (the documented defaults: ``{}``) or
        ``"preclinical"`` (``{"tau": "preclinical"}``); None means ``{}``.

    Returns
    -------
    dict
        A new dict (safe to store and to merge overrides into).

    Raises
    ------
    ModelError
        An unknown name, or neither a dict nor a string.
    """
    valid = f"{', '.join(map(repr, NAMED_PRIORS))} or a dict such as {{'tau': 'halfnormal(0.5)'}}"
    if given is None:
        return {}
    if isinstance(given, str):
        name = given.strip().lower()
        if name not in NAMED_PRIORS:
            raise ModelError(f"unknown priors {given!r}; valid: {valid}")
        return dict(NAMED_PRIORS[name])
    if isinstance(given, Mapping):
        return dict(given)
    raise ModelError(f"priors must be {valid}; got a {type(given).__name__}")


def resolve_priors(
    given: Mapping[str, Any] | str | None,
    *,
    names: list[str],
    terms: dict[str, list[int]],
    levels: list[str],
    scale: float,
    student_t: bool = False,
) -> PriorSet:
    """One prior per coefficient and per level from a user dict and the defaults.

    Keys: ``intercept``; ``coefficients`` (every non-intercept coefficient); a formula term
    (``isolation_method``, all its columns) or a coefficient name
    (``isolation_method[T.SEC]``); ``tau`` (every level) or ``tau[<level>]``; ``nu``
    (Student-t degrees of freedom). More specific keys win. ``given`` may also name a prior
    set (:func:`prior_dict`), and a tau key may take the value ``"preclinical"``
    (:func:`preclinical_tau_prior` at ``scale``).
    """
    given = prior_dict(given)
    term_names = [t for t in terms if t != "intercept"]
    valid = [
        "intercept",
        "coefficients",
        *term_names,
        *[n for n in names if n != "intercept"],
        "tau",
        *[f"tau[{lv}]" for lv in levels],
    ]
    if student_t:
        valid.append("nu")
    unknown = [key for key in given if key not in valid]
    if unknown:
        raise ModelError(
            f"unknown prior name(s) {', '.join(map(repr, unknown))}; valid names: {', '.join(valid)}"
        )
    parsed = {key: _parse_named(key, value, scale) for key, value in given.items()}
    coefficient_priors: dict[str, Prior] = {}
    default_coefficient = parsed.get("coefficients", Prior("normal", (0.0, 2.5 * scale)))
    for index, name in enumerate(names):
        if name == "intercept":
            prior = parsed.get("intercept", Prior("normal", (0.0, 5.0 * scale)))
        else:
            term = next((t for t, cols in terms.items() if index in cols and t != "intercept"), None)
            prior = parsed.get(name) or (parsed.get(term) if term else None) or default_coefficient
        if prior.family not in {"normal", "student_t"}:
            raise ModelError(f"{name}: a coefficient needs a normal or student_t prior, got {prior}")
        coefficient_priors[name] = prior
    tau_priors = {}
    for level in levels:
        prior = parsed.get(f"tau[{level}]") or parsed.get("tau") or Prior("halfnormal", (2.0 * scale,))
        if prior.family not in POSITIVE or (prior.family == "uniform" and prior.params[0] < 0):
            raise ModelError(
                f"tau[{level}]: a standard deviation needs a prior on positive values, got {prior}"
            )
        tau_priors[level] = prior
    nu = parsed.get("nu", Prior("exponential", (1 / 29,)) if student_t else None)
    return PriorSet(coefficient_priors, tau_priors, nu)


def _parse_named(key: str, value: Any, scale: float) -> Prior:
    """parse_prior, plus ``"preclinical"`` for a heterogeneity SD."""
    if not (isinstance(value, str) and value.strip().lower() == PRECLINICAL):
        return parse_prior(value, key)
    if key != "tau" and not key.startswith("tau["):
        raise ModelError(
            f"{key}: 'preclinical' is the heterogeneity prior; use it for tau or tau[<level>], not {key}"
        )
    return preclinical_tau_prior(scale)


def prior_forms() -> str:
    """The prior strings a user may write, for error messages."""
    forms = ", ".join(f"{family}({', '.join(params)})" for family, params in FAMILIES.items())
    return f"{forms}, or {PRECLINICAL!r} for tau or tau[<level>]"


def check_prior(key: str, value: Any) -> None:
    """Raise ModelError naming ``key`` when ``value`` is not a prior it can take.

    The parser the models use (:func:`parse_prior`, ``"preclinical"`` for a tau key), so a
    spec is checked when it is loaded rather than when the model is fitted. The scale is
    irrelevant to validity and taken as 1.
    """
    _parse_named(key, value, 1.0)


# --- Preclinical heterogeneity prior (issue 16) ---------------------------------------------
# A separate block: ``priors="preclinical"`` in ``bias_model_averaging`` and in
# ``bayesian_meta_analysis`` (every tau; or ``{"tau[<level>]": "preclinical"}`` for one level)
# uses it.
#
# Source and honesty note. No published survey that fits a distribution to the tau estimates
# of many animal meta-analyses was found (searched: surveys of heterogeneity in preclinical /
# animal meta-analyses; found only the clinical Cochrane surveys of Turner et al. 2015 (log OR)
# and Rhodes et al. 2015 (SMD), whose tau are far smaller than in animal work, and animal
# method papers that report I^2 without tau). The prior is therefore derived from the best
# documented quantities for preclinical SMD meta-analyses:
#
# * I^2 of 60-90% is usual in MSC-EV (and other) animal meta-analyses (Li et al. 2022, Syst Rev
#   11:197; Vesterinen et al. 2014, J Neurosci Methods 221:92-102; shared/domain/effect_sizes.md);
# * the typical sampling variance of an animal SMD (n = 8 per arm, g about 2) is
#   2/8 + 4/32 = 0.375, so tau^2 = v I^2 / (1 - I^2) gives tau = 0.75 (I^2 60%), 1.06 (75%)
#   and 1.84 (90%);
# * rodent meta-analyses report tau near 1 SMD (e.g. tau^2 = 0.985, I^2 77%, in a public
#   replication report of a rodent minocycline meta-analysis,
#   https://matheusglls.github.io/minocycline/meta_analyses_main_report.html; tau about 1.4-2.0
#   in the vendored CAR-T tumour-volume data, tests/data/cart). Anecdotes, not a survey.
#
# Fitted distribution: tau ~ lognormal(0, 0.5): median 1.0 SMD, central 95% [0.38, 2.66],
# which puts 60-90% I^2 at typical animal sample sizes well inside and keeps 0.2-5 plausible.
# On other measures it is scaled by ``measure_scale`` like the defaults.
PRECLINICAL_TAU_SMD = ("lognormal", (0.0, 0.5))


def preclinical_tau_prior(scale: float = 1.0) -> Prior:
    """Heterogeneity prior from preclinical meta-analyses: tau ~ lognormal(log(scale), 0.5).

    Parameters
    ----------
    scale : float
        Scale of the effect measure (1 for SMD; see :func:`measure_scale`).

    Returns
    -------
    Prior
        ``lognormal(mu, sigma)`` on tau (median ``scale`` SMD).
    """
    family, (mu, sigma) = PRECLINICAL_TAU_SMD
    return Prior(family, (mu + math.log(scale), sigma))
