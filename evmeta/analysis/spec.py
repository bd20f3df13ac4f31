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
``[multiverse]``    choices to cross for ``evmeta multiverse``: quoted spec keys such as
                    ``"comparisons.measure" = ["SMD", "ROM"]``, ``outliers``, ``model`` and
                    ``[multiverse.options]`` (see :class:`MultiverseSection`)

Unknown keys and bad values raise :class:`evmeta.SpecError` naming the key and listing
the valid choices.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


#: Spec keys a multiverse may cross: they change the data or the fitted model of the
#: pooled effect. (Other keys exist but do not change a multiverse specification.)
MULTIVERSE_KEYS = (
    "comparisons.measure",
    "comparisons.outcomes",
    "comparisons.timepoint",
    "comparisons.shared_control",
    "filters.species",
    "filters.disease_model",
    "filters.isolation_family",
    "filters.min_quality_score",
    "filters.low_risk_of_bias_only",
    "frequentist.method",
    "frequentist.test",
    "frequentist.multilevel",
)
MULTIVERSE_MODELS = ("random_effects", "three_level", "bayes_quadrature")
_OUTLIER_RULE = r"^(none|studentized_residual_gt_\d+(\.\d+)?)$"


class MultiverseOptions(_Section):
    """``[multiverse.options]``: how the multiverse is run and summarized."""

    min_k: int = Field(3, ge=2)
    null_resamples: int = Field(0, ge=0, le=100_000)
    seed: int = 1
    batch_size: int | None = Field(None, ge=1)


class MultiverseSection(_Section):
    """``[multiverse]``: the choices to cross, each a list of values.

    Quoted dotted keys (``"comparisons.measure"``) name a key of this spec
    (:data:`MULTIVERSE_KEYS`); each value must be valid for that key. ``outliers`` takes
    ``"none"`` or ``"studentized_residual_gt_<c>"`` (drop comparisons whose studentized deleted
    residual exceeds c in absolute value); ``model`` takes ``random_effects``, ``three_level``
    and ``bayes_quadrature``.
    """

    choices: dict[str, list[Any]] = Field(default_factory=dict)
    outliers: list[str] = Field(default_factory=lambda: ["none"], min_length=1)
    model: list[Literal["random_effects", "three_level", "bayes_quadrature"]] = Field(
        default_factory=lambda: ["random_effects"], min_length=1
    )
    options: MultiverseOptions = Field(default_factory=MultiverseOptions)

    @model_validator(mode="before")
    @classmethod
    def _collect_choices(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fixed = {"choices", "outliers", "model", "options"}
        out = {k: v for k, v in data.items() if k in fixed}
        dotted = {k: v for k, v in data.items() if k not in fixed}
        out["choices"] = {**data.get("choices", {}), **dotted}
        return out

    @field_validator("outliers")
    @classmethod
    def _outlier_rules(cls, value: list[str]) -> list[str]:
        import re

        for rule in value:
            if not re.match(_OUTLIER_RULE, str(rule)):
                raise ValueError(
                    f"outlier rule {rule!r} is not allowed; valid: 'none', 'studentized_residual_gt_<number>'"
                )
        return _unique(value, "outliers")

    @field_validator("model")
    @classmethod
    def _unique_models(cls, value: list[str]) -> list[str]:
        return _unique(value, "model")

    @field_validator("choices")
    @classmethod
    def _check_choices(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {key: _check_choice(key, values) for key, values in value.items()}


def _unique(values: list[Any], key: str) -> list[Any]:
    seen = [repr(v) for v in values]
    if len(set(seen)) != len(seen):
        raise ValueError(f"{key}: values repeat in {values!r}")
    return values


def _check_choice(key: str, values: Any) -> list[Any]:
    """Validate each value of a multiverse choice with the spec's own section model."""
    section, _, name = key.partition(".")
    model = {
        "comparisons": ComparisonsSection,
        "filters": FiltersSection,
        "frequentist": FrequentistSection,
    }.get(section)
    if key not in MULTIVERSE_KEYS or model is None or name not in model.model_fields:
        raise ValueError(
            f"{key!r} is not a spec key the multiverse can cross; valid keys: {', '.join(MULTIVERSE_KEYS)}, "
            "outliers, model, options"
        )
    if not isinstance(values, list) or not values:
        raise ValueError(f"{key!r} needs a non-empty list of values, got {values!r}")
    checked = []
    for value in values:
        try:
            parsed = model.model_validate({name: value})
        except ValidationError as exc:
            detail = "; ".join(_message(e) for e in exc.errors())
            raise ValueError(f"{key!r}: value {value!r} is not valid ({detail})") from None
        checked.append(getattr(parsed, name))
    return _unique(checked, key)


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
    multiverse: MultiverseSection | None = None
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
    if error["type"] == "value_error":
        return f"{where.removesuffix('.choices')}: {error['msg'].removeprefix('Value error, ')}"
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
