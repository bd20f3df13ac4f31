"""The reviewer's own moderators: extra columns of the arms sheet (e.g. written by
``import-wide [moderators]``), typed numeric or categorical, carried to each comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evmeta.schema.cells import parse_number
from evmeta.schema.columns import column_map


def arm_moderators(arms: pd.DataFrame, taken: set[str]) -> pd.DataFrame:
    """The arms sheet's extra columns (the reviewer's own moderators, e.g. written by
    ``import-wide [moderators]``), indexed by ``arm_id``: each comparison takes its EV arm's
    values. A column whose every value reads as a number is numeric (float), else
    categorical (text, whitespace cleaned). Columns named like a column of the comparison
    table (``taken``) are left out: evmeta's own column wins.
    """
    schema = set(column_map("arms"))
    names = [c for c in arms.columns if c not in schema and not str(c).startswith("_") and c not in taken]
    out = pd.DataFrame(index=pd.Index(arms["arm_id"], name="arm_id"))
    for name in names:
        out[name] = _typed(arms[name]).to_numpy()
    return out[~out.index.duplicated()]


def _typed(values: pd.Series) -> pd.Series:
    """Numbers as float when every value reads as one, else text (None where empty)."""

    def number(value: object) -> float | None:
        if isinstance(value, bool):
            return None  # a truth value is a category, not a number
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_number(str(value))
        except ValueError:
            return None

    def text(value: object) -> str | None:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return " ".join(str(value).split()) or None

    cleaned = values.map(text)
    numbers = [number(v) for v in values[cleaned.notna()]]
    if not numbers or any(n is None for n in numbers):
        return cleaned.astype(object)
    out = pd.Series(np.nan, index=values.index, dtype=float)
    out[cleaned.notna()] = np.asarray(numbers, dtype=float)
    return out
