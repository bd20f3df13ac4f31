"""Analysis specs: ``analyses/<name>.toml`` describes one analysis as data.

Sections (all but ``[analysis]`` optional, every key has a default):

``[analysis]``      name, title, question, extraction (path relative to the spec), output
``[comparisons]``   measure, outcomes, timepoint, shared_control
``[filters]``       species, disease_model, isolation_family, min_quality_score,
                    low_risk_of_bias_only
``[moderators]``    reference levels of categorical moderators, e.g. isolation_method = "UC"
``[frequentist]``   method, test, subgroups, meta_regression, multilevel, robust
``[bayesian]``      enabled, mods, random, method, likelihood, draws, tune, chains, seed, priors
``[sensitivity]``   leave_one_out, low_risk_of_bias, nmd_vs_smd, alternative_priors
``[figures]``       formats, width, forest_by
``[validation]``    truth (a JSON file of true parameters, for simulated data)
``[prisma]``        search (exports, one per database), registers, dedupe, screening, extraction (default:
                    analysis.extraction): when set, the report shows the PRISMA 2020 flow diagram

Unknown keys and bad values raise :class:`evmeta.SpecError` naming the key and listing
the valid choices.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evmeta.errors import SpecError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalysisSection(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = ""
    question: str = ""
    extraction: str
    output: str | None = None


class ComparisonsSection(_Section):
    measure: Literal["SMD", "MD", "ROM", "NMD", "OR", "RR", "RD", "NMD_or_SMD"] = "SMD"
    outcomes: list[str] = Field(default_factory=list)
    timepoint: Literal["last", "first", "all"] | float = "last"
    shared_control: Literal["split", "keep"] = "split"


class FiltersSection(_Section):
    species: list[str] = Field(default_factory=list)
    disease_model: list[str] = Field(default_factory=list)
    isolation_family: list[str] = Field(default_factory=list)
    min_quality_score: float = Field(0.0, ge=0, le=1)
    low_risk_of_bias_only: bool = False


class FrequentistSection(_Section):
    method: Literal["EE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB"] = "REML"
    test: Literal["z", "knha"] = "knha"
    subgroups: list[str] = Field(default_factory=lambda: ["isolation_method"])
    meta_regression: str | None = "~ isolation_method + quality_score"
    multilevel: list[str] = Field(default_factory=lambda: ["study_id", "experiment_id"])
    robust: bool = True


class BayesianSection(_Section):
    enabled: bool = True
    mods: str | None = "~ isolation_method + quality_score"
    random: list[str] | None = Field(default_factory=lambda: ["study_id", "experiment_id"])
    method: Literal["auto", "quadrature", "nuts"] = "auto"
    likelihood: Literal["normal", "student_t"] = "normal"
    draws: int = Field(1000, ge=100)
    tune: int = Field(1000, ge=0)
    chains: int = Field(4, ge=1, le=16)
    seed: int = 1
    priors: dict[str, str] = Field(default_factory=dict)


class SensitivitySection(_Section):
    leave_one_out: bool = True
    low_risk_of_bias: bool = True
    nmd_vs_smd: bool = True
    alternative_priors: dict[str, dict[str, str]] = Field(default_factory=dict)


class FiguresSection(_Section):
    formats: list[Literal["pdf", "svg", "png"]] = Field(default_factory=lambda: ["pdf", "svg", "png"])
    width: Literal["double", "single"] | float = "double"
    forest_by: str | None = "isolation_method"

    @field_validator("formats")
    @classmethod
    def _svg_needed(cls, value: list[str]) -> list[str]:
        # The HTML report embeds the SVG versions.
        return value if "svg" in value else [*value, "svg"]


class ValidationSection(_Section):
    truth: str | None = None


class PrismaSection(_Section):
    """Files the PRISMA 2020 flow diagram is counted from (paths relative to the spec)."""

    search: list[str] = Field(default_factory=list)
    registers: list[str] = Field(default_factory=list)
    dedupe: str | None = None
    screening: str | None = None
    extraction: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.search or self.dedupe or self.screening)


class AnalysisSpec(_Section):
    """A parsed, validated analysis spec (paths resolved relative to the spec file)."""

    analysis: AnalysisSection
    comparisons: ComparisonsSection = Field(default_factory=ComparisonsSection)
    filters: FiltersSection = Field(default_factory=FiltersSection)
    moderators: dict[str, str] = Field(default_factory=dict)
    frequentist: FrequentistSection = Field(default_factory=FrequentistSection)
    bayesian: BayesianSection = Field(default_factory=BayesianSection)
    sensitivity: SensitivitySection = Field(default_factory=SensitivitySection)
    figures: FiguresSection = Field(default_factory=FiguresSection)
    validation: ValidationSection = Field(default_factory=ValidationSection)
    prisma: PrismaSection = Field(default_factory=PrismaSection)
    source: Path | None = None

    def resolve(self, relative: str) -> Path:
        """A path from the spec, relative to the spec file's folder."""
        path = Path(relative)
        return path if path.is_absolute() or self.source is None else (self.source.parent / path).resolve()

    @property
    def extraction_path(self) -> Path:
        return self.resolve(self.analysis.extraction)

    @property
    def output_path(self) -> Path:
        if self.analysis.output:
            return self.resolve(self.analysis.output)
        base = self.source.parent.parent if self.source is not None else Path.cwd()
        return (base / "reports" / self.analysis.name).resolve()


_SECTIONS = {name: field.annotation for name, field in AnalysisSpec.model_fields.items() if name != "source"}


def _valid_keys(location: tuple) -> list[str]:
    if len(location) <= 1:
        return [k for k in AnalysisSpec.model_fields if k != "source"]
    model = _SECTIONS.get(location[0])
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _message(error: dict[str, Any]) -> str:
    location = tuple(str(p) for p in error["loc"])
    where = ".".join(location)
    if error["type"] == "extra_forbidden":
        valid = _valid_keys(location)
        return f"unknown key {where!r}; valid keys{' in [' + location[0] + ']' if len(location) > 1 else ''}: {', '.join(valid)}"
    if error["type"] == "missing":
        return f"missing required key {where!r}"
    if error["type"] in {"literal_error", "enum"}:
        return f"{where}: {error['input']!r} is not allowed; valid choices: {error['ctx']['expected']}"
    return f"{where}: {error['msg']} (got {error.get('input')!r})"


def parse_spec(data: dict[str, Any], source: Path | None = None) -> AnalysisSpec:
    """Validate a spec given as a dict (as read from TOML)."""
    try:
        spec = AnalysisSpec.model_validate(data)
    except ValidationError as exc:
        where = f"{source}: " if source else ""
        raise SpecError(where + "; ".join(_message(e) for e in exc.errors())) from None
    spec.source = source
    return spec


def load_spec(path: str | Path) -> AnalysisSpec:
    """Read and validate ``analyses/<name>.toml``."""
    path = Path(path).resolve()
    if not path.exists():
        raise SpecError(f"{path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    spec = parse_spec(data, path)
    if not spec.extraction_path.exists():
        raise SpecError(f"{path}: analysis.extraction: {spec.extraction_path} does not exist")
    return spec
