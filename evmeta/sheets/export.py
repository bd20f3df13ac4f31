"""Export tables safely: text that a spreadsheet would run as a formula is neutralized.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is executed
by Excel and LibreOffice when a CSV file is opened (CSV/formula injection, OWASP). Text
cells starting so get a leading apostrophe; numbers are left alone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _neutralize(value: object) -> object:
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` with formula-like text cells prefixed by an apostrophe."""
    out = frame.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        dtype = column.dtype
        # Every column that can hold text: object, string and categorical (moderator levels).
        if (
            pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
        ):
            out.isetitem(position, column.astype(object).map(_neutralize).astype(object))
    out.columns = [_neutralize(c) if isinstance(c, str) else c for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV with formula injection neutralized; returns the path.

    Callers check the path first (:func:`evmeta._paths.check_output`); an ``OSError`` here
    (disk full, unwritable folder) is for the caller to turn into a message.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    neutralize_formulas(frame).to_csv(path, index=False)
    return path
