"""Parts every result class shares: the stored inputs read from ``model`` and the scalars
of the first coefficient read from ``coefficients`` (never stored twice), and
``print(result)`` printing the summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from evmeta.models.base.design import ModelData

#: Scalars every frequentist result's ``to_dict`` reports (the intercept's, then the setting).
COMMON_SCALARS = [
    "k",
    "p",
    "method",
    "test",
    "level",
    "estimate",
    "se",
    "stat",
    "pvalue",
    "ci_low",
    "ci_high",
]


class PrintsSummary:
    """``str(result)`` and ``repr(result)`` are the summary's text (metafor's ``print(fit)``);
    the class mixing this in defines ``summary()``."""

    def __str__(self) -> str:
        return str(self.summary())  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return str(self.summary())  # type: ignore[attr-defined]


class StoredInputs:
    """Stored inputs of a fitted model, from its ``model`` (:class:`~evmeta.models.base.design.ModelData`):
    ``yi``, ``vi`` (arrays of the rows fitted), ``X``, ``names``, ``data`` (the rows fitted,
    every input column), ``mods`` (the formula), ``measure`` and ``inputs`` (the ModelData)."""

    model: ModelData

    @property
    def inputs(self) -> ModelData:
        return self.model

    @property
    def yi(self) -> npt.NDArray[np.float64]:
        return self.model.yi

    @property
    def vi(self) -> npt.NDArray[np.float64]:
        return self.model.vi

    @property
    def X(self) -> npt.NDArray[np.float64]:
        return self.model.X

    @property
    def names(self) -> list[str]:
        return list(self.model.names)

    @property
    def data(self) -> pd.DataFrame:
        """The rows the model was fitted to (with every column of the input)."""
        return self.model.frame

    @property
    def mods(self) -> str | None:
        return self.model.formula

    @property
    def measure(self) -> str | None:
        """The effect measure of the fitted rows (:func:`evmeta.models.base.design.detect_measure`)."""
        return self.model.measure


class FirstCoefficient:
    """``estimate``, ``se``, ``stat``, ``pvalue``, ``ci_low``, ``ci_high`` of the first row of
    ``coefficients`` (the pooled effect in a model without moderators)."""

    coefficients: pd.DataFrame

    def _first(self, column: str) -> float:
        return float(self.coefficients[column].iloc[0])

    @property
    def estimate(self) -> float:
        return self._first("estimate")

    @property
    def se(self) -> float:
        return self._first("se")

    @property
    def stat(self) -> float:
        return self._first("stat")

    @property
    def pvalue(self) -> float:
        return self._first("pvalue")

    @property
    def ci_low(self) -> float:
        return self._first("ci_low")

    @property
    def ci_high(self) -> float:
        return self._first("ci_high")
