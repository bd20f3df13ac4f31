"""Spec sections for correlated effects: ``[comparisons] combine_outcomes`` (nested comparisons
combined per cohort) and ``[comparisons] correlation`` (assumed sampling correlations for the
multilevel model), with the correlations of their sensitivity sweep (docs/correlated_effects.md).

Written as inline tables, e.g. ``combine_outcomes = {by = ["study_id", "experiment_id"],
rho = 0.5}`` and ``correlation = {rho = 0.5, phi = 0.9}``, or as
``[comparisons.combine_outcomes]`` tables.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Assumed correlations the sensitivity sweep refits the model with (0 = independence).
SWEEP = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9]


def _correlation(value: float) -> float:
    if value >= 1.0:
        raise ValueError(
            f"rho = {value:g} makes the effects of a group perfectly correlated: their covariance matrix "
            "is singular and the combined estimate undefined; use a value below 1 (e.g. 0.9)"
        )
    return value


def _sweep_values(value: list[float]) -> list[float]:
    if any(not 0.0 <= v < 1.0 for v in value):
        raise ValueError(f"correlations of the sweep must be in [0, 1), got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"values repeat in {value!r}")
    return sorted(value)


class CombineOutcomesSection(BaseModel):
    """``combine_outcomes``: combine the comparisons of each group (one cohort by default)."""

    model_config = ConfigDict(extra="forbid")

    #: Columns that make one group: by default the outcomes of one treated arm of one
    #: experiment (the same animals); without arm_id, every arm of the cohort is combined.
    by: list[str] = Field(default_factory=lambda: ["study_id", "experiment_id", "arm_id"], min_length=1)
    #: Assumed correlation of the sampling errors within a group (1 is singular: refused).
    rho: float = Field(0.5, ge=0.0)
    #: Autocorrelation per time unit between time points of one outcome (not set: rho for all).
    phi: float | None = Field(None, ge=0.0, le=1.0)
    time_unit: Literal["days", "weeks"] = "weeks"
    sensitivity: list[float] = Field(default_factory=lambda: list(SWEEP), max_length=20)

    @field_validator("sensitivity")
    @classmethod
    def _sweep(cls, value: list[float]) -> list[float]:
        return _sweep_values(value)

    @field_validator("rho")
    @classmethod
    def _rho(cls, value: float) -> float:
        return _correlation(value)


class CorrelationSection(BaseModel):
    """``correlation``: assumed sampling correlations of comparisons on the same animals,
    used as V by the multilevel models."""

    model_config = ConfigDict(extra="forbid")

    #: Correlation between different outcomes of the same treated arm at one time.
    rho: float = Field(0.5, ge=0.0)
    #: Autocorrelation per time unit between time points of the same outcome.
    phi: float | None = Field(None, ge=0.0, le=1.0)
    time_unit: Literal["days", "weeks"] = "weeks"
    sensitivity: list[float] = Field(default_factory=lambda: list(SWEEP), max_length=20)

    @field_validator("sensitivity")
    @classmethod
    def _sweep(cls, value: list[float]) -> list[float]:
        return _sweep_values(value)

    @field_validator("rho")
    @classmethod
    def _rho(cls, value: float) -> float:
        return _correlation(value)
