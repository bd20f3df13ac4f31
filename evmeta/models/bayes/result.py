"""BayesResult: the result of a Bayesian meta-analysis, from quadrature or NUTS.

Under quadrature every summary (means, SDs, quantiles, contrasts, predictions, Bayes
factors) is computed from the exact posterior, and ArviZ is imported only when
InferenceData is asked for; draws (exact posterior samples) are kept for ArviZ tools.
Under NUTS summaries come from the draws, with R-hat and ESS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.errors import ModelError
from evmeta.models.base.design import ModelData, new_design
from evmeta.models.base.nesting import NestedStructure, sample_inner_effects
from evmeta.models.base.protocol import POSTERIOR_SD, Summary, heterogeneity_name, resolve_level
from evmeta.models.base.result_parts import PrintsSummary, StoredInputs
from evmeta.models.bayes import arviz_io, densities
from evmeta.models.bayes.quadrature import QuadratureFit
from evmeta.models.priors import PriorSet, prior_dict

if TYPE_CHECKING:
    from arviz import ELPDData, InferenceData

#: Default probability of credible intervals (equal-tailed).
PROB = 0.95

#: ``_linear``'s posterior summaries under the protocol's column names (as coef_table); the
#: spread is a posterior SD and says so.
PROTOCOL_NAMES = {
    "mean": "estimate",
    "sd": POSTERIOR_SD,
    "lower": "ci_low",
    "upper": "ci_high",
    "p_greater": "p_gt_0",
}


@dataclass(frozen=True, eq=False, repr=False)
class BayesResult(StoredInputs, PrintsSummary):
    """A fitted Bayesian meta-analysis (immutable; ``print(fit)`` prints its summary).

    Attributes
    ----------
    method_used : {"quadrature", "nuts"}
    priors : dict
        Prior of every parameter, as strings (``intercept``, coefficient names, ``tau[<level>]``).
    seed : int or None
    levels : list of str
        Random levels, outermost first (``["comparison"]`` for the classic model).
    beta_draws, tau_draws : ndarray
        (chain, draw, p) and (chain, draw, levels).
    yi, vi, X, data : stored inputs (arrays of the fitted rows, design matrix, the rows).
    fitter : callable
        The function that made this result (``bayesian_meta_analysis``); :meth:`refit`
        and :meth:`prior_sensitivity` call it on the stored inputs.
    converged : bool
        False when R-hat > 1.01, bulk ESS < 400 or any divergence (NUTS); quadrature is
        exact and always converged.
    level : float
        Default probability of the equal-tailed credible intervals.

    ``_cache`` holds values derived on first use from the fields (``diagnostics``,
    ``idata``); it is the only thing written after construction, never part of the result's
    identity, and :meth:`adopt_diagnostics` may fill it from a worker that computed the
    same values.
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
    fingerprint: str = ""
    versions: dict = field(default_factory=dict)
    V: np.ndarray | None = field(default=None, repr=False)
    fitter: Callable[..., BayesResult] | None = field(default=None, repr=False)
    level: float = PROB
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # --- stored inputs and basic facts ----------------------------------------------------
    @property
    def method(self) -> str:
        """The engine used (``quadrature`` or ``nuts``); same as ``method_used``."""
        return self.method_used

    @property
    def levels(self) -> list[str]:
        return list(self.structure.levels)

    @property
    def priors(self) -> dict[str, str]:
        return self.prior_set.as_strings()

    @property
    def k(self) -> int:
        return self.model.k

    @property
    def tau_names(self) -> list[str]:
        """Names of the heterogeneity SDs: ``tau[<level>]``, as in priors and summaries."""
        return [heterogeneity_name(level) for level in self.levels]

    def tau_index(self, parameter: str) -> int | None:
        """Level index of a tau name (``tau[<level>]``), or None."""
        return self.tau_names.index(parameter) if parameter in self.tau_names else None

    def flat_draws(self) -> tuple[np.ndarray, np.ndarray]:
        """Draws of beta (N x p) and of the taus (N x levels), chains stacked."""
        return self.beta_draws.reshape(-1, self.beta_draws.shape[-1]), self.tau_draws.reshape(
            -1, self.tau_draws.shape[-1]
        )

    # --- diagnostics --------------------------------------------------------------------
    @property
    def diagnostics(self) -> dict[str, Any]:
        """max R-hat, min bulk/tail ESS, divergences, min BFMI of the draws (ArviZ, imported
        here only); under quadrature also ``grid_error``, the largest change of any reported
        mean, SD or quantile on a grid of twice the density. Computed once (``_cache``)."""
        if "diagnostics" not in self._cache:
            out = arviz_io.sampler_diagnostics(self)
            if self.method_used == "quadrature":
                out["sampler"] = "exact quadrature (no Monte Carlo error)"
                out["grid_error"] = (
                    self.quadrature.refinement_error if self.quadrature is not None else float("nan")
                )
            self._cache["diagnostics"] = out
        return self._cache["diagnostics"]

    def adopt_diagnostics(self, diagnostics: dict[str, Any]) -> None:
        """Fill the ``diagnostics`` cache with values computed for this same fit elsewhere (a
        worker that also wrote ``posterior.nc``), so this process need not import ArviZ or
        refine the grid again. The values are cached exactly as if computed here."""
        self._cache.setdefault("diagnostics", dict(diagnostics))

    @property
    def converged(self) -> bool:
        if self.method_used == "quadrature":
            return True
        d = self.diagnostics
        return d["max_r_hat"] <= 1.01 and d["min_ess_bulk"] >= 400 and d["divergences"] == 0

    # --- protocol -------------------------------------------------------------------------
    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """Per coefficient: estimate (posterior mean), posterior_sd, ci_low, ci_high
        (equal-tailed credible interval at ``level``) and P(> 0) as ``p_gt_0``."""
        level = resolve_level(level, self.level)
        identity = np.eye(len(self.names))
        rows = {name: self._linear(identity[j], level) for j, name in enumerate(self.names)}
        table = pd.DataFrame.from_dict(rows, orient="index").rename(columns=PROTOCOL_NAMES)
        table.index.name = "term"
        return table

    def _tau_rows(self, level: float) -> dict[str, dict[str, float]]:
        """Posterior mean, SD and equal-tailed interval of every tau, by name."""
        flat_tau = self.flat_draws()[1]
        probs = [(1 - level) / 2, 1 - (1 - level) / 2]
        taus = {}
        for index, name in enumerate(self.tau_names):
            if self.quadrature is not None:
                mean, sd, (lower, upper) = self.quadrature.tau_summary(index, probs)
            else:
                draws = flat_tau[:, index]
                mean, sd = float(draws.mean()), float(draws.std(ddof=1))
                lower, upper = (float(q) for q in np.quantile(draws, probs))
            taus[name] = {"estimate": mean, POSTERIOR_SD: sd, "ci_low": lower, "ci_high": upper}
        return taus

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """One row per random level: tau (posterior mean) with posterior_sd and its credible
        interval (ci_low, ci_high), and tau2, the posterior mean of tau^2 (= mean^2 + SD^2)."""
        level = resolve_level(level, self.level)
        rows = {
            name: {
                "tau2": row["estimate"] ** 2 + row[POSTERIOR_SD] ** 2,
                "tau": row["estimate"],
                POSTERIOR_SD: row[POSTERIOR_SD],
                "ci_low": row["ci_low"],
                "ci_high": row["ci_high"],
            }
            for name, row in zip(self.levels, self._tau_rows(level).values(), strict=True)
        }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("component")

    def summary(self, level: float | None = None) -> Summary:
        """Coefficients and heterogeneity SDs (``tau[<level>]``): estimate (mean),
        posterior_sd, ci_low, ci_high (equal-tailed), r_hat, ess_bulk, ess_tail (NUTS only)."""
        level = resolve_level(level, self.level)
        table = self.coef_table(level).drop(columns="p_gt_0")
        table = pd.concat([table, pd.DataFrame.from_dict(self._tau_rows(level), orient="index")])
        table.index.name = "term"
        if self.method_used == "nuts":
            table["r_hat"], table["ess_bulk"], table["ess_tail"] = arviz_io.parameter_diagnostics(self)
        else:
            table["r_hat"] = table["ess_bulk"] = table["ess_tail"] = np.nan
        return Summary(self._title(), self._lines(), table, level)

    def _title(self) -> str:
        engine = "quadrature" if self.method_used == "quadrature" else f"nuts, {self.diagnostics['sampler']}"
        return (
            f"Bayesian meta-analysis (k = {self.k}; levels: {', '.join(self.levels)}; {engine}; "
            f"likelihood {self.likelihood})"
        )

    def _lines(self) -> list[str]:
        if self.method_used == "quadrature":
            status = "exact posterior (quadrature; grid-refinement error in .diagnostics['grid_error'])"
        else:
            d = self.diagnostics
            status = (
                f"max R-hat {d['max_r_hat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, divergences "
                f"{d['divergences']}{'' if self.converged else '  ** NOT CONVERGED: do not treat as final **'}"
            )
        return [status, "Priors: " + "; ".join(f"{k} ~ {v}" for k, v in self.priors.items())]

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient and tau (``term``, as the frequentist results), with the
        prior, engine, k and formula repeated."""
        out = self.summary().table.reset_index(names="term")
        out["model"] = "bayesian_meta_analysis"
        out["method"] = self.method_used
        out["prior"] = [self.priors.get(p, "") for p in out["term"]]
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
            "summary": self.summary().table.reset_index(names="term").to_dict(orient="records"),
            "settings": dict(self.settings),
            "level": self.level,
            "measure": self.measure,
            "fingerprint": self.fingerprint,
            "versions": dict(self.versions),
        }

    # --- derived quantities -------------------------------------------------------------
    def _linear(
        self, vector: np.ndarray, level: float = PROB, extra_tau: bool = False, threshold: float | None = None
    ) -> dict[str, float]:
        """Posterior of c' beta (+ a new effect at every level when extra_tau)."""
        probs = [(1 - level) / 2, 1 - (1 - level) / 2]
        cut = 0.0 if threshold is None else threshold
        if self.quadrature is not None and self.likelihood == "normal":
            extra = np.sum(self.quadrature.taus**2, axis=1) if extra_tau else 0.0
            means, sds = self.quadrature.linear_mixture(vector, extra)
            mean = float(self.quadrature.weights @ means)
            sd = float(np.sqrt(max(self.quadrature.weights @ (sds**2 + means**2) - mean**2, 0.0)))
            lower, upper = self.quadrature.mixture_quantiles(means, sds, probs)
            p_greater = 1 - self.quadrature.mixture_cdf(means, sds, cut)
        else:
            beta, tau = self.flat_draws()
            values = beta @ vector
            if extra_tau:
                rng = np.random.default_rng(self.seed)
                for index in range(tau.shape[1]):
                    if self.likelihood == "student_t" and index == 0 and self.nu_draws is not None:
                        values = values + tau[:, index] * rng.standard_t(self.nu_draws.reshape(-1))
                    else:
                        values = values + tau[:, index] * rng.standard_normal(len(values))
            mean, sd = float(values.mean()), float(values.std(ddof=1))
            lower, upper = np.quantile(values, probs)
            p_greater = float(np.mean(values > cut))
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

    def contrasts(self, term: str, level: float | None = None) -> pd.DataFrame:
        """Every pairwise difference between levels of a categorical moderator.

        Parameters
        ----------
        term : str
            A categorical moderator of the model.
        level : float, optional
            Probability of the equal-tailed credible intervals (default: the fit's level).

        Returns
        -------
        DataFrame
            One row per pair ``a - b`` (a listed after b): ``contrast``, ``level``, ``versus``
            and the columns of :meth:`coef_table`: ``estimate`` (posterior mean),
            ``posterior_sd``, ``ci_low``, ``ci_high`` and ``p_gt_0`` (posterior P(a - b > 0)).
        """
        level = resolve_level(level, self.level)
        levels, columns = self._categorical_levels(term)
        rows = []
        for i, b in enumerate(levels):
            for a in levels[i + 1 :]:
                vector = np.zeros(len(self.names))
                if a in columns:
                    vector[columns[a]] += 1
                if b in columns:
                    vector[columns[b]] -= 1
                rows.append(
                    {"contrast": f"{a} - {b}", "level": a, "versus": b, **self._linear(vector, level)}
                )
        return pd.DataFrame(rows).rename(columns=PROTOCOL_NAMES)

    def predict(
        self, newmods: Any = None, level: float | None = None, *, threshold: float = 0.0
    ) -> pd.DataFrame:
        """Posterior of the average effect and of the effect in a new study.

        Returns per row: ``pred``/``posterior_sd``/``ci_low``/``ci_high`` of the average
        effect x'beta (posterior mean, SD, credible interval at ``level``),
        ``pi_low``/``pi_high`` and ``pred_sd`` of the effect in a new study (new random
        effects at every level), and ``p_effect_gt_threshold`` (also as ``p_true_above``,
        the frequentist column name: the posterior predictive probability that a new
        study's true effect exceeds ``threshold``). ``newmods`` as :meth:`MetaResult.predict`.
        """
        level = resolve_level(level, self.level)
        X = (
            np.ones((1, 1))
            if newmods is None and self.model.intercept_only
            else new_design(self.model, newmods)
        )
        rows = []
        for x in X:
            average = self._linear(x, level)
            new = self._linear(x, level, extra_tau=True, threshold=threshold)
            rows.append(
                {
                    "pred": average["mean"],
                    POSTERIOR_SD: average["sd"],
                    "ci_low": average["lower"],
                    "ci_high": average["upper"],
                    "pi_low": new["lower"],
                    "pi_high": new["upper"],
                    "pred_sd": new["sd"],
                    "p_effect_gt_threshold": new["p_greater"],
                    "p_true_above": new["p_greater"],
                    "threshold": threshold,
                }
            )
        return pd.DataFrame(rows)

    def _theta_draws(self, max_draws: int = 4000) -> np.ndarray:
        """Draws of every comparison's true effect (fixed part + all random effects)."""
        beta, tau = self.flat_draws()
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

    def study_estimates(self, level: float | None = None) -> pd.DataFrame:
        """Shrunken estimates of each comparison's true effect (for forest plots).

        Returns one row per fitted comparison: ``yi``, ``vi`` and, under the protocol's names,
        ``estimate`` (posterior mean), ``posterior_sd``, ``ci_low``, ``ci_high``
        (equal-tailed at ``level``, default: the fit's).
        """
        level = resolve_level(level, self.level)
        theta = self._theta_draws()
        frame = self.model.frame
        out = pd.DataFrame(
            {
                "yi": self.model.yi,
                "vi": self.model.vi,
                "estimate": theta.mean(axis=0),
                POSTERIOR_SD: theta.std(axis=0, ddof=1),
                "ci_low": np.quantile(theta, (1 - level) / 2, axis=0),
                "ci_high": np.quantile(theta, 1 - (1 - level) / 2, axis=0),
            },
            index=frame.index,
        )
        for column in ["comparison_id", "label", "study_id"]:
            if column in frame.columns:
                out.insert(0, column, frame[column].to_numpy())
        return out

    density = densities.density
    prior_density = densities.prior_density
    bayes_factor = densities.bayes_factor

    # --- ArviZ, refits --------------------------------------------------------------------
    @property
    def idata(self) -> InferenceData:
        """ArviZ InferenceData: posterior (``tau`` by level; random effects ``u_<level>`` labelled
        by their group ids), log_likelihood per innermost group, observed data, prior.
        Built once (``_cache``)."""
        if "idata" not in self._cache:
            self._cache["idata"] = arviz_io.inference_data(self)
        return self._cache["idata"]

    def prior_draws(self, n: int) -> dict[str, np.ndarray]:
        """Draws from the priors of beta and the taus (for InferenceData)."""
        rng = np.random.default_rng(None if self.seed is None else self.seed + 1)
        beta = np.column_stack(
            [p.scipy().rvs(size=n, random_state=rng) for p in self.prior_set.coefficients.values()]
        )
        tau = np.column_stack([p.scipy().rvs(size=n, random_state=rng) for p in self.prior_set.taus.values()])
        return {"beta": beta[None], "tau": tau[None]}

    def loo(self, **kwargs: Any) -> ELPDData:
        """PSIS-LOO through ArviZ (units: the innermost groups)."""
        return arviz_io.loo(self, **kwargs)

    def refit(self, data: Any = None, *, rows: Any = None, **changes: Any) -> BayesResult:
        """The same model (priors, engine, draws, seed) on the stored inputs, optionally only
        ``rows`` (index labels or a mask of ``data``), or on new ``data`` with the original
        column names; ``changes`` override settings (``priors``, ``method``, ``draws``, ...)."""
        if self.fitter is None:
            raise ModelError("this result does not carry its fitter; fit it with bayesian_meta_analysis")
        s = self.settings
        settings = dict(
            mods=self.model.formula,
            random=s["random"],
            priors=s["priors_given"],
            method=s["method"],
            likelihood=self.likelihood,
            draws=s["draws"],
            tune=s["tune"],
            chains=s["chains"],
            seed=self.seed,
            progress=False,
        )
        settings.update(changes)
        if data is not None:
            if s.get("yi_column") is None or s.get("vi_column") is None:
                raise ModelError("this model was fitted from arrays; refit(data=...) needs yi and vi columns")
            data = data if rows is None else data.loc[rows]
            return self.fitter(data, s["yi_column"], s["vi_column"], **settings)
        keep = np.ones(self.k, dtype=bool)
        if rows is not None:
            rows = np.asarray(rows)
            keep = rows if rows.dtype == bool else self.data.index.isin(rows)
        V = None if self.V is None else self.V[np.ix_(keep, keep)]
        return self.fitter(self.data[keep], self.yi[keep], self.vi[keep], V=V, **settings)

    def prior_sensitivity(
        self,
        alternatives: dict[str, dict[str, str] | str],
        level: float | None = None,
    ) -> pd.DataFrame:
        """Refit (on the stored inputs) under alternative priors and tabulate how each
        summary moves.

        Parameters
        ----------
        alternatives : dict
            Maps a label to prior overrides (a dict, merged into the priors given) or to a
            named prior set that replaces them (``"default"``, or ``"preclinical"``: the
            preclinical tau prior with the default coefficient priors).
        level : float, optional
            Probability of the credible intervals (default: the fit's level).

        Returns
        -------
        DataFrame
            One row per alternative x parameter: ``alternative``, ``parameter``, ``priors``,
            ``estimate`` (posterior mean), ``ci_low``, ``ci_high``, ``shift`` (of the mean
            from the base fit) and ``shift_in_sd`` (in base posterior SDs).
        """
        level = resolve_level(level, self.level)
        base = self.summary(level).table.to_dict("index")
        rows = []
        for label, given in {"base": {}, **alternatives}.items():
            overrides = prior_dict(given)
            named = isinstance(given, str)
            priors = overrides if named else {**self.settings.get("priors_given", {}), **overrides}
            fit = self if label == "base" else self.refit(priors=priors)
            for parameter, row in fit.summary(level).table.iterrows():
                shift = row["estimate"] - base[parameter]["estimate"]
                sd = base[parameter][POSTERIOR_SD]
                rows.append(
                    {
                        "alternative": label,
                        "parameter": parameter,
                        "priors": given if named else "; ".join(f"{k}={v}" for k, v in overrides.items()),
                        "estimate": row["estimate"],
                        "ci_low": row["ci_low"],
                        "ci_high": row["ci_high"],
                        "shift": shift,
                        "shift_in_sd": shift / sd if sd > 0 else np.nan,
                    }
                )
        return pd.DataFrame(rows)
