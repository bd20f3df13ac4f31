"""Lazy public namespaces: a package lists its public names and the module defining each;
a name is imported on first use, so importing a namespace never loads matplotlib, PyMC or
ArviZ until a function that needs them is called (PEP 562 module ``__getattr__``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_namespace(
    package: str, names: dict[str, str], namespaces: tuple[str, ...] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``.

    Parameters
    ----------
    package : str
        The package's dotted name (``"evmeta.models"``).
    names : dict
        Public name -> module that defines it.
    namespaces : tuple of str
        Sub-packages reachable as attributes (``evmeta.models``), imported on first use.
    """
    module_globals = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name in namespaces:
            value = importlib.import_module(f"{package}.{name}")
        elif name in names:
            value = getattr(importlib.import_module(names[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_globals[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*names, *namespaces, *module_globals.get("__all__", ())})

    return __getattr__, __dir__
