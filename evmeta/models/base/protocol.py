"""The result protocol: :class:`FitResult`, the contract every fitted result satisfies.

Every fitted model (``MetaResult``, ``MultilevelResult``, their CR2 versions,
``BayesResult`` from quadrature or NUTS, ``SubgroupResult``) and every bias result
(``EggerResult``, ``TrimFillResult``, ``PetPeeseResult``, ``SelectionResult``,
``BiasAveragingResult``) is a frozen dataclass that answers:

* ``inputs`` -> :class:`~evmeta.models.base.design.ModelData`: the stored inputs (``yi``,
  ``vi``, ``X``, ``names``, ``frame``, ``formula``, ``measure``), the one place every
  engine keeps them (as metafor keeps ``yi.f``/``vi.f``);
* ``level`` (interval level, 0-1), ``measure`` (effect measure or None), ``k`` (rows);
* ``coef_table(level=None)`` -> one row per coefficient (index ``term``), columns
  ``estimate, se, ci_low, ci_high`` first; frequentist tables add ``stat, pvalue`` (and
  ``df`` when t-based); Bayesian tables say ``posterior_sd`` instead of ``se``;
* ``heterogeneity_table(level=None)`` -> one row per variance component (index
  ``component``): ``tau2, tau`` and, where defined, ``i2``, ``ci_low``/``ci_high`` of tau;
* ``predict(newmods=None, level=None)`` -> ``pred, se, ci_low, ci_high, pi_low, pi_high``
  (Bayesian: ``posterior_sd``);
* ``summary(level=None)`` -> :class:`Summary` (prints; ``.table`` is a DataFrame);
* ``to_frame()`` -> a tidy DataFrame for CSV output.

One vocabulary: the p-value is ``pvalue`` everywhere (columns and attributes; ``q_pvalue``,
``qm_pvalue`` for the Q tests); levels are given as ``level`` (0.95, or 95 read as percent).
``print(result)`` prints its summary.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pandas as pd

from evmeta.errors import ModelError

#: Columns of the unified coefficient table, in order (Bayesian: ``posterior_sd`` for ``se``).
COLUMNS = ("estimate", "se", "ci_low", "ci_high")
#: The Bayesian spread column: a posterior SD, not a standard error.
POSTERIOR_SD = "posterior_sd"


@runtime_checkable
class FitResult(Protocol):
    """What every fitted result provides (see the module docstring for the columns)."""

    @property
    def inputs(self) -> Any: ...

    @property
    def level(self) -> float: ...

    @property
    def measure(self) -> str | None: ...

    @property
    def k(self) -> int: ...

    def coef_table(self, level: float | None = None) -> pd.DataFrame: ...

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame: ...

    def predict(self, newmods: Any = None, level: float | None = None) -> pd.DataFrame: ...

    def summary(self, level: float | None = None) -> Summary: ...

    def to_frame(self) -> pd.DataFrame: ...


def heterogeneity_name(level: str) -> str:
    """Name of the heterogeneity SD of one random level in summaries, priors and InferenceData."""
    return f"tau[{level}]"


def check_level(value: Any, name: str = "level") -> float:
    """An interval level in (0, 1); a value in (1, 100) is read as a percent (95 -> 0.95)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ModelError(f"{name} must be a number such as 0.95 (or 95), got {value!r}") from None
    if 1 < number < 100:
        number = number / 100
    if not 0 < number < 1:
        raise ModelError(f"{name} must lie between 0 and 1 (or 1 and 100 as a percent), got {value!r}")
    return number


def resolve_level(level: float | None, default: float) -> float:
    """The interval level asked for (``level``, checked) or the result's ``default``."""
    return default if level is None else check_level(level)


def empty_heterogeneity() -> pd.DataFrame:
    """The heterogeneity table of a model without variance components (common effect)."""
    return pd.DataFrame(
        {"tau2": [], "tau": [], "ci_low": [], "ci_high": []}, index=pd.Index([], name="component")
    )


def unavailable_prediction(what: str) -> ModelError:
    """The error of ``predict`` on a result that has no predictive model (naming why)."""
    return ModelError(f"{what} makes no predictions; predict from the fitted model it was computed from")


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
    level : float
        Level of the intervals in ``table``.
    """

    def __init__(self, title: str, lines: list[str], table: pd.DataFrame, level: float) -> None:
        self.title = title
        self.lines = list(lines)
        self.table = table
        self.level = level

    def __str__(self) -> str:
        body = self.table.to_string(float_format=lambda x: f"{x:.4f}", na_rep="")
        return "\n".join([self.title, *self.lines, "", body])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<p>{self.title}</p><p>{'<br>'.join(self.lines)}</p>" + self.table.to_html(
            float_format=lambda x: f"{x:.4f}", na_rep=""
        )
