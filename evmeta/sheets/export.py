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
    for name in out.columns:
        column = out[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            out[name] = column.map(_neutralize).astype(object)
    out.columns = [_neutralize(c) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV with formula injection neutralized; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    neutralize_formulas(frame).to_csv(path, index=False)
    return path
