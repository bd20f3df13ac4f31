"""The result protocol shared by frequentist and Bayesian fits.

Every fitted model (``MetaResult``, ``MultilevelResult``, ``BayesResult``) is immutable,
carries its inputs (``yi``, ``vi``, ``X``, ``data``) and answers:

* ``summary(conf_level=None)`` -> :class:`Summary` (prints a table; ``.table`` is a DataFrame
  with one row per coefficient and per heterogeneity SD ``tau[<level>]``, columns
  ``estimate, se, ci_low, ci_high`` and engine-specific extras);
* ``coef_table(conf_level=None)`` -> the coefficient rows only;
* ``predict(newmods=None, level=None)`` -> ``pred, se, ci_low, ci_high, pi_low, pi_high``.

``conf_level`` and ``prob`` are accepted by both engines (``prob`` is the Bayesian word).
Subgroup analyses and the bias diagnostics (selection model, Egger, trim-and-fill,
PET-PEESE, bias model averaging) answer ``summary(conf_level=None)`` -> :class:`Summary`
(their estimates under the same columns), ``coef_table`` where they have coefficients, and
``to_frame()``.
Old spellings (``predict(newdata=...)``, ``summary()`` as text or as a DataFrame with
``mean/sd/lower/upper``) keep working for one release with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from evmeta.errors import ModelError

#: Columns of the unified coefficient table, in order.
COLUMNS = ("estimate", "se", "ci_low", "ci_high")


def heterogeneity_name(level: str) -> str:
    """Name of the heterogeneity SD of one random level in summaries, priors and InferenceData."""
    return f"tau[{level}]"


def resolve_level(conf_level: float | None, prob: float | None, default: float) -> float:
    """The interval level from ``conf_level`` or its Bayesian synonym ``prob``."""
    if conf_level is not None and prob is not None and conf_level != prob:
        raise ModelError(f"give conf_level or prob, not both ({conf_level} != {prob})")
    value = conf_level if conf_level is not None else (prob if prob is not None else default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ModelError(f"conf_level must be a number between 0 and 1, got {value!r}") from None
    if not 0 < value < 1:
        raise ModelError(f"conf_level must lie between 0 and 1, got {value}")
    return value


def resolve_newmods(newmods: Any, newdata: Any) -> Any:
    """``newmods``, accepting the deprecated ``newdata`` keyword of the old Bayesian API."""
    if newdata is None:
        return newmods
    warnings.warn(
        "predict(newdata=...) is deprecated; use predict(newmods=...)", DeprecationWarning, stacklevel=3
    )
    if newmods is not None:
        raise ModelError("give newmods or newdata, not both")
    return newdata


class Summary:
    """A model summary: ``print(summary)`` shows a readable table; ``.table`` is the DataFrame.

    Attributes
    ----------
    title : str
        One line naming the model.
    lines : list of str
        Model-level statistics (heterogeneity, tests), printed above the table.
    table : DataFrame
        One row per coefficient and per heterogeneity SD (``tau[<level>]``).
    conf_level : float
        Level of the intervals in ``table``.
    """

    def __init__(
        self, title: str, lines: list[str], table: pd.DataFrame, conf_level: float, legacy: Any = None
    ) -> None:
        self.title = title
        self.lines = list(lines)
        self.table = table
        self.conf_level = conf_level
        self._legacy = legacy

    def __str__(self) -> str:
        body = self.table.to_string(float_format=lambda x: f"{x:.4f}", na_rep="")
        return "\n".join([self.title, *self.lines, "", body])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<p>{self.title}</p><p>{'<br>'.join(self.lines)}</p>" + self.table.to_html(
            float_format=lambda x: f"{x:.4f}", na_rep=""
        )

    def _old(self, what: str) -> Any:
        legacy = self._legacy() if callable(self._legacy) else str(self)
        warnings.warn(
            f"summary().{what} on the old summary surface is deprecated; use print(summary()) or "
            "summary().table",
            DeprecationWarning,
            stacklevel=3,
        )
        return legacy

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._old(name), name)

    def __getitem__(self, key: Any) -> Any:
        return self._old("[...]")[key]

    def __contains__(self, item: Any) -> bool:
        # Without this, `"text" in summary` would iterate __getitem__ character by character
        # and answer False where the old text summary answered True.
        return item in self._old("__contains__")
