"""BayesResult: the result of a Bayesian meta-analysis, from quadrature or NUTS.

Under quadrature every summary (means, SDs, quantiles, contrasts, predictions, Bayes
factors) is computed from the exact posterior; draws are kept only so that ArviZ tools
work. Under NUTS they come from the draws, with R-hat and ESS.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evmeta.errors import ModelError
from evmeta.models.base.design import ModelData, new_design
from evmeta.models.base.nesting import NestedStructure, inner_block_loglik, sample_inner_effects
from evmeta.models.bayes.quadrature import QuadratureFit
from evmeta.models.priors import PriorSet

PROBS = (0.025, 0.975)


@dataclass
class BayesResult:
    """A fitted Bayesian meta-analysis.

    Attributes
    ----------
    method_used : {"quadrature", "nuts"}
    priors : dict
        Prior of every parameter, as strings (``intercept``, coefficient names, ``tau[...]``).
    seed : int or None
    levels : list of str
        Random levels, outermost first (``["comparison"]`` for the classic model).
    beta_draws, tau_draws : ndarray
        (chain, draw, p) and (chain, draw, levels).
    converged : bool
        False when R-hat > 1.01, bulk ESS < 400 or any divergence (NUTS); quadrature is
        exact and always converged.
    """

    method_used: str
    model: ModelData = field(repr=False)
    structure: NestedStructure = field(repr=False)
    prior_set: PriorSet = field(repr=False)
    seed: int | None
    beta_draws: np.ndarray = field(repr=False)
    tau_draws: np.ndarray = field(repr=False)
    outer_draws: list[np.ndarray] = field(repr=False, default_factory=list)
    likelihood: str = "normal"
    quadrature: QuadratureFit | None = field(default=None, repr=False)
    nu_draws: np.ndarray | None = field(default=None, repr=False)
    diverging: np.ndarray | None = field(default=None, repr=False)
    energy: np.ndarray | None = field(default=None, repr=False)
    sampler: str = ""
    settings: dict = field(default_factory=dict)
    measure: str | None = None
    fingerprint: str = ""
    versions: dict = field(default_factory=dict)
    V: np.ndarray | None = field(default=None, repr=False)

    # --- basic facts ------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.model.names)

    @property
    def levels(self) -> list[str]:
        return list(self.structure.levels)

    @property
    def priors(self) -> dict[str, str]:
        return self.prior_set.as_strings()

    @property
    def k(self) -> int:
        return self.model.k

    def _tau_names(self) -> list[str]:
        return ["tau"] if self.levels == ["comparison"] else [f"tau[{lv}]" for lv in self.levels]

    # --- diagnostics --------------------------------------------------------------------
    @cached_property
    def diagnostics(self) -> dict[str, Any]:
        """max R-hat, min bulk/tail ESS, divergences, min BFMI (from the draws)."""
        import arviz as az

        data = {"beta": self.beta_draws, "tau": self.tau_draws}
        rhat = max(float(np.nanmax(az.rhat(az.convert_to_dataset(data))[name].values)) for name in data)
        ess = az.ess(az.convert_to_dataset(data), method="bulk")
        ess_tail = az.ess(az.convert_to_dataset(data), method="tail")
        divergences = int(self.diverging.sum()) if self.diverging is not None else 0
        bfmi = float(np.min(az.bfmi(self.energy))) if self.energy is not None else float("nan")
        return {
            "method": self.method_used,
            "max_r_hat": rhat,
            "min_ess_bulk": min(float(np.min(ess[n].values)) for n in data),
            "min_ess_tail": min(float(np.min(ess_tail[n].values)) for n in data),
            "divergences": divergences,
            "min_bfmi": bfmi,
            "sampler": self.sampler or "exact quadrature (no Monte Carlo error)",
        }

    @property
    def converged(self) -> bool:
        if self.method_used == "quadrature":
            return True
        d = self.diagnostics
        return d["max_r_hat"] <= 1.01 and d["min_ess_bulk"] >= 400 and d["divergences"] == 0

    # --- summaries ----------------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """mean, sd, lower, upper (95% equal-tailed), r_hat, ess_bulk, ess_tail per parameter."""
        import arviz as az

        flat_tau = self.tau_draws.reshape(-1, self.tau_draws.shape[-1])
        dataset = az.convert_to_dataset({"beta": self.beta_draws, "tau": self.tau_draws})
        rhat, bulk, tail = az.rhat(dataset), az.ess(dataset, method="bulk"), az.ess(dataset, method="tail")

        def diagnostics(variable: str, index: int) -> list[float]:
            return [float(d[variable].values[index]) for d in (rhat, bulk, tail)]

        rows = {}
        identity = np.eye(len(self.names))
        for j, name in enumerate(self.names):
            exact = self._linear(identity[j])  # exact mixture under quadrature, draws under NUTS
            rows[name] = [exact["mean"], exact["sd"], exact["lower"], exact["upper"], *diagnostics("beta", j)]
        for level, name in enumerate(self._tau_names()):
            if self.quadrature is not None:
                mean, sd, (lower, upper) = self.quadrature.tau_summary(level, list(PROBS))
            else:
                draws = flat_tau[:, level]
                mean, sd = float(draws.mean()), float(draws.std(ddof=1))
                lower, upper = np.quantile(draws, PROBS)
            rows[name] = [mean, sd, lower, upper, *diagnostics("tau", level)]
        return pd.DataFrame.from_dict(
            rows, orient="index", columns=["mean", "sd", "lower", "upper", "r_hat", "ess_bulk", "ess_tail"]
        )

    def to_frame(self) -> pd.DataFrame:
        out = self.summary().reset_index(names="parameter")
        out["model"] = "bayesian_meta_analysis"
        out["method"] = self.method_used
        out["prior"] = [
            self.priors.get(p, self.priors.get(p.replace("tau", f"tau[{self.levels[0]}]"), ""))
            for p in out["parameter"]
        ]
        out["k"] = self.k
        out["mods"] = self.model.formula or ""
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "method_used": self.method_used,
            "priors": self.priors,
            "seed": self.seed,
            "levels": self.levels,
            "likelihood": self.likelihood,
            "k": self.k,
            "mods": self.model.formula,
            "converged": self.converged,
            "diagnostics": self.diagnostics,
            "summary": self.summary().reset_index(names="parameter").to_dict(orient="records"),
            "settings": dict(self.settings),
            "measure": self.measure,
            "fingerprint": self.fingerprint,
            "versions": dict(self.versions),
        }

    def summary_text(self) -> str:
        d = self.diagnostics
        head = (
            f"Bayesian meta-analysis (k = {self.k}; levels: {', '.join(self.levels)}; {self.method_used}"
            f"{'' if self.method_used == 'quadrature' else ', ' + d['sampler']}; likelihood {self.likelihood})"
        )
        status = (
            "exact posterior (quadrature)"
            if self.method_used == "quadrature"
            else f"max R-hat {d['max_r_hat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, divergences {d['divergences']}"
            f"{'' if self.converged else '  ** NOT CONVERGED: do not treat as final **'}"
        )
        priors = "; ".join(f"{k} ~ {v}" for k, v in self.priors.items())
        return "\n".join(
            [
                head,
                status,
                f"Priors: {priors}",
                "",
                self.summary().to_string(float_format=lambda x: f"{x:.4f}"),
            ]
        )

    # --- derived quantities -------------------------------------------------------------
    def _flat(self) -> tuple[np.ndarray, np.ndarray]:
        return self.beta_draws.reshape(-1, self.beta_draws.shape[-1]), self.tau_draws.reshape(
            -1, self.tau_draws.shape[-1]
        )

    def _linear(
        self, vector: np.ndarray, extra_tau: bool = False, threshold: float | None = None
    ) -> dict[str, float]:
        """Posterior of c' beta (+ a new effect at every level when extra_tau)."""
        if self.quadrature is not None and self.likelihood == "normal":
            extra = np.sum(self.quadrature.taus**2, axis=1) if extra_tau else 0.0
            means, sds = self.quadrature.linear_mixture(vector, extra)
            mean = float(self.quadrature.weights @ means)
            sd = float(np.sqrt(self.quadrature.weights @ (sds**2 + means**2) - mean**2))
            lower, upper = self.quadrature.mixture_quantiles(means, sds, list(PROBS))
            cut = 0.0 if threshold is None else threshold
            p_greater = 1 - self.quadrature.mixture_cdf(means, sds, cut)
        else:
            beta, tau = self._flat()
            values = beta @ vector
            if extra_tau:
                rng = np.random.default_rng(self.seed)
                for level in range(tau.shape[1]):
                    if self.likelihood == "student_t" and level == 0 and self.nu_draws is not None:
                        values = values + tau[:, level] * rng.standard_t(self.nu_draws.reshape(-1))
                    else:
                        values = values + tau[:, level] * rng.standard_normal(len(values))
            mean, sd = float(values.mean()), float(values.std(ddof=1))
            lower, upper = np.quantile(values, PROBS)
            p_greater = float(np.mean(values > (0.0 if threshold is None else threshold)))
        return {
            "mean": mean,
            "sd": sd,
            "lower": float(lower),
            "upper": float(upper),
            "p_greater": float(p_greater),
        }

    def _categorical_levels(self, term: str) -> tuple[list[str], dict[str, int]]:
        columns = self.model.term_columns.get(term)
        if columns is None:
            terms = [t for t in self.model.term_columns if t != "intercept"]
            raise ModelError(f"unknown term {term!r}; terms of this model: {', '.join(terms)}")
        prefix = f"{term}[T."
        names = [self.names[c] for c in columns]
        if not all(n.startswith(prefix) for n in names):
            raise ModelError(f"{term!r} is not a categorical moderator; contrasts need one")
        by_level = {n[len(prefix) : -1]: c for n, c in zip(names, columns, strict=True)}
        values = self.model.frame[term]
        levels = (
            list(values.cat.categories)
            if isinstance(values.dtype, pd.CategoricalDtype)
            else sorted(values.astype(str).unique())
        )
        reference = [lv for lv in map(str, levels) if lv not in by_level]
        return [*reference[:1], *by_level], by_level

    def contrasts(self, term: str) -> pd.DataFrame:
        """Every pairwise difference between levels of a categorical moderator.

        Returns one row per pair ``a - b`` (a listed after b) with mean, sd, lower, upper
        (95% equal-tailed) and P(> 0).
        """
        levels, columns = self._categorical_levels(term)
        rows = []
        for i, b in enumerate(levels):
            for a in levels[i + 1 :]:
                vector = np.zeros(len(self.names))
                if a in columns:
                    vector[columns[a]] += 1
                if b in columns:
                    vector[columns[b]] -= 1
                rows.append({"contrast": f"{a} - {b}", "level": a, "versus": b, **self._linear(vector)})
                # also the reverse direction is just the negative; keep one per pair
        out = pd.DataFrame(rows).rename(columns={"p_greater": "p_gt_0"})
        return out

    def predict(self, newdata: Any = None, threshold: float = 0.0) -> pd.DataFrame:
        """Posterior predictive effect in a new study with the given moderators.

        Returns per row: ``mean``/``lower``/``upper`` of the average effect x'beta, and
        ``pred_mean``/``pred_sd``/``pred_lower``/``pred_upper`` of the effect in a new study
        (new random effects at every level), with ``p_effect_gt_threshold``.
        """
        X = (
            np.ones((1, 1))
            if newdata is None and self.model.intercept_only
            else new_design(self.model, newdata)
        )
        rows = []
        for x in X:
            average = self._linear(x)
            new = self._linear(x, extra_tau=True, threshold=threshold)
            rows.append(
                {
                    "mean": average["mean"],
                    "lower": average["lower"],
                    "upper": average["upper"],
                    "pred_mean": new["mean"],
                    "pred_sd": new["sd"],
                    "pred_lower": new["lower"],
                    "pred_upper": new["upper"],
                    "p_effect_gt_threshold": new["p_greater"],
                    "threshold": threshold,
                }
            )
        return pd.DataFrame(rows)

    def _theta_draws(self, max_draws: int = 4000) -> np.ndarray:
        """Draws of every comparison's true effect (fixed part + all random effects)."""
        beta, tau = self._flat()
        take = np.linspace(0, len(beta) - 1, min(max_draws, len(beta))).astype(int)
        beta, tau = beta[take], tau[:, :][take]
        fixed = beta @ self.model.X.T
        outer = sum(
            (
                effects.reshape(-1, effects.shape[-1])[take][:, self.structure.codes[level]]
                for level, effects in enumerate(self.outer_draws)
            ),
            np.zeros_like(fixed),
        )
        marginalized = len(self.outer_draws) < len(self.levels)
        if not marginalized:
            return fixed + outer
        rng = np.random.default_rng(self.seed)
        inner = sample_inner_effects(
            self.model.yi[None, :] - fixed - outer, self.model.vi, tau[:, -1], self.structure, rng
        )
        return fixed + outer + inner[:, self.structure.inner]

    def study_estimates(self) -> pd.DataFrame:
        """Shrunken estimates of each comparison's true effect (for forest plots)."""
        theta = self._theta_draws()
        frame = self.model.frame
        out = pd.DataFrame(
            {
                "yi": self.model.yi,
                "vi": self.model.vi,
                "mean": theta.mean(axis=0),
                "sd": theta.std(axis=0, ddof=1),
                "lower": np.quantile(theta, PROBS[0], axis=0),
                "upper": np.quantile(theta, PROBS[1], axis=0),
            },
            index=frame.index,
        )
        for column in ["comparison_id", "label", "study_id"]:
            if column in frame.columns:
                out.insert(0, column, frame[column].to_numpy())
        return out

    def density(self, parameter: str, x: np.ndarray) -> np.ndarray:
        """Posterior density of ``parameter`` (a coefficient name or a tau name) at ``x``.

        Exact under quadrature (the grid marginal of a tau; the Gaussian mixture of a
        coefficient); a kernel density estimate of the draws under NUTS.
        """
        x = np.asarray(x, dtype=float)
        tau_names = self._tau_names()
        if parameter not in self.names and parameter not in tau_names:
            raise ModelError(
                f"unknown parameter {parameter!r}; valid: {', '.join([*self.names, *tau_names])}"
            )
        if self.quadrature is not None:
            if parameter in tau_names:
                level = tau_names.index(parameter)
                return np.interp(
                    x, self.quadrature.axes[level], self.quadrature.axis_density[level], left=0.0, right=0.0
                )
            means, sds = self.quadrature.linear_mixture(np.eye(len(self.names))[self.names.index(parameter)])
            return self.quadrature.weights @ (
                stats.norm.pdf((x[None, :] - means[:, None]) / sds[:, None]) / sds[:, None]
            )
        beta, tau = self._flat()
        draws = (
            tau[:, tau_names.index(parameter)]
            if parameter in tau_names
            else beta[:, self.names.index(parameter)]
        )
        return stats.gaussian_kde(draws)(x)

    def prior_density(self, parameter: str, x: np.ndarray) -> np.ndarray:
        """Prior density of ``parameter`` at ``x``."""
        tau_names = self._tau_names()
        if parameter in tau_names:
            prior = list(self.prior_set.taus.values())[tau_names.index(parameter)]
        else:
            prior = self.prior_set.coefficients[parameter]
        return np.exp(prior.logpdf(np.asarray(x, dtype=float)))

    def bayes_factor(self, term: str) -> dict[str, float]:
        """Savage-Dickey Bayes factor for coefficient(s) = 0 (a coefficient name or a term).

        Exact under quadrature (posterior density of a Gaussian mixture at 0); under NUTS
        a Gaussian approximation of the posterior (a kernel density for one coefficient).
        Returns ``bf10`` (evidence for a non-zero effect), ``bf01`` and ``log_bf10``.
        """
        if term in self.names:
            columns = [self.names.index(term)]
        elif term in self.model.term_columns and term != "intercept":
            columns = self.model.term_columns[term]
        else:
            raise ModelError(f"unknown term {term!r}; valid: {', '.join(n for n in self.names)}")
        priors = [list(self.prior_set.coefficients.values())[c] for c in columns]
        if not all(p.is_normal for p in priors):
            prior_density = float(np.prod([np.exp(p.logpdf(0.0)) for p in priors]))
        else:
            prior_density = float(np.prod([stats.norm.pdf(0, p.params[0], p.params[1]) for p in priors]))
        if self.quadrature is not None:
            posterior_density = self.quadrature.density_at_zero(columns)
            how = "exact"
        else:
            beta = self._flat()[0][:, columns]
            if len(columns) == 1:
                posterior_density = float(stats.gaussian_kde(beta[:, 0])(0.0)[0])
                how = "kernel density"
            else:
                posterior_density = float(
                    stats.multivariate_normal(beta.mean(axis=0), np.cov(beta.T)).pdf(np.zeros(len(columns)))
                )
                how = "normal approximation"
        bf01 = posterior_density / prior_density
        with np.errstate(divide="ignore"):
            return {
                "term": term,
                "bf10": 1 / bf01 if bf01 > 0 else np.inf,
                "bf01": bf01,
                "log_bf10": float(-np.log(bf01)) if bf01 > 0 else np.inf,
                "method": how,
            }

    # --- ArviZ ------------------------------------------------------------------------
    @cached_property
    def idata(self):
        """ArviZ InferenceData: posterior, log_likelihood (per innermost group), observed data, prior."""
        import arviz as az

        chains, draws = self.beta_draws.shape[:2]
        posterior: dict[str, np.ndarray] = {"beta": self.beta_draws, "tau": self.tau_draws}
        dims: dict[str, list[str]] = {"beta": ["coefficient"], "tau": ["level"]}
        coords: dict[str, Any] = {"coefficient": self.names, "level": self.levels}
        for level, effects in enumerate(self.outer_draws):
            name = f"u_{self.levels[level]}"
            posterior[name] = effects
            dims[name] = [f"{self.levels[level]}_group"]
        if self.nu_draws is not None:
            posterior["nu"] = self.nu_draws
        beta, tau = self._flat()
        fixed = beta @ self.model.X.T
        outer = sum(
            (
                e.reshape(-1, e.shape[-1])[:, self.structure.codes[level]]
                for level, e in enumerate(self.outer_draws)
            ),
            np.zeros_like(fixed),
        )
        inner_tau = tau[:, -1] if len(self.outer_draws) < len(self.levels) else np.zeros(len(tau))
        loglik = inner_block_loglik(
            self.model.yi[None, :] - fixed - outer, self.model.vi, inner_tau, self.structure
        )
        prior = self._prior_draws(min(draws * chains, 2000))
        sample_stats = {"diverging": self.diverging} if self.diverging is not None else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return az.from_dict(
                posterior=posterior,
                log_likelihood={"y": loglik.reshape(chains, draws, -1)},
                observed_data={"y": self.model.yi},
                prior=prior,
                sample_stats=sample_stats,
                coords=coords,
                dims={**dims, "y": ["observation"]},
                attrs={"method": self.method_used, "seed": str(self.seed), "priors": str(self.priors)},
            )

    def _prior_draws(self, n: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(None if self.seed is None else self.seed + 1)
        beta = np.column_stack(
            [p.scipy().rvs(size=n, random_state=rng) for p in self.prior_set.coefficients.values()]
        )
        tau = np.column_stack([p.scipy().rvs(size=n, random_state=rng) for p in self.prior_set.taus.values()])
        return {"beta": beta[None], "tau": tau[None]}

    def loo(self, **kwargs: Any):
        """PSIS-LOO through ArviZ (units: the innermost groups)."""
        import arviz as az

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return az.loo(self.idata, **kwargs)

    def prior_sensitivity(self, alternatives: dict[str, dict[str, str]]) -> pd.DataFrame:
        """Refit under alternative priors and tabulate how each summary moves.

        ``alternatives`` maps a label to prior overrides (merged into the priors used).
        """
        from evmeta.models.bayes.fit import bayesian_meta_analysis

        base = self.summary()
        rows = []
        for label, overrides in {"base": {}, **alternatives}.items():
            priors = {**self.settings.get("priors_given", {}), **overrides}
            fit = (
                self
                if label == "base"
                else bayesian_meta_analysis(
                    self.model.frame,
                    self.settings["yi"],
                    self.settings["vi"],
                    mods=self.model.formula,
                    random=self.settings["random"],
                    priors=priors,
                    method=self.settings["method"],
                    likelihood=self.likelihood,
                    draws=self.settings["draws"],
                    tune=self.settings["tune"],
                    chains=self.settings["chains"],
                    seed=self.seed,
                    progress=False,
                )
            )
            summary = fit.summary()
            for parameter, row in summary.iterrows():
                shift = row["mean"] - base.loc[parameter, "mean"]
                rows.append(
                    {
                        "alternative": label,
                        "parameter": parameter,
                        "priors": "; ".join(f"{k}={v}" for k, v in overrides.items()),
                        "mean": row["mean"],
                        "lower": row["lower"],
                        "upper": row["upper"],
                        "shift": shift,
                        "shift_in_sd": shift / base.loc[parameter, "sd"]
                        if base.loc[parameter, "sd"] > 0
                        else np.nan,
                    }
                )
        return pd.DataFrame(rows)


def compare_models(results: dict[str, BayesResult], **kwargs: Any) -> pd.DataFrame:
    """Compare fitted models by PSIS-LOO (ArviZ ``compare``); keys name the models."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.compare({name: r.idata for name, r in results.items()}, **kwargs)
