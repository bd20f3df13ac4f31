"""Model inputs: effect sizes, variances and the moderator design matrix, with clear errors.

Shared by the frequentist and Bayesian engines so that both use the same contrasts and
coefficient order: intercept, then terms in formula order; categorical variables get
treatment contrasts against their first level (sorted, or the pandas category order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evmeta.errors import ModelError
from evmeta.models.base.simple_formula import simple_design, simple_terms

#: Largest |yi| and vi (and smallest positive vi, as its inverse) a model accepts: beyond it
#: the squares and products of the fitting algebra overflow double precision.
SAFE_MAGNITUDE = 1e100


@dataclass(frozen=True, eq=False)
class ModelData:
    """Validated inputs of one model.

    Attributes
    ----------
    yi, vi : ndarray
        Effect sizes and sampling variances (k).
    X : ndarray
        Design matrix (k x p).
    names : list of str
        Coefficient names (``intercept`` first when present).
    term_columns : dict
        Formula term -> column indices of X.
    frame : DataFrame
        The rows used (original index kept), for labels and provenance.
    intercept_only : bool
    formula : str or None
    """

    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    names: list[str]
    term_columns: dict[str, list[int]]
    frame: pd.DataFrame
    intercept_only: bool
    formula: str | None
    spec: Any = None
    measure: str | None = None

    @property
    def k(self) -> int:
        return len(self.yi)

    @property
    def p(self) -> int:
        return int(self.X.shape[1])

    def subset(self, keep: np.ndarray) -> ModelData:
        """The same model on the rows where ``keep`` is True (design columns unchanged)."""
        keep = np.asarray(keep, dtype=bool)
        return ModelData(
            self.yi[keep],
            self.vi[keep],
            self.X[keep],
            self.names,
            self.term_columns,
            self.frame.iloc[np.flatnonzero(keep)],
            self.intercept_only,
            self.formula,
            self.spec,
            self.measure,
        )

    @property
    def moderator_columns(self) -> list[int]:
        """Columns tested by the omnibus moderator test (all but the intercept)."""
        return [j for j, name in enumerate(self.names) if name != "intercept"]


def detect_measure(frame: pd.DataFrame) -> str | None:
    """The effect measure of the rows: one value of a ``measure`` column, else ``attrs["measure"]``.

    The one place every engine (frequentist, multilevel, Bayesian) learns the measure, so
    that they agree on it and on the priors scaled by it. A column with several measures,
    or no column and no attribute, gives None.
    """
    if "measure" in frame.columns:
        values = frame["measure"].dropna().unique()
        return str(values[0]) if len(values) == 1 else None
    value = frame.attrs.get("measure") if getattr(frame, "attrs", None) else None
    return None if value is None else str(value)


def as_frame(data: Any) -> pd.DataFrame | None:
    """Accept a DataFrame, a Comparisons object (``.table``) or None."""
    if data is None:
        return None
    table = getattr(data, "table", None)
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(data, pd.DataFrame):
        return data
    raise ModelError(f"data must be a DataFrame or Comparisons, got {type(data).__name__}")


def _row_names(frame: pd.DataFrame, mask: np.ndarray) -> str:
    labels = frame.index[mask]
    if "comparison_id" in frame.columns:
        labels = frame.loc[mask, "comparison_id"]
    shown = ", ".join(str(x) for x in list(labels)[:10])
    more = f" and {mask.sum() - 10} more" if mask.sum() > 10 else ""
    return shown + more


def _column(frame: pd.DataFrame, name: Any, role: str) -> np.ndarray:
    if isinstance(name, str):
        if name not in frame.columns:
            raise ModelError(
                f"{role}={name!r} is not a column of data; columns: {', '.join(map(str, frame.columns))}"
            )
        values = frame[name]
    else:
        values = pd.Series(np.ravel(np.asarray(name)), index=frame.index)
        if len(values) != len(frame):
            raise ModelError(f"{role} has {len(values)} values but data has {len(frame)} rows")
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return numeric


def prepare(data: Any, yi: Any, vi: Any, mods: str | None, *, allow_zero_variance: bool = False) -> ModelData:
    """Check inputs and build the design matrix.

    Raises
    ------
    ModelError
        Fewer than 2 rows; missing effect sizes, variances or moderator values (naming
        the rows); non-positive variances; a moderator with one level; a rank-deficient
        design.
    """
    frame = as_frame(data)
    if frame is None:
        y_array = np.ravel(np.asarray(yi, dtype=float))
        frame = pd.DataFrame({"yi": y_array, "vi": np.ravel(np.asarray(vi, dtype=float))})
        yi, vi = "yi", "vi"
    y = _column(frame, yi, "yi")
    v = _column(frame, vi, "vi")
    missing = np.isnan(y) | np.isnan(v)
    if missing.any():
        raise ModelError(
            f"missing effect size or variance in {missing.sum()} row(s): {_row_names(frame, missing)}"
        )
    bad = (v < 0) | ((v == 0) & (not allow_zero_variance)) | ~np.isfinite(v) | ~np.isfinite(y)
    if bad.any():
        raise ModelError(
            f"sampling variances must be positive and finite; not so in row(s): {_row_names(frame, bad)}"
        )
    extreme = (np.abs(y) > SAFE_MAGNITUDE) | (v > SAFE_MAGNITUDE) | ((v > 0) & (v < 1 / SAFE_MAGNITUDE))
    if extreme.any():
        raise ModelError(
            f"effect sizes must lie within +-{SAFE_MAGNITUDE:g} and variances within [{1 / SAFE_MAGNITUDE:g}, "
            f"{SAFE_MAGNITUDE:g}] (their squares must stay finite); not so in row(s): {_row_names(frame, extreme)}"
        )
    if len(y) < 2:
        raise ModelError(f"a meta-analysis needs at least 2 comparisons, got {len(y)}")
    X, names, terms, spec = design_matrix(frame, mods)
    if X.shape[0] - X.shape[1] < 1:
        raise ModelError(f"{X.shape[1]} coefficients cannot be estimated from {X.shape[0]} comparisons")
    intercept_only = X.shape[1] == 1 and names == ["intercept"]
    return ModelData(y, v, X, names, terms, frame, intercept_only, mods, spec, detect_measure(frame))


def design_matrix(
    frame: pd.DataFrame, mods: str | None
) -> tuple[np.ndarray, list[str], dict[str, list[int]], Any]:
    """Design matrix for ``mods`` (a formula such as ``"~ isolation_method + quality_score"``)."""
    if mods is None or str(mods).strip() in {"", "~1", "~ 1", "1"}:
        return np.ones((len(frame), 1)), ["intercept"], {"intercept": [0]}, None
    formula = str(mods).strip()
    if not formula.startswith("~"):
        formula = "~ " + formula
    terms = simple_terms(formula)
    if terms is not None:
        unknown = [n for n in terms if n not in frame.columns]
        if unknown:
            raise ModelError(
                f"unknown moderator(s) {', '.join(map(repr, unknown))}; columns: {', '.join(map(str, frame.columns))}"
            )
    variables = terms if terms is not None else _formula_variables(formula, frame)
    for name in variables:
        column = frame[name]
        values = column.to_numpy()  # numpy checks: pandas' isna/nunique cost more than the fit
        missing = np.isnan(values) if values.dtype.kind == "f" else pd.isna(values)
        if missing.any():
            raise ModelError(
                f"moderator {name!r} is missing in {missing.sum()} row(s): {_row_names(frame, missing)}; "
                "filter or impute them before fitting"
            )
        if (np.unique(values).size if values.dtype.kind in "fiub" else len(set(values.tolist()))) < 2:
            raise ModelError(
                f"moderator {name!r} has a single value ({_value_text(column.iloc[0])}) in these data; it cannot be estimated"
            )
    built = simple_design(frame, terms) if terms is not None else None
    if built is None:
        built = _formulaic_design(formula, frame)
    X, names, term_columns, spec = built
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        raise ModelError(
            f"the design for {formula!r} is rank deficient ({rank} of {X.shape[1]} columns independent): "
            "two moderators carry the same information, or a level combination never occurs"
        )
    return X, names, term_columns, spec


def _formulaic_design(
    formula: str, frame: pd.DataFrame
) -> tuple[npt.NDArray[np.float64], list[str], dict[str, list[int]], Any]:
    """(X, names, term_columns, formulaic's ModelSpec) built by formulaic (untyped: the spec is Any)."""
    import formulaic
    from formulaic.errors import FormulaicError

    try:
        matrix = formulaic.model_matrix(formula, frame, na_action="raise")
    except FormulaicError as exc:
        raise ModelError(f"cannot build the design matrix for {formula!r}: {exc}") from None
    names = ["intercept" if n == "Intercept" else n for n in matrix.model_spec.column_names]
    terms = {
        ("intercept" if str(t) == "1" else str(t)): list(range(s.start, s.stop))
        for t, s in matrix.model_spec.term_slices.items()
    }
    return np.asarray(matrix, dtype=float), names, terms, matrix.model_spec


def new_design(model: ModelData, newmods: Any) -> np.ndarray:
    """Design rows for predictions: a DataFrame of moderator values, or an array of rows
    without the intercept column (as metafor's ``newmods``)."""
    if newmods is None:
        return model.X
    if isinstance(newmods, pd.DataFrame):
        if model.spec is None:
            return np.ones((len(newmods), 1))
        try:
            return np.asarray(model.spec.get_model_matrix(newmods), dtype=float)
        except Exception as exc:
            raise ModelError(f"cannot build prediction rows from newmods: {exc}") from None
    has_intercept = "intercept" in model.names
    expected = model.p - (1 if has_intercept else 0)
    rows = np.asarray(newmods, dtype=float)
    if rows.ndim <= 1:
        rows = rows.reshape(-1, 1) if expected == 1 else rows.reshape(1, -1)
    if rows.shape[1] != expected:
        names = ", ".join(n for n in model.names if n != "intercept")
        raise ModelError(f"newmods needs {expected} value(s) per row ({names}), got {rows.shape[1]}")
    return np.column_stack([np.ones(len(rows)), rows]) if has_intercept else rows


def _formula_variables(formula: str, frame: pd.DataFrame) -> list[str]:
    from formulaic import Formula

    try:
        required = Formula(formula).required_variables
    except Exception as exc:
        raise ModelError(f"cannot parse the moderator formula {formula!r}: {exc}") from None
    names = sorted({str(v) for v in required})
    unknown = [n for n in names if n not in frame.columns]
    if unknown:
        raise ModelError(
            f"unknown moderator(s) {', '.join(map(repr, unknown))}; columns: {', '.join(map(str, frame.columns))}"
        )
    return names


def _value_text(value: object) -> str:
    """A moderator value as the user reads it: ``0.6014`` or ``'UC'``, never ``np.float64(0.6014...)``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):.4g}"
    return repr(str(value))
