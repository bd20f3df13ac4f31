"""Export tables safely: text that a spreadsheet would run as a formula is neutralized.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is executed
by Excel and LibreOffice when a CSV file is opened (CSV/formula injection, OWASP). Text
cells starting so get a leading apostrophe; numbers are left alone. Reading such a CSV back
into a workbook (which stores the text as text), :func:`restore_neutralized` removes it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evmeta._paths import check_output
from evmeta.errors import OutputExistsError

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _neutralize(value: object) -> object:
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value


def restore_neutralized(value: object) -> object:
    """Undo :func:`_neutralize` on a value read back from evmeta's own CSV export.

    Only the one apostrophe the export adds is removed (text whose rest starts with a
    trigger), so the original text can be stored in a workbook as text, where it is safe.
    """
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(_TRIGGERS):
        return value[1:]
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
            # A Series, not an array: pandas 3 would infer the str dtype from an object array.
            # pandas-stubs' isetitem omits the Series that pandas accepts (and aligns).
            neutral = column.astype(object).map(_neutralize).astype(object)
            out.isetitem(position, neutral)  # type: ignore[arg-type]
    out.columns = [_neutralize(c) if isinstance(c, str) else c for c in out.columns]
    return out


def check_new_output(path: str | Path, *, overwrite: bool = False, folder: bool = False) -> Path:
    """Check, before anything is written, that a Python writer may write ``path``.

    The rules are the CLI's (:func:`evmeta._paths.check_output`): never a folder where a file
    is meant (or the reverse), never an unwritable place; an existing file only with
    ``overwrite=True`` (the Python spelling of ``--force``).

    Raises
    ------
    OutputExistsError
        ``path`` is an existing file and ``overwrite`` is False.
    PathError
        Any other refusal of :func:`evmeta._paths.check_output`.
    """
    path = Path(path)
    if not folder and not overwrite and (path.is_symlink() or (path.exists() and not path.is_dir())):
        raise OutputExistsError(
            f"{path} already exists; nothing was written. Pass overwrite=True to replace it, "
            "or choose another file name"
        )
    return check_output(path, force=overwrite, folder=folder)


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV with formula injection neutralized; returns the path.

    Callers check the path first (:func:`evmeta._paths.check_output`); an ``OSError`` here
    (disk full, unwritable folder) is for the caller to turn into a message.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    neutralize_formulas(frame).to_csv(path, index=False)
    return path
