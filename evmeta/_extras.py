"""Optional dependency groups (extras): which feature needs which, and the one place that
imports them with a sentence instead of a traceback when they are missing.

``pip install evmeta`` gives the reviewer's and analyst's whole path (sheets, validation,
harmonizing, frequentist models, exact Bayesian quadrature, figures, report). Two stacks are
optional because they are heavy (PyTensor compiles C; Dask starts a cluster):

========================  ==========================================  ==========================
extra                     modules                                     features
========================  ==========================================  ==========================
``evmeta[sampling]``      pymc, pytensor, nutpie, arviz (xarray,      NUTS sampling, posterior.nc,
                          h5netcdf)                                   PSIS-LOO, model comparison
``evmeta[distributed]``   dask, distributed                           ``evmeta multiverse``
``evmeta[all]``           both                                        everything
========================  ==========================================  ==========================
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from evmeta.errors import MissingExtraError

#: extra -> the top-level modules it installs (the ones evmeta imports).
EXTRAS: dict[str, tuple[str, ...]] = {
    "sampling": ("pymc", "pytensor", "nutpie", "arviz", "xarray", "h5netcdf"),
    "distributed": ("dask", "distributed"),
}


def install_line(extra: str) -> str:
    """The command that installs ``extra`` (quoted for shells that glob brackets)."""
    return f"pip install 'evmeta[{extra}]'"


def extra_of(module: str) -> str:
    """The extra that provides ``module`` (its top-level package name)."""
    top = module.split(".")[0]
    for extra, modules in EXTRAS.items():
        if top in modules:
            return extra
    raise KeyError(f"{module!r} is not an optional dependency of evmeta")


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise :class:`MissingExtraError` with one
    sentence naming the feature and the ``pip install`` line.

    Parameters
    ----------
    module : str
        Dotted module name, such as ``"pymc"`` or ``"distributed"``.
    feature : str
        What the user asked for, in words ("NUTS sampling", "evmeta multiverse").
    """
    extra = extra_of(module)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or module).split(".")[0]
        raise MissingExtraError(
            f"{feature} needs the optional package {missing!r}, which is not installed; "
            f"install it with: {install_line(extra)}"
        ) from None
