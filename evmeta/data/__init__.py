"""Reference data: vocabularies, unit tables, species factors and checklist items."""

from __future__ import annotations

import csv
import tomllib
from functools import cache
from importlib import resources
from typing import Any


def _path(name: str):
    return resources.files(__name__).joinpath(name)


@cache
def load_toml(name: str) -> dict[str, Any]:
    """Parse a TOML file shipped in ``evmeta/data``."""
    with _path(name).open("rb") as handle:
        return tomllib.load(handle)


@cache
def load_csv(name: str) -> tuple[dict[str, str], ...]:
    """Rows of a CSV file shipped in ``evmeta/data``, as dicts of strings."""
    with _path(name).open("r", encoding="utf-8", newline="") as handle:
        return tuple(csv.DictReader(handle))
