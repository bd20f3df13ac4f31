"""Moderators of the bias-averaged ensemble, encoded for its marginal likelihoods.

A formula ``"~ a + b"`` of plain column names gives one *term* per column, each in or out of
every model of the ensemble:

* a categorical column (text or pandas categorical) is one term with one coefficient per
  level: comparison ``i`` in level ``j`` has mean ``mu + beta_j`` with the level deviations
  ``beta_j ~ normal(0, s)`` independent (so ``mu`` is the centre of the level means);
* a numeric column is one term with one coefficient ``gamma`` on the column standardized to
  mean 0 and SD 1 (as RoBMA's ``standardize_predictors = TRUE``), so that ``mu`` is the mean
  at the column's mean and ``gamma ~ normal(0, s)`` is per SD of the column.

The ensemble's selection models integrate a categorical term level by level (exactly), so at
most one categorical term is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evmeta.errors import ModelError
from evmeta.models.base.simple_formula import simple_terms


@dataclass(frozen=True, eq=False)
class ModeratorTerms:
    """The encoded moderators.

    Attributes
    ----------
    factor : str or None
        The categorical term.
    levels : tuple of str
        Its levels (sorted text, or the category order).
    level_of : ndarray of int
        The level of each comparison (index into ``levels``; empty without a factor).
    numeric_names : tuple of str
        The numeric terms, in formula order.
    numeric : ndarray
        (k, q) standardized numeric columns.
    centers, scales : ndarray
        Mean and SD of each numeric column (the standardization).
    """

    factor: str | None
    levels: tuple[str, ...]
    level_of: np.ndarray
    numeric_names: tuple[str, ...]
    numeric: np.ndarray
    centers: np.ndarray
    scales: np.ndarray

    @property
    def names(self) -> tuple[str, ...]:
        """Every term, the categorical one first."""
        return ((self.factor,) if self.factor else ()) + self.numeric_names

    def level_counts(self) -> np.ndarray:
        """Comparisons per level."""
        return np.bincount(self.level_of, minlength=len(self.levels)) if self.factor else np.zeros(0, int)


def encode_moderators(frame: pd.DataFrame, mods: str) -> ModeratorTerms:
    """Encode ``mods`` (``"~ a + b"``) on the rows of ``frame``.

    Raises
    ------
    ModelError
        A formula other than a sum of column names, an unknown column, missing values, a
        categorical column with one level, a constant numeric column, or more than one
        categorical column.
    """
    formula = str(mods).strip()
    names = simple_terms(formula if formula.startswith("~") else "~ " + formula)
    if names is None:
        raise ModelError(
            f"mods={mods!r}: the bias ensemble takes a sum of column names such as "
            "'~ isolation_method + quality_score' (no interactions or transforms)"
        )
    unknown = [name for name in names if name not in frame.columns]
    if unknown:
        raise ModelError(
            f"unknown moderator(s) {', '.join(map(repr, unknown))}; columns: {', '.join(map(str, frame.columns))}"
        )
    factors: list[str] = []
    numeric: list[str] = []
    for name in names:
        column = frame[name]
        if column.isna().any():
            raise ModelError(
                f"moderator {name!r} is missing in {int(column.isna().sum())} row(s); filter or impute them first"
            )
        is_numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        (numeric if is_numeric else factors).append(name)
    if len(factors) > 1:
        raise ModelError(
            f"the bias ensemble takes at most one categorical moderator, got {', '.join(factors)}: its "
            "selection models integrate one categorical term level by level; combine them into one column"
        )
    factor: str | None = None
    levels: tuple[str, ...] = ()
    level_of = np.zeros(0, dtype=int)
    if factors:
        factor = factors[0]
        column = frame[factor]
        if isinstance(column.dtype, pd.CategoricalDtype):
            levels = tuple(str(c) for c in column.cat.categories if (column == c).any())
        else:
            levels = tuple(sorted({str(value) for value in column}))
        if len(levels) < 2:
            raise ModelError(f"moderator {factor!r} has one level ({levels[0]!r}); it explains nothing")
        lookup = {level: j for j, level in enumerate(levels)}
        level_of = np.array([lookup[str(value)] for value in column], dtype=int)
    values = frame[numeric].to_numpy(dtype=float) if numeric else np.zeros((len(frame), 0))
    centers = values.mean(axis=0)
    scales = values.std(axis=0)
    constant = [name for name, scale in zip(numeric, scales, strict=True) if not scale > 0]
    if constant:
        raise ModelError(
            f"moderator(s) {', '.join(map(repr, constant))} take one value only; they explain nothing"
        )
    return ModeratorTerms(
        factor, levels, level_of, tuple(numeric), (values - centers) / scales, centers, scales
    )
