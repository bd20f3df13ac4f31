"""Typed records (pydantic v2), one model per sheet, generated from the column specs.

Cells are first coerced by the reader (numbers, vocabulary values); these models then check
types, ranges and the rules that tie columns of one row together (an outcome row needs a
usable statistic; an EV arm needs a preparation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from evmeta.schema.columns import SHEETS, Column

_PYTHON_TYPES = {"int": int, "float": float, "year": int}


def _present(*values: Any) -> bool:
    return all(v is not None for v in values)


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)

    def _row_rules(self) -> list[tuple[str | None, str]]:
        return []

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        issues = self._row_rules()
        if issues:
            raise PydanticCustomError("row_rules", "row rules failed", {"issues": issues})
        return self


class _ArmRules(_Record):
    if TYPE_CHECKING:
        # Fields made by ``create_model`` from ``columns.ARMS``; declared for the type checker.
        role: str
        prep_id: str | None
        dose_value: float | None
        dose_unit: str | None

    def _row_rules(self) -> list[tuple[str | None, str]]:
        out: list[tuple[str | None, str]] = []
        if self.role == "ev" and not self.prep_id:
            out.append(("prep_id", "an ev arm needs the prep_id of the EV preparation it received"))
        if self.dose_value is not None and not self.dose_unit:
            out.append(("dose_unit", "dose_value is given but dose_unit is empty"))
        return out


class _OutcomeRules(_Record):
    if TYPE_CHECKING:
        # Fields made by ``create_model`` from ``columns.OUTCOMES``; declared for the type checker.
        mean: float | None
        sd: float | None
        sem: float | None
        ci_lower: float | None
        ci_upper: float | None
        median: float | None
        q1: float | None
        q3: float | None
        min: float | None
        max: float | None
        events: int | None
        total: int | None

    def _row_rules(self) -> list[tuple[str | None, str]]:
        out: list[tuple[str | None, str]] = []
        mean, lo, hi = self.mean, self.ci_lower, self.ci_upper
        median, q1, q3 = self.median, self.q1, self.q3
        low, high = self.min, self.max
        events, total = self.events, self.total
        mean_ok = mean is not None and (
            _present(self.sd) or _present(self.sem) or (lo is not None and hi is not None)
        )
        median_ok = median is not None and (
            (q1 is not None and q3 is not None) or (low is not None and high is not None)
        )
        events_ok = events is not None and total is not None
        if not (mean_ok or median_ok or events_ok):
            out.append(
                (
                    None,
                    "no usable statistic: give mean with sd, sem or ci_lower/ci_upper; "
                    "or median with q1/q3 or min/max; or events with total",
                )
            )
        if lo is not None and hi is not None and lo >= hi:
            out.append(("ci_upper", f"must be > ci_lower ({lo}), got {hi}"))
        if q1 is not None and q3 is not None and q1 > q3:
            out.append(("q3", f"must be >= q1 ({q1}), got {q3}"))
        if q1 is not None and median is not None and q3 is not None and not q1 <= median <= q3:
            out.append(("median", f"must lie between q1 and q3, got {median}"))
        if low is not None and high is not None and low > high:
            out.append(("max", f"must be >= min ({low}), got {high}"))
        if events is not None and total is not None and events > total:
            out.append(("events", f"must be <= total ({total}), got {events}"))
        if mean is not None and lo is not None and hi is not None and not lo <= mean <= hi:
            out.append(("mean", f"must lie within ci_lower..ci_upper, got {mean}"))
        return out


_BASES: dict[str, type[_Record]] = {"arms": _ArmRules, "outcomes": _OutcomeRules}


def _field(column: Column) -> tuple[Any, Any]:
    python_type = _PYTHON_TYPES.get(column.kind, str)
    constraints: dict[str, Any] = {"description": column.help}
    if column.minimum is not None:
        constraints["ge"] = column.minimum
    if column.maximum is not None:
        constraints["le"] = column.maximum
    if column.positive:
        constraints["gt"] = 0
    annotated = Annotated[python_type, Field(**constraints)]  # type: ignore[valid-type]
    if column.required:
        return annotated, ...
    return annotated | None, None


def _model(sheet: str) -> type[_Record]:
    fields = {c.name: _field(c) for c in SHEETS[sheet]}
    name = "".join(part.title() for part in sheet.split("_")) + "Record"
    return create_model(name, __base__=_BASES.get(sheet, _Record), **fields)  # type: ignore[call-overload]


#: Sheet name -> pydantic model of one row.
RECORDS: dict[str, type[_Record]] = {sheet: _model(sheet) for sheet in SHEETS}

StudyRecord = RECORDS["studies"]
PreparationRecord = RECORDS["preparations"]
ExperimentRecord = RECORDS["experiments"]
ArmRecord = RECORDS["arms"]
OutcomeRecord = RECORDS["outcomes"]
RiskOfBiasRecord = RECORDS["risk_of_bias"]
