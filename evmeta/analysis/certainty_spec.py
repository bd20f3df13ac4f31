"""The ``[certainty]`` section of an analysis spec: the important effect and the power
settings behind evmeta's suggested GRADE judgements, and the reviewer's overrides
(``[[certainty.override]]``: outcome, domain, judgement and a reason, all required).

```toml
[certainty]
important_effect = 0.5        # smallest important effect, in the analysis measure
[[certainty.override]]
outcome = "infarct size"      # an outcome of the analysis, "all outcomes", or "*" for every one
domain = "indirectness"
judgement = "very serious"
reason = "only young male rodents; no comorbidity"
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Domain = Literal["risk_of_bias", "indirectness", "inconsistency", "imprecision", "publication_bias"]
Judgement = Literal["not serious", "serious", "very serious"]


class CertaintyOverride(BaseModel):
    """One judgement of the reviewer, replacing evmeta's suggestion."""

    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(min_length=1)
    domain: Domain
    judgement: Judgement
    reason: str

    @field_validator("reason")
    @classmethod
    def _has_reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an overridden judgement needs its reason (GRADE: every judgement is explained)")
        return value.strip()


class CertaintySection(BaseModel):
    """``[certainty]``: the summary of findings with certainty (docs/certainty.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: Smallest important effect in the analysis measure (None: 0.5 for SMD, log(1.25) for
    #: ROM, OR, RR; none for the others).
    important_effect: float | None = Field(None, gt=0)
    #: Standardized important effect of the optimal information size (None: important_effect
    #: for SMD, else 0.5).
    ois_smd: float | None = Field(None, gt=0, le=10)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    power: float = Field(0.8, gt=0.5, lt=1)
    override: list[CertaintyOverride] = Field(default_factory=list)

    @field_validator("override")
    @classmethod
    def _one_per_domain(cls, value: list[CertaintyOverride]) -> list[CertaintyOverride]:
        seen = set()
        for entry in value:
            key = (entry.outcome, entry.domain)
            if key in seen:
                raise ValueError(f"two overrides of {entry.domain} for outcome {entry.outcome!r}; keep one")
            seen.add(key)
        return value
