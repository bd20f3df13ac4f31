"""Fingerprints and versions that every result carries, so a report can be reproduced."""

from __future__ import annotations

import hashlib
import platform
from functools import cache
from importlib import metadata

import numpy as np


def fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 of the model inputs (values and shapes)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(np.asarray(array, dtype=float))
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@cache
def versions() -> dict[str, str]:
    """Versions of Python, evmeta and the numerical dependencies."""
    out = {"python": platform.python_version()}
    for package in [
        "evmeta",
        "numpy",
        "scipy",
        "pandas",
        "statsmodels",
        "formulaic",
        "pymc",
        "nutpie",
        "arviz",
    ]:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out
