"""A fast path for the commonest moderator formulas: ``~ a + b + c`` of plain column names.

Numeric columns enter as they are; text and pandas categorical columns get treatment
contrasts against their first level (sorted text, or the category order), named
``column[T.level]``, exactly as formulaic builds them. Anything else (interactions,
transforms such as ``I(x**2)``, booleans, categories that never occur) returns None and
the caller uses formulaic. Parsing a formula and materializing it with formulaic costs
milliseconds per fit; this is a few column operations, which matters when thousands of
specifications are fitted.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from evmeta.errors import ModelError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def simple_terms(formula: str) -> list[str] | None:
    """The column names of ``~ a + b + ...``, or None for any other formula."""
    body = formula.strip().removeprefix("~").strip()
    parts = [part.strip() for part in body.split("+")]
    if not parts or any(not _NAME.match(part) for part in parts) or len(set(parts)) != len(parts):
        return None
    return parts


def _levels(column: pd.Series) -> list[str] | Literal[False] | None:
    """None for a numeric column, the levels (reference first) for a factor, False otherwise."""
    if pd.api.types.is_bool_dtype(column):
        return False
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = list(column.cat.categories)
        present = set(column.dropna().unique())
        if not all(isinstance(c, str) for c in categories) or set(categories) != present:
            return False
        return categories
    if pd.api.types.is_numeric_dtype(column):
        return None
    values = column.to_numpy()
    if not all(isinstance(v, str) for v in values):
        return False
    return sorted(set(values))


class SimpleSpec:
    """Rebuilds design rows for new data (predictions) with the fitted columns and levels."""

    def __init__(self, terms: list[tuple[str, list[str] | None]]) -> None:
        self.terms = terms
        self.column_names = _names(terms)

    def get_model_matrix(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        columns = [np.ones(len(frame))]
        for name, levels in self.terms:
            if name not in frame.columns:
                raise ModelError(f"newmods has no column {name!r}")
            column = frame[name]
            if levels is None:
                numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
                values = column.to_numpy(dtype=float) if numeric else pd.to_numeric(column, errors="raise")
                columns.append(np.asarray(values, dtype=float))
                continue
            values = column.to_numpy()
            if not (values.dtype == object and all(isinstance(v, str) for v in values)):
                values = column.astype(str).to_numpy()
            present, codes = np.unique(values, return_inverse=True)
            unknown = sorted(set(present.tolist()) - set(levels))
            if unknown:
                raise ModelError(
                    f"{name}: unknown level(s) {', '.join(map(repr, unknown))}; levels: {', '.join(levels)}"
                )
            # One column per non-reference level: rows whose code is that level's.
            position = {level: j for j, level in enumerate(present.tolist())}
            columns += [
                (codes == position[level]).astype(float) if level in position else np.zeros(len(values))
                for level in levels[1:]
            ]
        return np.column_stack(columns)


def _names(terms: list[tuple[str, list[str] | None]]) -> list[str]:
    names = ["Intercept"]
    for name, levels in terms:
        names += [name] if levels is None else [f"{name}[T.{level}]" for level in levels[1:]]
    return names


def simple_design(
    frame: pd.DataFrame, terms: list[str]
) -> tuple[npt.NDArray[np.float64], list[str], dict[str, list[int]], SimpleSpec] | None:
    """(X, names, term_columns, spec) for an additive formula of columns, or None."""
    parts: list[tuple[str, list[str] | None]] = []
    for name in terms:
        levels = _levels(frame[name])
        if levels is False:
            return None
        parts.append((name, levels))
    spec = SimpleSpec(parts)
    X = spec.get_model_matrix(frame)
    names = ["intercept" if n == "Intercept" else n for n in spec.column_names]
    term_columns: dict[str, list[int]] = {"intercept": [0]}
    start = 1
    for name, levels in parts:
        width = 1 if levels is None else len(levels) - 1
        term_columns[name] = list(range(start, start + width))
        start += width
    return X, names, term_columns, spec
