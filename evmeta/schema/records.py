"""Typed records (pydantic v2), one model per sheet, generated from the column specs.

Cells are first coerced by the reader (numbers, vocabulary values); these models then check
types, ranges and the rules that tie columns of one row together (an outcome row needs a
usable statistic; an EV arm needs a preparation).
"""

from __future__ import annotations

from typing import Annotated, Any

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
    def _check_rules(self):
        issues = self._row_rules()
        if issues:
            raise PydanticCustomError("row_rules", "row rules failed", {"issues": issues})
        return self


class _ArmRules(_Record):
    def _row_rules(self) -> list[tuple[str | None, str]]:
        out = []
        if self.role == "ev" and not self.prep_id:
            out.append(("prep_id", "an ev arm needs the prep_id of the EV preparation it received"))
        if self.dose_value is not None and not self.dose_unit:
            out.append(("dose_unit", "dose_value is given but dose_unit is empty"))
        return out


class _OutcomeRules(_Record):
    def _row_rules(self) -> list[tuple[str | None, str]]:
        out: list[tuple[str | None, str]] = []
        mean_ok = _present(self.mean) and (
            _present(self.sd) or _present(self.sem) or _present(self.ci_lower, self.ci_upper)
        )
        median_ok = _present(self.median) and (_present(self.q1, self.q3) or _present(self.min, self.max))
        events_ok = _present(self.events, self.total)
        if not (mean_ok or median_ok or events_ok):
            out.append(
                (
                    None,
                    "no usable statistic: give mean with sd, sem or ci_lower/ci_upper; "
                    "or median with q1/q3 or min/max; or events with total",
                )
            )
        if _present(self.ci_lower, self.ci_upper) and self.ci_lower >= self.ci_upper:
            out.append(("ci_upper", f"must be > ci_lower ({self.ci_lower}), got {self.ci_upper}"))
        if _present(self.q1, self.q3) and self.q1 > self.q3:
            out.append(("q3", f"must be >= q1 ({self.q1}), got {self.q3}"))
        if _present(self.q1, self.median, self.q3) and not self.q1 <= self.median <= self.q3:
            out.append(("median", f"must lie between q1 and q3, got {self.median}"))
        if _present(self.min, self.max) and self.min > self.max:
            out.append(("max", f"must be >= min ({self.min}), got {self.max}"))
        if _present(self.events, self.total) and self.events > self.total:
            out.append(("events", f"must be <= total ({self.total}), got {self.events}"))
        if _present(self.mean, self.ci_lower, self.ci_upper) and not (
            self.ci_lower <= self.mean <= self.ci_upper
        ):
            out.append(("mean", f"must lie within ci_lower..ci_upper, got {self.mean}"))
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
