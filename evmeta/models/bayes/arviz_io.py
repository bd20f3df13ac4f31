"""ArviZ side of a Bayesian fit: InferenceData, sampler diagnostics, PSIS-LOO, model comparison.

Only this module imports ArviZ, and only when one of these is asked for, so an exact
(quadrature) fit and its summaries never load it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.models.base.nesting import inner_block_loglik

if TYPE_CHECKING:
    from arviz import ELPDData, InferenceData


def _arviz():
    """ArviZ, imported without its once-a-day notice about its coming refactor (a
    FutureWarning that would otherwise reach the user of `evmeta run` on a fresh account);
    without ArviZ, a sentence naming ``evmeta[sampling]``."""
    from evmeta._extras import require

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"(?s).*ArviZ is undergoing a major refactor", category=FutureWarning
        )
        return require("arviz", "ArviZ output (InferenceData, posterior.nc, PSIS-LOO, R-hat and ESS)")


def sampler_diagnostics(result: Any) -> dict[str, Any]:
    """max R-hat, min bulk/tail ESS, divergences and min BFMI of a NUTS fit.

    Exact quadrature draws are independent by construction: R-hat and ESS say nothing about
    them (they are NaN here), and ArviZ is not imported for them."""
    if result.method_used == "quadrature":
        nan = float("nan")
        return {
            "method": result.method_used,
            "max_r_hat": nan,
            "min_ess_bulk": nan,
            "min_ess_tail": nan,
            "divergences": 0,
            "min_bfmi": nan,
            "sampler": "exact quadrature (no Monte Carlo error)",
        }
    az = _arviz()

    data = {"beta": result.beta_draws, "tau": result.tau_draws}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ warns about short or single chains
        dataset = az.convert_to_dataset(data)
        rhat = max(float(np.nanmax(az.rhat(dataset)[name].values)) for name in data)
        ess = az.ess(dataset, method="bulk")
        ess_tail = az.ess(dataset, method="tail")
    divergences = int(result.diverging.sum()) if result.diverging is not None else 0
    bfmi = float(np.min(az.bfmi(result.energy))) if result.energy is not None else float("nan")
    return {
        "method": result.method_used,
        "max_r_hat": rhat,
        "min_ess_bulk": min(float(np.min(ess[n].values)) for n in data),
        "min_ess_tail": min(float(np.min(ess_tail[n].values)) for n in data),
        "divergences": divergences,
        "min_bfmi": bfmi,
        "sampler": result.sampler or "exact quadrature (no Monte Carlo error)",
    }


def parameter_diagnostics(result: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of every coefficient, then every tau (NUTS draws)."""
    az = _arviz()

    dataset = az.convert_to_dataset({"beta": result.beta_draws, "tau": result.tau_draws})
    out = []
    for stat in (az.rhat(dataset), az.ess(dataset, method="bulk"), az.ess(dataset, method="tail")):
        out.append(np.concatenate([np.ravel(stat["beta"].values), np.ravel(stat["tau"].values)]))
    return out[0], out[1], out[2]


def inference_data(result: Any) -> InferenceData:
    """ArviZ InferenceData: posterior (random effects labelled by their group ids),
    log_likelihood per innermost group, observed data, prior draws."""
    az = _arviz()

    chains, draws = result.beta_draws.shape[:2]
    structure = result.structure
    posterior: dict[str, np.ndarray] = {"beta": result.beta_draws, "tau": result.tau_draws}
    dims: dict[str, list[str]] = {"beta": ["coefficient"], "tau": ["level"]}
    coords: dict[str, Any] = {"coefficient": result.names, "level": result.levels}
    for level, effects in enumerate(result.outer_draws):
        name = result.levels[level]
        posterior[f"u_{name}"] = effects
        dims[f"u_{name}"] = [name]
        coords[name] = structure.group_labels(level)
    if result.nu_draws is not None:
        posterior["nu"] = result.nu_draws
    beta, tau = result.flat_draws()
    fixed = beta @ result.X.T
    outer = sum(
        (e.reshape(-1, e.shape[-1])[:, structure.codes[level]] for level, e in enumerate(result.outer_draws)),
        np.zeros_like(fixed),
    )
    inner_tau = tau[:, -1] if len(result.outer_draws) < len(result.levels) else np.zeros(len(tau))
    loglik = inner_block_loglik(result.yi[None, :] - fixed - outer, result.vi, inner_tau, structure)
    prior = result.prior_draws(min(draws * chains, 2000))
    sample_stats = {"diverging": result.diverging} if result.diverging is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.from_dict(
            posterior=posterior,
            log_likelihood={"y": loglik.reshape(chains, draws, -1)},
            observed_data={"y": result.yi},
            prior=prior,
            sample_stats=sample_stats,
            coords=coords,
            dims={**dims, "y": ["observation"]},
            attrs={"method": result.method_used, "seed": str(result.seed), "priors": str(result.priors)},
        )


def loo(result: Any, **kwargs: Any) -> ELPDData:
    """PSIS-LOO through ArviZ (units: the innermost groups)."""
    az = _arviz()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.loo(result.idata, **kwargs)


def compare_models(results: dict[str, Any], **kwargs: Any) -> pd.DataFrame:
    """Compare fitted Bayesian models by PSIS-LOO (ArviZ ``compare``); keys name the models."""
    az = _arviz()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.compare({name: r.idata for name, r in results.items()}, **kwargs)
